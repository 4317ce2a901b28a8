"""Seats outlive connections: the SeatKeeper and the session's resume, with numbers for time.

Resume (PROTOCOL.md §5.12) and spectators (§5.13) driven through Session objects
and their outboxes: no socket, no clock but the ``now`` arguments.
"""

from __future__ import annotations

from typing import Any

from gameserver.auth import Identity
from gameserver.core import ServerCore
from gameserver.games.arena import Arena
from gameserver.seats import AwayMember, SeatKeeper
from gameserver.session import Session, State
from protocol import (
    Chat,
    CloseCode,
    Error,
    Event,
    Input,
    Join,
    Joined,
    Leave,
    Left,
    ServerMessage,
    Snapshot,
    Welcome,
)
from tests.core.test_session import Client, make_core, room_named


def welcome_of(messages: list[ServerMessage]) -> Welcome:
    found = [m for m in messages if isinstance(m, Welcome)]
    assert len(found) == 1, messages
    return found[0]


def player_in(core: ServerCore, name: str, presence: bool = False) -> tuple[Client, str]:
    """A client in arena-1 and its resume token."""
    client = Client(core)
    welcome = welcome_of(client.hello(name, room="arena-1", game="arena", presence=presence))
    assert welcome.resume is not None
    client.take()
    return client, welcome.resume


def resume(core: ServerCore, token: str, now: float, **hello: Any) -> tuple[Client, list[Any]]:
    client = Client(core, now)
    return client, client.hello("ignored", now=now, resume=token, **hello)


def arena(client: Client) -> Arena:
    room = client.session.room
    assert room is not None and isinstance(room.game, Arena)
    return room.game


def kinds(messages: list[ServerMessage]) -> list[tuple[str, int]]:
    return [(m.kind, m.player) for m in messages if isinstance(m, Event)]


# -- the keeper alone ----------------------------------------------------------------


class Holder:
    def __init__(self, player: Any) -> None:
        self.player = player

    def hand_over(self) -> None:
        return None


def test_tokens_are_long_random_and_single_use() -> None:
    core = make_core()
    a, token = player_in(core, "ada")
    _b, other = player_in(core, "bob")
    assert len(token) >= 22 and token != other  # >= 128 bits of URL-safe base64
    claim = core.seats.claim(token, None, 1.0)
    assert claim is not None and claim.player is a.session.player
    assert core.seats.claim(token, None, 1.0) is None  # used
    assert core.seats.claim("forged" + other, None, 1.0) is None
    assert core.seats.claim(other, Identity("someone"), 1.0) is None  # another user's
    assert core.seats.claim(other, None, 1.0) is not None  # ... and not spoiled by that


def test_keeper_is_off_with_zero_grace() -> None:
    keeper = SeatKeeper(0.0)
    assert keeper.issue(Holder(object())) is None  # type: ignore[arg-type]
    core = make_core(reconnect_grace=0)
    client = Client(core)
    assert welcome_of(client.hello("ada")).resume is None


def test_a_held_seat_expires_at_dropped_at_plus_grace() -> None:
    """expire() before the deadline keeps the seat; at it, on_leave runs and others hear it."""
    core = make_core(reconnect_grace=20.0)
    a, token = player_in(core, "ada")
    b, _ = player_in(core, "bob")
    room = room_named(core, "arena-1")
    a.session.connection_lost(100.0)
    assert isinstance(room.seats[a.pid].member, AwayMember)
    assert core.seats.held_count() == 1
    b.take()
    core.seats.expire(room, 119.99)
    assert a.pid in room.seats and a.pid in arena(b).avatars
    assert b.take() == []
    core.seats.expire(room, 120.0)
    assert a.pid not in room.seats and a.pid not in arena(b).avatars
    assert kinds(b.take()) == [("leave", a.pid)]
    assert core.seats.held_count() == 0 and len(core.seats) == 1  # bob's token only
    _, messages = resume(core, token, 120.5)
    assert [(m.code, m.ref) for m in messages if isinstance(m, Error)] == [
        ("resume_failed", "hello")
    ]


# -- resume through sessions ---------------------------------------------------------


def test_resume_within_grace_keeps_id_score_and_seq() -> None:
    core = make_core()
    a, token = player_in(core, "ada", presence=True)
    b, _ = player_in(core, "bob", presence=True)
    c, _ = player_in(core, "cy")  # no presence: the first v1 text's client
    room = room_named(core, "arena-1")
    a.send(Input(7, {"dx": 1, "dy": 0}))
    room.tick(1, 1 / 30)
    arena(a).avatars[a.pid].score = 3
    for client in (a, b, c):
        client.take()

    a.session.connection_lost(10.0)
    assert kinds(b.take()) == [("away", a.pid)]
    assert c.take() == []
    assert not a.session.player.connected
    avatar = arena(b).avatars[a.pid]
    assert (avatar.dx, avatar.dy) == (0.0, 0.0)  # arena: stands still while away
    assert room.room_info().away == (a.pid,)

    new, messages = resume(core, token, 15.0, game="arena", room="elsewhere")
    welcome = welcome_of(messages)
    assert welcome.player == a.pid and welcome.resumed
    assert welcome.room is not None and welcome.room.name == "arena-1"
    assert welcome.room.away == ()
    assert {p.id for p in welcome.room.players} == {a.pid, b.pid, c.pid}
    assert welcome.resume is not None and welcome.resume != token
    assert kinds(messages) == []  # no join event for the resumer
    assert kinds(b.take()) == [("back", a.pid)]
    assert c.take() == []  # neither away nor back nor leave for c
    assert core.rooms.get("elsewhere") is None
    assert new.session.player is a.session.player and new.session.player.connected
    assert arena(new).avatars[a.pid].score == 3

    room.tick(2, 1 / 30)
    snaps = [m for m in new.take() if isinstance(m, Snapshot)]
    assert [(s.id, s.ack, s.base) for s in snaps] == [(1, 7, None)]  # fresh ids, full
    new.send(Input(5, {"dx": 1}))  # seq carries on: 5 <= 7 is ignored
    room.tick(3, 1 / 30)
    assert room.seats[a.pid].applied_seq == 7
    new.send(Input(8, {"dx": 1}))
    room.tick(4, 1 / 30)
    assert room.seats[a.pid].applied_seq == 8


def test_latency_is_measured_on_the_new_connection() -> None:
    core = make_core()
    a, token = player_in(core, "ada")
    a.session.connection_lost(1.0)
    new, _ = resume(core, token, 2.0)
    assert new.session.player.latency is new.session.latency.report


def test_token_replay_gets_resume_failed_and_a_fresh_player() -> None:
    core = make_core()
    a, token = player_in(core, "ada")
    a.session.connection_lost(1.0)
    first, _ = resume(core, token, 2.0)
    assert first.session.player_id == a.pid
    first.session.connection_lost(3.0)
    again, messages = resume(core, token, 4.0, game="arena")
    assert isinstance(messages[0], Error) and messages[0].code == "resume_failed"
    welcome = welcome_of(messages)
    assert welcome.player != a.pid and not welcome.resumed
    assert welcome.room is not None and welcome.resume is not None  # the join went on
    assert again.session.state is State.IN_ROOM


def test_resume_racing_its_half_open_connection() -> None:
    """The old connection still looks open: it is closed 4006, the new one takes the seat."""
    core = make_core()
    a, token = player_in(core, "ada", presence=True)
    b, _ = player_in(core, "bob", presence=True)
    b.take()
    new, messages = resume(core, token, 5.0)
    assert welcome_of(messages).player == a.pid
    assert a.close_code == CloseCode.REPLACED
    room = room_named(core, "arena-1")
    assert room.seats[a.pid].member is new.session
    assert kinds(b.take()) == []  # nobody saw a drop
    a.session.connection_lost(6.0)  # the old link ends later: nothing happens
    assert a.pid in room.seats and b.take() == []
    new.send(Chat("still here"), 7.0)
    assert kinds(b.take()) == [("chat", a.pid)]


def test_client_close_1000_is_a_leave_and_ping_timeout_a_hold() -> None:
    core = make_core(ping_timeout=2.0)
    a, _ = player_in(core, "ada")
    b, _ = player_in(core, "bob")
    c, token_c = player_in(core, "cy")
    b.take()
    a.session.connection_lost(1.0, clean=True)
    assert kinds(b.take()) == [("leave", a.pid)]
    c.session.on_timer(2.5)  # ping timeout: a dead network, not a goodbye
    assert c.close_code == CloseCode.PING_TIMEOUT
    assert b.take() == [] and c.pid in room_named(core, "arena-1").seats
    c.session.connection_lost(2.6)
    _new, messages = resume(core, token_c, 3.0)
    assert welcome_of(messages).resumed


def test_a_player_dropped_in_the_lobby_is_gone() -> None:
    core = make_core()
    a = Client(core)
    token = welcome_of(a.hello("ada")).resume
    assert token is not None
    a.session.connection_lost(1.0)
    assert len(core.seats) == 0
    _, messages = resume(core, token, 2.0)
    assert isinstance(messages[0], Error) and messages[0].code == "resume_failed"


def test_held_seat_of_a_failed_room_cannot_be_resumed() -> None:
    core = make_core()
    a, token = player_in(core, "ada")
    a.session.connection_lost(1.0)
    room = room_named(core, "arena-1")
    room.fail("test")
    core.seats.forget_room(room)
    assert len(core.seats) == 0
    _, messages = resume(core, token, 2.0)
    assert isinstance(messages[0], Error) and messages[0].code == "resume_failed"


def test_many_drops_and_resumes_leave_nothing_behind() -> None:
    core = make_core(max_players_per_room=200)
    clients = [player_in(core, f"p{i}") for i in range(200)]
    room = room_named(core, "arena-1")
    for client, _ in clients:
        client.session.connection_lost(1.0)
    assert core.seats.held_count() == 200
    for _client, token in clients:
        _new, messages = resume(core, token, 2.0)
        assert welcome_of(messages).resumed
    assert core.seats.held_count() == 0 and len(core.seats) == 200
    assert len(room.seats) == 200
    assert all(s.member.player.connected for s in room.seats.values())


# -- spectators ------------------------------------------------------------------------


def test_spectator_gets_snapshots_cannot_move_and_is_counted() -> None:
    core = make_core()
    a, _ = player_in(core, "ada")
    watcher = Client(core)
    messages = watcher.hello("eve", game="arena", room="arena-1", spectate=True)
    welcome = welcome_of(messages)
    assert welcome.resume is None and welcome.room is not None
    assert welcome.room.spectators == 1
    assert [p.id for p in welcome.room.players] == [a.pid]
    assert kinds(a.take()) == []  # no join event for a spectator
    room = room_named(core, "arena-1")
    assert watcher.session.player.spectator
    watcher.send(Input(1, {"dx": 1}))
    assert watcher.errors() == [("spectating", "input")]
    room.tick(1, 1 / 30)
    snaps = [m for m in watcher.take() if isinstance(m, Snapshot)]
    assert len(snaps) == 1 and snaps[0].ack is None
    assert [p[0] for p in snaps[0].state["players"]] == [a.pid]
    watcher.send(Chat("hi"))
    assert kinds(a.take()) == [("chat", watcher.pid)]
    assert kinds(watcher.take()) == [("chat", watcher.pid)]  # spectators get the events
    assert room.stats()["spectators"] == 1
    watcher.send(Leave())
    assert watcher.take() == [Left("arena-1")]
    assert room.spectators == {} and not watcher.session.player.spectator


def test_spectator_cap_chat_setting_and_missing_room() -> None:
    core = make_core(max_spectators_per_room=1, spectator_chat=False)
    player_in(core, "ada")
    first, second = Client(core), Client(core)
    first.hello("eve")
    second.hello("mal")
    first.send(Join(room="arena-1", spectate=True))
    assert isinstance(first.take()[0], Joined)
    second.send(Join(room="arena-1", spectate=True))
    assert second.errors() == [("spectators_full", "join")]
    # arena-1 was created by name: watching by game alone never picks it (§5.2, §5.13).
    second.send(Join(game="arena", spectate=True))
    assert second.errors() == [("no_such_room", "join")]
    second.send(Join(room="nowhere", game="arena", spectate=True))
    assert second.errors() == [("no_such_room", "join")]
    assert core.rooms.get("nowhere") is None
    first.send(Chat("hi"))
    assert first.errors() == [("spectating", "chat")]


def test_disposed_room_sends_its_spectators_back_to_the_lobby() -> None:
    core = make_core()
    a, _ = player_in(core, "ada")
    watcher = Client(core)
    watcher.hello("eve")
    watcher.send(Join(room="arena-1", spectate=True))
    watcher.take()
    a.session.connection_lost(1.0, clean=True)
    room = room_named(core, "arena-1")
    core.rooms.dispose(room)
    assert watcher.take() == [Event("leave", a.pid, "ada", tick=0), Left("arena-1")]
    assert watcher.session.state is State.LOBBY and watcher.session.room is None
    watcher.session.connection_lost(2.0)  # a spectator's drop holds nothing
    assert core.seats.held_count() == 0


def test_spectator_drop_is_a_leave() -> None:
    core = make_core()
    player_in(core, "ada")
    watcher = Client(core)
    watcher.hello("eve", room="arena-1", spectate=True)
    watcher.session.connection_lost(1.0)
    assert room_named(core, "arena-1").spectators == {}


def test_session_type_is_a_holder() -> None:
    """Session satisfies what the keeper needs (checked by mypy through this assignment)."""
    from gameserver.seats import Holder as KeeperHolder

    def takes(holder: KeeperHolder) -> None:
        assert holder.player is not None

    core = make_core()
    session: Session = Client(core).session
    takes(session)


def test_tokens_never_reach_the_logs(caplog: Any) -> None:
    """Issue, drop, resume, replay, a half-open takeover: no token in any log line."""
    import logging

    caplog.set_level(logging.DEBUG)
    core = make_core()
    a, token = player_in(core, "ada")
    _b, token_b = player_in(core, "bob")
    a.session.connection_lost(1.0)
    _new, messages = resume(core, token, 2.0)
    fresh = welcome_of(messages).resume
    resume(core, token, 3.0)  # replayed: resume_failed
    resume(core, token_b, 4.0)  # bob's connection still open: 4006
    assert fresh is not None and caplog.records
    for secret in (token, token_b, fresh):
        assert secret not in caplog.text


def test_game_hooks_see_the_drop_the_return_and_the_end() -> None:
    """on_disconnect / on_resume / on_leave, with player.connected as each hook sees it."""
    from gameserver.game import Game, Player

    calls: list[tuple[str, int, bool]] = []

    class Hooks(Game):
        name = "hooks"

        def on_join(self, player: Player) -> None:
            calls.append(("join", player.id, player.connected))

        def on_disconnect(self, player: Player) -> None:
            calls.append(("disconnect", player.id, player.connected))

        def on_resume(self, player: Player) -> None:
            calls.append(("resume", player.id, player.connected))

        def on_leave(self, player: Player) -> None:
            calls.append(("leave", player.id, player.connected))

        def step(self, dt: float) -> None:
            pass

        def snapshot(self, viewer: Player) -> Any:
            return viewer.spectator

    core = make_core()
    core.games.register(Hooks)
    a = Client(core)
    token = welcome_of(a.hello("ada", game="hooks", room="h")).resume
    assert token is not None
    a.session.connection_lost(1.0)
    new, messages = resume(core, token, 2.0)
    token = welcome_of(messages).resume
    assert token is not None
    new.session.connection_lost(3.0)
    room = room_named(core, "h")
    core.seats.expire(room, 3.0 + core.settings.reconnect_grace)
    pid = a.pid
    assert calls == [
        ("join", pid, True),
        ("disconnect", pid, False),
        ("resume", pid, True),
        ("disconnect", pid, False),
        ("leave", pid, False),
    ]
    watcher = Client(core)
    watcher.hello("eve", room="h", spectate=True)  # the room still runs (empty, in its grace)
    room.tick(1, 1 / 30)
    snaps = [m for m in watcher.take() if isinstance(m, Snapshot)]
    assert [s.state for s in snaps] == [True]  # snapshot(viewer) saw viewer.spectator


def test_a_spectating_player_taken_over_leaves_no_spectator_behind() -> None:
    core = make_core()
    player_in(core, "ada")
    eve = Client(core)
    token = welcome_of(eve.hello("eve")).resume
    assert token is not None
    eve.send(Join(room="arena-1", spectate=True))
    new, messages = resume(core, token, 1.0)
    welcome = welcome_of(messages)
    assert welcome.resumed and welcome.player == eve.pid and welcome.room is None
    assert eve.close_code == CloseCode.REPLACED
    assert room_named(core, "arena-1").spectators == {}
    assert new.session.state is State.LOBBY
