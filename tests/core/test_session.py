"""Session: one client's protocol state machine, driven with bytes and numbers for time."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from gameserver.core import ServerCore
from gameserver.game import Game, InvalidInput, Player
from gameserver.games import default_games
from gameserver.games.arena import SCALE, SPEED
from gameserver.outbox import Outbox
from gameserver.room import Room, Seat
from gameserver.session import Session, State, clean_text
from gameserver.settings import Settings
from protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    ClientMessage,
    CloseCode,
    Error,
    Event,
    Hello,
    Input,
    Join,
    Joined,
    Leave,
    Left,
    Ping,
    Pong,
    ServerMessage,
    Snapshot,
    Welcome,
    decode_server_message,
    encode,
)


class Tiny(Game):
    """A second game, two seats a room, to check game-specific joins."""

    name = "tiny"
    max_players = 2

    def step(self, dt: float) -> None:
        pass

    def snapshot(self, viewer: Player) -> Any:
        return 0


class Recorder(Game):
    """Records applied inputs; can be told to crash in validate_input, on_join or on_leave."""

    name = "rec"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.applied: list[tuple[int, Any]] = []
        self.fail_leave = False

    def validate_input(self, player: Player, data: Any) -> Any:
        if data == "explode":
            raise KeyError("not an InvalidInput: a bug in the game")
        if data == "refuse":
            raise InvalidInput("refused by the game")
        return data

    def on_join(self, player: Player) -> None:
        if player.name == "crash":
            raise RuntimeError("game bug on join")

    def on_input(self, player: Player, command: Any) -> None:
        self.applied.append((player.id, command))

    def on_leave(self, player: Player) -> None:
        if self.fail_leave:
            raise RuntimeError("game bug on leave")

    def step(self, dt: float) -> None:
        pass

    def snapshot(self, viewer: Player) -> Any:
        return {"applied": len(self.applied)}


def make_core(**settings: Any) -> ServerCore:
    games = default_games()
    games.register(Tiny)
    games.register(Recorder)
    return ServerCore(Settings(**settings), games, epoch=0.0, seed=1)


class Client:
    """A Session with its Outbox, fed encoded messages; decodes what it would send."""

    def __init__(self, core: ServerCore, now: float = 0.0) -> None:
        self.core = core
        self.wakes = 0
        self.outbox = Outbox(core.settings.event_queue_depth, self._wake)
        self.session = Session(core, self.outbox, now)

    def _wake(self) -> None:
        self.wakes += 1

    def send(self, message: ClientMessage, now: float = 0.0) -> None:
        self.session.receive_bytes(encode(message), now)

    def take(self) -> list[ServerMessage]:
        return [decode_server_message(frame) for frame in self.outbox.take()]

    def hello(self, name: str = "ada", now: float = 0.0, **kwargs: Any) -> list[ServerMessage]:
        self.send(Hello(PROTOCOL_VERSION, name, **kwargs), now)
        return self.take()

    def errors(self) -> list[tuple[str, str | None]]:
        return [(m.code, m.ref) for m in self.take() if isinstance(m, Error)]

    @property
    def close_code(self) -> int | None:
        request = self.outbox.close_request
        return None if request is None else request.code

    @property
    def pid(self) -> int:
        return self.session.player_id


def in_room(core: ServerCore, game: str = "arena", name: str = "ada", **join: Any) -> Client:
    client = Client(core)
    client.hello(name)
    client.send(Join(game=game, **join))
    client.take()
    return client


def room_named(core: ServerCore, name: str) -> Room:
    room = core.rooms.get(name)
    assert room is not None
    return room


def seat_of(client: Client) -> Seat:
    room = client.session.room
    assert room is not None
    return room.seats[client.pid]


def recorder(client: Client) -> Recorder:
    room = client.session.room
    assert room is not None and isinstance(room.game, Recorder)
    return room.game


def tick(client: Client, n: int) -> None:
    room = client.session.room
    assert room is not None
    room.tick(n, 1 / 30)


# -- hello ---------------------------------------------------------------------


def test_hello_gets_welcome_then_first_ping() -> None:
    """hello → welcome with the server's clock and limits, then the first ping right behind it."""
    core = make_core()
    client = Client(core, now=1.0)
    messages = client.hello("ada", now=1.0)
    token = messages[0].resume if isinstance(messages[0], Welcome) else None
    assert isinstance(token, str) and len(token) >= 22  # >= 128 bits in base64
    assert messages == [
        Welcome(
            version=PROTOCOL_VERSION,
            player=client.pid,
            tick_rate=30,
            snapshot_rate=30,
            tick=30,
            limits=core.settings.client_limits(),
            games=("arena", "arena_wide", "tiny", "rec"),
            room=None,
            resume=token,
        ),
        Ping(1),
    ]
    assert client.session.state is State.LOBBY
    assert client.session.player.name == "ada"
    assert client.close_code is None
    assert client.session.next_timer() == 1.0 + core.settings.ping_burst_interval


def test_hello_with_game_joins_at_once() -> None:
    """hello with a game: welcome.room holds the room, then the join event, then the ping."""
    core = make_core()
    client = Client(core)
    welcome, event, ping = client.hello("ada", game="arena")
    assert isinstance(welcome, Welcome) and welcome.room is not None
    assert welcome.room.name == "arena-1"
    assert welcome.room.game == "arena"
    assert welcome.room.max_players == 50
    assert [(p.id, p.name) for p in welcome.room.players] == [(client.pid, "ada")]
    assert welcome.room.info == room_named(core, "arena-1").game.info()
    assert event == Event("join", client.pid, "ada", tick=0)
    assert ping == Ping(1)
    assert client.session.state is State.IN_ROOM


def test_hello_with_existing_room_name_joins_it() -> None:
    """hello naming an existing room (no game) seats the player there."""
    core = make_core()
    first = in_room(core, "tiny", room="den")
    second = Client(core)
    welcome, event, _ = second.hello("bob", room="den")
    assert isinstance(welcome, Welcome) and welcome.room is not None
    assert (welcome.room.name, welcome.room.game) == ("den", "tiny")
    assert [p.name for p in welcome.room.players] == ["ada", "bob"]
    assert first.take() == [event] == [Event("join", second.pid, "bob", tick=0)]


def test_hello_with_refused_join_still_welcomes() -> None:
    """hello naming an unknown game: welcome without a room, then error unknown_game."""
    client = Client(make_core())
    welcome, error, ping = client.hello("ada", game="chess")
    assert isinstance(welcome, Welcome) and welcome.room is None
    assert error == Error("unknown_game", "no game named 'chess'", "hello")
    assert isinstance(ping, Ping)
    assert client.session.state is State.LOBBY
    assert client.close_code is None


def test_hello_name_is_cleaned() -> None:
    """Control and format characters are removed from the name, and it is trimmed."""
    client = Client(make_core())
    client.hello(" a\x00d\u200ba\x1b ")
    assert client.session.player.name == "ada"
    assert clean_text("\tx\u202ey\n") == "xy"


def test_hello_name_empty_after_cleaning_is_refused() -> None:
    """A name of only control characters gets bad_message; a proper hello then works."""
    client = Client(make_core())
    assert client.hello("\x00\x01") == [
        Error("bad_message", "hello.name: empty after cleaning", "hello")
    ]
    assert client.session.state is State.AWAIT_HELLO
    assert isinstance(client.hello("ada")[0], Welcome)


def test_first_message_not_hello_closes_1008() -> None:
    """Anything before hello gets error hello_required, then close 1008."""
    client = Client(make_core())
    client.send(Chat("hi"))
    assert client.take() == [Error("hello_required", "send hello first", "chat")]
    assert client.close_code == CloseCode.POLICY_VIOLATION


def test_bad_version_closes_4003() -> None:
    """hello with another protocol version gets unsupported_version, then close 4003."""
    client = Client(make_core())
    client.send(Hello(PROTOCOL_VERSION + 1, "ada"))
    [error] = client.take()
    assert isinstance(error, Error)
    assert (error.code, error.ref) == ("unsupported_version", "hello")
    assert client.close_code == CloseCode.UNSUPPORTED_VERSION
    assert client.session.state is State.AWAIT_HELLO


def test_hello_timeout_closes_4000() -> None:
    """No hello within hello_timeout: on_timer closes 4000, not a moment before."""
    client = Client(make_core(hello_timeout=5.0), now=10.0)
    assert client.session.next_timer() == 15.0
    client.session.on_timer(14.99)
    assert client.close_code is None
    client.session.on_timer(15.0)
    assert client.close_code == CloseCode.HELLO_TIMEOUT
    assert client.take() == []


def test_second_hello_gets_already_hello() -> None:
    """A second hello is refused with already_hello and changes nothing."""
    client = Client(make_core())
    client.hello("ada")
    client.send(Hello(PROTOCOL_VERSION, "eve"))
    assert client.errors() == [("already_hello", "hello")]
    assert client.session.player.name == "ada"
    assert client.close_code is None


def test_text_frame_closes_1003() -> None:
    """A text frame closes the connection 1003 (binary only)."""
    client = Client(make_core())
    client.hello()
    client.session.receive_text(1.0)
    assert client.close_code == CloseCode.UNSUPPORTED_DATA


def test_undecodable_bytes_get_bad_message_and_stay_open() -> None:
    """Garbage bytes get error bad_message; the connection stays usable."""
    client = Client(make_core())
    client.hello()
    client.session.receive_bytes(b"\xc1garbage", 0.0)
    [error] = client.take()
    assert isinstance(error, Error) and error.code == "bad_message"
    assert client.close_code is None
    client.send(Join(game="arena"))
    assert isinstance(client.take()[0], Joined)


def test_unknown_type_gets_unknown_type() -> None:
    """A map whose t names no client message gets unknown_type."""
    client = Client(make_core())
    client.hello()
    client.session.receive_bytes(b"\x81\xa1t\xa4warp", 0.0)
    assert client.errors() == [("unknown_type", None)]


def test_outbox_wakes_the_sender() -> None:
    """Every reply wakes the sender through the outbox."""
    client = Client(make_core())
    client.hello()
    assert client.wakes == 2  # welcome, ping


# -- joining -------------------------------------------------------------------


def test_join_by_game_fills_a_room_then_opens_another() -> None:
    """Matchmaking seats players in arena-1 until it holds max_players, then opens arena-2."""
    core = make_core(max_players_per_room=2)
    a, b, c = Client(core), Client(core), Client(core)
    for client, name in ((a, "ada"), (b, "bob"), (c, "cy")):
        client.hello(name)
    a.send(Join(game="arena"))
    joined_a, event_a = a.take()
    assert isinstance(joined_a, Joined) and joined_a.room.name == "arena-1"
    assert event_a == Event("join", a.pid, "ada", tick=0)
    b.send(Join(game="arena"))
    c.send(Join(game="arena"))
    joined_b, event_b = b.take()
    assert event_b == Event("join", b.pid, "bob", tick=0)
    assert isinstance(joined_b, Joined) and joined_b.room.name == "arena-1"
    assert [p.name for p in joined_b.room.players] == ["ada", "bob"]
    assert a.take() == [Event("join", b.pid, "bob", tick=0)]
    joined_c, _ = c.take()
    assert isinstance(joined_c, Joined) and joined_c.room.name == "arena-2"
    assert [p.name for p in joined_c.room.players] == ["cy"]
    assert a.take() == []  # arena-1 hears nothing of arena-2
    assert len(core.rooms) == 2


def test_matchmaking_never_picks_a_room_created_by_name() -> None:
    """§5.2: a join by game fills only rooms matchmaking created (empty ones within their
    grace included); a room created by name, even one named like arena-1, is joined by
    its name only, and is not watched by game either."""
    core = make_core()
    a, b, c, d, e = (Client(core) for _ in range(5))
    for client, name in ((a, "ada"), (b, "bob"), (c, "cy"), (d, "di"), (e, "eve")):
        client.hello(name)
    a.send(Join(game="arena", room="arena-1"))  # by name, in matchmaking's own form
    assert isinstance(a.take()[0], Joined)
    b.send(Join(game="arena"))
    joined_b = b.take()[0]
    assert isinstance(joined_b, Joined) and joined_b.room.name == "arena-2"
    assert not core.rooms.matchmade(room_named(core, "arena-1"))
    assert core.rooms.matchmade(room_named(core, "arena-2"))
    e.send(Join(game="arena", spectate=True))
    watched = e.take()[0]
    assert isinstance(watched, Joined) and watched.room.name == "arena-2"
    b.send(Leave())
    b.take()
    c.send(Join(game="arena"))  # arena-2 is empty but within its grace: picked
    joined_c = c.take()[0]
    assert isinstance(joined_c, Joined) and joined_c.room.name == "arena-2"
    d.send(Join(room="arena-1"))  # a named room is still joined by its name
    joined_d = d.take()[0]
    assert isinstance(joined_d, Joined) and joined_d.room.name == "arena-1"


def test_game_max_players_overrides_the_setting() -> None:
    """A game's own max_players (tiny: 2) decides the seats."""
    core = make_core(max_players_per_room=50)
    clients = [in_room(core, "tiny", f"p{i}") for i in range(3)]
    rooms = [cl.session.room.name if cl.session.room else None for cl in clients]
    assert rooms == ["tiny-1", "tiny-1", "tiny-2"]
    assert room_named(core, "tiny-1").max_players == 2


def test_join_unknown_room_without_game_is_no_such_room() -> None:
    """join naming a room that does not exist, with no game, gets no_such_room."""
    client = Client(make_core())
    client.hello()
    client.send(Join(room="den"))
    assert client.errors() == [("no_such_room", "join")]
    assert client.session.state is State.LOBBY


def test_join_unknown_room_with_game_creates_it() -> None:
    """join naming a new room and a game creates that room; a second player joins it by name."""
    core = make_core()
    a = Client(core)
    a.hello("ada")
    a.send(Join(game="arena", room="den"))
    joined, _ = a.take()
    assert isinstance(joined, Joined) and joined.room.name == "den"
    b = Client(core)
    b.hello("bob")
    b.send(Join(room="den"))
    joined_b, _ = b.take()
    assert isinstance(joined_b, Joined) and joined_b.room.name == "den"
    assert joined_b.room.game == "arena"


def test_join_room_running_another_game_is_mismatch() -> None:
    """join naming an existing room and another game gets room_game_mismatch."""
    core = make_core()
    in_room(core, "arena", room="den")
    b = Client(core)
    b.hello("bob")
    b.send(Join(game="tiny", room="den"))
    assert b.errors() == [("room_game_mismatch", "join")]


def test_join_full_room_by_name_is_room_full() -> None:
    """join naming a full room gets room_full."""
    core = make_core(max_players_per_room=1)
    in_room(core, "arena")
    b = Client(core)
    b.hello("bob")
    b.send(Join(room="arena-1"))
    assert b.errors() == [("room_full", "join")]


def test_join_while_in_room_is_already_in_room() -> None:
    """A second join while seated gets already_in_room."""
    client = in_room(make_core())
    client.send(Join(game="arena"))
    assert client.errors() == [("already_in_room", "join")]


def test_join_unknown_game() -> None:
    """join for a game that is not registered gets unknown_game."""
    client = Client(make_core())
    client.hello()
    client.send(Join(game="chess"))
    assert client.errors() == [("unknown_game", "join")]


def test_too_many_rooms() -> None:
    """With max_rooms=1 a join that needs a second room gets too_many_rooms."""
    core = make_core(max_rooms=1, max_players_per_room=1)
    in_room(core, "arena")
    b = Client(core)
    b.hello("bob")
    b.send(Join(game="arena"))
    assert b.errors() == [("too_many_rooms", "join")]
    b.send(Join(game="tiny", room="other"))
    assert b.errors() == [("too_many_rooms", "join")]
    assert len(core.rooms) == 1


def test_on_join_crash_closes_1011() -> None:
    """A game whose on_join raises closes that client 1011; nobody is seated."""
    core = make_core()
    client = Client(core)
    client.hello("crash")
    client.send(Join(game="rec"))
    assert client.take() == []
    assert client.close_code == CloseCode.INTERNAL_ERROR
    assert client.session.room is None
    assert room_named(core, "rec-1").seats == {}


def test_leave_answers_left_and_tells_the_others() -> None:
    """leave → left to the leaver, a leave event to the others; the leaver is back in the lobby."""
    core = make_core()
    a = in_room(core, name="ada")
    b = in_room(core, name="bob")
    a.take()
    a.send(Leave())
    assert a.take() == [Left("arena-1")]
    assert b.take() == [Event("leave", a.pid, "ada", tick=0)]
    assert a.session.state is State.LOBBY
    assert a.session.room is None
    assert a.pid not in room_named(core, "arena-1").seats
    a.send(Join(game="arena"))
    assert isinstance(a.take()[0], Joined)


def test_no_snapshot_of_the_room_follows_left() -> None:
    """An unsent snapshot of the room is dropped on leave: nothing of the room follows left."""
    core = make_core()
    a = in_room(core, name="ada")
    room_named(core, "arena-1").tick(1, 1 / 30)
    assert len(a.outbox) == 1  # the snapshot waits in its slot (the socket is busy)
    a.send(Leave())
    assert a.take() == [Left("arena-1")]


@pytest.mark.parametrize(
    ("message", "ref"),
    [(Input(1, {"dx": 1}), "input"), (Chat("hi"), "chat"), (Leave(), "leave")],
)
def test_room_messages_in_lobby_are_not_in_room(message: ClientMessage, ref: str) -> None:
    """input, chat and leave sent from the lobby get not_in_room."""
    client = Client(make_core())
    client.hello()
    client.send(message)
    assert client.errors() == [("not_in_room", ref)]
    assert client.close_code is None


# -- chat ----------------------------------------------------------------------


def test_chat_cleaned_and_broadcast_to_everyone() -> None:
    """Chat is stripped of control characters and reaches every member, the sender too."""
    core = make_core()
    a = in_room(core, name="ada")
    b = in_room(core, name="bob")
    a.take()
    room_named(core, "arena-1").tick_no = 77
    a.send(Chat("  hi\x07 there\u200b\x1b[2J "))
    expected = Event("chat", a.pid, "ada", "hi there[2J", tick=77)
    assert a.take() == [expected]
    assert b.take() == [expected]


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\u200b", "x" * 201])
def test_bad_chat(text: str) -> None:
    """Chat empty after cleaning or over max_chat_chars gets bad_chat and is not broadcast."""
    core = make_core()
    a = in_room(core, name="ada")
    b = in_room(core, name="bob")
    a.take()
    a.send(Chat(text))
    assert a.errors() == [("bad_chat", "chat")]
    assert b.take() == []


def test_chat_of_exactly_max_chars_is_accepted() -> None:
    """A chat line of exactly max_chat_chars is broadcast."""
    a = in_room(make_core(max_chat_chars=10))
    a.send(Chat("x" * 10))
    [event] = a.take()
    assert isinstance(event, Event) and event.text == "x" * 10


# -- inputs and snapshots ----------------------------------------------------------


def test_inputs_applied_in_seq_order_at_next_tick_and_acked() -> None:
    """Inputs wait for the next tick, are applied in seq order, and the snapshot acks the last."""
    core = make_core()
    client = in_room(core, "rec")
    game = recorder(client)
    for seq in (3, 5, 9):
        client.send(Input(seq, f"cmd{seq}"))
    assert client.take() == []
    assert game.applied == []
    tick(client, 4)
    assert game.applied == [(client.pid, "cmd3"), (client.pid, "cmd5"), (client.pid, "cmd9")]
    [snap] = client.take()
    assert isinstance(snap, Snapshot)
    assert (snap.id, snap.tick, snap.ack, snap.base) == (1, 4, 9, None)
    assert snap.state == {"applied": 3}


def test_input_seq_rules() -> None:
    """Non-increasing and far-jumping seqs are ignored silently; a full queue is refused."""
    core = make_core(input_queue_depth=3, max_input_seq_gap=100)
    client = in_room(core, "rec")
    game = recorder(client)
    client.send(Input(10, "a"))
    client.send(Input(10, "dup"))
    client.send(Input(7, "old"))
    client.send(Input(111, "far"))
    client.send(Input(110, "b"))  # exactly the max gap
    assert client.take() == []
    client.send(Input(111, "c"))
    client.send(Input(112, "overflow"))
    assert client.errors() == [("input_queue_full", "input")]
    assert client.close_code is None
    tick(client, 1)
    assert [cmd for _, cmd in game.applied] == ["a", "b", "c"]
    seat = seat_of(client)
    assert seat.ignored_inputs == 3


@pytest.mark.parametrize("data", [{"dx": 5}, {"dx": "a"}, [1, 0], "left", None])
def test_bad_input_from_arena(data: Any) -> None:
    """Arena's validate_input refuses out-of-range, non-numeric and non-map data: bad_input."""
    client = in_room(make_core(), "arena")
    client.send(Input(1, data))
    assert client.errors() == [("bad_input", "input")]
    assert client.close_code is None
    seat = seat_of(client)
    assert not seat.inputs


def test_nan_input_is_refused_by_the_codec() -> None:
    """NaN never reaches the game: the codec refuses it as bad_message, not bad_input."""
    client = in_room(make_core(), "arena")
    data = msgpack.packb({"t": "input", "seq": 1, "data": {"dx": float("nan"), "dy": 0}})
    client.session.receive_bytes(data, 0.0)
    assert client.errors() == [("bad_message", "input")]
    assert not seat_of(client).inputs


def test_validate_input_bug_closes_1011() -> None:
    """validate_input raising anything but InvalidInput closes that client 1011."""
    core = make_core()
    client = in_room(core, "rec", name="ada")
    other = in_room(core, "rec", name="bob")
    client.take()
    client.send(Input(1, "explode"))
    assert client.close_code == CloseCode.INTERNAL_ERROR
    assert other.take() == [Event("leave", client.pid, "ada", tick=0)]


def test_arena_input_moves_the_player() -> None:
    """A valid arena input changes that player's position in the next snapshot."""
    client = in_room(make_core(), "arena")
    tick(client, 0)
    [before] = client.take()
    client.send(Input(1, {"dx": 1, "dy": 0}))
    tick(client, 1)
    [after] = client.take()
    assert isinstance(before, Snapshot) and isinstance(after, Snapshot)
    row_before = next(r for r in before.state["players"] if r[0] == client.pid)
    row_after = next(r for r in after.state["players"] if r[0] == client.pid)
    assert row_after[1] - row_before[1] == pytest.approx(SPEED / 30 * SCALE, abs=1)
    assert row_after[2] == row_before[2]
    assert after.ack == 1


def test_snapshot_carries_rtt_and_jitter_after_pongs() -> None:
    """After pongs, snapshots carry the measured RTT and jitter in microseconds."""
    core = make_core(ping_burst=1)
    client = Client(core)
    client.hello("ada", game="rec")  # ping 1 sent at t=0
    tick(client, 0)
    assert [(m.rtt_us, m.jitter_us) for m in client.take() if isinstance(m, Snapshot)] == [(0, 0)]
    client.send(Pong(1), now=0.080)
    tick(client, 1)
    [snap] = client.take()
    assert isinstance(snap, Snapshot) and (snap.rtt_us, snap.jitter_us) == (80_000, 0)
    client.session.on_timer(1.0)
    assert client.take() == [Ping(2)]
    client.send(Pong(2), now=1.120)
    tick(client, 2)
    [snap] = client.take()
    assert isinstance(snap, Snapshot)  # the 2nd sample starts the estimate again
    assert (snap.rtt_us, snap.jitter_us) == (120_000, 0)
    client.session.on_timer(2.0)
    assert client.take() == [Ping(3)]
    client.send(Pong(3), now=2.100)
    tick(client, 3)
    [snap] = client.take()
    assert isinstance(snap, Snapshot)
    assert (snap.rtt_us, snap.jitter_us) == (110_000, 20_000)
    assert client.session.player.latency.samples == 3


def test_pong_rtt_is_measured_to_its_arrival_not_to_its_handling() -> None:
    """A pong handled at t=0.5 that arrived at t=0.08 (a kernel stamp) gives RTT 80 ms."""
    client = Client(make_core())
    client.hello("ada")  # ping 1 sent at t=0
    client.take()
    client.session.receive_bytes(encode(Pong(1)), 0.5, arrived_at=0.080)
    assert client.session.latency.report.last_rtt == pytest.approx(0.080)
    client.session.on_timer(1.0)
    assert client.take() == [Ping(2)]
    client.session.receive_bytes(encode(Pong(2)), 1.3)  # no stamp: handled = arrived
    assert client.session.latency.report.last_rtt == pytest.approx(0.3)


def test_ack_handling() -> None:
    """Acks move last_acked_snapshot forward only, never past the newest snapshot sent."""
    client = in_room(make_core(), "rec")
    for n in range(3):
        tick(client, n)
    client.take()
    client.send(Ack(5))
    assert client.session.last_acked_snapshot == 0
    client.send(Ack(2))
    assert client.session.last_acked_snapshot == 2
    client.send(Ack(1))
    assert client.session.last_acked_snapshot == 2
    client.send(Input(1, "x", ack=3))
    assert client.session.last_acked_snapshot == 3
    assert client.take() == []


def test_pong_with_unknown_nonce_is_ignored() -> None:
    """A pong for a ping never sent changes nothing and gets no error."""
    client = Client(make_core())
    client.hello()
    client.send(Pong(12345), now=0.1)
    assert client.take() == []
    assert client.session.latency.report.samples == 0
    assert client.session.latency.ignored_pongs == 1


# -- pings ------------------------------------------------------------------------


def test_a_burst_of_pings_then_one_every_interval() -> None:
    """After the welcome: ping_burst pings ping_burst_interval apart, then every ping_interval."""
    client = Client(make_core(ping_interval=1.0, ping_burst=3, ping_burst_interval=0.1))
    client.hello()
    assert client.session.latency.pings_sent == 1  # right behind the welcome
    assert client.session.next_timer() == pytest.approx(0.1)
    client.session.on_timer(0.1)
    assert client.take() == [Ping(2)]
    assert client.session.next_timer() == pytest.approx(0.2)
    client.session.on_timer(0.2)
    assert client.take() == [Ping(3)]
    assert client.session.next_timer() == pytest.approx(1.2)
    client.session.on_timer(1.2)
    assert client.take() == [Ping(4)]
    assert client.session.next_timer() == pytest.approx(2.2)


def test_pings_every_interval() -> None:
    """on_timer sends a ping each ping_interval; next_timer says when."""
    client = Client(make_core(ping_interval=1.0, ping_burst=1))
    client.hello()
    assert client.session.next_timer() == 1.0
    client.session.on_timer(0.5)
    assert client.take() == []
    client.session.on_timer(1.0)
    assert client.take() == [Ping(2)]
    assert client.session.next_timer() == 2.0


def test_late_timer_sends_one_ping() -> None:
    """A timer run several intervals late sends one ping, and the next is an interval later."""
    client = Client(make_core(ping_interval=1.0, ping_timeout=10.0, ping_burst=1))
    client.hello()
    client.take()
    client.session.on_timer(3.5)  # the event loop was blocked: pings at 1, 2, 3 were missed
    assert client.take() == [Ping(2)]
    assert client.session.next_timer() > 3.5
    client.session.on_timer(3.5)
    assert client.take() == []


def test_ping_timeout_closes_4002() -> None:
    """A ping unanswered for ping_timeout closes the connection 4002."""
    client = Client(make_core(ping_interval=1.0, ping_timeout=10.0, ping_burst=1))
    client.hello()
    for t in range(1, 10):
        client.session.on_timer(float(t))
    assert client.close_code is None
    assert client.session.next_timer() == 10.0
    client.session.on_timer(10.0)
    assert client.close_code == CloseCode.PING_TIMEOUT


def test_answered_pings_keep_the_connection() -> None:
    """Answering each ping keeps the connection open past ping_timeout."""
    client = Client(make_core(ping_interval=1.0, ping_timeout=3.0))
    client.hello()
    client.take()
    for t in range(1, 20):
        client.send(Pong(t), now=t - 0.95)
        client.session.on_timer(float(t))
        assert client.take() == [Ping(t + 1)]
    assert client.close_code is None


# -- abuse ------------------------------------------------------------------------


def test_rate_limit_then_flood_close() -> None:
    """Past the burst: one rate_limited error, flood_close_after drops tolerated, then 1008."""
    core = make_core(messages_per_second=10.0, message_burst=5, flood_close_after=3)
    client = Client(core)
    client.hello()  # 1 token
    client.take()
    for _ in range(4):  # the other 4 tokens
        client.send(Ack(0))
    assert client.take() == []
    for _ in range(3):  # dropped, within the flood allowance
        client.send(Ack(0))
    assert client.errors() == [("rate_limited", None)]
    assert client.close_code is None
    assert client.session.messages_dropped == 3
    client.send(Ack(0))
    assert client.close_code == CloseCode.POLICY_VIOLATION
    client.send(Ack(0))
    assert client.session.messages_dropped == 4  # after the close nothing is counted


def test_rate_limit_error_again_after_recovery() -> None:
    """Once a message gets through again, the next drop sends a fresh rate_limited error."""
    core = make_core(messages_per_second=10.0, message_burst=2, flood_close_after=50)
    client = Client(core)
    client.hello()
    client.send(Ack(0))
    client.take()
    client.send(Ack(0))
    client.send(Ack(0))
    assert client.errors() == [("rate_limited", None)]
    client.send(Ack(0), now=0.1)  # one token refilled
    assert client.take() == []
    client.send(Ack(0), now=0.1)
    assert client.errors() == [("rate_limited", None)]


def test_rate_limited_messages_are_not_decoded() -> None:
    """A dropped message is not handled: a chat over the rate never reaches the room."""
    core = make_core(messages_per_second=10.0, message_burst=3)
    a = in_room(core)  # hello + join: 2 tokens
    a.send(Chat("one"))
    a.send(Chat("two"))
    assert [m.text for m in a.take() if isinstance(m, Event)] == ["one"]


def test_bad_messages_spend_credits_then_close_1008() -> None:
    """bad_messages_allowed bad messages are answered; the next one closes 1008."""
    client = Client(make_core(bad_messages_allowed=10))
    client.hello()
    client.take()
    for _ in range(10):
        client.session.receive_bytes(b"\xc1", 0.0)
    assert [code for code, _ in client.errors()] == ["bad_message"] * 10
    assert client.close_code is None
    client.session.receive_bytes(b"\xc1", 0.0)
    assert [code for code, _ in client.errors()] == ["bad_message"]
    assert client.close_code == CloseCode.POLICY_VIOLATION


def test_bad_message_credits_refill_at_one_per_ten_seconds() -> None:
    """A spent credit comes back after 10 s (0.1/s): one more bad message, not two."""
    client = Client(make_core(bad_messages_allowed=10))
    client.hello()
    for _ in range(10):
        client.session.receive_bytes(b"\xc1", 0.0)
    client.session.receive_bytes(b"\xc1", 10.0)
    assert client.close_code is None
    client.session.receive_bytes(b"\xc1", 10.0)
    assert client.close_code == CloseCode.POLICY_VIOLATION


def test_cheap_refusals_spend_no_credit() -> None:
    """not_in_room and join refusals are not hostile: many of them never close."""
    client = Client(make_core(bad_messages_allowed=2))
    client.hello()
    for _ in range(20):
        client.send(Leave())
        client.send(Join(room="nowhere"))
    assert client.close_code is None


def test_costly_refusals_include_bad_input_and_bad_chat() -> None:
    """bad_input and bad_chat spend credits like garbage does."""
    client = in_room(make_core(bad_messages_allowed=2), "rec")
    client.send(Input(1, "refuse"))
    client.send(Chat(""))
    assert client.close_code is None
    client.send(Input(2, "refuse"))
    assert client.close_code == CloseCode.POLICY_VIOLATION


# -- leaving ----------------------------------------------------------------------


def test_connection_lost_leaves_the_room() -> None:
    """With resume off, when the connection is gone the player leaves; the others get a leave."""
    core = make_core(reconnect_grace=0)
    a = in_room(core, name="ada")
    b = in_room(core, name="bob")
    a.take()
    a.session.connection_lost(3.0)
    assert b.take() == [Event("leave", a.pid, "ada", tick=0)]
    assert a.session.state is State.CLOSED
    room = core.rooms.get("arena-1")
    assert room is not None and list(room.seats) == [b.pid]
    a.send(Chat("ghost"))
    assert b.take() == []


def test_last_player_lost_marks_room_empty() -> None:
    """The last player disconnecting (resume off) starts the room's empty grace at that time."""
    core = make_core(reconnect_grace=0)
    a = in_room(core)
    a.session.connection_lost(7.5)
    room = core.rooms.get("arena-1")
    assert room is not None and room.empty_since == 7.5


def test_close_leaves_the_room_at_once() -> None:
    """A close (ping timeout, resume off) frees the seat at once, before the socket closes."""
    core = make_core(ping_timeout=2.0, reconnect_grace=0)
    a = in_room(core, name="ada")
    b = in_room(core, name="bob")
    a.take()
    a.session.on_timer(2.0)
    assert a.close_code == CloseCode.PING_TIMEOUT
    assert b.take() == [Event("leave", a.pid, "ada", tick=0)]
    assert a.session.room is None


def test_room_failure_kicks_session_1011() -> None:
    """When the room fails, its sessions are closed 1011 and leave it."""
    core = make_core()
    a = in_room(core, "rec")
    room = a.session.room
    assert room is not None
    room.fail("test")
    assert a.close_code == CloseCode.INTERNAL_ERROR
    assert a.session.room is None
    assert a.session.state is State.LOBBY


def test_join_by_name_into_a_failed_room_gets_a_fresh_room() -> None:
    """A room that failed but is not yet reaped is not joinable: a join by name gets a new room."""
    core = make_core()
    a = in_room(core, "rec", name="ada", room="den")
    b = in_room(core, "rec", name="bob", room="den")
    dead = a.session.room
    assert dead is not None
    recorder(a).fail_leave = True
    a.send(Leave())  # on_leave crashes: the room fails, bob is closed 1011
    assert dead.closed and b.close_code == CloseCode.INTERNAL_ERROR
    c = Client(core)
    c.hello("cy")
    c.send(Join(room="den"))
    assert c.errors() == [("no_such_room", "join")]
    c.send(Join(game="rec", room="den"))
    joined, _ = c.take()
    assert isinstance(joined, Joined) and [p.name for p in joined.room.players] == ["cy"]
    assert c.session.room is not dead
    assert core.rooms.get("den") is c.session.room


def test_messages_after_close_are_ignored() -> None:
    """Once a close is requested, further messages are neither answered nor counted."""
    client = Client(make_core())
    client.send(Chat("hi"))  # closes 1008
    client.take()
    client.send(Hello(PROTOCOL_VERSION, "ada"))
    assert client.take() == []
    assert client.session.state is State.AWAIT_HELLO
    assert client.session.messages_received == 1


class BadInfo(Game):
    """A game whose static info() fails after on_join succeeded."""

    name = "badinfo"

    def info(self) -> Any:
        raise RuntimeError("game bug in info()")

    def step(self, dt: float) -> None:
        pass

    def snapshot(self, viewer: Player) -> Any:
        return 0


def test_game_failing_in_info_leaves_no_seat_behind() -> None:
    """info() failing after on_join closes the player 1011 and frees the seat."""
    games = default_games()
    games.register(BadInfo)
    core = ServerCore(Settings(empty_room_grace=5.0), games, epoch=0.0, seed=1)
    client = Client(core)
    client.hello()
    client.send(Join(game="badinfo"))
    assert client.close_code == CloseCode.INTERNAL_ERROR
    room = room_named(core, "badinfo-1")
    assert room.seats == {}
    assert room.disposable(100.0, 5.0)


def test_ping_timeout_fires_even_when_it_spans_many_intervals() -> None:
    """With ping_timeout 50 intervals long, an unanswered first ping still times out (4002)."""
    client = Client(make_core(ping_interval=0.1, ping_timeout=5.0))
    client.hello()
    for step in range(1, 50):
        client.session.on_timer(step * 0.1)
    assert client.close_code is None
    client.session.on_timer(5.0)
    assert client.close_code == CloseCode.PING_TIMEOUT


def test_chat_has_its_own_rate() -> None:
    """Chat past chat_burst gets rate_limited; the bucket refills at chat_per_second."""
    core = make_core(chat_per_second=2.0, chat_burst=5)
    a = in_room(core, name="ada")
    a.take()
    for _ in range(6):
        a.send(Chat("hi"))
    messages = a.take()
    assert sum(isinstance(m, Event) and m.kind == "chat" for m in messages) == 5
    assert [(m.code, m.ref) for m in messages if isinstance(m, Error)] == [("rate_limited", "chat")]
    a.send(Chat("again"), now=0.5)
    assert any(isinstance(m, Event) and m.text == "again" for m in a.take())


@pytest.mark.parametrize(
    ("per_second", "per_minute"), [(2.0, 120), (0.5, 30), (0.25, 15), (100.0, 6000)]
)
def test_the_welcome_announces_the_chat_rate(per_second: float, per_minute: int) -> None:
    """welcome.limits carries the chat rate per minute (ints only) and the burst."""
    client = Client(make_core(chat_per_second=per_second, chat_burst=3))
    [welcome] = [m for m in client.hello() if isinstance(m, Welcome)]
    assert welcome.limits["chat_per_minute"] == per_minute
    assert welcome.limits["chat_burst"] == 3


@pytest.mark.parametrize("name", ["bad\nname", " padded", "tab\there"])
def test_room_names_must_be_printable(name: str) -> None:
    """A room name with control characters or padding is refused (bad_message)."""
    client = Client(make_core())
    client.hello()
    client.send(Join(game="arena", room=name))
    assert client.errors() == [("bad_message", "join")]
    assert client.session.room is None


def test_one_connection_cannot_create_rooms_without_end() -> None:
    """Past rooms_created_per_connection, creating another room is refused too_many_rooms."""
    core = make_core(rooms_created_per_connection=2)
    client = Client(core)
    client.hello()
    for name in ("r1", "r2"):
        client.send(Join(game="arena", room=name))
        client.send(Leave())
    client.take()
    client.send(Join(game="arena", room="r3"))
    assert client.errors() == [("too_many_rooms", "join")]
    client.send(Join(room="r1"))  # joining an existing room is still fine
    assert isinstance(client.take()[0], Joined)
