"""When the supervisor restarts a dead worker, sans-I/O: backoff and exit-code policy.

A worker that dies is restarted after 0.5 s, then 1 s, 2 s, … up to 30 s while
it keeps dying; once a worker has lived 60 s its next death starts again at
0.5 s. A worker exiting with :data:`CONFIG_ERROR` (2: bad configuration, such
as an unreachable Redis) would fail again at once, so the supervisor stops
instead of restarting it. Driven by the supervisor with ``trio.current_time()``
and from tests with plain numbers.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

CONFIG_ERROR = 2
"""The exit code of a process that cannot start as configured (argparse's too)."""


@dataclass(frozen=True, slots=True)
class Restart:
    """Start the worker again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop every worker and exit with ``code``: restarting would not help."""

    code: int


@dataclass
class RestartBackoff:
    """One worker slot's restart delays: doubling while it keeps dying, reset once it lived."""

    initial: float = 0.5
    maximum: float = 30.0
    stable_after: float = 60.0
    """A worker that lived this long counts as healthy: its next restart waits ``initial``."""
    _next: float = 0.0
    _started: float = 0.0

    def __post_init__(self) -> None:
        self._next = self.initial

    def started(self, now: float) -> None:
        """The worker process was started at ``now``."""
        self._started = now

    def exited(self, now: float, returncode: int, *, ever_ready: bool = False) -> Restart | Stop:
        """The worker exited at ``now`` with ``returncode`` (negative: killed by that signal).

        ``ever_ready``: this slot's worker has listened before. Then a configuration
        error is not the configuration (it worked) but the moment, e.g. Redis away
        while a crashed worker restarts: restart with backoff instead of stopping
        the healthy workers.
        """
        if returncode == CONFIG_ERROR and not ever_ready:
            return Stop(CONFIG_ERROR)
        if now - self._started >= self.stable_after:
            self._next = self.initial
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return Restart(delay)


def describe_exit(returncode: int) -> str:
    """``exit code 1`` or ``signal SIGKILL``, for the log line of a worker's death."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"
