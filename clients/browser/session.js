// session.js: one connection's game session, from hello to close. It turns
// server messages into state (welcome, room and roster, snapshots into the
// interpolation timeline and the own player's prediction, events into chat
// lines), sends inputs at the server's input rate, and tells the page (ui.js,
// through the `ui` object) what to show. A reconnect is a new GameSession.
//
// Input pacing (PROTOCOL.md §5.3): one input per tick at most, and at most
// half of messages_per_second (pongs and chat share the budget), i.e.
// min(tick_rate, messages_per_second / 2) per second, 30 by default; sent
// while a key is held and once when the direction changes (an input holds
// until the next one, so standing still costs nothing), with seq 1, 2, 3, …
// A change of direction is sent at once (the keyboard calls inputChanged)
// when the last input went out at least one interval ago, and the pacer's beat
// restarts from it; otherwise the beat sends it, one interval after the last.
// and the newest snapshot id as `ack`; a change of direction also names the
// server tick to apply it at (`tick`, §5.3), the one the prediction foresees.
// Fewer than input_queue_depth inputs are ever unacknowledged. Leaving the
// room stops them at once (the server would refuse any input after the leave
// with not_in_room).
//
// Clusters (§5.11): a hello or join answered with `redirect` opens a new
// connection to its url and says hello there with the ticket; the old one is
// left (closed 1000, its close 4005 never reported), and the session carries on
// over the new one: the page sees the welcome's room as if it had joined. At
// most MAX_REDIRECTS hops per request; a refused ticket (bad_ticket) starts
// over once from this page's server without a ticket, then is shown as any
// refused join.
// Resume (§5.12): every welcome brings a resume token; a session started with
// `resume` (the page's reconnect after a drop, main.js) sends it in hello and,
// when the server took the seat back (welcome.resumed), carries on with the same
// player, room, score and input seq. hello always asks for `presence`, so others'
// drops and returns show in the chat. A `spectate` session watches: no inputs.
// Delta snapshots (§5.6): hello asks for them (`deltas`); each snapshot goes
// through the connection's DeltaState (delta.js) before anything reads its state,
// and every snapshot applied is acknowledged: by the next input's `ack` when one
// goes out within an input interval and a half, else by an `ack` message (at once
// when standing still), at most one per snapshot and no more often than inputs.
// A snapshot whose base is not held is dropped and not acknowledged: the server
// sends a full one again (within its delta_window).

import { ArenaRules, clampInput, parseInfo, parseState } from "./arena.js";
import { DeltaState, KEEP_STATES } from "./delta.js";
import { Connection, TokenBucket, serverUrl } from "./net.js";
import { Predictor } from "./predict.js";
import {
  DEFAULT_LIMITS,
  GAME,
  PROTOCOL_VERSION,
  cleanText,
  clipChat,
  describeError,
} from "./protocol.js";
import { Timeline } from "./timeline.js";

const IDLE_ACK_MS = 1000; // standing still: acknowledge the newest snapshot once a second
const MAX_REDIRECTS = 3; // hops for one hello or join before it is called a loop

export class GameSession {
  /** `onJoined(room)`, if given, is called with the RoomInfo of each room entered;
   * `onDropped(session, info)` with a close the page may recover from (true: it does,
   * and the close is not shown). `resume`: a token to take a held seat back; `seq`:
   * the dropped session's last input seq; `spectate`: watch the room; `game`: the game
   * to ask for (arena's rules: `arena` or its larger world `arena_wide`). */
  constructor(
    ui,
    keyboard,
    { onJoined = null, onDropped = null, resume = null, resumeUrl = null, seq = 0, spectate = false, game = GAME } = {},
  ) {
    this.ui = ui;
    this.game = game;
    this.keyboard = keyboard;
    this.onJoined = onJoined;
    this.onDropped = onDropped;
    this.resume = resume; // the token sent in hello, if any
    this.resumeToken = null; // the newest welcome.resume: what the next reconnect sends
    this.resumeUrl = resumeUrl; // where to send `resume`; then the newest welcome.resume_url
    this.resumed = false;
    this.spectate = spectate;
    this.state = "connecting"; // → lobby ⇄ room (→ leaving → lobby); closed at any time
    this.joinPending = false; // a join sent from the lobby, not yet answered
    this.welcome = null;
    this.playerId = null;
    this.room = null; // RoomInfo of the room we are in
    this.roster = new Map(); // id → name: who is in this room now
    this.names = new Map(); // id → name: everyone seen in this room (a snapshot may lag a leave)
    this.world = null;
    this.timeline = null;
    this.predictor = null;
    this.latest = null; // newest snapshot: {id, tick, ack, rtt_us, jitter_us, players}
    this.arrivals = []; // snapshot arrival times in the last second
    this.seq = seq;
    this.lastSent = { dx: 0, dy: 0 };
    this.ackedId = 0;
    this.ackedAt = 0;
    this.ackTimer = null; // a pending `ack` for the newest snapshot (§5.6)
    this.deltas = null; // the connection's DeltaState: snapshot states by id
    this.deltaFailures = 0; // snapshots dropped: their base was not held
    this.inputTimer = null; // the input pacer's next send, while in a room
    this.inputInterval = null; // ms between inputs at most, while pacing
    this.lastInputAt = -Infinity; // when the last input was sent (performance.now())
    this.abandoned = false; // close() was called: a newer session (or none) owns the page
    this.connection = null;
    this.redirects = 0; // redirects followed by this session (§5.11)
    this.hops = 0; // redirects followed for the request under way
    this.startedOver = false; // a refused ticket made the request start over
    this.asked = null; // the room asked for by the request under way (null: matchmaking)
    this.moving = null; // the room a redirect is taking us to, until its welcome
    this.chatBucket = this._chatBucket(); // the defaults until the welcome
  }

  /** Open the connection; hello joins `this.game` (matchmaking) or the named room at once. */
  start(name, room) {
    this.name = name;
    this.asked = room ?? null;
    this.ui.connection("connecting");
    const hello = { t: "hello", version: PROTOCOL_VERSION, name, game: this.game, room, presence: true, deltas: true };
    if (this.resume) hello.resume = this.resume;
    if (this.spectate) hello.spectate = true;
    // A resume goes to the worker holding the seat (welcome.resume_url, in a cluster).
    this._open(this.resumeUrl ?? serverUrl(), hello);
  }

  /** Make a connection to `url` the session's, saying `hello` once it is open. Messages and
   * the close of a connection the session has left (after a redirect) are ignored. */
  _open(url, hello) {
    const connection = new Connection(url, {
      onOpen: () => {
        if (connection !== this.connection) return;
        this.ui.connection(this.moving ? `moving to room ${this.moving}…` : "open, saying hello");
      },
      onMessage: (message) => {
        if (connection === this.connection) this._dispatch(message);
      },
      onClose: (info) => {
        if (connection === this.connection) this._closed(info);
      },
      onProblem: (text) => this.ui.notice(text),
    });
    this.connection = connection;
    this.deltas = new DeltaState(); // snapshot ids (and so bases) are per connection
    this.ackedId = 0;
    connection.connect(hello);
  }

  /** Leave the current connection for one to `url` that says `hello` (1000 for the old). */
  _move(url, hello) {
    const old = this.connection;
    this._stopPacing();
    this.state = "connecting";
    this._open(url, hello);
    old.close();
  }

  /** A hello or join answered with `redirect`: follow it to its worker (§5.11). */
  _redirect(message) {
    const answering = this.state === "connecting" || (this.state === "lobby" && this.joinPending);
    if (!answering) {
      this.ui.notice(`unexpected redirect to room ${message.room}`);
      return;
    }
    if (this.hops >= MAX_REDIRECTS) {
      this._refused(`redirected more than ${MAX_REDIRECTS} times (last to room ${message.room})`);
      return;
    }
    this.hops += 1;
    this.redirects += 1;
    this.moving = message.room;
    this.ui.connection(`moving to room ${message.room}…`);
    const hello = {
      t: "hello",
      version: PROTOCOL_VERSION,
      name: this.name,
      ticket: message.ticket,
      presence: true,
      deltas: true,
    };
    this._move(message.url, hello);
  }

  /** The request under way could not be followed through: the join form says why. */
  _refused(text) {
    this.moving = null;
    if (this.state === "lobby") {
      this.joinPending = false;
      this.ui.joinRefused(this, text);
    } else {
      this.close();
      this.ui.helloRefused(text);
    }
  }

  /** From the lobby (after leave or a refused join): join again. False when not sent
   * (not in the lobby, or a join is already waiting for its answer). */
  join(room, spectate = false) {
    if (this.state !== "lobby" || this.joinPending) return false;
    const message = { t: "join", game: this.game, room };
    if (spectate) message.spectate = true;
    if (!this.connection.send(message)) return false;
    this.spectate = spectate;
    this.joinPending = true;
    this.asked = room ?? null;
    this.hops = 0;
    this.startedOver = false;
    return true;
  }

  /** Leave the room: inputs stop now; the server's `left` brings the lobby. */
  leave() {
    if (this.state !== "room" || !this.connection.send({ t: "leave" })) return;
    this._stopPacing();
    this.state = "leaving";
    this.ui.connection("leaving the room");
  }

  /** End this session (1000) for good: its close is not reported to the page. */
  close() {
    this.abandoned = true;
    this._stopPacing();
    this.connection?.close();
  }

  /** Send a chat line; returns a problem to show, or null when sent. */
  chat(raw) {
    if (this.state !== "room") return "join a room to chat";
    const text = clipChat(raw, this.limits.max_chat_chars);
    if (!cleanText(text)) return "nothing to send";
    if (!this.chatBucket.take()) {
      const perSecond = Math.round((this.limits.chat_per_minute / 60) * 100) / 100;
      return `slow down: at most ${perSecond} chat lines a second (${this.limits.chat_burst} at once)`;
    }
    return this.connection.send({ t: "chat", text }) ? null : "not sent";
  }

  get limits() {
    return this.connection?.limits ?? DEFAULT_LIMITS;
  }

  /** The chat rate the server announced (welcome.limits), or the defaults before it. */
  _chatBucket() {
    return new TokenBucket(this.limits.chat_per_minute / 60, this.limits.chat_burst);
  }

  get inputRate() {
    const tickRate = this.welcome?.tick_rate ?? 30;
    return Math.max(1, Math.min(tickRate, Math.floor(this.limits.messages_per_second / 2)));
  }

  // -- server messages ---------------------------------------------------------

  _dispatch(message) {
    if (this.abandoned) return;
    const handler = {
      welcome: () => this._welcome(message),
      joined: () => this._enter(message.room),
      left: () => this._left(),
      snapshot: () => this._snapshot(message),
      event: () => this._event(message),
      error: () => this._error(message),
      redirect: () => this._redirect(message),
    }[message.t];
    handler?.(); // an unknown type is ignored (v1 has none)
  }

  _welcome(message) {
    this.moving = null;
    this.hops = 0;
    this.welcome = message;
    this.playerId = message.player;
    this.resumeToken = typeof message.resume === "string" ? message.resume : null;
    // In a cluster, the worker that holds this seat (the page may have reached another).
    this.resumeUrl = typeof message.resume_url === "string" ? message.resume_url : null;
    this.resumed = message.resumed === true;
    this.connection.applyLimits(message.limits);
    this.chatBucket = this._chatBucket();
    if (Array.isArray(message.games) && !message.games.includes(this.game)) {
      this.ui.notice(`this server does not run ${this.game} (it runs: ${message.games.join(", ")})`);
    }
    this.state = "lobby";
    this.ui.connection("connected");
    if (this.resumed && message.room) {
      this.ui.chatLine("info", "", `Reconnected: back in room ${message.room.name} as the same player.`, true);
    }
    if (message.room) this._enter(message.room);
    else this.ui.lobby(this); // the join's error, if one was asked, follows (§5.1)
  }

  _enter(room) {
    const world = parseInfo(room?.info);
    this.joinPending = false;
    this.room = room;
    this.roster = new Map((room.players ?? []).map(([id, name]) => [id, name]));
    this.names = new Map(this.roster);
    this.state = "room";
    this.latest = null;
    this.arrivals = [];
    this.world = world;
    this.timeline = null;
    this.predictor = null;
    if (!world) {
      this.ui.notice(`room ${room.name} runs ${room.game}, which this page cannot draw`);
      this.leave();
      return;
    }
    if ((room.delta ?? "generic") !== "generic") {
      // §5.6: a game's own patch format, which only its own client can apply.
      this.ui.notice(`room ${room.name} sends deltas in the format ${room.delta}, which this page cannot read`);
      this.leave();
      return;
    }
    const tickRate = this.welcome.tick_rate;
    this.timeline = new Timeline(tickRate, this.welcome.snapshot_rate);
    this.predictor = new Predictor(new ArenaRules(world, tickRate), tickRate);
    this.lastSent = { dx: 0, dy: 0 };
    this.ui.joined(this, room);
    this.onJoined?.(room);
    if (!this.spectate) this._startPacing(1000 / this.inputRate); // spectators send no input
  }

  _left() {
    this._stopPacing();
    const name = this.room?.name;
    this.state = "lobby";
    this.room = null;
    this.latest = null; // no snapshots in the lobby: the HUD and scores go blank
    this.arrivals = [];
    this.timeline = null;
    this.predictor = null;
    this.ui.chatLine("info", "", `You left room ${name}.`, true);
    this.ui.lobby(this);
  }

  _snapshot(received) {
    if (this.state !== "room" || !this.world) return;
    const message = this._applyDelta(received);
    if (!message) return;
    const now = performance.now();
    const state = parseState(message.state, this.world.scale);
    this.latest = { ...message, players: state.players };
    this._ackSoon(now);
    this.arrivals.push(now);
    while (this.arrivals[0] < now - 1000) this.arrivals.shift();
    this.timeline.push(message.tick, state, now);
    const me = state.players.get(this.playerId);
    const [rttMs, jitterMs] = [message.rtt_us / 1000, message.jitter_us / 1000];
    if (me) this.predictor.reconcile(message.tick, message.ack, me.x, me.y, now, rttMs, jitterMs);
  }

  /** The snapshot with its whole state (a delta applied to its base), or null when its
   * base is not held: then it is not acknowledged, and a full snapshot follows (§5.6). */
  _applyDelta(message) {
    // §5.6: the states of the last 64 ids received are always enough (a base is never more
    // than 60 ids back); snapshot_rate is kept too, for a server of an older text.
    this.deltas.keep = Math.max(KEEP_STATES, this.welcome?.snapshot_rate ?? 0);
    try {
      return { ...message, state: this.deltas.receive(message) };
    } catch (error) {
      if (error.name !== "DeltaError") throw error;
      this.deltaFailures += 1;
      if (this.deltaFailures === 1) this.ui.notice(`snapshot dropped: ${error.message}`);
      return null;
    }
  }

  /** Acknowledge the newest snapshot soon (§5.6): at once when no input is about to go
   * out (standing still, or watching), else after an input interval and a half, by which
   * time the next input has carried it as `input.ack` (and this finds nothing to do).
   * Never sooner than an input interval after the last acknowledgement. */
  _ackSoon(now) {
    if (this.ackTimer !== null) return; // one is pending: it takes the newest id then
    const interval = 1000 / this.inputRate;
    this._ackAt(Math.max(now + this._ackDelay(interval), this.ackedAt + interval), now);
  }

  _ackDelay(interval) {
    if (this.spectate) return 0;
    const [dx, dy] = this.keyboard.direction();
    const still = dx === 0 && dy === 0 && this.lastSent.dx === 0 && this.lastSent.dy === 0;
    return still ? 0 : 1.5 * interval;
  }

  _ackAt(at, now) {
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      this._ackNewest();
    }, at - now);
  }

  _ackNewest() {
    const id = this.latest?.id;
    if (this.state !== "room" || id === undefined || id <= this.ackedId) return;
    const now = performance.now();
    if (this.connection.send({ t: "ack", id }, { optional: true })) this._acked(id, now);
    else this._ackAt(now + 1000 / this.inputRate, now); // over the message rate: later
  }

  _event(message) {
    const own = message.player === this.playerId;
    if (message.kind === "join") {
      this.roster.set(message.player, message.name);
      this.names.set(message.player, message.name);
    }
    if (message.kind === "leave") this.roster.delete(message.player);
    // away/back (§5.12): the player stays in the roster while their seat is held.
    this.ui.chatLine(message.kind, message.name, message.text ?? "", own);
  }

  _error(message) {
    const meaning = describeError(message.code);
    const text = `${message.code}: ${meaning}${message.message ? ` (${message.message})` : ""}`;
    const joining = message.ref === "hello" || message.ref === "join";
    if (message.code === "bad_ticket" && this.moving !== null) {
      // The reserved seat is gone: once, ask again from the start, without a ticket.
      if (this.startedOver) {
        this._refused(text);
        return;
      }
      this.startedOver = true;
      this.hops = 0;
      this.moving = null;
      this.ui.connection("connecting");
      const room = this.asked ?? undefined;
      const hello = { t: "hello", version: PROTOCOL_VERSION, name: this.name, game: this.game, room };
      if (this.spectate) hello.spectate = true;
      hello.presence = true;
      hello.deltas = true;
      this._move(serverUrl(), hello);
    } else if (message.code === "resume_failed") {
      // The held seat is gone (§5.12): the hello goes on as a fresh one, same room asked.
      this.ui.notice(`${text}; the seat was not held any more`);
    } else if (message.code === "already_in_room") {
      // A join sent while in a room: we are in one, which is what it asked for.
    } else if (joining && this.state === "lobby") {
      this.joinPending = false;
      this.ui.joinRefused(this, text);
    } else if (message.ref === "hello" && this.state === "connecting") {
      // No welcome: the hello itself was refused (§5.1). Start again from the form.
      this.close();
      this.ui.helloRefused(text);
    } else if (message.ref === "chat") {
      this.ui.chatLine("problem", "", text, true);
    } else {
      this.ui.notice(text);
    }
  }

  _closed(info) {
    this._stopPacing();
    const wasInRoom = this.state === "room";
    this.state = "closed";
    if (this.abandoned) return;
    if (this.onDropped?.(this, { ...info, wasInRoom })) return; // the page reconnects
    this.ui.closed(info);
  }

  // -- inputs ------------------------------------------------------------------

  _startPacing(interval) {
    this._stopPacing();
    this.inputInterval = interval;
    this._beat(performance.now() + interval);
  }

  /** The pacer: a send due at `due`, then one every interval (late: skip, never burst). */
  _beat(due) {
    const interval = this.inputInterval;
    const tick = () => {
      const now = performance.now();
      this._sendInput(now);
      // 1 to 1.5 intervals apart, at random: inputs sent in step with the ticks would all
      // meet the same phase of the server's tick, and the lead (predict.js) would be measured
      // at that phase only. Late (throttled tab): skip, never burst.
      due = Math.max(due + interval * (1 + Math.random() / 2), now + 1);
      this.inputTimer = setTimeout(tick, due - now);
    };
    this.inputTimer = setTimeout(tick, Math.max(0, due - performance.now()));
  }

  /** The keys held changed: send the new direction now if the input rate allows it. */
  inputChanged() {
    if (this.inputTimer === null || this.state !== "room") return;
    const now = performance.now();
    if (now - this.lastInputAt < this.inputInterval) return; // the next beat sends it
    clearTimeout(this.inputTimer);
    this._sendInput(now);
    this._beat(now + this.inputInterval);
  }

  _stopPacing() {
    clearTimeout(this.inputTimer);
    this.inputTimer = null;

    this.keyboard.releaseAll();
  }

  _sendInput(now) {
    const snapshotId = this.latest?.id;
    // Keys give -1, 0 or 1 per axis; the server clamps a diagonal to length 1 and
    // the prediction clamps the same numbers the same way, so both move alike.
    const [dx, dy] = this.keyboard.direction();
    const moving = dx !== 0 || dy !== 0;
    const changed = dx !== this.lastSent.dx || dy !== this.lastSent.dy;
    const queueHasSpace = this.predictor.unacknowledged < this.limits.input_queue_depth;
    if ((moving || changed) && queueHasSpace) {
      const seq = this.seq + 1;
      const message = { t: "input", seq, data: { dx, dy }, ack: snapshotId };
      // A change of direction names the tick the prediction foresees for it (predict.js).
      const [cx, cy] = clampInput(dx, dy);
      const maxLead = this.limits.max_input_lead ?? DEFAULT_LIMITS.max_input_lead;
      const tick = this.predictor.target(cx, cy, now, maxLead);
      if (tick !== null) message.tick = tick;
      if (this.connection.send(message, { optional: true })) {
        this.seq = seq;
        this.lastSent = { dx, dy };
        this.lastInputAt = now;
        this.predictor.inputSent(seq, cx, cy, now, tick);
        this._acked(snapshotId, now);
      }
    } else if (snapshotId > this.ackedId && now - this.ackedAt >= IDLE_ACK_MS) {
      if (this.connection.send({ t: "ack", id: snapshotId }, { optional: true })) {
        this._acked(snapshotId, now);
      }
    }
  }

  _acked(id, now) {
    if (id === undefined) return;
    this.ackedId = id;
    this.ackedAt = now;
  }

  // -- what to draw and show ---------------------------------------------------

  /** The frame to draw at nowMs: others interpolated, the own player predicted. */
  frame(nowMs) {
    if (this.state !== "room" || !this.timeline) return null;
    const view = this.timeline.sample(nowMs);
    if (!view) return { players: [], gems: [], message: "waiting for the first snapshot…" };
    const players = [];
    for (const [id, { x, y }] of view.players) {
      if (id !== this.playerId) players.push({ id, name: this._name(id), x, y, own: false });
    }
    const mine = this.predictor.position(nowMs);
    let gems = view.gems;
    if (mine) {
      players.push({ id: this.playerId, name: this._name(this.playerId), ...mine, own: true });
      // Cosmetic: a gem under the predicted own disc is hidden at once, not a round trip later.
      const reach = this.world.playerRadius + this.world.gemRadius;
      gems = gems.filter((gem) => Math.hypot(gem.x - mine.x, gem.y - mine.y) > reach);
    }
    return { players, gems };
  }

  /** Scores from the newest snapshot, best first. */
  leaderboard() {
    const rows = [];
    for (const [id, { score }] of this.latest?.players ?? []) {
      rows.push({ id, name: this._name(id), score, own: id === this.playerId });
    }
    return rows.sort((a, b) => b.score - a.score || a.id - b.id);
  }

  /** What the HUD shows. */
  hud(now = performance.now()) {
    // Live figures only while connected: a closed connection shows dashes, not stale values.
    const live = this.state !== "closed";
    const latest = live ? this.latest : null;
    return {
      player: this.playerId,
      room: this.room?.name ?? null,
      rttMs: latest ? latest.rtt_us / 1000 : null,
      jitterMs: latest ? latest.jitter_us / 1000 : null,
      tick: latest?.tick ?? null,
      snapshotsPerSecond:
        this.state === "room" ? this.arrivals.filter((t) => t > now - 1000).length : null,
      delayMs: live && this.timeline ? this.timeline.delay : null,
    };
  }

  _name(id) {
    const name = this.names.get(id);
    return name === undefined ? `#${id}` : name;
  }
}
