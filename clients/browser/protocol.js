// protocol.js: what protocol/PROTOCOL.md (wire protocol v1) says, as data the
// page uses: the version, the default limits, what every close code and error
// code means (§6), and the text rules the server applies to names, room names
// and chat lines (§4.1, §5.2, §5.4), so the page can refuse locally what the
// server would refuse. No I/O here.

export const PROTOCOL_VERSION = 1;
export const GAME = "arena";

/** welcome.limits defaults (§4.2): used only until the welcome arrives. */
export const DEFAULT_LIMITS = Object.freeze({
  max_message_bytes: 4096,
  messages_per_second: 60,
  message_burst: 120,
  max_chat_chars: 200,
  input_queue_depth: 16,
  max_input_lead: 15,
  max_players_per_room: 50,
  ping_timeout_ms: 10000,
  hello_timeout_ms: 5000,
  // The chat rate (§5.4); a server that predates these two keys used these defaults.
  chat_per_minute: 120,
  chat_burst: 5,
  // Announced since (§4.2); the page reads none of them but keeps the copy exact.
  frames_per_second: 240,
  frame_burst: 480,
  max_fragments: 64,
  flood_close_after: 60,
  bad_messages_allowed: 10,
  max_input_seq_gap: 1024,
  ping_interval_ms: 1000,
  empty_room_grace_ms: 30000,
  reconnect_grace_ms: 20000,
});

export const MAX_NAME_CHARS = 32;
export const MAX_ROOM_CHARS = 32;
export const MAX_STR_BYTES = 1024;

/** §6.1, plus the codes a browser reports on its own (1005, 1006). */
const CLOSE_CODES = {
  1000: ["NORMAL", "the connection ended normally"],
  1001: ["GOING_AWAY", "the server is shutting down"],
  1002: ["PROTOCOL_ERROR", "WebSocket framing error"],
  1003: ["UNSUPPORTED_DATA", "the server received a text frame"],
  1005: ["NO_STATUS", "the connection closed without a status code"],
  1006: [
    "ABNORMAL",
    "the connection was lost without a close frame: the server stopped or is unreachable, " +
      "refused the connection (full, shutting down, or too many connections from your address), " +
      "or dropped this client for reading too slowly",
  ],
  1007: ["INVALID_DATA", "invalid UTF-8 in a close reason"],
  1008: [
    "POLICY_VIOLATION",
    "policy violation: a message before hello, too many bad messages, or a message flood",
  ],
  1009: ["MESSAGE_TOO_BIG", "a message was over the size limit"],
  1011: [
    "INTERNAL_ERROR",
    "the game failed on this player's input or join, the room crashed, or no WebSocket pong",
  ],
  4000: ["HELLO_TIMEOUT", "no hello within the hello timeout"],
  4001: ["TOO_SLOW", "this client fell too far behind reading the server's messages"],
  4002: ["PING_TIMEOUT", "no pong in time for a ping (was the tab asleep?)"],
  4003: ["UNSUPPORTED_VERSION", "the server does not speak this protocol version"],
  4005: ["REDIRECTED", "the room is on another worker of the server: reconnecting there"],
  4006: ["REPLACED", "another connection (another tab?) took this player's seat"],
};

/** A close code as a person reads it: "1001 GOING_AWAY: the server is shutting down". */
export function describeClose(code, reason = "") {
  const known = CLOSE_CODES[code];
  const name = known ? ` ${known[0]}` : "";
  const meaning = known ? known[1] : "unknown close code";
  const shown = reason && !restates(meaning, reason) ? ` (“${reason}”)` : "";
  return `${code}${name}: ${meaning}${shown}`;
}

/** True when every word of `reason` is already in `meaning` ("server shutting down"). */
function restates(meaning, reason) {
  const words = new Set(meaning.toLowerCase().split(/\W+/));
  return reason.toLowerCase().split(/\W+/).every((word) => !word || words.has(word));
}

/** §6.2: what each error code means. An unknown code is a generic refusal (§3). */
const ERROR_CODES = {
  bad_message: "a message was malformed",
  unknown_type: "the server does not know that message type",
  hello_required: "hello must come first",
  already_hello: "hello was already sent",
  unsupported_version: "the server does not speak this protocol version",
  unknown_game: "the server does not run that game",
  room_full: "the room is full",
  room_game_mismatch: "that room runs another game",
  no_such_room: "no room of that name",
  too_many_rooms: "the server cannot open more rooms",
  not_in_room: "not in a room",
  already_in_room: "already in a room",
  bad_input: "the game refused an input",
  input_queue_full: "too many inputs waiting for their tick",
  input_too_early: "an input was meant for a tick too far ahead",
  bad_chat: "chat line empty or too long",
  rate_limited: "sending too fast: messages were dropped",
  bad_ticket: "the seat ticket was refused (expired or already used): join again",
  directory_unavailable: "the server's room directory is not answering: try again in a moment",
  resume_failed: "the held seat was gone: joined as a new player",
  spectating: "spectators cannot do that",
  spectators_full: "the room has its maximum of spectators",
};

export function describeError(code) {
  return ERROR_CODES[code] ?? "request refused";
}

/** The server's cleaning (§5.4): drop every character of general category C, then trim. */
export function cleanText(text) {
  return text.replace(/\p{C}/gu, "").trim();
}

/** Length in chars as the protocol counts them: Unicode code points. */
export function charCount(text) {
  return [...text].length;
}

export function utf8Length(text) {
  return new TextEncoder().encode(text).length;
}

/** The name to send in hello, or a problem (1..32 chars raw, non-empty after cleaning). */
export function checkName(raw) {
  const name = raw.trim();
  if (!cleanText(name)) return { problem: "enter a name" };
  if (charCount(name) > MAX_NAME_CHARS) return { problem: `at most ${MAX_NAME_CHARS} characters` };
  return { name };
}

/** A room name the server accepts as it is (§5.2): 1..32 chars, no control or format
 * character, no leading or trailing whitespace. Returns a problem or null. */
export function checkRoom(room) {
  if (!room) return "empty room name";
  if (charCount(room) > MAX_ROOM_CHARS) return `room names have at most ${MAX_ROOM_CHARS} characters`;
  if (cleanText(room) !== room) return "room names cannot hold control characters or outer spaces";
  return null;
}

/** Cut a chat line to maxChars code points and the 1024-byte string limit (§4.1). */
export function clipChat(text, maxChars) {
  let chars = [...text];
  if (chars.length > maxChars) chars = chars.slice(0, maxChars);
  let clipped = chars.join("");
  while (utf8Length(clipped) > MAX_STR_BYTES) {
    chars = chars.slice(0, -1);
    clipped = chars.join("");
  }
  return clipped;
}
