"""Merging metrics across worker processes keeps the percentiles of all samples."""

from __future__ import annotations

import json
import pickle
import random
import time

import pytest

from clients.bots import SNAPSHOT_PREFIX, parse_snapshot_envelope
from clients.loadtest.metrics import HISTOGRAMS, Metrics, new_histogram
from clients.loadtest.report import progress_line
from clients.loadtest.runner import LoadTestConfig, Progress, merge_results
from clients.loadtest.worker import slow_bots
from protocol import Ping, Snapshot, decode_server_message, encode, encode_snapshot, pack_state


def _samples(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-4.0, 1.0) for _ in range(n)]  # seconds, ~18 ms median


def test_two_workers_merge_to_the_percentiles_of_all_samples() -> None:
    a, b = _samples(1, 5000), _samples(2, 3000)
    workers = [Metrics(), Metrics()]
    for metrics, samples in zip(workers, (a, b), strict=True):
        for s in samples:
            metrics.record("rtt_bot", s)
        metrics.count("snapshots", len(samples))
        metrics.add_float("snapshots_expected", len(samples) + 0.5)
        metrics.error("close_codes", "1006")
    # What crosses the process boundary: pickled (the pipe) and JSON-able.
    wires = [pickle.loads(pickle.dumps(w.to_wire())) for w in workers]
    json.dumps(wires)
    merged = merge_results(wires)

    single = new_histogram()
    for s in a + b:
        single.record_value(max(1, int(s * 1_000_000)))
    hist = merged.hists["rtt_bot"]
    assert hist.get_total_count() == len(a) + len(b)
    for p in (50, 90, 95, 99, 99.9, 100):
        assert hist.get_value_at_percentile(p) == single.get_value_at_percentile(p)
    assert merged.summary("rtt_bot") == Metrics.from_wire(_one(a + b)).summary("rtt_bot")
    assert merged.counters["snapshots"] == len(a) + len(b)
    assert merged.floats["snapshots_expected"] == len(a) + len(b) + 1.0
    assert merged.errors["close_codes"]["1006"] == 2


def _one(samples: list[float]) -> dict[str, object]:
    metrics = Metrics()
    for s in samples:
        metrics.record("rtt_bot", s)
    return metrics.to_wire()


def test_empty_histograms_merge_and_summarise() -> None:
    merged = merge_results([Metrics().to_wire(), Metrics().to_wire()])
    assert merged.summary("connect") == {
        "count": 0,
        "mean": 0.0,
        "p50": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "max": 0.0,
    }


def test_per_bot_amounts_merge_to_their_median_and_mean() -> None:
    """Bytes per second, one sample per bot in two workers: p50 and mean of all bots."""
    workers = [Metrics(), Metrics()]
    for metrics, rates in zip(workers, ([9000.0, 9100.4, 20000.0], [300.0, 9050.0]), strict=True):
        for rate in rates:
            metrics.record_amount("player_bytes_in", rate)
    merged = merge_results([w.to_wire() for w in workers])
    summary = merged.amount_summary("player_bytes_in")
    assert summary["count"] == 5
    assert summary["p50"] == pytest.approx(9050, rel=1e-3)  # 3 significant digits
    assert summary["mean"] == pytest.approx((9000 + 9100 + 20000 + 300 + 9050) / 5, rel=1e-3)
    assert merged.amount_summary("player_snapshot_bytes") == {"count": 0, "p50": None, "mean": None}
    assert "player_bytes_in" not in HISTOGRAMS  # amounts are no latency_ms row


def test_worker_specs_partition_the_bots() -> None:
    specs = LoadTestConfig(url="ws://127.0.0.1:1/", bots=11, procs=3).worker_specs()
    assert len(specs) == 3
    indices = [i for spec in specs for i in spec.indices]
    assert sorted(indices) == list(range(11))
    assert LoadTestConfig(url="ws://x/", bots=2, procs=8).worker_specs()[-1].worker_id == 1


def test_slow_bots_are_the_same_in_every_worker() -> None:
    assert slow_bots(200, 0.05, seed=7) == slow_bots(200, 0.05, seed=7)
    assert len(slow_bots(200, 0.05, seed=7)) == 10
    assert slow_bots(10, 0.0, seed=7) == frozenset()


def test_snapshot_fast_path_reads_the_envelope_like_the_full_decoder() -> None:
    state = pack_state({"players": [[1, 2, 3, 4]] * 50, "gems": [[1, 2, 3]] * 12})
    for ack in (None, 0, 77, 2**32 - 1):
        frame = encode_snapshot(
            snapshot_id=9, tick=123456, ack=ack, rtt_us=1500, jitter_us=20, state=state
        )
        assert frame.startswith(SNAPSHOT_PREFIX)
        full = decode_server_message(frame)
        fast = parse_snapshot_envelope(frame)
        assert isinstance(full, Snapshot) and fast is not None
        assert (fast.id, fast.tick, fast.ack, fast.rtt_us, fast.jitter_us, fast.base) == (
            full.id,
            full.tick,
            full.ack,
            full.rtt_us,
            full.jitter_us,
            full.base,
        )
        assert fast.state is None
    assert parse_snapshot_envelope(encode(Ping(5))) is None
    assert parse_snapshot_envelope(SNAPSHOT_PREFIX + b"\xc1") is None


def test_progress_line_starts_at_zero_before_the_start() -> None:
    """The start is set a moment ahead of the first progress line: it shows 0.0 s, not -0.0."""
    progress = Progress(LoadTestConfig(url="ws://127.0.0.1:1/"), time.monotonic() + 5, 0.0, 0.0)
    assert progress_line(progress).startswith("[  0.0 s] starting:")
