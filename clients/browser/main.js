// main.js: the page's entry point. Checks that the msgpack codec loaded,
// wires the join form, chat, leave and reconnect buttons to a GameSession,
// and runs the draw loop (every animation frame; HUD and scores four times a
// second). ?room=NAME in the URL only prefills the Room field: what is asked
// for is what the form holds, checked as the server checks it. The name is
// remembered in localStorage.
//
// window.arenaClient is a read-only debugging hook (the browser tests use
// it): view() returns what the last frame drew, session() the live session.

import { Keyboard } from "./input.js";
import { Renderer } from "./render.js";
import { GameSession } from "./session.js";
import { Ui } from "./ui.js";

const NAME_KEY = "arena.name";
const HUD_EVERY_MS = 250;

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
  const keyboard = new Keyboard(() => session?.state === "room");

  const params = new URLSearchParams(window.location.search);
  ui.el.name.value = params.get("name") ?? localStorage.getItem(NAME_KEY) ?? "";
  ui.el.room.value = params.get("room") ?? "";
  // What Reconnect asks for again: {name, room} from the form, the room then set to
  // the one joined (matchmaking's pick included), so a reconnect rejoins it.
  let request = null;

  function connect() {
    session?.close();
    session = new GameSession(ui, keyboard, {
      onJoined: (room) => {
        request = { ...request, room: room.name };
      },
    });
    session.start(request.name, request.room);
  }

  ui.el.join.addEventListener("submit", (event) => {
    event.preventDefault();
    // Disabled while a connection or a join is under way: a double click or a second
    // Enter must not send a second join (its already_in_room would undo the first).
    if (ui.el.joinButton.disabled) return;
    const asked = ui.readJoinForm();
    if (!asked) return;
    if (session?.state === "lobby") {
      if (session.join(asked.room)) ui.joining();
      return;
    }
    request = asked;
    localStorage.setItem(NAME_KEY, asked.name);
    connect();
  });

  ui.el.reconnect.addEventListener("click", () => {
    ui.hideClosed();
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
    session: () => session,
  });
  ui.showJoinForm(ui.el.room.value ? `Room ${ui.el.room.value} from the link.` : "");
  requestAnimationFrame(draw);
}

boot();
