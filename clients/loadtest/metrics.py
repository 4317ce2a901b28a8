"""Mergeable load-test metrics: HDR histograms (µs) plus counters, per worker process.

Every bot of one worker process records into the same :class:`Metrics`; each
worker ships ``to_wire()`` (encoded histograms, plain dicts) to the parent,
which merges them with :meth:`Metrics.merge`. HDR histograms merge without
losing percentiles: the merged p99 is the p99 of all samples (within the
histogram's 3 significant digits), not an average of per-process p99s.

Latencies are recorded in microseconds, clamped to [1 µs, 1 h]. Amounts per bot
(:data:`AMOUNTS`, e.g. bytes per second) go in histograms of their own, as they are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3

HISTOGRAMS: dict[str, str] = {
    "connect": "TCP + WebSocket handshake",
    "join": "hello sent → welcome with a seat in a room (or join → joined)",
    "join_direct": "the joins above that were not redirected",
    "join_redirected": "the joins above that were redirected: redirect, reconnect, hello, welcome",
    "rtt_server": "RTT the server reports for the bot (snapshot.rtt_us, sampled once per pong)",
    "rtt_bot": "input seq N sent → first snapshot with ack ≥ N (includes up to one tick wait)",
    "interarrival": "time between consecutive snapshots in a room",
    "jitter": "|inter-arrival - 1/snapshot_rate| per snapshot",
    "lateness": "snapshot arrival - (tick / tick_rate) - best such offset seen by that bot",
    "loop_lag": "bot process event-loop lag (oversleep of a 10 ms timer): bots' own overload",
    "resume": "own TCP connection cut (--drop-rate) → welcome with the seat back (resumed)",
}
"""Histogram names and what each measures."""

AMOUNTS: dict[str, str] = {
    "player_bytes_in": "bytes received per second seated, all messages (one sample per bot)",
    "player_snapshot_bytes": "bytes of snapshots received per second seated (one sample per bot)",
}
"""Per-bot amounts (not durations): histogram names and what each holds."""

ERROR_KINDS = ("connect_failures", "close_codes", "server_errors", "exceptions")
"""Categories of counted errors: each maps a kind (e.g. ``http_429``, ``1006``) to a count."""


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def histogram_summary(hist: HdrHistogram) -> dict[str, float | int]:
    """Count, mean and p50/p95/p99/max of a µs histogram, in milliseconds."""
    count = int(hist.get_total_count())
    if count == 0:
        return {"count": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}

    def ms(us: float) -> float:
        return round(us / 1000.0, 3)

    return {
        "count": count,
        "mean": ms(hist.get_mean_value()),
        "p50": ms(hist.get_value_at_percentile(50)),
        "p95": ms(hist.get_value_at_percentile(95)),
        "p99": ms(hist.get_value_at_percentile(99)),
        "max": ms(hist.get_max_value()),
    }


class Metrics:
    """Histograms, counters and error tallies of one worker (or, merged, of a whole run).

    ``recording`` gates what belongs to the measured window (snapshots, RTTs,
    bytes…); connect and join times are recorded whenever they happen.
    """

    def __init__(self) -> None:
        self.hists: dict[str, HdrHistogram] = {
            name: new_histogram() for name in (*HISTOGRAMS, *AMOUNTS)
        }
        self.counters: Counter[str] = Counter()
        self.floats: dict[str, float] = {}
        self.errors: dict[str, Counter[str]] = {kind: Counter() for kind in ERROR_KINDS}
        self.recording = False

    def record(self, name: str, seconds: float) -> None:
        """Record a duration given in seconds into histogram ``name`` (stored in µs)."""
        us = int(seconds * 1_000_000)
        self.hists[name].record_value(min(max(us, LOWEST_US), HIGHEST_US))

    def record_amount(self, name: str, amount: float) -> None:
        """Record a non-negative amount (e.g. bytes per second) into histogram ``name``."""
        self.hists[name].record_value(min(max(round(amount), LOWEST_US), HIGHEST_US))

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] += n

    def add_float(self, name: str, value: float) -> None:
        self.floats[name] = self.floats.get(name, 0.0) + value

    def error(self, kind: str, what: str) -> None:
        self.errors[kind][what] += 1

    # -- shipping between processes ---------------------------------------

    def to_wire(self) -> dict[str, Any]:
        """A picklable/JSON-able form: base64 HDR encodings and plain dicts."""
        return {
            "hists": {name: h.encode().decode("ascii") for name, h in self.hists.items()},
            "counters": dict(self.counters),
            "floats": dict(self.floats),
            "errors": {kind: dict(c) for kind, c in self.errors.items()},
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Metrics:
        metrics = cls()
        metrics.merge_wire(wire)
        return metrics

    def merge_wire(self, wire: Mapping[str, Any]) -> None:
        """Add another worker's ``to_wire()`` into this one."""
        for name, encoded in wire["hists"].items():
            if name not in self.hists:
                self.hists[name] = new_histogram()
            self.hists[name].decode_and_add(encoded.encode("ascii"))
        self.counters.update(wire["counters"])
        for name, value in wire["floats"].items():
            self.add_float(name, value)
        for kind, tally in wire["errors"].items():
            self.errors.setdefault(kind, Counter()).update(tally)

    def merge(self, other: Metrics) -> None:
        for name, hist in other.hists.items():
            if name not in self.hists:
                self.hists[name] = new_histogram()
            self.hists[name].add(hist)
        self.counters.update(other.counters)
        for name, value in other.floats.items():
            self.add_float(name, value)
        for kind, tally in other.errors.items():
            self.errors.setdefault(kind, Counter()).update(tally)

    @classmethod
    def merged(cls, wires: Iterable[Mapping[str, Any]]) -> Metrics:
        total = cls()
        for wire in wires:
            total.merge_wire(wire)
        return total

    def summary(self, name: str) -> dict[str, float | int]:
        return histogram_summary(self.hists[name])

    def amount_summary(self, name: str) -> dict[str, float | int | None]:
        """Count, p50 and mean of an amount histogram, in its own unit (None: no sample)."""
        hist = self.hists[name]
        count = int(hist.get_total_count())
        if count == 0:
            return {"count": 0, "p50": None, "mean": None}
        return {
            "count": count,
            "p50": int(hist.get_value_at_percentile(50)),
            "mean": round(float(hist.get_mean_value()), 1),
        }
