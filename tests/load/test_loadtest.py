"""The load tester against real servers: a handful of bots for a few seconds.

No timing thresholds: the checks are that every bot joined, every figure is
present and ordered (p50 ≤ p95 ≤ p99 ≤ max), the workers' results were merged,
and nothing failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import run_loadtest, running_server

pytestmark = pytest.mark.network

BOTS = 6


def _check_summary(name: str, s: dict[str, Any]) -> None:
    assert s["count"] > 0, name
    assert 0 <= s["p50"] <= s["p95"] <= s["p99"] <= s["max"], (name, s)
    assert s["mean"] >= 0, name


def test_loadtest_against_our_server(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with running_server("-m", "gameserver", "--max-connections-per-ip", "1000") as (url, pid):
        done = run_loadtest(
            *("--url", url, "--bots", str(BOTS), "--duration", "3", "--ramp-up", "0.5"),
            *("--procs", "2", "--churn", "0.5", "--chat-interval", "1", "--json", str(out)),
        )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["ok"] is True and report["exit_code"] == 0
    assert report["workers"] == 2
    assert report["bots"]["joined"] == BOTS
    conn = report["connections"]
    assert conn["failed"] == 0 and conn["failure_rate"] == 0
    # Merged across both workers: one connect sample per connection, one join sample per join.
    lat = report["latency_ms"]
    assert lat["connect"]["count"] == conn["attempts"] >= BOTS
    assert lat["join"]["count"] == conn["joins"] >= BOTS
    for name in ("connect", "join", "rtt_bot", "rtt_server", "interarrival", "jitter", "lateness"):
        _check_summary(name, lat[name])
    snaps = report["snapshots"]
    assert snaps["received"] > 0 and snaps["expected"] > 0
    assert snaps["received"] == lat["lateness"]["count"]
    assert snaps["delivered_pct"] > 0 and 0 < snaps["on_time_pct"] <= snaps["delivered_pct"]
    assert report["inputs"]["sent"] > 0 and report["bytes"]["in"] > 0
    assert report["bytes"]["out"] > 0
    assert report["chat"]["sent"] > 0
    assert all(not tally for tally in report["errors"].values()), report["errors"]
    assert report["worker_crashes"] == []
    server = report["server"]
    assert server is not None and server["pid"] == pid
    assert server["tick_rate"] == 30 and server["cpu_s"] >= server["cpu_system_s"] >= 0
    assert server["us_per_client_tick"] >= server["us_per_client_tick_kernel"] >= 0
    assert server["room_ticks"] > 0 and server["players"] > 0
    assert "Load test" in done.stdout and "No errors." in done.stdout


def test_lean_bots_count_snapshots_and_skip_their_histograms(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with running_server("-m", "gameserver", "--max-connections-per-ip", "1000") as (url, _):
        done = run_loadtest(
            *("--url", url, "--bots", str(BOTS), "--duration", "2", "--ramp-up", "0.5"),
            *("--churn", "0", "--lean", "--json", str(out)),
        )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["config"]["lean"] is True and report["bots"]["joined"] == BOTS
    snaps = report["snapshots"]
    assert snaps["received"] > 0 and 0 < snaps["on_time"] <= snaps["received"]
    assert 0 < snaps["on_time_pct"] <= snaps["delivered_pct"]
    lat = report["latency_ms"]
    _check_summary("rtt_bot", lat["rtt_bot"])  # inputs are acked: ack read from the head
    for name in ("lateness", "interarrival", "jitter", "rtt_server"):
        assert lat[name]["count"] == 0, name
    assert report["inputs"]["sent"] > 0 and report["bytes"]["in"] > 0
    assert all(not tally for tally in report["errors"].values()), report["errors"]


def test_bots_on_deltas_ack_and_report_bytes_per_player(tmp_path: Path) -> None:
    """--deltas (the default) and --no-deltas, lean bots in one room: bytes per player.

    On deltas the bots acknowledge snapshots beyond their inputs' acks and receive
    fewer snapshot bytes than the same moving room sends them whole.
    """
    reports = {}
    with running_server("-m", "gameserver", "--max-connections-per-ip", "1000") as (url, _):
        for mode in ("--deltas", "--no-deltas"):
            out = tmp_path / f"{mode}.json"
            done = run_loadtest(
                *("--url", url, "--bots", str(BOTS), "--duration", "2", "--ramp-up", "0.5"),
                *("--room-size", str(BOTS), "--churn", "0", "--chat-interval", "0", "--lean"),
                *(mode, "--json", str(out)),
            )
            assert done.returncode == 0, done.stdout + done.stderr
            reports[mode] = json.loads(out.read_text())
            assert "bytes in per player·s seated" in done.stdout
    for mode, report in reports.items():
        assert report["config"]["deltas"] is (mode == "--deltas")
        assert all(not tally for tally in report["errors"].values()), report["errors"]
        per_player = report["bytes"]["per_player_s"]
        for kind in ("in", "snapshots"):
            assert per_player[kind]["count"] == BOTS, (mode, per_player)
            assert per_player[kind]["p50"] > 0 and per_player[kind]["mean"] > 0
        # Snapshots are part of all bytes (3 significant digits in each histogram).
        assert per_player["snapshots"]["mean"] <= per_player["in"]["mean"] * 1.002
    delta, full = reports["--deltas"], reports["--no-deltas"]
    assert delta["acks_sent"] > 0 and full["acks_sent"] == 0
    # The server computed patches for the bots on deltas only.
    assert delta["server"]["delta_encodes"] > 0 and full["server"]["delta_encodes"] == 0
    snapshot_bytes = [r["bytes"]["per_player_s"]["snapshots"]["p50"] for r in (delta, full)]
    assert snapshot_bytes[0] < snapshot_bytes[1], snapshot_bytes


def test_loadtest_reports_a_per_ip_cap_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with running_server("-m", "gameserver", "--max-connections-per-ip", "2") as (url, _):
        # Bots start 0.25 s apart: the server's cap is checked against connections
        # already open, so handshakes arriving together could all pass it.
        done = run_loadtest(
            *("--url", url, "--bots", "4", "--duration", "1.5", "--ramp-up", "1"),
            *("--churn", "0", "--json", str(out)),
        )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["ok"] is False
    assert report["errors"]["connect_failures"].get("http_429", 0) > 0
    assert report["bots"]["joined"] == 2
    assert "--max-connections-per-ip" in done.stdout


def test_loadtest_usage_error_exits_2() -> None:
    done = run_loadtest("--url", "http://127.0.0.1:1/", "--bots", "1")
    assert done.returncode == 2
    done = run_loadtest("--url", "ws://127.0.0.1:1/", "--bots", "0")
    assert done.returncode == 2


def test_loadtest_against_the_naive_baseline(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    with running_server("bench/naive_server.py") as (url, pid):
        done = run_loadtest(
            *("--url", url, "--bots", "4", "--duration", "2", "--ramp-up", "0.3"),
            *("--room-size", "2", "--server-pid", str(pid), "--json", str(out)),
        )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["bots"]["joined"] == 4
    assert report["server"]["rooms"] == 2 and report["server"]["cpu_source"] == "pid"
    _check_summary("interarrival", report["latency_ms"]["interarrival"])
    assert all(not tally for tally in report["errors"].values()), report["errors"]


def test_loadtest_through_a_cluster_reports_redirected_joins(tmp_path: Path) -> None:
    """tests/fake_cluster.py redirects every second hello: half the joins make a hop."""
    out = tmp_path / "report.json"
    with (
        running_server("-m", "gameserver", "--max-connections-per-ip", "1000") as (
            upstream,
            upstream_pid,
        ),
        running_server(
            "-m", "tests.fake_cluster", "--upstream", upstream, "--redirect-every", "2"
        ) as (url, _),
    ):
        done = run_loadtest(
            *("--url", url, "--bots", str(BOTS), "--duration", "2", "--ramp-up", "0.5"),
            *("--churn", "0", "--server-url", upstream, "--json", str(out)),
        )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    assert report["bots"]["joined"] == BOTS
    redirects = report["redirects"]
    assert redirects["joins_redirected"] == redirects["hops"] == BOTS // 2
    lat = report["latency_ms"]
    assert lat["join_redirected"]["count"] == lat["join_direct"]["count"] == BOTS // 2
    assert lat["join"]["count"] == BOTS
    for name in ("join_direct", "join_redirected"):
        _check_summary(name, lat[name])
    extra = redirects["extra_join_ms"]
    assert extra["p50"] is not None and extra["p99"] is not None
    assert all(not tally for tally in report["errors"].values()), report["errors"]
    assert "joins redirected" in done.stdout
    # --server-url: that server's /healthz sampled with the window, beside --url's.
    [server] = report["servers"]
    assert server["url"] == upstream and server["pid"] == upstream_pid
    assert server["players"] == BOTS and server["cpu_s"] > 0 and server["room_ticks"] > 0


def test_loadtest_drops_connections_and_resumes_them(tmp_path: Path) -> None:
    """--drop-rate: bots cut their own TCP connections; each gets its seat back in time."""
    out = tmp_path / "report.json"
    with running_server("-m", "gameserver", "--max-connections-per-ip", "1000") as (url, _):
        done = run_loadtest(
            *("--url", url, "--bots", str(BOTS), "--duration", "3", "--ramp-up", "0.5"),
            *("--churn", "0", "--drop-rate", "60", "--json", str(out)),
        )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    conn = report["connections"]
    assert conn["cut_on_purpose"] > 0
    assert conn["resumed"] == conn["cut_on_purpose"] and conn["resume_failed"] == 0
    assert conn["failed"] == 0
    resume = report["latency_ms"]["resume"]
    assert resume["count"] == conn["resumed"]
    _check_summary("resume", resume)
    assert all(not tally for tally in report["errors"].values()), report["errors"]
    assert "resume after a drop" in done.stdout
