"""What a load test's bots are told: :class:`BotSettings` (shared by all bots of a run),
:class:`BotPlan` (one bot's script: when to start, churn, freeze, drop) and
:class:`Timeline` (the run's measured window, in the process's trio clock).

Plain frozen dataclasses: the load tester's runner builds them and its worker
processes hand them to :class:`clients.bots.Bot`.
"""

from __future__ import annotations

from dataclasses import dataclass

STOP_MARGIN = 0.5
"""Seconds between the end of the measured window and the bots' close."""


@dataclass(frozen=True, slots=True)
class BotSettings:
    """What all bots of a run share."""

    url: str
    game: str = "arena"
    input_rate: float = 10.0
    chat_interval: float = 20.0
    """Mean seconds between a bot's chat lines; 0: never chat."""
    open_timeout: float = 10.0
    max_attempts: int = 3
    """Consecutive failed connection attempts before a bot gives up."""
    fast_decode: bool = True
    slow_rcvbuf: int = 0
    """SO_RCVBUF for slow bots (0: the system default)."""
    lean: bool = False
    """Count snapshots without decoding them or recording their histograms (see clients.bots)."""
    deltas: bool = True
    """Ask for delta snapshots (``hello.deltas``) and acknowledge every snapshot."""
    ack_every_snapshot: bool = True
    """With deltas: False acknowledges in inputs only (fewer messages, bigger patches)."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """The run's phases, in this process's trio clock."""

    window_start: float
    window_end: float

    @property
    def stop_at(self) -> float:
        """When bots close: a moment after the window, so the server is sampled with all in."""
        return self.window_end + STOP_MARGIN

    def overlap(self, start: float, end: float) -> float:
        """Seconds of [start, end] inside the measured window."""
        return max(0.0, min(end, self.window_end) - max(start, self.window_start))


@dataclass(frozen=True, slots=True)
class BotPlan:
    """One bot's script."""

    index: int
    start_at: float
    room: str | None = None
    churn_at: float | None = None
    """When to leave and rejoin once (None: never)."""
    churn_reconnect: bool = False
    """Rejoin by closing and reconnecting instead of leave + join."""
    slow_at: float | None = None
    """When to freeze: stop reading and sending (None: never)."""
    drops: tuple[float, ...] = ()
    """When to cut the connection (a TCP reset) and resume the seat."""

    @property
    def name(self) -> str:
        return f"bot{self.index}"
