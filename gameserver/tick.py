"""Fixed-rate tick schedule from absolute deadlines (sans-I/O: time is an argument).

Tick ``n`` is due at ``epoch + (n + phase) / rate``: deadlines are computed,
never accumulated, so a loop that sleeps until each one cannot drift. All rooms
share one epoch (the server's start), which makes tick numbers server-wide; each
room has its own ``phase`` (a fraction of a tick, see :func:`spread_phase`) so
that a hundred rooms do not all tick, and write their snapshots, in one burst.

Overrun policy: a tick is *overrun* when it finishes after the next tick's
deadline. The schedule then replays at most ``max_catch_up`` late ticks at
once and *skips* any further missed deadlines (counted), resuming on the next
deadline still in the future. With ``max_catch_up=0`` (the default) nothing is
replayed: a slow game slows down for that moment instead of spiralling into
ever longer catch-up bursts. Every step gets the same fixed ``dt``.
"""

from __future__ import annotations

import itertools
import math
from collections import deque


class TickStats:
    """Durations of recent ticks (a bounded window) and lifetime counters."""

    def __init__(self, window: int = 1024) -> None:
        self.ticks = 0
        self.overruns = 0
        self.skipped = 0
        self.max_duration = 0.0
        self.total_duration = 0.0
        self._recent: deque[float] = deque(maxlen=window)
        self._sorted: list[float] = []
        self._sorted_at = -1

    def record(self, duration: float) -> None:
        self.ticks += 1
        self.total_duration += duration
        self.max_duration = max(self.max_duration, duration)
        self._recent.append(duration)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0-100) of the recent window's durations, in seconds.

        Computed from a sorted copy refreshed every 32 ticks: up to 32 ticks stale.
        """
        if not self._recent:
            return 0.0
        # /healthz asks for percentiles of every room; sort a room's window again
        # only after 32 more ticks (about a second), not on every request.
        if self._sorted_at < 0 or self.ticks - self._sorted_at >= 32:
            self._sorted = sorted(self._recent)
            self._sorted_at = self.ticks
        ordered = self._sorted
        index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
        return ordered[index]

    def as_dict(self) -> dict[str, float | int]:
        """Counters and recent percentiles in milliseconds, for /healthz."""
        return {
            "ticks": self.ticks,
            "overruns": self.overruns,
            "skipped": self.skipped,
            "p50_ms": round(self.percentile(50) * 1000, 3),
            "p99_ms": round(self.percentile(99) * 1000, 3),
            "max_ms": round(self.max_duration * 1000, 3),
            "mean_ms": round(self.total_duration / self.ticks * 1000, 3) if self.ticks else 0.0,
        }


class TickSchedule:
    """When the next tick is due, and what happened to the late ones.

    Use: ``deadline = schedule.next_deadline``; wait until then; run the tick;
    ``schedule.tick_done(started, finished)``; repeat.
    """

    def __init__(
        self, rate: int, epoch: float, now: float, max_catch_up: int = 0, phase: float = 0.0
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if not 0.0 <= phase < 1.0:
            raise ValueError("phase must be in [0, 1)")
        self.rate = rate
        self.epoch = epoch
        self.phase = phase
        self.max_catch_up = max_catch_up
        self.stats = TickStats()
        self.next_tick = first_tick(rate, epoch, now, phase)
        self._catch_up_left = max_catch_up

    @property
    def dt(self) -> float:
        """Fixed simulated time per tick, in seconds."""
        return 1.0 / self.rate

    def deadline(self, tick: int) -> float:
        """Absolute time at which ``tick`` is due."""
        return self.epoch + (tick + self.phase) / self.rate

    @property
    def next_deadline(self) -> float:
        return self.deadline(self.next_tick)

    def tick_done(self, started: float, finished: float) -> int:
        """Record a tick that ran from ``started`` to ``finished``; return the tick number run.

        Advances ``next_tick`` by one, or past every missed deadline when the
        tick overran and no catch-up budget is left.
        """
        ran = self.next_tick
        self.stats.record(finished - started)
        self.next_tick = ran + 1
        if finished <= self.next_deadline:
            self._catch_up_left = self.max_catch_up
            return ran
        self.stats.overruns += 1
        if self._catch_up_left > 0:
            self._catch_up_left -= 1
            return ran
        # Skip to the first deadline strictly in the future.
        first_future = current_tick(self.rate, self.epoch, finished, self.phase) + 1
        if first_future > self.next_tick:
            self.stats.skipped += first_future - self.next_tick
            self.next_tick = first_future
        self._catch_up_left = self.max_catch_up
        return ran


def current_tick(rate: int, epoch: float, now: float, phase: float = 0.0) -> int:
    """The tick whose deadline (with ``phase``) most recently passed at ``now``."""
    return max(0, math.floor((now - epoch) * rate - phase))


def first_tick(rate: int, epoch: float, now: float, phase: float = 0.0) -> int:
    """The first tick whose deadline (with ``phase``) is not before ``now``."""
    return max(0, math.ceil((now - epoch) * rate - phase))


def spread_phase(taken: list[float]) -> float:
    """A tick phase for a new room: the middle of the widest gap between ``taken`` phases.

    Phases live on a circle of one tick. The first room gets 0, then 1/2, 3/4,
    1/4, ...; a gap left by a disposed room is filled when it is the widest. Rooms
    spread this way tick one after another through the period instead of all at
    once, so a tick's writes and the CPU they take come in small steady steps.
    """
    if not taken:
        return 0.0
    ordered = sorted(taken)
    best_start, best_width = ordered[-1], ordered[0] + 1.0 - ordered[-1]  # the wrap-around gap
    for low, high in itertools.pairwise(ordered):
        if high - low > best_width:
            best_start, best_width = low, high - low
    return (best_start + best_width / 2) % 1.0
