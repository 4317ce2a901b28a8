"""Soak: bots join, play and leave for a long time; the server's memory and fds must stay flat.

``python bench/soak.py --minutes 30`` starts our server once and runs the load
tester against it in back-to-back cycles (every bot connects, plays, part of them
leave and rejoin, then all disconnect), so every connection of the run is opened
and closed again. After each cycle, once the server shows no connection, it
samples the server process: resident memory (RSS) and open file descriptors.
While a cycle runs it samples RSS every second, whose peak gives the memory per
connected player.

It prints a table per cycle and a verdict: fds must return to the same count
after every cycle, and RSS over the second half of the run must grow by at
most ``--max-rss-growth``. The first half is warm-up: Python's allocator keeps
the arenas it grew, and trio keeps up to 1,000 finished cancel scopes in its
deadline heap before pruning it, so RSS climbs for a few cycles and then stays.
Exit status 1 when either check fails, so a long job can run it as a check.
``--json PATH`` writes the samples.
Hostile-input checklist rows 7 (churn), 33 (memory per connection) and 34 (soak).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capacity import PYTHON, ROOT, start_server, stop_server

MB = 1024 * 1024


def connections(url: str) -> int | None:
    health_url = url.replace("ws://", "http://", 1).rstrip("/") + "/healthz"
    try:
        with urllib.request.urlopen(health_url, timeout=3) as reply:
            return int(json.loads(reply.read())["connections"])
    except (OSError, ValueError, KeyError):
        return None


def wait_until_empty(url: str, patience: float = 15.0) -> int | None:
    """Wait for the server to have no connection; return the count it has at the end."""
    deadline = time.monotonic() + patience
    count = connections(url)
    while count and time.monotonic() < deadline:
        time.sleep(0.2)
        count = connections(url)
    return count


def run_cycle(url: str, server: psutil.Process, args: argparse.Namespace) -> dict[str, Any]:
    """One load test; the server's RSS peak while it runs and its report."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cycle.json"
        command = [
            *("nice", "-n", "10", PYTHON, "-m", "clients.loadtest"),
            *("--url", url, "--bots", str(args.bots), "--duration", str(args.cycle)),
            *("--ramp-up", str(args.ramp_up), "--procs", str(args.procs)),
            *("--churn", str(args.churn), "--chat-interval", "5", "--quiet"),
            *("--json", str(out)),
        ]
        bots = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
        peak = 0
        while bots.poll() is None:
            peak = max(peak, server.memory_info().rss)
            time.sleep(1.0)
        report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    return {"rss_peak": peak, "report": report, "exit_code": bots.returncode}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=30.0,
        help="how long to soak (the last cycle started in time runs to its end)",
    )
    parser.add_argument("--bots", type=int, default=200, help="bots per cycle")
    parser.add_argument("--cycle", type=float, default=60.0, help="measured seconds per cycle")
    parser.add_argument("--ramp-up", type=float, default=5.0, help="seconds to connect the bots")
    parser.add_argument("--procs", type=int, default=2, help="bot processes")
    parser.add_argument(
        "--churn",
        type=float,
        default=0.5,
        help="fraction of the bots that leave and rejoin once per cycle",
    )
    parser.add_argument(
        "--max-rss-growth",
        type=float,
        default=0.10,
        help="allowed RSS growth over the second half of the run (0.10: 10%%)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the samples here")
    args = parser.parse_args(argv)

    # Empty rooms are disposed after one second, so "no connection" also means no room.
    proc, url = start_server("ours", "--empty-room-grace", "1")
    server = psutil.Process(proc.pid)
    rss_idle = server.memory_info().rss
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    print(
        "| cycle | minutes | connections | on time % | errors "
        "| RSS peak MB | RSS after MB | fds after |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    try:
        while time.monotonic() - started < args.minutes * 60:
            cycle = run_cycle(url, server, args)
            left = wait_until_empty(url)
            time.sleep(1.5)  # rooms are disposed one second after their last player left
            report = cycle["report"]
            row = {
                "cycle": len(rows) + 1,
                "minutes": round((time.monotonic() - started) / 60, 1),
                "connections": (report.get("connections") or {}).get("attempts"),
                "on_time_pct": (report.get("snapshots") or {}).get("on_time_pct"),
                "errors": sum(sum(t.values()) for t in (report.get("errors") or {}).values()),
                "loadtest_exit": cycle["exit_code"],
                "left_connected": left,
                "rss_peak_mb": round(cycle["rss_peak"] / MB, 1),
                "rss_after_mb": round(server.memory_info().rss / MB, 1),
                "fds_after": server.num_fds(),
            }
            rows.append(row)
            print(
                f"| {row['cycle']} | {row['minutes']} | {row['connections']} "
                f"| {row['on_time_pct']} | {row['errors']} | {row['rss_peak_mb']} "
                f"| {row['rss_after_mb']} | {row['fds_after']} |",
                flush=True,
            )
    finally:
        stop_server(proc)

    first, middle, last = rows[0], rows[len(rows) // 2], rows[-1]
    growth = (last["rss_after_mb"] - middle["rss_after_mb"]) / middle["rss_after_mb"]
    # Freed memory mostly stays with the process (Python's allocator keeps its arenas),
    # so the first peak over the idle server is the upper bound per connected player.
    per_connection_kb = (first["rss_peak_mb"] - rss_idle / MB) * 1024 / args.bots
    fds_flat = all(r["fds_after"] == first["fds_after"] for r in rows)
    rss_flat = growth <= args.max_rss_growth
    total = sum(r["connections"] or 0 for r in rows)
    print()
    print(f"{len(rows)} cycles, {total} connections opened and closed.")
    print(f"fds after each cycle: {'flat' if fds_flat else 'NOT flat'} ({first['fds_after']}).")
    print(
        f"RSS after cycle 1 {first['rss_after_mb']} MB, after cycle {middle['cycle']} "
        f"{middle['rss_after_mb']} MB, after the last {last['rss_after_mb']} MB: second half "
        f"{growth:+.1%} ({'flat' if rss_flat else 'GROWING'})."
    )
    print(
        f"RSS of the idle server {rss_idle / MB:.1f} MB; memory per connected player "
        f"(first peak over idle, {args.bots} players): at most ~{per_connection_kb:.0f} KB."
    )
    if args.json:
        result = {
            "rows": rows,
            "fds_flat": fds_flat,
            "rss_growth": growth,
            "rss_flat": rss_flat,
            "rss_idle_mb": round(rss_idle / MB, 1),
            "kb_per_connection": per_connection_kb,
            "args": vars(args),
        }
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if fds_flat and rss_flat else 1


if __name__ == "__main__":
    sys.exit(main())
