"""Scale-out benchmark: one server process vs. a supervisor with N workers on Redis, same bots.

``python bench/cluster.py`` starts its own ``redis-server`` (no persistence) on
a free loopback port, then at each of ``--points`` bot counts runs ``python -m
clients.loadtest`` against each configuration in turn: the plain single process
(``--workers 1`` without Redis: today's server, the baseline) and ``--workers 2
--redis ...`` (rooms of 50 by name, so that rooms spread over the workers and a
player who reaches the wrong worker is redirected; 30 Hz ticks and snapshots,
inputs at 10 Hz, no churn; a fresh server per point; a point runs once more
when other processes took much CPU meanwhile). Per point it tables:

- snapshots on time (lateness ≤ one 33 ms interval, % of those expected): a
  point is *held* at ≥ 99%;
- server CPU, summed over the workers (each worker's ``/healthz`` ``cpu_s`` on
  its direct port, sampled by the load tester when its window opens and
  closes: ``--server-url``), and per worker;
- the bots' CPU and their event-loop lag p99 (the bots' own overload);
- tick p99 (worst worker) and ticks overrun (all workers);
- joins redirected and what a redirect adds to a join, p50 / p99;
- the limit: which resource ran out (a worker's core, the bots, the whole
  machine, other processes), or none. Without ``--keep-going`` a configuration
  stops after its first point that met a limit other than others' load.

The bots share the machine's cores with the server; they run at
``--bots-nice`` (10), so the server gets a core first and the bots lag instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capacity import (
    FAILURE_LIMIT,
    LAG_LIMIT_MS,
    MACHINE_LIMIT,
    PYTHON,
    QUIET_PCT,
    ROOT,
    _num,
    start_server,
    stop_server,
    wait_quiet,
)

HELD_PCT = 99.0
"""On-time snapshots (% of expected) for a point to count as held."""
CORE_LIMIT = 85.0
"""A worker using more than this % of one core is saturated (a tick loop is one core)."""
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")
OTHER_LIMIT = 40.0
"""Others' CPU (% of one core) in the window that makes a point run once more."""


def free_port_run(count: int) -> int:
    """A port P with P .. P+count-1 all free on 127.0.0.1 (the shared port and direct ports)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        try:
            for port in range(base + 1, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports")


class Redis:
    """Our own redis-server on a free port, no persistence; stopped on exit."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("error: redis-server is not installed (apt-get install redis-server)")
        self.port = free_port_run(1)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", *NO_PERSISTENCE],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        for _ in range(200):  # its log says when it is ready
            line = self.proc.stdout.readline()
            if b"Ready to accept connections" in line:
                return
            if not line:
                break
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def start(workers: int, redis: Redis, tag: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start one configuration: the process, the players' URL, each worker's direct URL."""
    if workers == 1:
        proc, url = start_server("ours")
        return proc, url, [url]
    port = free_port_run(workers + 1)
    # A prefix of its own per run: nothing of an earlier cluster is left in the directory.
    extra = ("--workers", str(workers), "--redis", redis.url, "--redis-prefix", tag)
    extra_budget = ("--directory-join-burst", "100000")  # every bot joins from one address
    proc, url = start_server("ours", *extra, *extra_budget, port=port)
    return proc, url, [f"ws://127.0.0.1:{port + 1 + i}/" for i in range(workers)]


def run_point(workers: int, bots: int, redis: Redis, args: argparse.Namespace) -> dict[str, Any]:
    """One load test against a fresh server (or cluster); its figures and the full report."""
    wait_quiet(args.quiet_pct)
    tag = f"bench-{workers}w-{bots}-{time.time_ns()}"
    proc, url, direct = start(workers, redis, tag)
    ramp = args.ramp_up if args.ramp_up is not None else max(3.0, bots / 100)
    nice = ["nice", "-n", str(args.bots_nice)] if args.bots_nice else []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "report.json"
            command = [
                *nice, PYTHON, "-m", "clients.loadtest",
                "--url", url, "--bots", str(bots), "--duration", str(args.duration),
                "--ramp-up", str(ramp), "--procs", str(args.procs),
                "--room-size", "50", "--churn", "0", "--max-failure-rate", "1",
                "--json", str(out), "--quiet",
                *(a for u in direct for a in ("--server-url", u)),
                *(["--lean"] if args.lean else []),
            ]  # fmt: skip
            subprocess.run(
                command, cwd=ROOT, stdout=subprocess.DEVNULL,
                timeout=ramp + args.duration + 120, check=False,
            )  # fmt: skip
            report: dict[str, Any] = json.loads(out.read_text())
    finally:
        stop_server(proc)
    return {"figures": figures(workers, report), "report": report}


def figures(workers: int, report: dict[str, Any]) -> dict[str, Any]:
    """The table's figures from a load test's JSON report."""
    servers = report.get("servers") or []
    cpus = [s.get("cpu_pct_of_core") for s in servers]
    known = [c for c in cpus if c is not None]
    p99s = [s["tick_p99_ms"] for s in servers if s.get("tick_p99_ms") is not None]
    extra = report["redirects"]["extra_join_ms"]
    cores = os.cpu_count() or 1
    server_cpu = sum(known) if len(known) == len(servers) and known else None
    bots_cpu = report["bots_cpu"]["pct_of_core"]
    busy = report["machine"]["busy_pct"]
    other = (
        max(0.0, busy * cores - (server_cpu or 0.0) - (bots_cpu or 0.0))
        if busy is not None
        else None
    )
    f: dict[str, Any] = {
        "workers": workers,
        "bots": report["bots"]["requested"],
        "players": sum(int(s.get("players") or 0) for s in servers),
        "on_time_pct": report["snapshots"]["on_time_pct"],
        "delivered_pct": report["snapshots"]["delivered_pct"],
        "server_cpu_pct": round(server_cpu, 1) if server_cpu is not None else None,
        "busiest_worker_cpu_pct": max(known) if known else None,
        "worker_cpu_pct": cpus,
        "worker_rooms": [s.get("rooms") for s in servers],
        "bots_cpu_pct": bots_cpu,
        "bots_lag_p99_ms": report["latency_ms"]["loop_lag"]["p99"],
        "machine_busy_pct": busy,
        "other_cpu_pct": round(other, 1) if other is not None else None,
        "tick_p99_ms": max(p99s) if p99s else None,
        "ticks_overrun": sum(int(s.get("ticks_overrun") or 0) for s in servers),
        "joins": report["connections"]["joins"],
        "joins_redirected": report["redirects"]["joins_redirected"],
        "extra_join_p50_ms": extra["p50"],
        "extra_join_p99_ms": extra["p99"],
        "failure_rate": report["connections"]["failure_rate"],
    }
    players, cpu = f["players"], f["server_cpu_pct"]
    # CPU µs per player per tick (30 Hz): what a worker costs per player, whatever their number.
    f["us_per_player_tick"] = round(cpu * 1e4 / (players * 30), 1) if cpu and players else None
    f["held"] = f["on_time_pct"] is not None and f["on_time_pct"] >= HELD_PCT
    found = limits(f, cores)
    f["limit"] = "; ".join(text for _, text in found) or "-"
    # Others' load makes a point noisy; the rest means more bots would measure the same wall.
    f["saturated"] = any(kind not in ("other", "none") for kind, _ in found)
    return f


def limits(f: dict[str, Any], cores: int) -> list[tuple[str, str]]:
    """Which resources ran out at this point: (kind, what was seen), none when none did."""
    found = []
    busiest = f["busiest_worker_cpu_pct"]
    if busiest is not None and busiest > CORE_LIMIT:
        found.append(("server", f"server core ({busiest:.0f}%)"))
    if f["bots_lag_p99_ms"] > LAG_LIMIT_MS:
        found.append(("bots", f"bots (lag p99 {f['bots_lag_p99_ms']:.0f} ms)"))
    used = (f["server_cpu_pct"] or 0.0) + (f["bots_cpu_pct"] or 0.0)
    if used > MACHINE_LIMIT * 100 * cores:
        found.append(("machine", f"machine (server+bots {used:.0f}% of {cores * 100}%)"))
    if f["other_cpu_pct"] is not None and f["other_cpu_pct"] > OTHER_LIMIT:
        found.append(("other", f"other processes ({f['other_cpu_pct']:.0f}% of a core)"))
    if f["failure_rate"] > FAILURE_LIMIT:
        found.append(("failures", f"{f['failure_rate']:.0%} of connections failed"))
    on_schedule = f["ticks_overrun"] == 0 and (f["delivered_pct"] or 0.0) >= HELD_PCT
    if not f["held"] and on_schedule and not any(kind == "bots" for kind, _ in found):
        # Every tick on time and every snapshot sent, yet read late: the wait was the bots'.
        found.append(("bots", "bots (server on schedule, snapshots read late)"))
    if not f["held"] and not found:
        lag, overruns = f["bots_lag_p99_ms"], f["ticks_overrun"]
        found.append(("none", f"none saturated ({overruns} overruns, bots' lag p99 {lag:.0f} ms)"))
    return found


COLUMNS = (
    ("workers", "workers"),
    ("bots", "bots"),
    ("on_time_pct", "on time %"),
    ("server_cpu_pct", "server CPU % (sum of workers)"),
    ("worker_cpu_pct", "per worker"),
    ("us_per_player_tick", "µs per player·tick"),
    ("worker_rooms", "rooms per worker"),
    ("bots_cpu_pct", "bots' CPU %"),
    ("bots_lag_p99_ms", "bots' lag p99 ms"),
    ("machine_busy_pct", "machine busy %"),
    ("tick_p99_ms", "tick p99 ms"),
    ("ticks_overrun", "overruns"),
    ("joins_redirected", "joins redirected"),
    ("extra_join_p50_ms", "redirect +ms p50"),
    ("extra_join_p99_ms", "redirect +ms p99"),
    ("limit", "limit"),
)


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table, one row per (workers, bots) point; held points' on-time in bold."""
    lines = [
        "| " + " | ".join(label for _, label in COLUMNS) + " |",
        "|" + "---:|" * (len(COLUMNS) - 1) + "---|",
    ]
    for f in rows:
        cells = []
        for key, _ in COLUMNS:
            value = f.get(key)
            if isinstance(value, list):
                text = " + ".join(_num(v) for v in value)
            elif key == "joins_redirected":
                text = f"{value} of {f['joins']}"
            else:
                text = _num(value)
            cells.append(f"**{text}**" if key == "on_time_pct" and f["held"] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]], configs: list[int]) -> list[str]:
    """Per configuration: the most players held at ≥ 99% on time, and the first limit met."""
    lines = []
    for workers in configs:
        mine = [f for f in rows if f["workers"] == workers]
        held = [str(f["bots"]) for f in mine if f["held"]]
        limits = [f"{f['bots']}: {f['limit']}" for f in mine if f["limit"] != "-"]
        at = ", ".join(held) + " players" if held else "no point"
        lines.append(
            f"--workers {workers}: held at 30 Hz with ≥ {HELD_PCT:g}% on time at {at}; "
            f"limits met: {', '.join(limits) or 'none'}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/cluster.py",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--points", default="100,250,500,750", help="bot counts, comma-separated")
    parser.add_argument(
        "--workers", default="1,2", help="configurations: 1 is one process without Redis"
    )
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per point")
    parser.add_argument("--ramp-up", type=float, default=None, help="seconds (None: max(3, N/100))")
    parser.add_argument("--procs", type=int, default=2, help="bot processes")
    parser.add_argument(
        "--lean",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="lean bots (python -m clients.loadtest --lean: snapshots counted, not decoded)",
    )
    parser.add_argument("--bots-nice", type=int, default=10, help="niceness of the bots")
    parser.add_argument(
        "--quiet-pct",
        type=float,
        default=QUIET_PCT,
        help="before each run, wait (up to 3 min) until the machine is less busy than this %%",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every point even after one where the machine or the bots saturated",
    )
    parser.add_argument("--json", metavar="PATH", help="write every figure and report as JSON")
    args = parser.parse_args(argv)
    points = [int(p) for p in args.points.split(",") if p.strip()]
    configs = [int(w) for w in args.workers.split(",") if w.strip()]
    cores = os.cpu_count() or 1
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"# {cores} cores shared by the server and {args.procs} bot processes (nice "
        f"{args.bots_nice}, {'lean' if args.lean else 'full'} bots); rooms of 50, 30 Hz, "
        f"inputs 10 Hz; {args.duration:g} s window; started {started}",
        flush=True,
    )
    # SIGTERM or Ctrl-C (even when started in the background, SIGINT ignored): unwind,
    # so that the server under test and redis-server are stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    redis = Redis()
    rows: list[dict[str, Any]] = []
    results: dict[str, Any] = {"cores": cores, "started": started, "args": vars(args), "points": []}
    try:
        # The configurations alternate at each point: a drift of the machine (others'
        # jobs on a shared VM) touches both alike.
        stopped: set[int] = set()
        for bots in points:
            for workers in [w for w in configs if w not in stopped]:
                print(f"--workers {workers}, {bots} bots ...", end="", flush=True)
                point = run_point(workers, bots, redis, args)
                if (point["figures"]["other_cpu_pct"] or 0.0) > OTHER_LIMIT:
                    print(" others' load: once more ...", end="", flush=True)
                    point = run_point(workers, bots, redis, args)
                f = point["figures"]
                print(
                    f" on time {_num(f['on_time_pct'])}%, server {_num(f['server_cpu_pct'])}%,"
                    f" bots {_num(f['bots_cpu_pct'])}%, limit: {f['limit']}",
                    flush=True,
                )
                rows.append(f)
                results["points"].append(point)
                if f["saturated"] and not args.keep_going:
                    stopped.add(workers)  # more bots would measure the same limit, harder
    finally:
        redis.stop()
    print()
    rows.sort(key=lambda f: (f["workers"], f["bots"]))
    print(table(rows))
    print()
    results["summary"] = summary(rows, configs)
    print("\n".join(results["summary"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
