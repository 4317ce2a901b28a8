"""The load tester's server-side figures, computed from two synthetic samples."""

from __future__ import annotations

import io
import json
import urllib.request
from typing import Any

import pytest

from clients.loadtest.server import ServerSample, fetch_health, server_report


def _health(user: float, system: float, ticks: int, overruns: int) -> dict[str, Any]:
    return {
        "pid": 42,
        "players": 100,
        "connections": 100,
        "rooms": 2,
        "tick_rate": 30,
        "cpu_s": {"user": user, "system": system},
        "ticks": {"total": ticks, "overruns": overruns, "skipped": 0, "p99_ms": 3.3},
    }


def test_cpu_is_split_into_user_and_kernel_per_client_tick() -> None:
    before = ServerSample(10.0, _health(5.0, 1.0, 600, 1), None, (0.0, 0.0))
    after = ServerSample(20.0, _health(8.0, 2.5, 1200, 3), None, (0.0, 0.0))
    report = server_report(before, after)
    assert report is not None
    # 4.5 s of CPU over 10 s for 100 players at 30 Hz: 30,000 client·ticks.
    assert report["cpu_s"] == pytest.approx(4.5)
    assert report["cpu_system_s"] == pytest.approx(1.5)
    assert report["cpu_pct_of_core"] == pytest.approx(45.0)
    assert report["us_per_client_tick"] == pytest.approx(150.0)
    assert report["us_per_client_tick_kernel"] == pytest.approx(50.0)
    assert report["room_ticks"] == 600 and report["ticks_overrun"] == 2
    assert report["tick_p99_pct_of_budget"] == pytest.approx(9.9)


def test_a_pid_sample_wins_over_healthz_cpu() -> None:
    before = ServerSample(0.0, _health(100.0, 100.0, 0, 0), (1.0, 0.5), (0.0, 0.0))
    after = ServerSample(2.0, _health(100.0, 100.0, 60, 0), (1.5, 0.7), (0.0, 0.0))
    report = server_report(before, after)
    assert report is not None and report["cpu_source"] == "pid"
    assert report["cpu_s"] == pytest.approx(0.7)
    assert report["cpu_system_s"] == pytest.approx(0.2)


def test_delta_encodes_per_snapshot_tick_come_from_the_rooms() -> None:
    """Patches computed in the window over snapshot ticks, summed over /healthz's rooms."""

    def rooms(*counts: tuple[int, int]) -> dict[str, Any]:
        health = _health(1.0, 1.0, 0, 0)
        health["room_list"] = [
            {"name": f"r{i}", "delta_encodes": e, "snapshot_ticks": t}
            for i, (e, t) in enumerate(counts)
        ]
        return health

    before = ServerSample(0.0, rooms((100, 50), (0, 50)), None, (0.0, 0.0))
    after = ServerSample(10.0, rooms((400, 350), (150, 350)), None, (0.0, 0.0))
    report = server_report(before, after)
    assert report is not None
    assert report["delta_encodes"] == 450 and report["snapshot_ticks"] == 600
    assert report["delta_encodes_per_snapshot_tick"] == 0.75
    # A server without those counters (the baseline): no such figures.
    plain = server_report(
        ServerSample(0.0, _health(1.0, 1.0, 0, 0), None, (0.0, 0.0)),
        ServerSample(1.0, _health(1.0, 1.0, 30, 0), None, (0.0, 0.0)),
    )
    assert plain is not None and "delta_encodes" not in plain


class _Reply(io.BytesIO):
    def __enter__(self) -> _Reply:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@pytest.mark.parametrize(
    ("document", "statistics"),
    [
        (_health(1.0, 1.0, 10, 0), True),
        ({"status": "ok"}, False),  # what our server shows a remote load tester
        ([1, 2], False),
    ],
)
def test_only_a_document_with_statistics_counts(
    monkeypatch: pytest.MonkeyPatch, document: object, statistics: bool
) -> None:
    asked: list[str] = []

    def urlopen(url: str, timeout: float) -> _Reply:
        asked.append(url)
        return _Reply(json.dumps(document).encode())

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    health = fetch_health("ws://203.0.113.9:9001/")
    assert asked == ["http://203.0.113.9:9001/healthz"]
    assert (health == document) if statistics else health is None


def test_a_cluster_s_shared_port_gives_no_server_figures() -> None:
    """Two /healthz answers from a cluster's shared port may be two workers: no CPU or
    per-client figure is made of them; a pid of one worker still works."""
    worker_0 = {**_health(5.0, 1.0, 600, 1), "worker": {"index": 0}, "pid": 100}
    worker_1 = {**_health(1.0, 0.5, 90, 3), "worker": {"index": 1}, "pid": 101}
    before = ServerSample(10.0, worker_0, None, (0, 0))
    after = ServerSample(20.0, worker_1, None, (0, 0))
    report = server_report(before, after)
    assert report is not None and set(report) == {"unavailable"}
    assert "cluster" in report["unavailable"]
    with_pid = ServerSample(20.0, after.health, (3.0, 1.0), (0, 0))
    assert "unavailable" not in (
        server_report(ServerSample(10.0, before.health, (1.0, 0.5), (0, 0)), with_pid) or {}
    )
