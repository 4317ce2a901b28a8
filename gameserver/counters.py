"""Server-wide traffic totals in plain ints, for ``/metrics`` (sans-I/O, no dependencies).

The hot paths (a snapshot to every player every tick, every client message)
count here with a dict or list increment; prometheus-client's own counters
cost a lock and several calls each. ``gameserver.metrics`` reads these
totals when ``/metrics`` is scraped. They belong to the server, not to a
client or a room, so they survive both. Label values are bounded: message
types and error codes are the protocol's, close codes the ones this server
uses (anything else a client sends is ``other``), HTTP statuses a handful.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from protocol import CloseCode, ErrorCode

_SNAPSHOT_HEAD = b"\xa1t\xa8snapshot"
"""What follows the map header in every snapshot frame ("t" is its first key)."""

TICK_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25)
RTT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)
JITTER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)
SNAPSHOT_BUCKETS = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)

KNOWN_CLOSE_CODES = frozenset(int(c) for c in CloseCode) | {1000, 1005, 1006}
KNOWN_ERROR_CODES = frozenset(c.value for c in ErrorCode)
_OUT_TYPES = frozenset({"welcome", "joined", "left", "snapshot", "event", "ping", "error"})


class Buckets:
    """A histogram with fixed upper bounds (``le``, inclusive), counted in plain ints."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        """One count per bound, then one for +Inf (not cumulative)."""
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, cumulative count) pairs ending with +Inf, as Prometheus exposes them."""
        pairs: list[tuple[str, int]] = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            pairs.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return pairs


def frame_type(frame: bytes) -> str:
    """The ``t`` of a frame this server encoded (always its first key), or ``other``."""
    if len(frame) > 3 and frame[1:3] == b"\xa1t" and 0xA0 <= frame[3] <= 0xBF:
        end = 4 + (frame[3] & 0x1F)
        kind = frame[4:end].decode("ascii", "replace")
        if kind in _OUT_TYPES:
            return kind
    return "other"


def _add(table: dict[str, int], key: str, amount: int = 1) -> None:
    table[key] = table.get(key, 0) + amount


class Counters:
    """Totals since the server started. Every method is a few integer operations."""

    def __init__(self) -> None:
        self.connections_opened = 0
        self.connections_closed: dict[tuple[str, str], int] = {}
        """(close code, who began the close: client or server) → connections."""
        self.messages_in: dict[str, int] = {}
        self.bytes_in: dict[str, int] = {}
        self.messages_out: dict[str, int] = {}
        self.bytes_out: dict[str, int] = {}
        self.snapshot_sizes = Buckets(SNAPSHOT_BUCKETS)
        """Every snapshot frame sent (also the snapshot row of messages and bytes out)."""
        self.errors_sent: dict[str, int] = {}
        self.handshake_refusals: dict[int, int] = {}
        self.handshakes_dropped: dict[str, int] = {}
        """Connections dropped before any response: ``pending_cap``, ``timeout``."""
        self.evicted = 0
        self.inputs_ignored_retired = 0
        """Inputs ignored by rooms since disposed (live rooms hold their own count)."""
        self.rtt = Buckets(RTT_BUCKETS)
        self.jitter = Buckets(JITTER_BUCKETS)
        self.tick_durations: dict[str, Buckets] = {}
        self.snapshots_built = {"full": 0, "delta": 0}
        """Snapshots put in clients' slots, by kind (some are replaced before sending)."""

    # -- messages --------------------------------------------------------------

    def message_in(self, kind: str, size: int) -> None:
        """A client message: its type (``undecodable``, ``dropped`` before decoding) and size."""
        self.messages_in[kind] = self.messages_in.get(kind, 0) + 1
        self.bytes_in[kind] = self.bytes_in.get(kind, 0) + size

    def frame_out(self, frame: bytes) -> None:
        """A frame written to a client's socket."""
        if frame.startswith(_SNAPSHOT_HEAD, 1):
            self.snapshot_sizes.observe(len(frame))  # the hot path: one bisect
            return
        kind = frame_type(frame)
        self.messages_out[kind] = self.messages_out.get(kind, 0) + 1
        self.bytes_out[kind] = self.bytes_out.get(kind, 0) + len(frame)

    def snapshot_built(self, delta: bool) -> None:
        self.snapshots_built["delta" if delta else "full"] += 1

    def error_sent(self, code: str) -> None:
        _add(self.errors_sent, code if code in KNOWN_ERROR_CODES else "other")

    def pong(self, rtt: float, jitter: float) -> None:
        self.rtt.observe(rtt)
        self.jitter.observe(jitter)

    # -- connections and rooms -----------------------------------------------------

    def refused(self, status: int) -> None:
        """A WebSocket upgrade answered with an HTTP error instead of 101."""
        self.handshake_refusals[status] = self.handshake_refusals.get(status, 0) + 1

    def dropped(self, reason: str) -> None:
        """A TCP connection dropped in its handshake, without an HTTP response."""
        _add(self.handshakes_dropped, reason)

    def opened(self) -> None:
        self.connections_opened += 1

    def closed(self, code: int, closed_by: str, evicted: bool) -> None:
        label = str(code) if code in KNOWN_CLOSE_CODES else "other"
        key = (label, closed_by)
        self.connections_closed[key] = self.connections_closed.get(key, 0) + 1
        if evicted:
            self.evicted += 1

    def tick(self, game: str, duration: float) -> None:
        buckets = self.tick_durations.get(game)
        if buckets is None:
            buckets = self.tick_durations[game] = Buckets(TICK_BUCKETS)
        buckets.observe(duration)

    def room_retired(self, inputs_ignored: int) -> None:
        self.inputs_ignored_retired += inputs_ignored
