"""The bundled browser client (clients/browser) in real Chromium against a real server.

Each test opens its own pages in rooms of its own; a Python player (the project's
trio client library, on a thread) stands in the same room where a test needs an
independent witness of what the page did.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
from typing import Any

import pytest

from gameserver.game import Player, RoomContext
from gameserver.games.arena import PLAYER_RADIUS, SPEED, Arena, blocked
from gameserver.latency import LatencyReport
from protocol import Error, Event

from .conftest import MAX_PLAYERS, OpenPage, Server, join
from .players import ThreadPlayer

pytestmark = pytest.mark.network

RTT = re.compile(r"^\d+\.\d ms$")


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_page_loads_cleanly(open_page: OpenPage) -> None:
    """GET / loads every file (msgpack included) with no console error and shows the join form."""
    opened = open_page("/")
    page = opened.page
    expect(page.locator("#join")).to_be_visible()
    expect(page.locator("#hud-state")).to_have_text("not connected")
    assert page.evaluate("typeof MessagePack.decode") == "function"
    assert page.title().startswith("arena")
    assert opened.problems.unexpected() == []


def test_hello_welcome_join_and_hud(open_page: OpenPage, server: Server) -> None:
    """The page says hello, joins the room of ?room=, and the HUD fills in: id, room, RTT, tick."""
    page = open_page("/?room=b-hud").page
    player = join(page, "ada")
    expect(page.locator("#hud-room")).to_have_text("b-hud")
    expect(page.locator("#hud-snapshots")).to_have_text(re.compile(r"^[1-9]\d*/s$"))
    expect(page.locator("#hud-tick")).to_have_text(re.compile(r"^\d+$"))
    # RTT comes from the server's measurement of the page's pongs (0 before the first).
    page.wait_for_function(
        "parseFloat(document.getElementById('hud-rtt').textContent) > 0", timeout=5000
    )
    assert RTT.match(page.locator("#hud-rtt").inner_text())
    assert RTT.match(page.locator("#hud-jitter").inner_text())
    with ThreadPlayer(server.ws_url, "witness", room="b-hud") as witness:
        seen = witness.wait_for(lambda m: isinstance(m, Event) and m.kind == "join")
        assert isinstance(seen, Event) and seen.player != player
        names = page.locator("#leaderboard li .who")
        expect(names).to_have_count(2)  # best score first: either order
        assert sorted(names.all_inner_texts()) == ["ada (you)", "witness"]


def test_without_a_room_matchmaking_picks_one_and_the_url_invites(open_page: OpenPage) -> None:
    """No ?room=: join-or-create (any arena room with a free seat); the URL then names it."""
    page = open_page("/").page
    join(page, "solo")
    room = page.locator("#hud-room").inner_text()
    assert room not in ("", "\N{EN DASH}")
    assert page.url.endswith(f"?room={room}")


def test_the_links_room_only_fills_in_the_form(open_page: OpenPage) -> None:
    """?room= prefills the Room field; what is sent is what the form holds, checked.

    Emptying the field means matchmaking, not the link's room, and Reconnect then
    asks for the room matchmaking picked. A link's room the server would refuse (40
    characters) is explained and nothing is sent; emptied, the page plays.
    """
    page = open_page("/?room=b-link").page
    expect(page.locator("#room")).to_have_value("b-link")
    page.fill("#room", "")
    join(page, "linked")
    room = page.locator("#hud-room").inner_text()
    assert room != "b-link"
    page.evaluate("window.arenaClient.session().connection.close()")
    expect(page.locator("#closed")).to_have_attribute("data-code", "1000")
    page.click("#reconnect")
    expect(page.locator("#hud-state")).to_have_text("in room")
    expect(page.locator("#hud-room")).to_have_text(room)

    page = open_page("/?room=" + "z" * 40).page
    expect(page.locator("#room")).to_have_value("z" * 40)
    page.fill("#name", "linked")
    page.click("#join-button")
    expect(page.locator("#join-message")).to_contain_text("at most 32 characters")
    expect(page.locator("#hud-state")).to_have_text("not connected")
    page.fill("#room", "")
    join(page, "linked")


STEP = SPEED / 30
"""How far one tick moves a player at the default tick rate."""


def _free_run(x: float, y: float, dx: int, dy: int, limit: int = 40) -> int:
    """Ticks a player at (x, y) can walk in direction (dx, dy) before a wall or edge."""
    for i in range(1, limit + 1):
        if blocked(x + dx * STEP * i, y + dy * STEP * i, PLAYER_RADIUS):
            return i - 1
    return limit


def _free_key(x: float, y: float) -> tuple[str, str, int, int]:
    """The arrow key, its WASD twin and the direction with the longest free run from (x, y)."""
    keys = [
        ("ArrowRight", "d", 1, 0),
        ("ArrowLeft", "a", -1, 0),
        ("ArrowDown", "s", 0, 1),
        ("ArrowUp", "w", 0, -1),
    ]
    best = max(keys, key=lambda k: _free_run(x, y, k[2], k[3]))
    assert _free_run(x, y, best[2], best[3]) >= 15, f"boxed in at {(x, y)}"
    return best


@pytest.mark.parametrize("keys", ["arrows", "wasd"])
def test_holding_a_key_moves_the_player_for_everyone(
    open_page: OpenPage, server: Server, keys: str
) -> None:
    """A held key sends inputs; an independent Python client sees the page's player move."""
    room = f"b-move-{keys}"
    page = open_page(f"/?room={room}").page
    player = join(page, "mover")
    with ThreadPlayer(server.ws_url, "watcher", room=room) as watcher:
        x0, y0 = watcher.wait_for_position(player, lambda x, y: True)
        arrow, letter, dx, dy = _free_key(x0, y0)
        key = arrow if keys == "arrows" else letter
        pressed = watcher.mark()
        page.keyboard.down(key)
        try:
            x1, y1 = watcher.wait_for_position(
                player, lambda x, y: (x - x0) * dx + (y - y0) * dy >= 20, since=pressed
            )
        finally:
            page.keyboard.up(key)
        released = watcher.mark()
        assert (x1 - x0) * dy == 0 and (y1 - y0) * dx == 0  # along the pushed axis only
        # The page draws its own player where the server put it (predicted, then reconciled).
        page.wait_for_function(
            """([id, x, y]) => {
                const me = window.arenaClient.view().players.find((p) => p.id === id);
                return me && me.own && Math.hypot(me.x - x, me.y - y) < 60;
            }""",
            arg=[player, x1, y1],
        )
        # Released: the player stops, for the server as well.
        x2, y2 = watcher.wait_until_still(player, since=released)
        assert _free_run(x2, y2, dx, dy) > 0, "stopped by a wall, not by releasing the key"


def test_chat_both_ways(open_page: OpenPage, server: Server) -> None:
    """A line typed in the page reaches a Python client; a Python client's line shows there."""
    page = open_page("/?room=b-chat").page
    player = join(page, "ada")
    with ThreadPlayer(server.ws_url, "py", room="b-chat") as py:
        log = page.locator("#chat-log")
        expect(log).to_contain_text("→ py joined")
        page.fill("#chat-input", "hello from the browser")
        page.press("#chat-input", "Enter")
        said = py.wait_for(lambda m: isinstance(m, Event) and m.kind == "chat")
        assert isinstance(said, Event)
        assert (said.player, said.name, said.text) == (player, "ada", "hello from the browser")
        expect(page.locator("#chat-input")).to_have_value("")
        py.chat("hi from python")
        expect(log.locator("li").last).to_have_text("py: hi from python")
    expect(log).to_contain_text("← py left")


def test_chat_input_is_cut_to_the_servers_limit(open_page: OpenPage) -> None:
    """The chat field holds at most welcome.limits.max_chat_chars characters (200)."""
    page = open_page("/?room=b-chat-limit").page
    join(page, "long")
    page.fill("#chat-input", "é" * 250)
    expect(page.locator("#chat-count")).to_have_text("200/200")
    assert len(page.input_value("#chat-input")) == 200


def test_two_pages_see_each_other(open_page: OpenPage) -> None:
    """Two browsers in one room draw each other and list each other's score."""
    first = open_page("/?room=b-pair").page
    second = open_page("/?room=b-pair").page
    one = join(first, "one")
    two = join(second, "two")
    for page, other in ((first, two), (second, one)):
        page.wait_for_function(
            "(id) => window.arenaClient.view().players.some((p) => p.id === id && !p.own)",
            arg=other,
        )
    names = first.locator("#leaderboard li .who")
    expect(names).to_have_count(2)
    assert sorted(names.all_inner_texts()) == ["one (you)", "two"]
    expect(second.locator("#chat-log")).to_contain_text("→ two joined")
    expect(first.locator("#chat-log")).to_contain_text("→ two joined")


def test_a_full_room_is_explained_and_another_can_be_joined(
    open_page: OpenPage, server: Server
) -> None:
    """room_full is shown with its meaning; from the lobby the page joins another room."""
    with contextlib.ExitStack() as stack:
        players = [
            stack.enter_context(ThreadPlayer(server.ws_url, f"p{i}", room="b-full"))
            for i in range(MAX_PLAYERS)
        ]
        page = open_page("/?room=b-full").page
        page.fill("#name", "late")
        page.click("#join-button")
        message = page.locator("#join-message")
        expect(message).to_contain_text("room_full: the room is full")
        expect(page.locator("#hud-state")).to_have_text("connected, in the lobby")
        page.fill("#room", "b-not-full")
        page.click("#join-button")
        expect(page.locator("#hud-room")).to_have_text("b-not-full")
        errors = [m for p in players for m in p.messages if isinstance(m, Error)]
        assert errors == []


def test_leave_returns_to_the_lobby(open_page: OpenPage, server: Server) -> None:
    """Leave room: the others see the leave, the page is back at the form, still connected."""
    page = open_page("/?room=b-leave").page
    player = join(page, "leaver")
    with ThreadPlayer(server.ws_url, "stay", room="b-leave") as stay:
        page.click("#leave")
        stay.wait_for(lambda m: isinstance(m, Event) and m.kind == "leave" and m.player == player)
    expect(page.locator("#join")).to_be_visible()
    expect(page.locator("#hud-state")).to_have_text("connected, in the lobby")
    expect(page.locator("#hud-room")).to_have_text("\N{EN DASH}")


def test_a_second_join_while_one_is_waiting_is_not_sent(open_page: OpenPage) -> None:
    """Join submitted twice from the lobby (a double click, two Enters) sends one join.

    Both submits run before any answer can arrive. A second join would be refused
    with already_in_room, which must not put the page back in the lobby while it
    is in a room (and still sending inputs).
    """
    page = open_page("/?room=b-twice").page
    player = join(page, "twice")
    page.click("#leave")
    expect(page.locator("#hud-state")).to_have_text("connected, in the lobby")
    page.fill("#room", "b-twice-2")
    first = page.evaluate(
        """() => {
            const connection = window.arenaClient.session().connection;
            const send = connection.send.bind(connection);
            window.joinsSent = 0;
            connection.send = (message, options) => {
                if (message.t === "join") window.joinsSent += 1;
                return send(message, options);
            };
            const form = document.getElementById("join");
            form.requestSubmit();
            const disabled = document.getElementById("join-button").disabled;
            form.requestSubmit();
            return disabled;
        }"""
    )
    assert first is True, "Join stays enabled while its join is waiting"
    expect(page.locator("#hud-room")).to_have_text("b-twice-2")
    # A chat line's echo comes after the answer to any join sent before it.
    page.fill("#chat-input", "one join")
    page.press("#chat-input", "Enter")
    expect(page.locator("#chat-log li").last).to_have_text("twice: one join")
    expect(page.locator("#hud-state")).to_have_text("in room")
    expect(page.locator("#join")).to_be_hidden()
    expect(page.locator("#notice")).to_be_hidden()
    assert page.locator("#hud-player").inner_text() == str(player)
    assert page.evaluate("window.joinsSent") == 1


def test_leave_stops_inputs_at_once(open_page: OpenPage) -> None:
    """Leave room with a key held: nothing but the leave is sent before `left` arrives.

    The page receives everything 300 ms late here (a slow way back), so a pacer
    still running after the leave would send inputs, each refused with not_in_room.
    """
    page = open_page("/?room=b-leave-held").page
    join(page, "held")
    page.keyboard.down("ArrowDown")
    try:
        page.wait_for_function("window.arenaClient.session().seq > 0")
        page.evaluate(
            """() => {
                const connection = window.arenaClient.session().connection;
                const receive = connection._receive.bind(connection);
                connection._receive = (data) => setTimeout(() => receive(data), 300);
                const send = connection.send.bind(connection);
                window.sentSinceLeave = null;
                connection.send = (message, options) => {
                    const sent = send(message, options);
                    if (message.t === "leave") window.sentSinceLeave = [];
                    if (sent && message.t !== "pong") window.sentSinceLeave?.push(message.t);
                    return sent;
                };
            }"""
        )
        page.click("#leave")
        expect(page.locator("#hud-state")).to_have_text("connected, in the lobby")
    finally:
        page.keyboard.up("ArrowDown")
    assert page.evaluate("window.sentSinceLeave") == ["leave"]
    expect(page.locator("#notice")).to_be_hidden()


def test_a_bad_room_name_is_refused_before_sending(open_page: OpenPage) -> None:
    """A room name the server would refuse is explained in the form, and nothing is sent.

    Too long (33 characters) or holding a format character (U+200B): refused. Outer
    spaces are typing, not a name: the form trims them, as it trims the player name,
    and the page joins the trimmed room.
    """
    page = open_page("/").page
    page.fill("#name", "ada")
    message = page.locator("#join-message")
    page.fill("#room", "x" * 33)
    page.click("#join-button")
    expect(message).to_contain_text("at most 32 characters")
    page.fill("#room", "b-zero\N{ZERO WIDTH SPACE}width")
    page.click("#join-button")
    expect(message).to_contain_text("cannot hold control characters")
    expect(page.locator("#hud-state")).to_have_text("not connected")
    page.fill("#room", "  b-trimmed  ")
    join(page, "ada")
    expect(page.locator("#hud-room")).to_have_text("b-trimmed")


def test_missing_msgpack_says_what_to_run(browser: Any, server: Server) -> None:
    """Without /vendor/msgpack.min.js (npm ci never run) the page says how to fix it."""
    context = browser.new_context()
    try:
        context.route(
            "**/vendor/msgpack.min.js",
            lambda route: route.fulfill(status=404, body="not installed"),
        )
        page = context.new_page()
        page.goto(server.http_url)
        fatal = page.locator("#fatal")
        expect(fatal).to_be_visible()
        expect(fatal).to_contain_text("./dev setup")
        expect(fatal).to_contain_text("npm ci --prefix clients/browser")
        expect(page.locator("#join")).to_be_hidden()
    finally:
        context.close()


def test_server_shutdown_shows_1001_and_offers_reconnect(open_page: OpenPage) -> None:
    """SIGTERM: the page reports close code 1001 with its meaning and offers to reconnect."""
    from tests.load.conftest import running_server

    with running_server("-m", "gameserver", "--log-level", "WARNING") as (url, pid):
        page = open_page("/?room=b-bye", base="http" + url.removeprefix("ws")).page
        join(page, "ada")
        no_figure = "\u2013"  # the HUD's dash
        expect(page.locator("#hud-tick")).not_to_have_text(no_figure)  # snapshots came
        os.kill(pid, signal.SIGTERM)
        closed = page.locator("#closed")
        expect(closed).to_be_visible()
        expect(page.locator("#closed-message")).to_have_text(
            re.compile(r"^1001 GOING_AWAY: the server is shutting down$")
        )
        expect(closed).to_have_attribute("data-code", "1001")
        expect(page.locator("#reconnect")).to_be_visible()
        expect(page.locator("#hud-state")).to_have_text("closed (1001)")
        expect(page.locator("#hud-tick")).to_have_text(no_figure)  # no stale figures


def test_the_pages_prediction_moves_exactly_as_the_server(open_page: OpenPage) -> None:
    """arena.js (the page's prediction) and the server's Arena agree on every tick, to the bit.

    Random walks with every key combination, walls and edges included: the page
    predicts its own player with arena.js, so a difference would show as a
    correction on every snapshot.
    """
    page = open_page("/").page
    rng = random.Random(1234)
    ctx = RoomContext("rules", 30, 1, random.Random(0))
    arena = Arena(ctx)
    walks = []
    for _ in range(8):
        x, y = rng.uniform(12, 988), rng.uniform(12, 588)
        while blocked(x, y):
            x, y = rng.uniform(12, 988), rng.uniform(12, 588)
        keys = [(rng.choice((-1, 0, 1)), rng.choice((-1, 0, 1))) for _ in range(30)]
        walks.append({"x": x, "y": y, "keys": keys})
    expected = []
    for walk in walks:
        player = Player(1, "p", LatencyReport)
        arena.on_join(player)
        avatar = arena.avatars[1]
        avatar.x, avatar.y = walk["x"], walk["y"]
        path = []
        for dx, dy in walk["keys"]:
            arena.on_input(player, arena.validate_input(player, {"dx": dx, "dy": dy}))
            for _ in range(10):
                arena.step(ctx.dt)
                path.append([avatar.x, avatar.y])
        arena.on_leave(player)
        expected.append(path)
    got = page.evaluate(
        """async ([info, walks]) => {
            const { ArenaRules, clampInput, parseInfo } = await import("/static/arena.js");
            const rules = new ArenaRules(parseInfo(info), 30);
            return walks.map(({ x, y, keys }) => {
                const path = [];
                for (const [kx, ky] of keys) {
                    const [dx, dy] = clampInput(kx, ky);
                    for (let i = 0; i < 10; i += 1) {
                        [x, y] = rules.step(x, y, dx, dy);
                        path.push([x, y]);
                    }
                }
                return path;
            });
        }""",
        [arena.info(), walks],
    )
    assert got == expected


def test_inputs_follow_the_rates_the_welcome_announces(open_page: OpenPage) -> None:
    """At 10 ticks/s and 12 messages/s the page sends min(10, 12/2) = 6 inputs a second.

    The rate is measured over two seconds of a held key, from the page's own input
    sequence numbers; the server refusing anything (rate_limited, input_queue_full)
    would show as a notice, and the HUD shows the 10 snapshots a second it receives.
    """
    from tests.load.conftest import running_server

    slow = ["--tick-rate", "10", "--snapshot-rate", "10", "--messages-per-second", "12"]
    with running_server("-m", "gameserver", "--log-level", "WARNING", *slow) as (url, _pid):
        page = open_page("/?room=b-rate", base="http" + url.removeprefix("ws")).page
        join(page, "paced")
        expect(page.locator("#hud-snapshots")).to_have_text(re.compile(r"^(9|10|11)/s$"))
        page.keyboard.down("ArrowLeft")
        page.keyboard.down("ArrowUp")
        try:
            sent = page.evaluate(
                """() => new Promise((done) => {
                    const session = window.arenaClient.session();
                    const first = session.seq;
                    setTimeout(() => done(session.seq - first), 2000);
                })"""
            )
        finally:
            page.keyboard.up("ArrowLeft")
            page.keyboard.up("ArrowUp")
        assert 8 <= sent <= 13, sent
        expect(page.locator("#notice")).to_be_hidden()
