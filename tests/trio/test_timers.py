"""TimerWheel: one task fires many owners' deadlines, exactly on time, skipping stale ones."""

from __future__ import annotations

import gc
import math
import weakref

import trio
import trio.testing

from gameserver.trio.timers import TimerWheel


class Owner:
    """Records when it fired; optionally reschedules itself every ``period`` seconds."""

    def __init__(self, wheel: TimerWheel, period: float | None = None) -> None:
        self.wheel = wheel
        self.period = period
        self.timer_due = math.inf
        self.fired: list[float] = []

    def on_timer_due(self, now: float) -> None:
        self.fired.append(now)
        if self.period is not None:
            self.wheel.schedule(self, now + self.period)


async def test_owners_fire_at_their_exact_deadlines(autojump_clock: trio.abc.Clock) -> None:
    """Two periodic owners fire on their own grids from one task."""
    wheel = TimerWheel()
    fast, slow = Owner(wheel, 0.25), Owner(wheel, 1.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wheel.run)
        wheel.schedule(fast, 0.25)
        wheel.schedule(slow, 1.0)
        await trio.sleep(2.1)
        nursery.cancel_scope.cancel()
    assert fast.fired == [0.25 * n for n in range(1, 9)]
    assert slow.fired == [1.0, 2.0]


async def test_moving_a_deadline_makes_the_old_entry_stale(autojump_clock: trio.abc.Clock) -> None:
    """Rescheduling later skips the old entry; rescheduling earlier wakes the wheel."""
    wheel = TimerWheel()
    later, earlier = Owner(wheel), Owner(wheel)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wheel.run)
        wheel.schedule(later, 1.0)
        wheel.schedule(earlier, 5.0)
        await trio.testing.wait_all_tasks_blocked()
        wheel.schedule(later, 3.0)  # moved later: nothing at 1.0
        wheel.schedule(earlier, 0.5)  # moved earlier: must wake the sleeping task
        await trio.sleep(6)
        nursery.cancel_scope.cancel()
    assert later.fired == [3.0]
    assert earlier.fired == [0.5]


async def test_cancelled_owner_never_fires(autojump_clock: trio.abc.Clock) -> None:
    """Scheduling math.inf drops an owner's pending deadline."""
    wheel = TimerWheel()
    owner = Owner(wheel)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wheel.run)
        wheel.schedule(owner, 1.0)
        wheel.schedule(owner, math.inf)
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert owner.fired == []


def test_an_owner_rescheduling_into_the_past_cannot_trap_the_loop() -> None:
    """A deadline scheduled during firing waits for the next round, even if already due."""
    wheel = TimerWheel()
    owner = Owner(wheel, period=-1.0)  # always reschedules one second in the past
    wheel.schedule(owner, 1.0)
    wheel.fire_due(1.0)
    assert owner.fired == [1.0]
    wheel.fire_due(1.0)
    assert owner.fired == [1.0, 1.0]


async def test_slack_fires_close_deadlines_in_one_wake_up(autojump_clock: trio.abc.Clock) -> None:
    """With 10 ms of slack, deadlines at 1.000 and 1.004 both fire at 1.010, together."""
    wheel = TimerWheel(slack=0.01)
    first, second, apart = Owner(wheel), Owner(wheel), Owner(wheel)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wheel.run)
        wheel.schedule(first, 1.0)
        wheel.schedule(second, 1.004)
        wheel.schedule(apart, 1.5)
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert first.fired == second.fired == [1.01]
    assert apart.fired == [1.51]


def test_finished_owners_are_let_go_and_the_heap_stays_bounded() -> None:
    """Churn: owners that end (deadline math.inf) are purged long before their old deadlines.

    10,000 short-lived owners each leave an entry 20 s out; with 10 live owners
    rescheduling the whole time, the heap never holds more than twice what is live
    (plus a small floor), and only the few finished since the last purge are still
    referenced.
    """
    wheel = TimerWheel()
    live = [Owner(wheel) for _ in range(10)]
    finished: list[weakref.ref[Owner]] = []
    largest = 0
    for n in range(10_000):
        owner = Owner(wheel)
        wheel.schedule(owner, 20.0 + n)
        wheel.schedule(owner, math.inf)  # the connection ended
        finished.append(weakref.ref(owner))
        del owner
        wheel.schedule(live[n % 10], 1.0 + n)
        largest = max(largest, len(wheel))
    assert largest <= 2 * 64
    gc.collect()
    still_held = [n for n, ref in enumerate(finished) if ref() is not None]
    assert len(still_held) < 64 and all(n >= 10_000 - 64 for n in still_held)
    # The live owners keep their newest deadlines (9991 + i): half are due by 9995.5,
    # each once, however many stale entries they left.
    wheel.fire_due(9995.5)
    assert [len(o.fired) for o in live] == [1] * 5 + [0] * 5


async def test_a_purge_does_not_delay_a_new_earliest_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The entry whose push triggers a purge still wakes the sleeping wheel if it is earliest."""
    wheel = TimerWheel()
    later = [Owner(wheel) for _ in range(63)]
    soon = Owner(wheel)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wheel.run)
        for owner in later:
            wheel.schedule(owner, 100.0)
        await trio.testing.wait_all_tasks_blocked()
        wheel.schedule(soon, 1.0)  # the 64th entry: a purge runs first
        await trio.sleep(2)
        assert soon.fired == [1.0]
        nursery.cancel_scope.cancel()
