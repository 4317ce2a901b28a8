// main.js: the page's entry point. Checks that the msgpack codec loaded,
// wires the join form, chat, leave and reconnect buttons to a GameSession,
// and runs the draw loop (every animation frame; HUD and scores four times a
// second). ?room=NAME in the URL only prefills the Room field: what is asked
// for is what the form holds, checked as the server checks it. ?watch=NAME
// prefills it too and, once a name is known, starts watching that room. The
// name is remembered in localStorage. ?game=NAME picks the game (default
// arena; arena_wide is its larger world, followed by a camera): it stays in the
// URL, so the invite link and Reconnect keep it.
//
// A connection lost while in a room (any close but 1000, 1001, 1008, 4003, 4006)
// is resumed on its own (PROTOCOL.md §5.12): new connections with the last
// resume token, after 0.25 s doubling to 4 s, each times a random 0.5..1.5,
// for up to RESUME_FOR_MS; the HUD says "reconnecting…" meanwhile. Back in the
// same room as the same player, or (resume_failed) as a new one in that room.
//
// window.arenaClient is a read-only debugging hook (the browser tests use
// it): view() returns what the last frame drew, camera() where the camera
// looked (null unless it follows the player), session() the live session.

import { Keyboard } from "./input.js";
import { Renderer } from "./render.js";
import { GAME } from "./protocol.js";
import { GameSession } from "./session.js";
import { Ui } from "./ui.js";

const NAME_KEY = "arena.name";
const HUD_EVERY_MS = 250;
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 4000;
const RESUME_FOR_MS = 20000; // the server's default reconnect_grace
const FINAL_CLOSES = new Set([1000, 1001, 1008, 4003, 4006]); // reconnecting would not help

function boot() {
  if (!globalThis.MessagePack) {
    // index.html loads /vendor/msgpack.min.js first; the server answers 404 when
    // clients/browser/node_modules was never installed.
    document.getElementById("join").hidden = true;
    document.getElementById("fatal").hidden = false;
    document.getElementById("hud-state").textContent = "cannot start";
    return;
  }
  const ui = new Ui();
  const renderer = new Renderer(document.getElementById("arena"));
  let session = null;
  let lastView = { players: [], gems: [] };
  let hudAt = 0;
  const keyboard = new Keyboard(
    () => session?.state === "room",
    () => session?.inputChanged(), // a new direction goes out at once, within the input rate
  );

  const params = new URLSearchParams(window.location.search);
  ui.el.name.value = params.get("name") ?? localStorage.getItem(NAME_KEY) ?? "";
  const game = params.get("game")?.trim() || GAME;
  const watch = params.get("watch");
  ui.el.room.value = watch ?? params.get("room") ?? "";
  // What Reconnect asks for again: {name, room} from the form, the room then set to
  // the one joined (matchmaking's pick included), so a reconnect rejoins it.
  let request = null;
  let retry = null; // {token, seq, until, attempt, timer} while resuming after a drop

  function connect(resume = null) {
    session?.close();
    session = new GameSession(ui, keyboard, {
      onJoined: (room) => {
        request = { ...request, room: room.name };
        retry = null;
      },
      onDropped: dropped,
      resume: resume?.token ?? null,
      resumeUrl: resume?.url ?? null,
      seq: resume?.seq ?? 0,
      spectate: request.spectate === true,
      game,
    });
    session.start(request.name, request.room);
  }

  /** A session closed: resume it (true) or let the page show the close (false). */
  function dropped(old, info) {
    if (FINAL_CLOSES.has(info.code)) return false;
    const now = performance.now();
    if (retry === null) {
      // Only a player who was in a room has a seat to take back.
      if (!info.wasInRoom || !old.resumeToken || old.spectate) return false;
      retry = {
        token: old.resumeToken,
        url: old.resumeUrl,
        seq: old.seq,
        until: now + RESUME_FOR_MS,
        attempt: 0,
      };
    } else if (old.resumeToken) {
      retry.token = old.resumeToken; // welcomed, then dropped again: the newest token
      retry.url = old.resumeUrl;
    } else if (old.welcome === null) {
      // The worker that held the seat did not answer (gone with its host): try the
      // page's own server, where the worst is resume_failed and a fresh seat.
      retry.url = null;
    }
    if (now >= retry.until) {
      retry = null;
      return false;
    }
    retry.attempt += 1;
    const backoff = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (retry.attempt - 1));
    const delay = backoff * (0.5 + Math.random());
    ui.reconnecting(retry.attempt);
    const attempt = retry;
    retry.timer = setTimeout(() => {
      if (retry === attempt) connect({ token: attempt.token, url: attempt.url, seq: attempt.seq });
    }, delay);
    return true;
  }

  ui.el.join.addEventListener("submit", (event) => {
    event.preventDefault();
    // Disabled while a connection or a join is under way: a double click or a second
    // Enter must not send a second join (its already_in_room would undo the first).
    if (ui.el.joinButton.disabled) return;
    const asked = ui.readJoinForm();
    if (!asked) return;
    const spectate = event.submitter?.id === "watch-button";
    if (session?.state === "lobby") {
      if (session.join(asked.room, spectate)) ui.joining();
      return;
    }
    request = { ...asked, spectate };
    localStorage.setItem(NAME_KEY, asked.name);
    connect();
  });

  ui.el.reconnect.addEventListener("click", () => {
    ui.hideClosed();
    retry = null;
    if (request) connect();
    else ui.showJoinForm();
  });

  ui.el.leave.addEventListener("click", () => session?.leave());
  // Leaving the page ends the session the protocol's way, with 1000 (§5.10); a page
  // restored from the back/forward cache then shows "disconnected" and Reconnect.
  window.addEventListener("pagehide", () => session?.connection?.close());

  ui.el.chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const problem = session ? session.chat(ui.el.chatInput.value) : "not connected";
    if (problem) {
      ui.chatLine("problem", "", problem, true);
    } else {
      ui.el.chatInput.value = "";
      ui.el.chatInput.dispatchEvent(new Event("input"));
    }
  });

  // Enter opens the chat from the game; Escape goes back to steering.
  window.addEventListener("keydown", (event) => {
    const inChat = event.target === ui.el.chatInput;
    if (event.key === "Enter" && !inChat && session?.state === "room" && event.target === document.body) {
      event.preventDefault();
      ui.el.chatInput.focus();
    } else if (event.key === "Escape" && inChat) {
      ui.el.chatInput.blur();
    }
  });

  function draw(now) {
    const frame = session?.frame(now);
    if (frame) {
      renderer.setWorld(session.world);
      lastView = frame;
    }
    // No frame: only the floor (the join form or the disconnected panel says why).
    renderer.draw(frame ?? { players: [], gems: [] });
    if (session && now - hudAt >= HUD_EVERY_MS) {
      hudAt = now;
      ui.refresh(session);
    }
    requestAnimationFrame(draw);
  }

  window.arenaClient = Object.freeze({
    view: () => structuredClone(lastView),
    camera: () => (renderer.camera ? { ...renderer.camera } : null),
    session: () => session,
  });
  ui.showJoinForm(ui.el.room.value ? `Room ${ui.el.room.value} from the link.` : "");
  if (watch && ui.el.name.value) ui.el.watchButton.click(); // ?watch=ROOM: watch at once
  requestAnimationFrame(draw);
}

boot();
