"""One task fires every client's timers (pings, timeouts, keepalive).

A task per client, each parked in ``move_on_at``, costs trio a cancel-scope
expiry and a task switch per timer per client; profiling at 500 clients put
that machinery at ~15% of the server's CPU. Here all deadlines sit in one heap
and one task sleeps until the earliest. An owner that moves its deadline
schedules a new entry, and an entry whose deadline is no longer its owner's
current one is stale: skipped when it comes due. An owner that is done sets its
deadline to ``math.inf``, which makes all its entries stale. Stale entries are
purged whenever the heap has doubled since the last purge, so a finished
connection is not kept alive by its old deadlines (connection churn would
otherwise hold every closed client's objects for up to a keepalive interval).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable
from typing import Protocol

import trio

log = logging.getLogger(__name__)


class TimerOwner(Protocol):
    timer_due: float
    """The owner's current deadline; entries with any other deadline are stale."""

    def on_timer_due(self, now: float) -> None:
        """Called once ``timer_due`` has passed; the owner then schedules its next one."""


_MIN_PURGE_SIZE = 64


class TimerWheel:
    """Deadlines of many owners, fired by a single task (:meth:`run`)."""

    def __init__(self, slack: float = 0.0, after_round: Callable[[], None] | None = None) -> None:
        self.slack = slack
        self.after_round = after_round
        """Called after a round that fired anything (the server flushes what it sent)."""
        """Seconds a deadline may be passed before it fires, so that deadlines close
        together fire in one wake-up (pings to many clients are spread over a second)."""
        self._heap: list[tuple[float, int, TimerOwner]] = []
        self._order = itertools.count()
        self._earliest = math.inf
        self._changed = trio.Event()
        self._purge_at = _MIN_PURGE_SIZE
        """Heap length at which stale entries are purged next."""

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, owner: TimerOwner, deadline: float) -> None:
        """Make ``deadline`` the owner's next one (``math.inf``: none)."""
        owner.timer_due = deadline
        if deadline == math.inf:
            return
        heapq.heappush(self._heap, (deadline, next(self._order), owner))
        if len(self._heap) >= self._purge_at:
            self._purge_stale()
        if deadline < self._earliest:
            self._earliest = deadline
            self._changed.set()

    def _purge_stale(self) -> None:
        """Drop entries whose owner has moved on; O(n), run after the heap doubles.

        In place (``fire_due`` may be iterating this list when an owner it calls
        schedules), and ``_earliest`` is left alone: removing entries keeps it a
        valid lower bound, and the entry being scheduled decides the wake-up.
        """
        heap = self._heap
        heap[:] = [entry for entry in heap if entry[2].timer_due == entry[0]]
        heapq.heapify(heap)
        self._purge_at = max(_MIN_PURGE_SIZE, 2 * len(heap))

    def fire_due(self, now: float) -> None:
        """Call every owner whose current deadline has passed.

        Deadlines an owner schedules while being called wait for the next round,
        even if already due, so a confused owner cannot trap this loop.
        """
        heap = self._heap
        due: list[tuple[float, TimerOwner]] = []
        while heap and heap[0][0] <= now:
            deadline, _, owner = heapq.heappop(heap)
            due.append((deadline, owner))
        for deadline, owner in due:
            if owner.timer_due == deadline:
                owner.timer_due = math.inf
                try:
                    owner.on_timer_due(now)
                except Exception:
                    # A bug in one owner must not stop everyone's timers.
                    log.exception("timer owner %r failed", owner)
        self._earliest = heap[0][0] if heap else math.inf
        if due and self.after_round is not None:
            self.after_round()  # the pings of the round leave together

    async def run(self) -> None:
        """Fire timers forever (cancel the task to stop)."""
        while True:
            with trio.move_on_at(self._earliest + self.slack):
                await self._changed.wait()
            self._changed = trio.Event()
            self.fire_due(trio.current_time())
