"""run_room under trio's MockClock: deadlines, overruns and skips, crashes, disposal (times exact
but for float rounding where the epoch is not 0)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from gameserver.core import ServerCore
from gameserver.game import Game, GameRegistry, Player, RoomContext
from gameserver.room import Room
from gameserver.settings import Settings
from gameserver.trio.ticker import run_room
from protocol import CloseCode
from tests.helpers import RecordingMember


class Clockwork(Game):
    """Records the trio time and dt of every step; ``on_step`` can cancel, jump or raise."""

    name = "clockwork"

    def __init__(self, ctx: RoomContext) -> None:
        super().__init__(ctx)
        self.times: list[float] = []
        self.dts: list[float] = []
        self.on_step: Callable[[int], None] = lambda n: None

    def step(self, dt: float) -> None:
        self.times.append(trio.current_time())
        self.dts.append(dt)
        self.on_step(len(self.times))

    def snapshot(self, viewer: Player) -> Any:
        return len(self.times)


def make_core(*, started_a_tick_ago: bool = False, **settings: Any) -> ServerCore:
    """A core whose epoch is 0, or one tick before 0: a room opened at 0 then ticks at 0 (as
    tick 1), where a room opened on the epoch itself first ticks one tick later (tick 0 is
    the tick its join events carry)."""
    games = GameRegistry()
    games.register(Clockwork)
    settings.setdefault("snapshot_rate", settings.get("tick_rate", 30))
    epoch = -1.0 / settings.get("tick_rate", 30) if started_a_tick_ago else 0.0
    return ServerCore(Settings(**settings), games, epoch=epoch)


def open_room(
    core: ServerCore, *member_ids: int, name: str = "room"
) -> tuple[Room, Clockwork, list[RecordingMember]]:
    """Create a room through the registry (as a join would) and seat recording members."""
    room = core.rooms.find_room("clockwork", name, trio.current_time())
    members = []
    for pid in member_ids:
        member = RecordingMember(pid, f"p{pid}", room)
        room.add(member)
        members.append(member)
    assert isinstance(room.game, Clockwork)
    return room, room.game, members


async def test_ten_thousand_ticks_end_exactly_on_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """10,000 ticks at 30 Hz from just after the epoch end at exactly epoch + 10000/30."""
    core = make_core(tick_rate=30)
    autojump_clock.jump(0.001)  # the room opens between grid points: its first tick is tick 1
    room, game, (member,) = open_room(core, 1)
    with trio.CancelScope() as scope:
        game.on_step = lambda n: scope.cancel() if n == 10_000 else None
        await run_room(core, room)
    assert len(game.times) == 10_000
    assert trio.current_time() == 10_000 / 30
    assert game.times[-1] == 10_000 / 30
    assert game.times[:3] == [1 / 30, 2 / 30, 3 / 30]
    assert all(game.times[n - 1] == n / 30 for n in range(1, 10_001, 997))
    assert set(game.dts) == {1 / 30}
    assert [t for t, _, _ in member.snapshots[:3]] == [1, 2, 3]
    assert member.snapshots[-1][0] == 10_000
    stats = room.tick_stats
    assert stats is not None
    assert (stats.ticks, stats.overruns, stats.skipped) == (10_000, 0, 0)
    assert core.rooms.get(room.name) is None  # disposed when its ticker stopped


async def test_one_second_at_30_hz_is_thirty_ticks(autojump_clock: trio.testing.MockClock) -> None:
    """Under move_on_after(0.99) a 30 Hz room started on the epoch steps 30 times at n/30."""
    core = make_core(started_a_tick_ago=True, tick_rate=30)
    room, game, _ = open_room(core, 1)
    with trio.move_on_after(0.99):
        await run_room(core, room)
    assert game.times == pytest.approx([n / 30 for n in range(30)])


async def test_slow_step_skips_ticks(autojump_clock: trio.testing.MockClock) -> None:
    """A 0.25 s step at 10 Hz: ticks land at 0, .1, .2, .5, .6; one overrun, two skipped."""
    core = make_core(started_a_tick_ago=True, tick_rate=10)
    room, game, (member,) = open_room(core, 1)

    def slow_third(n: int) -> None:
        if n == 3:
            autojump_clock.jump(0.25)

    game.on_step = slow_third
    with trio.move_on_after(0.65):
        await run_room(core, room)
    assert game.times == pytest.approx([0.0, 0.1, 0.2, 0.5, 0.6])
    assert [t for t, _, _ in member.snapshots] == [1, 2, 3, 6, 7]
    stats = room.tick_stats
    assert stats is not None
    assert (stats.ticks, stats.overruns, stats.skipped) == (5, 1, 2)
    assert stats.max_duration == pytest.approx(0.25)


async def test_catch_up_replays_a_late_tick(autojump_clock: trio.testing.MockClock) -> None:
    """With max_catch_up_ticks=1 the late tick 3 runs at once (t=.45), then 4 is skipped."""
    core = make_core(started_a_tick_ago=True, tick_rate=10, max_catch_up_ticks=1)
    room, game, (member,) = open_room(core, 1)
    game.on_step = lambda n: autojump_clock.jump(0.25) if n == 3 else None
    with trio.move_on_after(0.65):
        await run_room(core, room)
    assert game.times == pytest.approx([0.0, 0.1, 0.2, 0.45, 0.5, 0.6])
    assert [t for t, _, _ in member.snapshots] == [1, 2, 3, 4, 6, 7]
    assert room.tick_stats is not None and room.tick_stats.skipped == 1


async def test_step_raising_fails_and_disposes_the_room(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A crash in step: members kicked 1011, room disposed, the ticker returns without raising."""
    core = make_core(started_a_tick_ago=True, tick_rate=10)
    room, game, members = open_room(core, 1, 2)

    def crash(n: int) -> None:
        if n == 4:
            raise RuntimeError("game bug in step")

    game.on_step = crash
    with trio.fail_after(10):
        await run_room(core, room)
    assert trio.current_time() == pytest.approx(0.3)
    assert room.closed
    for member in members:
        assert member.kicks == [(CloseCode.INTERNAL_ERROR, "room closed after a server error")]
    assert core.rooms.get(room.name) is None
    assert len(core.rooms) == 0


async def test_snapshot_raising_fails_the_room(autojump_clock: trio.testing.MockClock) -> None:
    """A crash in snapshot() ends the room the same way as one in step()."""
    core = make_core(tick_rate=10)
    room, game, (member,) = open_room(core, 1)

    def broken_snapshot(viewer: Player) -> Any:
        raise ValueError("cannot encode")

    game.snapshot = broken_snapshot  # type: ignore[method-assign]
    with trio.fail_after(10):
        await run_room(core, room)
    assert member.kicks == [(CloseCode.INTERNAL_ERROR, "room closed after a server error")]
    assert core.rooms.get(room.name) is None


async def test_empty_room_disposed_after_grace(autojump_clock: trio.testing.MockClock) -> None:
    """A room nobody sits in is disposed at the first tick empty_room_grace after creation."""
    core = make_core(started_a_tick_ago=True, tick_rate=10, empty_room_grace=2.0)
    room, game, _ = open_room(core)
    with trio.fail_after(100):
        await run_room(core, room)
    assert trio.current_time() == 2.0
    assert len(game.times) == 20  # ticks 0..19 ran; tick 20 found it disposable
    assert core.rooms.get(room.name) is None


async def test_room_emptied_later_is_disposed_grace_after_the_last_leave(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The grace counts from when the last player left, not from creation."""
    core = make_core(started_a_tick_ago=True, tick_rate=10, empty_room_grace=2.0)
    room, game, _ = open_room(core, 1)

    def leave_at_tick_30(n: int) -> None:
        if n == 31:  # tick 30, t = 3.0
            room.remove(1, trio.current_time())

    game.on_step = leave_at_tick_30
    with trio.fail_after(100):
        await run_room(core, room)
    assert trio.current_time() == 5.0
    assert core.rooms.get(room.name) is None


async def test_rooms_tick_on_the_shared_grid(autojump_clock: trio.testing.MockClock) -> None:
    """Unstaggered, two rooms created at different times tick on the same server-wide
    deadlines and numbers."""
    core = make_core(tick_rate=10, stagger_room_ticks=False)
    first, game1, (m1,) = open_room(core, 1, name="first")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_room, core, first)
        await trio.sleep(0.33)
        second, game2, (m2,) = open_room(core, 2, name="second")
        nursery.start_soon(run_room, core, second)
        await trio.sleep(0.3)
        nursery.cancel_scope.cancel()
    assert game2.times == [0.4, 0.5, 0.6]
    assert game1.times[-3:] == [0.4, 0.5, 0.6]
    assert [t for t, _, _ in m2.snapshots] == [t for t, _, _ in m1.snapshots][-3:] == [4, 5, 6]


async def test_staggered_rooms_tick_in_turn_with_server_wide_numbers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """By default the second room ticks half a tick after the first (the third three
    quarters after it), so rooms take turns instead of ticking in one burst; tick n of every room
    still comes after grid point n and before n + 1."""
    core = make_core(tick_rate=10)
    first, game1, (m1,) = open_room(core, 1, name="first")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_room, core, first)
        await trio.sleep(0.33)
        second, game2, (m2,) = open_room(core, 2, name="second")
        third, game3, (m3,) = open_room(core, 3, name="third")
        assert (first.tick_phase, second.tick_phase, third.tick_phase) == (0.0, 0.5, 0.75)
        assert second.tick_no == 2  # tick 3 of this room (due 0.35) is still to come
        nursery.start_soon(run_room, core, second)
        nursery.start_soon(run_room, core, third)
        await trio.sleep(0.3)
        # Disposing the 0.5 room leaves 0 -> 0.75 the widest gap: the next room goes mid-way.
        core.rooms.dispose(second)
        assert open_room(core, name="fourth")[0].tick_phase == 0.375
        nursery.cancel_scope.cancel()
    assert game1.times[-3:] == [0.4, 0.5, 0.6]
    assert game2.times == [0.35, 0.45, 0.55]
    assert game3.times == [0.375, 0.475, 0.575]
    assert [t for t, _, _ in m1.snapshots][-3:] == [4, 5, 6]
    assert [t for t, _, _ in m2.snapshots] == [t for t, _, _ in m3.snapshots] == [3, 4, 5]


async def test_clients_are_read_just_before_every_tick(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """read_now runs right before each step, at the tick's own time: inputs read there are
    applied by that tick."""
    core = make_core(tick_rate=10)
    room, game, _ = open_room(core, 1)
    events: list[tuple[str, float]] = []
    game.on_step = lambda n: events.append(("step", trio.current_time()))
    with trio.move_on_after(0.35):
        await run_room(core, room, lambda: events.append(("read", trio.current_time())))
    assert events == [
        ("read", 0.1), ("step", 0.1), ("read", 0.2), ("step", 0.2), ("read", 0.3), ("step", 0.3)
    ]  # fmt: skip


async def test_a_room_first_ticks_after_the_tick_its_join_events_carry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A snapshot reflects an event iff snapshot.tick > event.tick (PROTOCOL.md 5.7): a room
    opened on a tick's deadline carries the tick before in its events and runs that tick
    now; one opened on the epoch, where no tick came before, first ticks one tick later."""
    core = make_core(tick_rate=10)
    on_epoch, game, (member,) = open_room(core, 1, name="on-epoch")
    assert on_epoch.tick_no == 0
    with trio.move_on_after(0.15):
        await run_room(core, on_epoch)
    assert (game.times, [t for t, _, _ in member.snapshots]) == ([0.1], [1])
    await trio.sleep_until(0.3)
    on_grid, game, (member,) = open_room(core, 2, name="on-grid")
    assert on_grid.tick_phase == 0.0  # the first room is gone: a phase of 0 again
    assert on_grid.tick_no == 2
    with trio.move_on_after(0.05):
        await run_room(core, on_grid)
    assert (game.times, [t for t, _, _ in member.snapshots]) == ([0.3], [3])
