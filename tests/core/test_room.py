"""Room: snapshot cadence, one encode per audience, game failures, leaving, disposal."""

from __future__ import annotations

import random
from collections.abc import Hashable
from typing import Any

import pytest

from gameserver.game import Game, Player, RoomContext
from gameserver.room import Room
from gameserver.settings import Settings
from protocol import CloseCode, ErrorCode, Event, RoomInfo, pack_state
from tests.helpers import RecordingMember, unpack


class Teams(Game):
    """Players with even ids are team 0, odd ids team 1; counts snapshot() calls."""

    name = "teams"

    def __init__(self, ctx: RoomContext) -> None:
        super().__init__(ctx)
        self.snapshot_calls: list[int] = []
        self.inputs: list[tuple[int, Any]] = []
        self.steps = 0
        self.left: list[int] = []
        self.explode_on: Any = "boom"
        self.fail_step = False
        self.fail_leave = False

    def info(self) -> Any:
        return {"teams": 2}

    def on_input(self, player: Player, command: Any) -> None:
        if command == self.explode_on:
            raise RuntimeError("game bug on input")
        self.inputs.append((player.id, command))

    def on_leave(self, player: Player) -> None:
        if self.fail_leave:
            raise RuntimeError("game bug on leave")
        self.left.append(player.id)

    def step(self, dt: float) -> None:
        if self.fail_step:
            raise RuntimeError("game bug in step")
        self.steps += 1

    def view_key(self, viewer: Player) -> Hashable:
        return viewer.id % 2

    def snapshot(self, viewer: Player) -> Any:
        self.snapshot_calls.append(viewer.id)
        return {"team": viewer.id % 2, "steps": self.steps}


def make_room(**settings: Any) -> tuple[Room, Teams]:
    s = Settings(**settings)
    game = Teams(RoomContext("r", s.tick_rate, 8, random.Random(0)))
    return Room("r", "teams", game, max_players=8, settings=s, now=0.0), game


def seat(room: Room, *ids: int) -> list[RecordingMember]:
    members = []
    for pid in ids:
        m = RecordingMember(pid, f"p{pid}", room)
        room.add(m)
        members.append(m)
    return members


@pytest.mark.parametrize(
    ("tick_rate", "snapshot_rate", "first_60"),
    [
        (30, 30, list(range(60))),
        (30, 10, list(range(0, 60, 3))),
        (30, 20, [t for t in range(60) if t % 3 != 1]),
    ],
)
def test_snapshot_due(tick_rate: int, snapshot_rate: int, first_60: list[int]) -> None:
    """snapshot_due picks snapshot_rate evenly spread ticks out of every tick_rate ticks."""
    room, _ = make_room(tick_rate=tick_rate, snapshot_rate=snapshot_rate)
    due = [t for t in range(60) if room.snapshot_due(t)]
    assert due == first_60
    assert sum(room.snapshot_due(t) for t in range(3000, 3000 + tick_rate)) == snapshot_rate


def test_snapshots_sent_only_on_due_ticks() -> None:
    """At 30/10 a member gets a snapshot on ticks 0, 3, 6 only, but the game steps every tick."""
    room, game = make_room(tick_rate=30, snapshot_rate=10)
    (m,) = seat(room, 1)
    for t in range(7):
        room.tick(t, 1 / 30)
    assert [tick for tick, _, _ in m.snapshots] == [0, 3, 6]
    assert game.steps == 7


def test_state_encoded_once_per_view_key() -> None:
    """Four players in two teams: snapshot() runs twice a tick, teammates share the bytes."""
    room, game = make_room()
    members = seat(room, 1, 2, 3, 4)
    room.tick(0, 1 / 30)
    assert len(game.snapshot_calls) == 2
    states = {m.player.id: m.snapshots[-1][2] for m in members}
    assert states[1] is states[3]
    assert states[2] is states[4]
    assert states[1] != states[2]
    assert unpack(states[1]) == {"team": 1, "steps": 1}
    assert unpack(states[2]) == {"team": 0, "steps": 1}
    assert states[1] == pack_state({"team": 1, "steps": 1})


def test_add_returns_room_info_and_announce_tells_everyone() -> None:
    """add() returns the roster with the newcomer; announce_join reaches the newcomer too."""
    room, _ = make_room()
    (a,) = seat(room, 1)
    b = RecordingMember(2, "bea", room)
    info = room.add(b)
    assert isinstance(info, RoomInfo)
    assert [p.id for p in info.players] == [1, 2]
    assert info.info == {"teams": 2}
    room.announce_join(b.player)
    expected = Event("join", 2, "bea", tick=0)
    assert a.messages() == [expected]
    assert b.messages() == [expected]
    assert room.full is False


def test_inputs_applied_in_order_and_acked() -> None:
    """Queued inputs are applied at the next tick in seq order; the snapshot ack is the last."""
    room, game = make_room()
    (m,) = seat(room, 1)
    for seq, cmd in ((1, "a"), (2, "b"), (7, "c")):
        assert room.queue_input(1, seq, cmd) is None
    assert game.inputs == []
    room.tick(0, 1 / 30)
    assert game.inputs == [(1, "a"), (1, "b"), (1, "c")]
    assert m.snapshots[-1][:2] == (0, 7)
    room.tick(1, 1 / 30)
    assert m.snapshots[-1][:2] == (1, 7)  # no new input: same ack


def test_ack_is_none_before_any_input() -> None:
    """A player who sent no input gets ack None."""
    room, _ = make_room()
    (m,) = seat(room, 1)
    room.tick(0, 1 / 30)
    assert m.snapshots == [(0, None, m.snapshots[0][2])]


def test_queue_input_rules() -> None:
    """Stale, duplicate or far-jumping seqs are ignored and counted; a full queue is refused."""
    room, _ = make_room(input_queue_depth=3, max_input_seq_gap=10)
    seat(room, 1)
    assert room.queue_input(1, 5, "x") is None
    assert room.queue_input(1, 5, "dup") is None
    assert room.queue_input(1, 4, "old") is None
    assert room.queue_input(1, 16, "far") is None
    assert room.seats[1].ignored_inputs == 3
    assert room.queue_input(1, 15, "edge") is None  # exactly max gap
    assert room.queue_input(1, 16, "y") is None
    assert room.queue_input(1, 17, "z") == ErrorCode.INPUT_QUEUE_FULL
    assert [seq for seq, _, _ in room.seats[1].inputs] == [5, 15, 16]
    assert room.queue_input(99, 1, "x") == ErrorCode.NOT_IN_ROOM


def test_on_input_raising_kicks_only_that_player() -> None:
    """A crash in on_input closes that player 1011; the others keep getting snapshots."""
    room, game = make_room()
    a, b = seat(room, 1, 2)
    room.queue_input(1, 1, "boom")
    room.queue_input(1, 2, "never")
    room.queue_input(2, 1, "fine")
    room.tick(0, 1 / 30)
    assert a.kicks == [(CloseCode.INTERNAL_ERROR, "game error on your input")]
    assert b.kicks == []
    assert 1 not in room.seats
    assert game.inputs == [(2, "fine")]
    assert not room.closed
    assert [t for t, _, _ in b.snapshots] == [0]
    assert a.snapshots == []
    assert Event("leave", 1, "p1", tick=0) in b.messages()
    room.tick(1, 1 / 30)
    assert [t for t, _, _ in b.snapshots] == [0, 1]


def test_step_raising_propagates() -> None:
    """An exception from step() propagates out of tick() for the ticker to fail the room."""
    room, game = make_room()
    seat(room, 1)
    game.fail_step = True
    with pytest.raises(RuntimeError, match="game bug in step"):
        room.tick(0, 1 / 30)


def test_fail_kicks_everyone_1011() -> None:
    """room.fail closes every member 1011, empties the room and marks it disposable."""
    room, game = make_room()
    a, b = seat(room, 1, 2)
    room.fail("test")
    assert a.kicks == b.kicks == [(CloseCode.INTERNAL_ERROR, "room closed after a server error")]
    assert room.closed
    assert room.seats == {}
    assert game.left == []  # a failed room does not call back into the game
    assert a.messages() == b.messages() == []  # no leave events from a dead room
    assert room.disposable(0.0, grace=1e9)
    room.fail("again")
    assert len(a.kicks) == 1


def test_on_leave_raising_fails_the_room() -> None:
    """A crash in on_leave ends the room: the remaining members are closed 1011."""
    room, game = make_room()
    _, b = seat(room, 1, 2)
    game.fail_leave = True
    room.remove(1, 0.0)
    assert room.closed
    assert b.kicks == [(CloseCode.INTERNAL_ERROR, "room closed after a server error")]


def test_remove_announces_and_calls_on_leave() -> None:
    """remove() frees the seat, calls on_leave and tells the others, not the leaver."""
    room, game = make_room()
    a, b = seat(room, 1, 2)
    room.tick_no = 42
    room.remove(1, 5.0)
    assert 1 not in room.seats
    assert game.left == [1]
    assert b.messages() == [Event("leave", 1, "p1", tick=42)]
    assert a.messages() == []
    room.remove(1, 6.0)  # not seated: nothing happens
    assert game.left == [1]


def test_disposable_after_grace() -> None:
    """An empty room is disposable grace seconds after it emptied, never while occupied."""
    room, _ = make_room()
    assert not room.disposable(29.9, grace=30.0)
    assert room.disposable(30.0, grace=30.0)
    seat(room, 1)
    assert not room.disposable(1000.0, grace=30.0)
    room.remove(1, 100.0)
    assert room.empty_since == 100.0
    assert not room.disposable(129.0, grace=30.0)
    assert room.disposable(130.0, grace=30.0)


def test_no_snapshot_work_in_an_empty_room() -> None:
    """An empty room steps the game but never builds a snapshot."""
    room, game = make_room()
    room.tick(0, 1 / 30)
    assert game.steps == 1
    assert game.snapshot_calls == []


def test_full_and_stats() -> None:
    """full is true at max_players; stats() reports players and the last tick."""
    s = Settings()
    game = Teams(RoomContext("r", 30, 2, random.Random(0)))
    room = Room("r", "teams", game, max_players=2, settings=s, now=0.0)
    seat(room, 1, 2)
    assert room.full
    room.tick(9, 1 / 30)
    stats = room.stats()
    assert (stats["players"], stats["max_players"], stats["tick"]) == (2, 2, 9)
    assert stats["tick_phase"] == 0.0  # the registry sets it; a bare room ticks on the grid
    assert stats["tick_stats"] is None
