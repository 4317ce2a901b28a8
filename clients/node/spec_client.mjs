#!/usr/bin/env node
// A conformance client for the game server, written from protocol/PROTOCOL.md
// alone (wire protocol, version 1).
//
//   node spec_client.mjs ws://127.0.0.1:PORT/ [name]
//
// It says hello (joining the game "arena" at once), follows a `redirect` if
// the server is a cluster and the room is on another worker (§5.11: a new
// connection to `url`, hello with the ticket; at most 3 hops; a `bad_ticket`
// starts over once at the first URL without a ticket), checks the welcome,
// answers every ping at once, pushes its player in a free direction with
// inputs of increasing seq until a snapshot both acknowledges one of them and
// shows the move, chats and waits for its own chat event, acks the newest
// snapshot, leaves the room (waits for `left`) and closes with 1000.
// It asks for delta snapshots (hello.deltas, §5.6), applies them with the page's
// clients/browser/delta.js (a base it does not hold is a failure: it acknowledges
// only snapshots it applied) and acknowledges every snapshot it applies: by the
// input's `ack` while it pushes, else by an `ack` message.
//
// Every frame received must be a binary frame holding one msgpack map whose
// `t` names a v1 server message with the fields of §4.2; anything else, any
// `error`, an unexpected close or the 10 s overall limit fails loudly: a
// message on stderr and exit code 1. On success one JSON line goes to stdout.

import { Decoder, encode, ExtData } from "@msgpack/msgpack";
import WebSocket from "ws";
import { DeltaState, KEEP_STATES } from "../browser/delta.js";

const PROTOCOL_VERSION = 1;
const OVERALL_TIMEOUT_MS = 10_000;
const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53-1
const MAX_U32 = 4294967295; // 2^32-1
const MIB = 1 << 20;
const MAX_REDIRECTS = 3; // hops per hello before this client calls it a loop

// Defaults of §4.2 `welcome.limits`: used only before the welcome arrives
// (i.e. for the hello itself).
const DEFAULT_LIMITS = {
  max_message_bytes: 4096,
  messages_per_second: 60,
  message_burst: 120,
  max_chat_chars: 200,
  input_queue_depth: 16,
};

// -- failure -----------------------------------------------------------------

class ProtocolFailure extends Error {}

let finished = false;
let socket = null;

function fail(message) {
  if (finished) return;
  finished = true;
  process.stderr.write(`spec_client: FAIL: ${message}\n`);
  if (socket) {
    try {
      socket.terminate();
    } catch {
      // already gone
    }
  }
  process.exit(1);
}

function check(condition, message) {
  if (!condition) throw new ProtocolFailure(message);
}

// -- decoding and structural validation (§2) ---------------------------------

// Server-side limits of §2: message, str and bin ≤ 1 MiB, array and map
// ≤ 65536, nesting ≤ 32. Decoding with exactly these limits both accepts
// everything the server may send and checks it stays within them.
const INT_KEY = "\u0000int-key:";
const decoder = new Decoder({
  maxStrLength: MIB,
  maxBinLength: MIB,
  maxArrayLength: 65536,
  maxMapLength: 65536,
  maxExtLength: MIB,
  // Integer keys are allowed only inside game data (§2): tag them so the
  // validator can tell where they occur.
  mapKeyConverter: (key) => {
    if (typeof key === "string") {
      if (key.startsWith(INT_KEY)) throw new Error("string key uses the reserved prefix");
      if (key === "__proto__") throw new Error('map key "__proto__" refused by this client');
      return key;
    }
    if (typeof key === "number" && Number.isInteger(key)) return INT_KEY + key;
    throw new Error(`map key of type ${typeof key}`);
  },
});

// The fields §4.2 lists for each server message and for RoomInfo. Any other
// key is an unknown field: a value of type `any`, like game data (§2).
const KNOWN_FIELDS = {
  welcome: ["t", "version", "player", "tick_rate", "snapshot_rate", "tick", "limits", "games", "room",
            "resume", "resumed", "resume_url"],
  joined: ["t", "room"],
  left: ["t", "room"],
  snapshot: ["t", "id", "tick", "ack", "rtt_us", "jitter_us", "base", "state"],
  event: ["t", "kind", "player", "name", "text", "tick"],
  ping: ["t", "nonce"],
  redirect: ["t", "url", "ticket", "room", "ttl_ms"],
  error: ["t", "code", "message", "ref"],
};
const CLIENT_TYPES = ["hello", "join", "leave", "input", "chat", "pong", "ack"];
const ROOM_INFO_FIELDS = ["name", "game", "max_players", "players", "info", "spectators", "away"];

// Walk a decoded value: no ext (timestamps included), finite floats only,
// bin and integer map keys only inside game data (and bin in unknown fields),
// nesting ≤ 32. Returns the value with integer keys turned back into plain
// property names.
function validateValue(value, path, depth, inGameData) {
  check(depth <= 32, `${path}: nesting deeper than 32 levels`);
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    check(Number.isFinite(value), `${path}: NaN or infinite float`);
    return value;
  }
  if (typeof value === "bigint") throw new ProtocolFailure(`${path}: 64-bit integer out of range`);
  if (value instanceof Date || value instanceof ExtData) {
    throw new ProtocolFailure(`${path}: msgpack ext type (refused by §2)`);
  }
  if (value instanceof Uint8Array) {
    check(inGameData, `${path}: bin outside game data`);
    return value;
  }
  if (Array.isArray(value)) {
    return value.map((item, i) => validateValue(item, `${path}[${i}]`, depth + 1, inGameData));
  }
  if (typeof value === "object") {
    const out = {};
    const known = depth === 1 ? KNOWN_FIELDS[value.t] : depth === 2 && path === "$.room" ? ROOM_INFO_FIELDS : undefined;
    for (const [rawKey, item] of Object.entries(value)) {
      let key = rawKey;
      if (rawKey.startsWith(INT_KEY)) {
        check(inGameData, `${path}: integer map key outside game data`);
        key = rawKey.slice(INT_KEY.length);
      }
      // Game data: snapshot.state and RoomInfo.info (welcome.room, joined.room).
      const gameData =
        inGameData || (depth === 1 && key === "state") || (depth === 2 && key === "info" && path === "$.room");
      const unknownField = known !== undefined && !known.includes(key);
      out[key] = validateValue(item, `${path}.${key}`, depth + 1, gameData || unknownField);
    }
    return out;
  }
  throw new ProtocolFailure(`${path}: unexpected value of type ${typeof value}`);
}

// -- field checks (§4.2) -----------------------------------------------------

const isInt = (v, lo, hi) => typeof v === "number" && Number.isSafeInteger(v) && v >= lo && v <= hi;
const chars = (s) => [...s].length;

function int(msg, key, lo = 0, hi = MAX_SAFE) {
  const v = msg[key];
  check(isInt(v, lo, hi), `${msg.t}.${key}: expected an int in ${lo}..${hi}, got ${show(v)}`);
  return v;
}

function optInt(msg, key, lo = 0, hi = MAX_SAFE) {
  return msg[key] === undefined || msg[key] === null ? null : int(msg, key, lo, hi);
}

function str(msg, key, minChars = 0, maxChars = Infinity) {
  const v = msg[key];
  check(typeof v === "string", `${msg.t}.${key}: expected a str, got ${show(v)}`);
  const n = chars(v);
  check(n >= minChars && n <= maxChars, `${msg.t}.${key}: length ${n} not in ${minChars}..${maxChars}`);
  return v;
}

function optStr(msg, key, minChars = 0, maxChars = Infinity) {
  return msg[key] === undefined || msg[key] === null ? null : str(msg, key, minChars, maxChars);
}

function isMap(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function show(v) {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function checkRoomInfo(room, where) {
  check(isMap(room), `${where}: RoomInfo must be a map, got ${show(room)}`);
  const r = { ...room, t: where };
  str(r, "name", 1, 32);
  str(r, "game", 1, 32);
  int(r, "max_players", 1, MAX_U32);
  check(Array.isArray(room.players), `${where}.players: expected an array`);
  for (const entry of room.players) {
    check(
      Array.isArray(entry) &&
        entry.length === 2 &&
        isInt(entry[0], 0, MAX_U32) &&
        typeof entry[1] === "string" &&
        chars(entry[1]) <= 32,
      `${where}.players: bad roster entry ${show(entry)}`,
    );
  }
  check("info" in room, `${where}.info: missing`);
  if (room.delta !== undefined && room.delta !== null) {
    str(r, "delta", 1, 32);
    // This client reads the generic patch format only (the arena's).
    check(room.delta === "generic", `${where}.delta: ${show(room.delta)}, not "generic"`);
  }
}

function checkArenaInfo(info) {
  check(isMap(info), `room.info: expected a map for arena, got ${show(info)}`);
  const i = { ...info, t: "room.info" };
  int(i, "width", 1);
  int(i, "height", 1);
  int(i, "scale", 1);
  for (const key of ["speed", "player_radius", "gem_radius"]) {
    check(
      typeof info[key] === "number" && Number.isFinite(info[key]) && info[key] >= 0,
      `room.info.${key}: expected a number, got ${show(info[key])}`,
    );
  }
  check(Array.isArray(info.walls), "room.info.walls: expected an array");
  for (const wall of info.walls) {
    check(
      Array.isArray(wall) && wall.length === 4 && wall.every((n) => typeof n === "number"),
      `room.info.walls: bad wall ${show(wall)}`,
    );
  }
}

const SNAPSHOT_KEYS = ["t", "id", "tick", "ack", "rtt_us", "jitter_us", "base", "state"];

const validators = {
  welcome(m) {
    check(int(m, "version", 0, MAX_U32) === PROTOCOL_VERSION, `welcome.version is ${m.version}, not 1`);
    int(m, "player", 0, MAX_U32);
    int(m, "tick_rate", 1, 1000);
    int(m, "snapshot_rate", 1, 1000);
    check(m.snapshot_rate <= m.tick_rate, "welcome.snapshot_rate > tick_rate");
    int(m, "tick");
    check(isMap(m.limits), "welcome.limits: expected a map");
    for (const [k, v] of Object.entries(m.limits)) {
      check(isInt(v, -MAX_SAFE, MAX_SAFE), `welcome.limits.${k}: expected an int, got ${show(v)}`);
    }
    check(
      Array.isArray(m.games) && m.games.every((g) => typeof g === "string"),
      "welcome.games: expected an array of str",
    );
    if (m.room !== undefined && m.room !== null) checkRoomInfo(m.room, "welcome.room");
  },
  joined(m) {
    checkRoomInfo(m.room, "joined.room");
  },
  left(m) {
    str(m, "room", 0, 32);
  },
  snapshot(m) {
    const keys = Object.keys(m).slice(0, SNAPSHOT_KEYS.length);
    check(
      keys.join() === SNAPSHOT_KEYS.join(),
      `snapshot: keys ${show(keys)} are not the eight of §4.2 in order`,
    );
    int(m, "id", 1);
    int(m, "tick");
    optInt(m, "ack", 0, MAX_U32);
    int(m, "rtt_us");
    int(m, "jitter_us");
    // A delta's base is a snapshot this connection acknowledged, so an earlier one.
    if (m.base !== null) int(m, "base", 1, m.id - 1);
  },
  event(m) {
    const kind = str(m, "kind");
    check(["join", "leave", "chat"].includes(kind), `event.kind: unknown kind ${show(kind)}`);
    int(m, "player", 0, MAX_U32);
    str(m, "name", 0, 32);
    if (kind === "chat") str(m, "text");
    else check(m.text === undefined || m.text === null, `event ${kind}: carries a text`);
    int(m, "tick");
  },
  ping(m) {
    int(m, "nonce");
  },
  redirect(m) {
    const url = str(m, "url", 1, 512);
    check(/^wss?:\/\//.test(url), `redirect.url: not a ws:// or wss:// URL: ${show(url)}`);
    str(m, "ticket", 1, 64);
    str(m, "room", 1, 32);
    int(m, "ttl_ms", 0, MAX_U32);
  },
  error(m) {
    str(m, "code", 0, 64);
    str(m, "message");
    const ref = optStr(m, "ref", 0, 64);
    // §4.2: ref, when present, is the t of one of the client's own message types.
    check(ref === null || CLIENT_TYPES.includes(ref), `error.ref: not a client message type: ${show(ref)}`);
  },
};

function decodeFrame(data, isBinary) {
  check(isBinary, "received a text frame (the server sends binary frames only, §1)");
  const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(data);
  let raw;
  try {
    raw = decoder.decode(bytes);
  } catch (err) {
    throw new ProtocolFailure(`frame is not one msgpack value: ${err.message} (hex ${hex(bytes)})`);
  }
  check(isMap(raw), `frame is not a msgpack map: ${show(raw)}`);
  const msg = validateValue(raw, "$", 1, false);
  check(typeof msg.t === "string", `message without a str field t: ${show(msg)}`);
  const validate = validators[msg.t];
  check(validate !== undefined, `unknown server message type ${show(msg.t)}`);
  validate(msg);
  return msg;
}

function hex(bytes) {
  const h = Buffer.from(bytes.subarray(0, 64)).toString("hex");
  return bytes.length > 64 ? `${h}…` : h;
}

// -- arena helpers (§7) ------------------------------------------------------

// Name cleaning as §5.4 describes it for chat (and §4.1 for names).
function clean(text) {
  return text.replace(/\p{C}/gu, "").trim();
}

function myPosition(snapshot, me) {
  const state = snapshot.state;
  check(isMap(state), `snapshot.state: expected a map, got ${show(state)}`);
  check(Array.isArray(state.players), "snapshot.state.players: expected an array");
  check(Array.isArray(state.gems), "snapshot.state.gems: expected an array");
  for (const p of state.players) {
    check(
      Array.isArray(p) && p.length === 4 && p.every((n) => Number.isSafeInteger(n)),
      `snapshot.state.players: bad entry ${show(p)}`,
    );
  }
  for (const g of state.gems) {
    check(
      Array.isArray(g) && g.length === 3 && g.every((n) => Number.isSafeInteger(n)),
      `snapshot.state.gems: bad entry ${show(g)}`,
    );
  }
  const mine = state.players.find((p) => p[0] === me);
  check(mine !== undefined, `snapshot ${snapshot.id}: own player ${me} not in state.players`);
  return [mine[1], mine[2]];
}

// How far (world units, up to `limit`) a disc of radius r can travel from
// (x, y) along `dir` before leaving the world or touching a wall. The check
// is conservative: the disc is treated as its bounding square.
function freeDistance(info, x, y, dir, limit) {
  const r = info.player_radius;
  // §7's test: out of the world, or a wall's closest point nearer than r (touching is
  // allowed). A box around the disc would be stricter than the server near a wall's
  // corner, and could find no free direction where the server lets the player move.
  const blocked = (cx, cy) =>
    cx < r ||
    cy < r ||
    cx > info.width - r ||
    cy > info.height - r ||
    info.walls.some(([wx, wy, ww, wh]) => {
      const nx = Math.min(Math.max(cx, wx), wx + ww);
      const ny = Math.min(Math.max(cy, wy), wy + wh);
      return (cx - nx) ** 2 + (cy - ny) ** 2 < r * r;
    });
  const step = 0.5;
  let d = 0;
  while (d + step <= limit && !blocked(x + dir[0] * (d + step), y + dir[1] * (d + step))) d += step;
  return d;
}

// -- the session -------------------------------------------------------------

async function main() {
  const url = process.argv[2];
  const name = process.argv[3] ?? `node-${process.pid}`;
  if (!url || !/^wss?:\/\//.test(url)) {
    process.stderr.write("usage: node spec_client.mjs ws://HOST:PORT/ [name]\n");
    process.exit(2);
  }
  const cleanedName = clean(name);
  if (chars(name) < 1 || chars(name) > 32 || cleanedName === "") {
    process.stderr.write("spec_client: the name must be 1..32 chars and not empty after cleaning\n");
    process.exit(2);
  }

  let phase = "connecting";
  const doing = () =>
    waiters.length > 0 ? `waiting for ${waiters.map((w) => w.what).join(" and ")}` : phase;
  const deadline = setTimeout(
    () => fail(`overall timeout of ${OVERALL_TIMEOUT_MS} ms while ${doing()}`),
    OVERALL_TIMEOUT_MS,
  );

  // State shared with the message handler.
  let limits = { ...DEFAULT_LIMITS };
  let me = null;
  let snapshots = 0;
  let deltas = null; // DeltaState of the current connection
  let pushing = false; // inputs are going out: they carry the acks
  let ackedId = 0;
  let ackedAt = -Infinity;
  let lastSnapshot = null;
  let lastSnapshotTick = -1;
  let pings = 0;
  let maxSeqSent = null;
  let inRoom = false;
  let closing = false;
  const waiters = [];

  // Client-side token bucket mirroring §5.8, so this client never trips the
  // server's rate limit (a send that would is a bug here, not a server fault).
  let tokens = limits.message_burst;
  let refilled = performance.now();
  function takeToken() {
    const now = performance.now();
    tokens = Math.min(limits.message_burst, tokens + ((now - refilled) / 1000) * limits.messages_per_second);
    refilled = now;
    check(tokens >= 1, "client would exceed the server's message rate (§5.8)");
    tokens -= 1;
  }

  function send(message) {
    const bytes = encode(message);
    check(
      bytes.length <= limits.max_message_bytes,
      `client message of ${bytes.length} bytes over max_message_bytes ${limits.max_message_bytes}`,
    );
    check(socket.readyState === WebSocket.OPEN, `cannot send ${message.t}: socket not open`);
    takeToken();
    socket.send(bytes, { binary: true });
  }

  // waitFor(predicate, what): resolves with the first later message that
  // matches; the overall timeout covers it.
  function waitFor(predicate, what) {
    return new Promise((resolve) => waiters.push({ predicate, resolve, what }));
  }

  function onMessage(msg) {
    switch (msg.t) {
      case "ping":
        // Answer at once, whatever else is going on (§5.5).
        pings += 1;
        if (!closing) send({ t: "pong", nonce: msg.nonce });
        break;
      case "error":
        // A refused seat ticket is answered by starting over (§5.11); any other
        // error is a failure of this session.
        if (msg.code === "bad_ticket" && ticketSent && me === null) break;
        throw new ProtocolFailure(
          `server error ${msg.code}${msg.ref ? ` (ref ${msg.ref})` : ""}: ${msg.message}`,
        );
      case "redirect":
        // Only a hello or a join may be answered so (§5.11); this client joins in hello.
        check(me === null, "redirect after the welcome (no join was sent)");
        retire(4005); // the server closes this connection with 4005 right after
        break;
      case "welcome":
        // Handled here, not after `await`: the messages that follow it may be
        // dispatched before the awaiting code resumes.
        check(me === null, "a second welcome");
        me = msg.player;
        // §5.6: the states of the last 64 ids received are always enough (bases are never
        // more than 60 ids back); snapshot_rate is kept too, for a server of an older text.
        deltas.keep = Math.max(KEEP_STATES, msg.snapshot_rate);
        for (const key of Object.keys(DEFAULT_LIMITS)) {
          check(isInt(msg.limits[key], 1, MAX_SAFE), `welcome.limits.${key}: missing or not a positive int`);
          limits[key] = msg.limits[key];
        }
        inRoom = msg.room !== undefined && msg.room !== null;
        break;
      case "joined":
        throw new ProtocolFailure("unexpected joined (hello joined already, §5.1)");
      case "left":
        check(inRoom, "left while not in a room");
        inRoom = false;
        break;
      case "snapshot":
        check(me !== null, "snapshot before welcome");
        if (!inRoom) {
          // §5.9: a snapshot generated before `left` may still follow it
          // (reliable messages overtake the pending snapshot). Tolerated.
          break;
        }
        if (lastSnapshot !== null) {
          check(msg.id > lastSnapshot.id, `snapshot id ${msg.id} not after ${lastSnapshot.id}`);
        }
        check(msg.tick >= lastSnapshotTick, `snapshot tick ${msg.tick} went back from ${lastSnapshotTick}`);
        check(
          msg.ack === null || (maxSeqSent !== null && msg.ack <= maxSeqSent),
          `snapshot.ack ${msg.ack} acknowledges a seq never sent (max sent ${maxSeqSent})`,
        );
        if (lastSnapshot !== null && lastSnapshot.ack !== null) {
          check(msg.ack !== null && msg.ack >= lastSnapshot.ack, `snapshot.ack went back to ${msg.ack}`);
        }
        try {
          msg.state = deltas.receive(msg); // the whole state, before anything reads it
        } catch (err) {
          throw new ProtocolFailure(err.name === "DeltaError" ? `snapshot ${msg.id}: ${err.message}` : err);
        }
        myPosition(msg, me); // validates the arena state
        lastSnapshot = msg;
        lastSnapshotTick = msg.tick;
        snapshots += 1;
        // Standing still: acknowledge it now, at most half the message rate (pongs and
        // chat share the rest); while pushing, the next input's ack carries it.
        if (!pushing && !closing && performance.now() - ackedAt >= 2000 / limits.messages_per_second) {
          send({ t: "ack", id: msg.id });
          ackedId = msg.id;
          ackedAt = performance.now();
        }
        break;
      default:
        break;
    }
    for (let i = 0; i < waiters.length; i++) {
      if (waiters[i].predicate(msg)) {
        const [w] = waiters.splice(i, 1);
        w.resolve(msg);
        break;
      }
    }
  }

  // One socket at a time is current; a redirect or a refused ticket retires it
  // (its frames are ignored from then on, its close must carry the expected code).
  let generation = 0;
  let closed = null;
  const retired = [];
  let ticketSent = false;

  function openSocket(target) {
    const gen = ++generation;
    const ws = new WebSocket(target, {
      perMessageDeflate: false, // §1: no compression
      maxPayload: 16 * MIB, // §1: accept at least 1 MiB
      handshakeTimeout: 5000,
    });
    socket = ws;
    deltas = new DeltaState(); // snapshot ids, and so bases, are per connection
    limits = { ...DEFAULT_LIMITS };
    tokens = limits.message_burst;
    let closeResolve;
    closed = new Promise((resolve) => {
      closeResolve = resolve;
    });
    ws.on("unexpected-response", (_req, res) => {
      fail(`handshake refused by ${target}: HTTP ${res.statusCode} ${res.statusMessage ?? ""}`.trim());
    });
    ws.on("error", (err) => {
      // A retired connection's end is checked by its close code (see retire).
      if (gen === generation) fail(`WebSocket error while ${doing()}: ${err.message}`);
    });
    ws.on("message", (data, isBinary) => {
      if (gen !== generation) return; // a retired connection: nothing of it matters (§5.11)
      try {
        onMessage(decodeFrame(data, isBinary));
      } catch (err) {
        fail(err instanceof ProtocolFailure ? err.message : `${err.stack ?? err}`);
      }
    });
    ws.on("close", (code, reason) => {
      if (gen === generation && !closing) {
        fail(`server closed the connection while ${doing()}: code ${code} ${reason.toString()}`.trim());
      }
      closeResolve({ code, reason: reason.toString() });
    });
    return new Promise((resolve) => ws.once("open", resolve));
  }

  // Stop listening to the current socket; its close must come with `expected`.
  function retire(expected) {
    generation += 1;
    const ws = socket;
    retired.push(
      closed.then(({ code, reason }) => {
        check(code === expected, `retired connection closed with ${code} ${reason}, expected ${expected}`);
        return code;
      }),
    );
    if (expected === 1000) ws.close(1000, "starting over");
  }

  // 1. hello, joining the arena at once (§5.1), following redirects (§5.11).
  const joinP = waitFor((m) => m.t === "event" && m.kind === "join" && me !== null && m.player === me, "own join event");
  let target = url;
  let ticket = null;
  let reserved = null; // the room a ticket holds a seat in
  let hops = 0;
  let redirects = 0;
  let startedOver = false;
  let welcome = null;
  while (welcome === null) {
    phase = `connecting to ${target}`;
    await openSocket(target);
    phase = "connected";
    const answerP = waitFor(
      (m) => m.t === "welcome" || m.t === "redirect" || (m.t === "error" && m.code === "bad_ticket"),
      "welcome or redirect",
    );
    ticketSent = ticket !== null;
    const hello = { t: "hello", version: PROTOCOL_VERSION, name, deltas: true };
    // With a ticket: the same version and name, the ticket (§5.11) and deltas, which
    // is asked on each connection (§5.6).
    send(ticket === null ? { ...hello, game: "arena" } : { ...hello, ticket });
    const answer = await answerP;
    if (answer.t === "welcome") {
      welcome = answer;
    } else if (answer.t === "redirect") {
      check(hops < MAX_REDIRECTS, `more than ${MAX_REDIRECTS} redirects for one hello (last to ${answer.url})`);
      hops += 1;
      redirects += 1;
      [target, ticket, reserved] = [answer.url, answer.ticket, answer.room];
    } else {
      // bad_ticket: the seat is gone; matchmaking again from the first URL, once.
      check(!startedOver, `ticket refused twice: ${answer.message}`);
      startedOver = true;
      retire(1000);
      [target, ticket, reserved, hops] = [url, null, null, 0];
    }
  }
  const retiredCodes = await Promise.all(retired);
  check(welcome.games.includes("arena"), `welcome.games ${show(welcome.games)} lacks "arena"`);
  check(welcome.room !== null && welcome.room !== undefined, "welcome.room is nil although hello asked for arena");
  const room = welcome.room;
  check(reserved === null || room.name === reserved, `welcome.room ${show(room.name)} is not the reserved ${show(reserved)}`);
  check(room.game === "arena", `welcome.room.game is ${show(room.game)}`);
  check(
    room.players.some(([id, n]) => id === me && n === cleanedName),
    `welcome.room.players ${show(room.players)} lacks [${me}, ${show(cleanedName)}]`,
  );
  check(room.players.length <= room.max_players, "more players than seats");
  checkArenaInfo(room.info);
  const info = room.info;
  const joinEvent = await joinP;
  check(joinEvent.name === cleanedName, `join event name ${show(joinEvent.name)} ≠ ${show(cleanedName)}`);

  // 2. Find where we are, pick a free direction, push until a snapshot both
  // acknowledges an input and shows the move (§5.3, §7).
  const first = lastSnapshot ?? (await waitFor((m) => m.t === "snapshot" && inRoom, "first snapshot"));
  const start = myPosition(first, me);
  const scale = info.scale;
  const reach = info.speed * 0.5; // half a second of full speed
  const dirs = [
    [1, 0],
    [-1, 0],
    [0, 1],
    [0, -1],
  ];
  const ranked = dirs
    .map((d) => ({ d, free: freeDistance(info, start[0] / scale, start[1] / scale, d, reach) }))
    .sort((a, b) => b.free - a.free);
  const dir = ranked[0].d;
  check(ranked[0].free > 0, `player at ${show(start)} cannot move in any direction`);

  // Pace: one input per tick, and at most half the sustained message rate;
  // never more inputs in flight than input_queue_depth allows.
  const intervalMs = Math.max(1000 / welcome.tick_rate, 2000 / limits.messages_per_second);
  const inFlightMax = Math.max(1, Math.floor(limits.input_queue_depth / 2));
  let seq = 0;
  const moved = waitFor((m) => {
    if (m.t !== "snapshot" || !inRoom || m.ack === null) return false;
    const [x, y] = myPosition(m, me);
    const along = (x - start[0]) * dir[0] + (y - start[1]) * dir[1];
    const across = (x - start[0]) * dir[1] + (y - start[1]) * dir[0];
    return along > 0 && across === 0;
  }, `a snapshot acknowledging an input and showing a move towards ${show(dir)}`);
  const sendInput = () => {
    const acked = lastSnapshot?.ack ?? 0;
    if (seq - acked >= inFlightMax) return;
    seq += 1;
    maxSeqSent = seq;
    const message = { t: "input", seq, data: { dx: dir[0], dy: dir[1] } };
    if (lastSnapshot !== null) {
      message.ack = lastSnapshot.id;
      [ackedId, ackedAt] = [lastSnapshot.id, performance.now()];
    }
    send(message);
  };
  pushing = true;
  sendInput();
  const pusher = setInterval(() => {
    try {
      sendInput();
    } catch (err) {
      fail(err.message);
    }
  }, intervalMs);
  const moveSnapshot = await moved;
  clearInterval(pusher);
  pushing = false;
  // Stop the player (velocity persists until the next input, §7).
  seq += 1;
  maxSeqSent = seq;
  send({ t: "input", seq, data: { dx: 0, dy: 0 }, ack: lastSnapshot.id });
  const end = myPosition(moveSnapshot, me);

  // 3. Chat and wait for our own chat event (§5.4).
  const text = `hello from node ${process.pid}`;
  check(chars(clean(text)) <= limits.max_chat_chars, "chat line over max_chat_chars");
  const chatP = waitFor((m) => m.t === "event" && m.kind === "chat" && m.player === me, "own chat event");
  send({ t: "chat", text });
  const chat = await chatP;
  check(chat.text === clean(text), `chat event text ${show(chat.text)} ≠ ${show(clean(text))}`);
  check(chat.name === cleanedName, `chat event name ${show(chat.name)} ≠ ${show(cleanedName)}`);

  // 4. Ack the newest snapshot held (§5.6), if no acknowledgement above did yet.
  const acked = lastSnapshot.id;
  if (acked > ackedId) send({ t: "ack", id: acked });

  // 5. Leave the room and wait for `left` (§5.2).
  const leftP = waitFor((m) => m.t === "left", "left");
  send({ t: "leave" });
  const left = await leftP;
  check(left.room === room.name, `left.room ${show(left.room)} ≠ ${show(room.name)}`);

  // 6. Close with 1000; the server answers 1000 (§5.10, §6.1).
  phase = "waiting for the server's close frame";
  closing = true;
  socket.close(1000, "bye");
  const { code } = await closed;
  check(code === 1000, `server answered our close 1000 with ${code}`);
  clearTimeout(deadline);

  finished = true;
  const summary = {
    ok: true,
    player: me,
    room: room.name,
    redirects,
    started_over: startedOver,
    retired_closes: retiredCodes,
    snapshots,
    full_snapshots: deltas.full,
    delta_snapshots: deltas.deltas,
    pings,
    rtt_us: lastSnapshot.rtt_us,
    jitter_us: lastSnapshot.jitter_us,
    dir,
    moved: [end[0] - start[0], end[1] - start[1]],
    seq,
    input_acked: moveSnapshot.ack,
    ack: acked,
    chat: true,
    left: true,
    close: code,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((err) => fail(err instanceof ProtocolFailure ? err.message : `${err.stack ?? err}`));
