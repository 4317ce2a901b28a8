"""What /metrics costs: server CPU per client·tick with metrics on vs. off, same load.

``python bench/metrics_cost.py`` runs the capacity benchmark's standard workload
(arena, rooms of 50, 30 Hz ticks and snapshots, inputs at 10 Hz, bots in
several processes) against a fresh server per run, alternating ``--no-metrics``
and the default (metrics on, ``/metrics`` scraped every ``--scrape-interval``
seconds during the window, as a Prometheus would), ``--repeat`` times each, and
prints every run, the medians, and the difference as a share of the server's
CPU. Runs wait for a quiet machine first (as capacity.py's do); the other load
seen during each run is printed, since the cores are shared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

from capacity import PYTHON, ROOT, other_load, start_server, stop_server, wait_quiet


def scrape_until(url: str, interval: float, stop: threading.Event, sizes: list[int]) -> None:
    """GET /metrics every ``interval`` s until ``stop``; record each body's size."""
    while not stop.wait(interval):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                sizes.append(len(response.read()))
        except OSError:
            pass


def run(metrics: bool, args: argparse.Namespace) -> dict[str, Any]:
    wait_quiet(args.quiet_pct)
    flags = ["--max-connections-per-ip", "100000", "--log-level", "WARNING"]
    proc, url = start_server("ours", *flags, "--metrics" if metrics else "--no-metrics")
    stop = threading.Event()
    sizes: list[int] = []
    ramp = max(3.0, args.bots / 100)
    http = url.replace("ws://", "http://") + "metrics"
    scraper = threading.Thread(target=scrape_until, args=(http, args.scrape_interval, stop, sizes))
    try:
        if metrics:
            scraper.start()
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "report.json"
            nice = ["nice", "-n", str(args.bots_nice)] if args.bots_nice else []
            command = [
                *nice, PYTHON, "-m", "clients.loadtest",
                "--url", url,
                "--bots", str(args.bots),
                "--duration", str(args.window),
                "--ramp-up", str(ramp),
                "--procs", str(args.procs),
                "--room-size", "50",
                "--churn", "0",
                "--server-pid", str(proc.pid),
                "--max-failure-rate", "1",
                "--json", str(out),
                "--quiet",
            ]  # fmt: skip
            subprocess.run(
                command,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                timeout=ramp + args.window + 120,
                check=False,
            )
            report: dict[str, Any] = json.loads(out.read_text())
    finally:
        stop.set()
        if scraper.is_alive():
            scraper.join()
        stop_server(proc)
    server = report.get("server") or {}
    row = {
        "metrics": metrics,
        "us_per_client_tick": server.get("us_per_client_tick"),
        "cpu_pct_of_core": server.get("cpu_pct_of_core"),
        "players": server.get("players"),
        "delivered_pct": report["snapshots"]["delivered_pct"],
        "other_load_pct_of_core": round(other_load(report), 1),
        "machine_busy_pct": report["machine"]["busy_pct"],
        "scrapes": len(sizes),
        "scrape_bytes": max(sizes, default=0),
    }
    print(
        f"  metrics {'on ' if metrics else 'off'}: {row['us_per_client_tick']} µs/client·tick, "
        f"server {row['cpu_pct_of_core']}% of a core, delivered {row['delivered_pct']}%, "
        f"others {row['other_load_pct_of_core']}% of a core, scrapes {row['scrapes']} "
        f"({row['scrape_bytes']} B)",
        flush=True,
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--bots", type=int, default=500)
    parser.add_argument("--window", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode, alternating")
    parser.add_argument("--procs", type=int, default=3, help="bot processes")
    parser.add_argument("--bots-nice", type=int, default=10)
    parser.add_argument("--scrape-interval", type=float, default=5.0)
    parser.add_argument("--quiet-pct", type=float, default=15.0)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for i in range(args.repeat):
        # off, on, on, off, ...: neither mode always runs first.
        order = (False, True) if i % 2 == 0 else (True, False)
        for metrics in order:
            rows.append(run(metrics, args))
    medians: dict[str, float] = {}
    for label, on in (("off", False), ("on", True)):
        values = [r["us_per_client_tick"] for r in rows if r["metrics"] is on]
        medians[label] = statistics.median(v for v in values if v is not None)
    cost = (medians["on"] - medians["off"]) / medians["off"] * 100
    print(f"\nN={args.bots}, {args.repeat} runs each, window {args.window:.0f} s")
    print("| metrics | µs per client·tick (median) | runs |")
    print("|---|---|---|")
    for label, on in (("off", False), ("on", True)):
        runs = ", ".join(str(r["us_per_client_tick"]) for r in rows if r["metrics"] is on)
        print(f"| {label} | {medians[label]:.2f} | {runs} |")
    print(f"metrics cost: {cost:+.1f}% of the server's CPU")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows, "medians": medians, "cost_pct": cost}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
