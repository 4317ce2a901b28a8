// ui.js: the page around the canvas: the join form, the HUD, the scores, the
// chat panel, notices, and the "disconnected" panel with its reconnect
// button. GameSession calls the methods marked (session) to say what
// happened; main.js wires the buttons. Text from the network is only ever set
// as textContent, never parsed as HTML.

import { charCount, checkName, checkRoom, describeClose } from "./protocol.js";
import { playerColor } from "./render.js";

const CHAT_LINES_KEPT = 200;
const $ = (id) => document.getElementById(id);

/** A number with its unit ("12.3 ms"), or a dash when there is none yet. */
function quantityText(value, digits, unit) {
  return value === null || value === undefined ? "–" : `${value.toFixed(digits)} ${unit}`;
}

export class Ui {
  constructor() {
    this.el = {
      join: $("join"),
      name: $("name"),
      room: $("room"),
      joinButton: $("join-button"),
      watchButton: $("watch-button"),
      joinMessage: $("join-message"),
      closed: $("closed"),
      closedMessage: $("closed-message"),
      reconnect: $("reconnect"),
      leave: $("leave"),
      leaderboard: $("leaderboard"),
      chatLog: $("chat-log"),
      chatForm: $("chat-form"),
      chatInput: $("chat-input"),
      chatCount: $("chat-count"),
      notice: $("notice"),
      hud: {
        state: $("hud-state"),
        player: $("hud-player"),
        room: $("hud-room"),
        rtt: $("hud-rtt"),
        jitter: $("hud-jitter"),
        tick: $("hud-tick"),
        snapshots: $("hud-snapshots"),
        delay: $("hud-delay"),
      },
    };
    this.maxChatChars = 200;
    this.noticeTimer = null;
    this.el.chatInput.addEventListener("input", () => this._countChat());
  }

  /** Name and room from the form, checked as the server checks them; null after showing why not. */
  readJoinForm() {
    const { name, problem } = checkName(this.el.name.value);
    if (problem) return this._joinProblem(`Name: ${problem}.`);
    const room = this.el.room.value.trim();
    const roomProblem = room ? checkRoom(room) : null;
    if (roomProblem) return this._joinProblem(`Room: ${roomProblem}.`);
    return { name, room: room || undefined };
  }

  _joinProblem(text) {
    this.el.joinMessage.textContent = text;
    this.el.joinMessage.className = "problem";
    return null;
  }

  showJoinForm(message = "", { lobby = false } = {}) {
    this.el.join.hidden = false;
    this.el.name.disabled = lobby; // the name was given in hello and stays
    this.el.joinButton.disabled = false;
    this.el.watchButton.disabled = false;
    this.el.joinButton.textContent = lobby ? "Join" : "Play";
    this.el.joinMessage.textContent = message;
    this.el.joinMessage.className = "";
    (lobby ? this.el.room : this.el.name).focus();
  }

  /** The page lost its connection and is trying to take its seat back (§5.12). */
  reconnecting(attempt) {
    this.connection("reconnecting…");
    if (attempt > 1) this.el.hud.state.textContent = `reconnecting… (try ${attempt})`;
    this.el.leave.disabled = true;
    this.el.chatInput.disabled = true;
  }

  /** (session) connection state, as the HUD shows it. */
  connection(text) {
    this.el.hud.state.textContent = text;
    this.el.hud.state.dataset.state = text.split(/[ ,]/)[0];
    if (text === "connecting") {
      this.el.joinButton.disabled = true;
      this.el.watchButton.disabled = true;
      this.el.joinMessage.textContent = "Connecting…";
      this.el.joinMessage.className = "";
    }
  }

  /** A join was sent from the lobby: no other until it is answered. */
  joining() {
    this.el.joinButton.disabled = true;
    this.el.watchButton.disabled = true;
    this.el.joinMessage.textContent = "Joining…";
    this.el.joinMessage.className = "";
  }

  /** (session) welcomed, or back from a room: in the lobby. */
  lobby(session) {
    this.connection("connected, in the lobby");
    this.el.hud.player.textContent = String(session.playerId);
    this.el.hud.room.textContent = "–";
    this.el.leave.disabled = true;
    this.showJoinForm(`Connected as player ${session.playerId}. Pick a room or leave it empty.`, {
      lobby: true,
    });
  }

  /** (session) in a room. */
  joined(session, room) {
    this.connection("in room");
    this.maxChatChars = session.limits.max_chat_chars;
    this.el.join.hidden = true;
    this.el.leave.disabled = false;
    this.el.hud.player.textContent = String(session.playerId);
    this.el.hud.room.textContent = room.name;
    this.el.chatInput.disabled = false;
    this.el.chatInput.placeholder = `Say something (Enter, ≤ ${this.maxChatChars} characters)`;
    this._countChat();
    const invite = new URL(window.location.href);
    invite.searchParams.delete(session.spectate ? "room" : "watch");
    invite.searchParams.set(session.spectate ? "watch" : "room", room.name);
    window.history.replaceState(null, "", invite);
    const watching = session.spectate ? "You are watching" : "You are in";
    this.chatLine("info", "", `${watching} room ${room.name} (${room.players.length}/${room.max_players} players). Invite: ${invite}`, true);
    document.activeElement?.blur?.();
  }

  /** (session) the server refused a join (in hello or join). */
  joinRefused(session, text) {
    this.lobby(session);
    this._joinProblem(`Could not join: ${text}`);
  }

  /** (session) the server refused the hello itself (no welcome): back to the form. */
  helloRefused(text) {
    this.connection("not connected");
    this.showJoinForm();
    this._joinProblem(`Could not connect: ${text}`);
  }

  /** (session) a chat line, or a join/leave announcement. */
  chatLine(kind, name, text, own) {
    const line = document.createElement("li");
    line.className = `chat-${kind}${own ? " own" : ""}`;
    if (kind === "chat") {
      const who = document.createElement("b");
      who.textContent = name;
      line.append(who, `: ${text}`);
    } else if (kind === "join") {
      line.textContent = `→ ${name} joined`;
    } else if (kind === "leave") {
      line.textContent = `← ${name} left`;
    } else if (kind === "away") {
      line.textContent = `⋯ ${name} lost the connection (seat held)`;
    } else if (kind === "back") {
      line.textContent = `↺ ${name} is back`;
    } else {
      line.textContent = text;
    }
    const log = this.el.chatLog;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(line);
    while (log.children.length > CHAT_LINES_KEPT) log.firstElementChild.remove();
    if (atBottom || own) log.scrollTop = log.scrollHeight;
  }

  /** (session) a refusal or problem that is not fatal: shown for a few seconds. */
  notice(text) {
    this.el.notice.textContent = text;
    this.el.notice.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => (this.el.notice.hidden = true), 6000);
  }

  /** (session) the connection closed: say why, offer to reconnect. */
  closed(info) {
    this.connection("closed");
    this.el.hud.state.textContent = `closed (${info.code})`;
    this.el.join.hidden = true;
    this.el.leave.disabled = true;
    this.el.chatInput.disabled = true;
    // A refused handshake (server down, full, or a login token refused: 401) reaches a
    // page only as 1006, with no status: say what it may be instead of what 1006 is.
    const meaning = info.opened
      ? describeClose(info.code, info.reason)
      : "could not connect: the server is down, or it refused the connection " +
        "(full, or it needs a login this page did not give)";
    this.el.closedMessage.textContent = meaning;
    this.el.closed.dataset.code = String(info.code);
    this.el.closed.hidden = false;
    this.el.reconnect.focus();
  }

  hideClosed() {
    this.el.closed.hidden = true;
  }

  /** Refresh the HUD and the scores (a few times a second, not every frame). */
  refresh(session) {
    const hud = session.hud();
    const h = this.el.hud;
    h.rtt.textContent = quantityText(hud.rttMs, 1, "ms");
    h.jitter.textContent = quantityText(hud.jitterMs, 1, "ms");
    h.tick.textContent = hud.tick === null ? "–" : String(hud.tick);
    h.snapshots.textContent = hud.snapshotsPerSecond === null ? "–" : `${hud.snapshotsPerSecond}/s`;
    h.delay.textContent = quantityText(hud.delayMs, 0, "ms");
    this._leaderboard(session.leaderboard());
  }

  _leaderboard(rows) {
    const list = this.el.leaderboard;
    list.replaceChildren(
      ...rows.map(({ id, name, score, own }) => {
        const item = document.createElement("li");
        item.dataset.player = String(id);
        if (own) item.className = "own";
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = playerColor(id);
        const label = document.createElement("span");
        label.className = "who";
        label.textContent = own ? `${name} (you)` : name;
        const points = document.createElement("span");
        points.className = "score";
        points.textContent = String(score);
        item.append(swatch, label, points);
        return item;
      }),
    );
  }

  _countChat() {
    const input = this.el.chatInput;
    const chars = [...input.value];
    if (chars.length > this.maxChatChars) input.value = chars.slice(0, this.maxChatChars).join("");
    this.el.chatCount.textContent = `${charCount(input.value)}/${this.maxChatChars}`;
  }
}
