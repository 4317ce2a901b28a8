"""The load test's figures: one JSON-able dict, a final rich table, and the live view.

``build_report`` turns merged metrics plus the server samples into the
document ``--json`` writes; ``render_report`` prints the same figures.
Latencies are in milliseconds (p50/p95/p99/max/mean and sample count).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from clients.loadtest.metrics import HISTOGRAMS
from clients.loadtest.runner import LoadTestConfig, Progress, RunResult
from clients.loadtest.server import machine_report, server_report

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2

_LABELS = {
    "connect": "connect (TCP+WS)",
    "join": "join (hello→seat)",
    "join_direct": "  of it, direct",
    "join_redirected": "  of it, redirected",
    "rtt_server": "RTT, server-reported",
    "rtt_bot": "RTT, input→ack (bot)",
    "interarrival": "snapshot inter-arrival",
    "jitter": "snapshot jitter",
    "lateness": "snapshot lateness",
    "loop_lag": "bot event-loop lag",
    "resume": "resume after a drop",
}


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole > 0 else None


def _redirects(
    direct: dict[str, float | int], redirected: dict[str, float | int], c: Counter[str]
) -> dict[str, Any]:
    """How many joins a cluster redirected, and what a redirect adds to a join (p50, p99)."""
    both = direct["count"] and redirected["count"]
    return {
        "joins_redirected": c["joins_redirected"],
        "hops": c["redirect_hops"],
        "extra_join_ms": {
            p: round(redirected[p] - direct[p], 3) if both else None for p in ("p50", "p99")
        },
    }


def build_report(config: LoadTestConfig, result: RunResult) -> dict[str, Any]:
    m = result.metrics
    c = m.counters
    window = round(result.window_s, 3)
    attempts = c["connect_attempts"]
    failures = c["connect_failures"]
    failure_rate = failures / attempts if attempts else (1.0 if config.bots else 0.0)
    expected = m.floats.get("snapshots_expected", 0.0)
    seated = m.floats.get("seated_s", 0.0)
    active_bots = config.bots - c["slow_bots"]
    report: dict[str, Any] = {
        "config": dataclasses.asdict(config),
        "workers": result.workers,
        "window_s": window,
        "elapsed_s": round(result.elapsed_s, 3),
        "interrupted": result.interrupted,
        "bots": {
            "requested": config.bots,
            "joined": c["bots_joined"],
            "gave_up": c["bots_gave_up"],
            "slow": c["slow_bots"],
            "slow_dropped_by_server": c["slow_bots_dropped"],
        },
        "connections": {
            "attempts": attempts,
            "failed": failures,
            "failure_rate": round(failure_rate, 4),
            "joins": c["joins"],
            "rejoins": c["rejoins"],
            "dropped": c["dropped"],
            "cut_on_purpose": c["drops"],
            "resumed": c["resumes"],
            "resume_failed": c["resume_failed"],
        },
        "latency_ms": {name: m.summary(name) for name in HISTOGRAMS},
        "redirects": _redirects(m.summary("join_direct"), m.summary("join_redirected"), c),
        "snapshots": {
            "received": c["snapshots"],
            "expected": round(expected, 1),
            "delivered_pct": _pct(c["snapshots"], expected),
            "on_time": c["snapshots_on_time"],
            "on_time_pct": _pct(c["snapshots_on_time"], expected),
            "rate_hz_per_bot": round(c["snapshots"] / seated, 2) if seated else None,
        },
        "inputs": {
            "sent": c["inputs_sent"],
            "late": c["inputs_late"],
            "unacked": c["inputs_unacked"],
        },
        "chat": {"sent": c["chats_sent"], "received": c["chats_received"]},
        "bytes": {
            "in": c["bytes_in"],
            "out": c["bytes_out"],
            "in_per_bot_s": round(c["bytes_in"] / (active_bots * window), 1)
            if active_bots > 0 and window > 0
            else None,
            "out_per_bot_s": round(c["bytes_out"] / (active_bots * window), 1)
            if active_bots > 0 and window > 0
            else None,
            # Per player (bot) and second seated: p50 and mean over the bots.
            "per_player_s": {
                "in": m.amount_summary("player_bytes_in"),
                "snapshots": m.amount_summary("player_snapshot_bytes"),
            },
        },
        "acks_sent": c["acks_sent"],
        "bots_cpu": {
            "cpu_s": round(m.floats.get("bot_cpu_s", 0.0), 3),
            "pct_of_core": round(100 * m.floats.get("bot_cpu_s", 0.0) / window, 1)
            if window > 0
            else None,
        },
        "errors": {kind: dict(sorted(t.items())) for kind, t in m.errors.items()},
        "worker_crashes": result.crashes,
        "server": server_report(result.server_before, result.server_after),
        "servers": [
            {"url": url, **(server_report(b, a) or {})}
            for url, b, a in zip(
                config.server_urls, result.servers_before, result.servers_after, strict=False
            )
        ],
        "machine": machine_report(result.server_before, result.server_after),
    }
    hints = []
    if m.errors["connect_failures"].get("http_429"):
        hints.append(
            "The server refused connections with HTTP 429 (too many from one IP address): "
            f"start it with --max-connections-per-ip {config.bots} or more."
        )
    if m.errors["connect_failures"].get("http_503"):
        hints.append("The server answered HTTP 503: full (--max-connections) or shutting down.")
    if m.errors["connect_failures"].get("connection_refused"):
        hints.append(f"Nothing listens at {config.url}: is the server running?")
    lag = report["latency_ms"]["loop_lag"]
    if lag["count"] and lag["p99"] > 1000 / 30:
        hints.append(
            f"The bots themselves were overloaded (event-loop lag p99 {lag['p99']} ms): "
            "their latency figures include their own delay; use more --procs or fewer bots."
        )
    busy = report["machine"]["busy_pct"]
    if busy is not None and busy > 90:
        hints.append(
            f"This machine's CPUs were {busy:.0f}% busy: the server and the bots starved each "
            "other, so latencies and tick figures are the machine's limit, not the server's."
        )
    report["hints"] = hints
    ok = failure_rate <= config.max_failure_rate and not result.crashes
    report["ok"] = ok
    report["exit_code"] = EXIT_OK if ok else EXIT_FAILURES
    return report


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}{suffix}" if abs(value) < 100 else f"{value:,.0f}{suffix}"
    if isinstance(value, int):
        return f"{value:,}{suffix}"
    return f"{value}{suffix}"


def render_report(report: dict[str, Any], console: Console) -> None:
    cfg = report["config"]
    latency = Table(title=f"Load test: {cfg['bots']} bots → {cfg['url']}, {report['window_s']} s")
    latency.add_column("metric (ms)")
    for col in ("count", "p50", "p95", "p99", "max", "mean"):
        latency.add_column(col, justify="right")
    for name, s in report["latency_ms"].items():
        latency.add_row(
            _LABELS.get(name, name),
            *(_fmt(s[k]) for k in ("count", "p50", "p95", "p99", "max", "mean")),
        )
    console.print(latency)

    totals = Table(title="Totals", show_header=False)
    totals.add_column("what")
    totals.add_column("value", justify="right")
    b, conn, snaps = report["bots"], report["connections"], report["snapshots"]
    totals.add_row("bots joined / requested", f"{b['joined']} / {b['requested']}")
    totals.add_row(
        "connect attempts / failed",
        f"{conn['attempts']} / {conn['failed']} ({100 * conn['failure_rate']:.1f}%)",
    )
    totals.add_row(
        "joins / rejoins / dropped by server",
        f"{conn['joins']} / {conn['rejoins']} / {conn['dropped']}",
    )
    redirects = report["redirects"]
    if redirects["joins_redirected"]:
        extra = redirects["extra_join_ms"]
        totals.add_row(
            "joins redirected (hops) / extra join ms p50, p99",
            f"{redirects['joins_redirected']} ({redirects['hops']}) / "
            f"{_fmt(extra['p50'])}, {_fmt(extra['p99'])}",
        )
    totals.add_row(
        "snapshots received / expected",
        # Expected is time x rate, fractional: shown as such so it never looks below received.
        f"{snaps['received']:,} / {snaps['expected']:,.1f} ({_fmt(snaps['delivered_pct'], '%')})",
    )
    if conn["cut_on_purpose"]:
        totals.add_row(
            "cut on purpose / resumed / resume failed",
            f"{conn['cut_on_purpose']} / {conn['resumed']} / {conn['resume_failed']}",
        )
    totals.add_row("snapshots on time (≤ 1 interval late)", _fmt(snaps["on_time_pct"], "%"))
    totals.add_row(
        "inputs sent / chat sent / chat received",
        f"{report['inputs']['sent']:,} / {report['chat']['sent']:,} / "
        f"{report['chat']['received']:,}",
    )
    by = report["bytes"]
    totals.add_row(
        "bytes in / out per bot·s", f"{_fmt(by['in_per_bot_s'])} / {_fmt(by['out_per_bot_s'])}"
    )
    player = by["per_player_s"]
    totals.add_row(
        "bytes in per player·s seated, p50 / mean: all; snapshots"
        + (" (deltas)" if cfg.get("deltas") else " (full)"),
        f"{_fmt(player['in']['p50'])} / {_fmt(player['in']['mean'])}; "
        f"{_fmt(player['snapshots']['p50'])} / {_fmt(player['snapshots']['mean'])}",
    )
    totals.add_row("bots' CPU (% of a core)", _fmt(report["bots_cpu"]["pct_of_core"], "%"))
    machine = report["machine"]
    totals.add_row(f"machine CPU busy ({machine['cores']} cores)", _fmt(machine["busy_pct"], "%"))
    if b["slow"]:
        totals.add_row(
            "frozen bots / dropped by the server", f"{b['slow']} / {b['slow_dropped_by_server']}"
        )
    console.print(totals)

    server = report["server"]
    table = Table(title="Server", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    if server is None:
        table.add_row(
            "server statistics",
            "unavailable: no /healthz statistics (a remote server shows them only with"
            " --public-stats) and no --server-pid",
        )
    elif "unavailable" in server:
        table.add_row("server statistics", f"unavailable: {server['unavailable']}")
    else:
        table.add_row(
            "CPU in window (% of a core)",
            f"{_fmt(server.get('cpu_s'))} s ({_fmt(server.get('cpu_pct_of_core'), '%')}) "
            f"[{server['cpu_source']}]",
        )
        table.add_row(
            "CPU µs per client·tick (of it in the kernel)",
            f"{_fmt(server.get('us_per_client_tick'))} "
            f"({_fmt(server.get('us_per_client_tick_kernel'))})",
        )
        table.add_row(
            "tick p50 / p99 / max (ms)",
            f"{_fmt(server.get('tick_p50_ms'))} / {_fmt(server.get('tick_p99_ms'))} / "
            f"{_fmt(server.get('tick_max_ms'))}",
        )
        table.add_row("tick p99, % of budget", _fmt(server.get("tick_p99_pct_of_budget"), "%"))
        table.add_row(
            "ticks overrun / skipped",
            f"{_fmt(server.get('ticks_overrun'))} / {_fmt(server.get('ticks_skipped'))}",
        )
        table.add_row(
            "players / connections / rooms",
            f"{_fmt(server.get('players'))} / {_fmt(server.get('connections'))} / "
            f"{_fmt(server.get('rooms'))}",
        )
    console.print(table)

    errors = Table(title="Errors by kind", show_header=True)
    errors.add_column("category")
    errors.add_column("kind")
    errors.add_column("count", justify="right")
    for category, tally in report["errors"].items():
        for kind, count in tally.items():
            errors.add_row(category, kind, str(count))
    if errors.row_count:
        console.print(errors)
    else:
        console.print("No errors.")
    for crash in report["worker_crashes"]:
        console.print(Text(crash, style="red"))
    for hint in report["hints"]:
        console.print(Text("hint: " + hint, style="yellow"))
    verdict = (
        "OK"
        if report["ok"]
        else f"FAILED: connection failure rate over {cfg['max_failure_rate']:.0%} "
        "or a worker crashed"
    )
    console.print(Text(verdict, style="green" if report["ok"] else "bold red"))


def live_view(p: Progress) -> Group:
    """The live progress panel."""
    now = time.monotonic()
    if now < p.window_start:
        clock = f"ramp-up {max(0.0, p.window_start - now):.0f} s left"
    elif now < p.window_end:
        clock = f"measuring: {p.window_end - now:.0f} s left of {p.config.duration:g}"
    else:
        clock = "closing"
    table = Table(show_header=False, box=None)
    table.add_column()
    table.add_column(justify="right")
    table.add_row("phase", clock)
    table.add_row(
        "bots connected / in room / target",
        f"{p.total('connected'):.0f} / {p.total('in_room'):.0f} / {p.config.bots}",
    )
    table.add_row("snapshots received", f"{p.total('snapshots'):,.0f}")
    table.add_row(
        "connect failures / dropped",
        f"{p.total('connect_failures'):.0f} / {p.total('dropped'):.0f}",
    )
    table.add_row("bot loop lag (worst, last s)", f"{p.max('lag_ms'):.1f} ms")
    h = p.health
    if h:
        ticks = h.get("ticks") or {}
        table.add_row("server players / rooms", f"{h.get('players')} / {h.get('rooms')}")
        table.add_row(
            "server tick p99 / overruns", f"{ticks.get('p99_ms')} ms / {ticks.get('overruns')}"
        )
    return Group(Text(f"load test → {p.config.url}", style="bold"), table)


def progress_line(p: Progress) -> str:
    """One line of progress for a console that is not a terminal."""
    h = p.health or {}
    elapsed = max(0.0, time.monotonic() - p.started)  # the start is set a moment ahead
    return (
        f"[{elapsed:5.1f} s] {p.phase}: connected {p.total('connected'):.0f}/"
        f"{p.config.bots}, in room {p.total('in_room'):.0f}, "
        f"snapshots {p.total('snapshots'):,.0f}, "
        f"failures {p.total('connect_failures'):.0f}, server players {h.get('players', '-')}"
    )
