"""Capacity benchmark: our server vs. a naive websockets server, same bots, same workload.

``python bench/capacity.py`` starts each server on 127.0.0.1 (a fresh process
per point), drives it with ``python -m clients.loadtest`` at N = 100, 250, 500,
1000 bots (the standard workload: arena, rooms of 50, 30 Hz ticks and
snapshots, inputs at 10 Hz, bots in several processes), and prints:

1. capacity: server CPU µs per client·tick, tick p99 as % of the 33 ms budget,
   ticks overrun, snapshots delivered %, RTT p99: ours vs. baseline and the
   ratio (baseline ÷ ours);
2. slow clients: 5% of the bots freeze (stop reading) one second into the window;
   on-time snapshots for the others, and what each server did with the frozen.

The bots run on the same machine as the server and compete with it for the
cores; they run at a lower priority (``--bots-nice``, 10 by default) so the
server gets the CPU first (the bots' own latency figures then include their
wait for a core; bot-limited points are still detected and marked). A
point where the bots' own event loops lag by more than one tick (p99), or more
than 5% of connections fail, is marked as bot-limited and the sweep stops
there: the figures past it would measure the bots, not the server.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SERVERS = {
    "ours": [
        *(PYTHON, "-m", "gameserver"),
        *("--max-connections-per-ip", "100000", "--log-level", "WARNING"),
    ],
    "naive": [PYTHON, str(ROOT / "bench" / "naive_server.py")],
}
LAG_LIMIT_MS = 1000 / 30
FAILURE_LIMIT = 0.05
MACHINE_LIMIT = 0.85
"""Server + bots CPU above this share of all cores: they are starving each other."""
QUIET_PCT = 15.0
QUIET_PATIENCE = 180.0
OTHER_LOAD_LIMIT = 40.0
"""% of one core used by others (incl. unattributed kernel time) that makes a point re-run."""


def start_server(
    kind: str, *extra: str, timeout: float = 20.0, port: int = 0
) -> tuple[subprocess.Popen[str], str]:
    """Start a server (``extra``: more of its flags) on ``port`` (0: a free one); the process
    and the first URL it prints."""
    proc = subprocess.Popen(
        [*SERVERS[kind], "--port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        for word in line.split():
            if word.startswith("ws://"):
                return proc, word
    stop_server(proc)
    raise RuntimeError(f"{kind} server did not print its URL")


def stop_server(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_quiet(limit_pct: float = QUIET_PCT, patience: float = QUIET_PATIENCE) -> float:
    """Wait until the machine's CPUs are nearly idle (another job may be running); return busy %."""
    import psutil  # type: ignore[import-untyped]

    deadline = time.monotonic() + patience
    busy = float(psutil.cpu_percent(interval=1.0))
    while busy > limit_pct and time.monotonic() < deadline:
        print(f"  (machine {busy:.0f}% busy before the run: waiting for it to settle)", flush=True)
        busy = float(psutil.cpu_percent(interval=5.0))
    return busy


def other_load(report: dict[str, Any]) -> float:
    """CPU used in the window by neither the server nor the bots, in % of one core."""
    cores = os.cpu_count() or 1
    busy = report["machine"]["busy_pct"]
    if busy is None:
        return 0.0
    server_cpu = (report.get("server") or {}).get("cpu_pct_of_core") or 0.0
    bots_cpu = report["bots_cpu"]["pct_of_core"] or 0.0
    return max(0.0, float(busy) * cores - float(server_cpu) - float(bots_cpu))


def clean_medians(
    runs: list[dict[str, Any]],
    keys: list[str],
    spread: set[str],
    worst: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Medians of ``keys`` over the runs not marked ``contaminated`` (over all of them when
    none was clean), min-max beside the ``spread`` keys, the largest value for ``worst``
    keys; with the counts of runs and of contaminated ones."""
    clean = [r for r in runs if not r["contaminated"]]
    chosen = clean or runs
    medians: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in chosen if r.get(key) is not None]
        if key in worst:
            medians[key] = max(values, default=None)
        else:
            medians[key] = statistics.median(values) if values else None
        if key in spread and len(values) > 1:
            medians[key + "_range"] = [min(values), max(values)]
    medians["runs"] = len(runs)
    medians["contaminated"] = len(runs) - len(clean)
    return medians


def run_point(kind: str, bots: int, args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """Run a point; once more if something else on the machine took a lot of CPU meanwhile."""
    report = run_once(kind, bots, args, *extra)
    if other_load(report) > args.other_load_limit:
        print(f"  other processes used {other_load(report):.0f}% of a core: again", flush=True)
        report = run_once(kind, bots, args, *extra)
    report["other_load_pct_of_core"] = round(other_load(report), 1)
    return report


def loadtest_command(
    url: str, bots: int, ramp: float, pid: int, out: Path, args: argparse.Namespace
) -> list[str]:
    """The capacity workload's load test: rooms of 50, no churn, the server's CPU by pid.

    The bot processes inherit its niceness (``args.bots_nice``): the server under test
    gets the cores it shares with its load generator first.
    """
    nice = ["nice", "-n", str(args.bots_nice)] if args.bots_nice else []
    return [
        *nice, PYTHON, "-m", "clients.loadtest",
        "--url", url,
        "--bots", str(bots),
        "--duration", str(args.window),
        "--ramp-up", str(ramp),
        "--procs", str(args.procs),
        "--room-size", "50",
        "--churn", "0",
        "--server-pid", str(pid),
        "--max-failure-rate", "1",
        "--json", str(out),
        "--quiet",
    ]  # fmt: skip


def run_loadtest(command: list[str], out: Path, ramp: float, window: float) -> dict[str, Any]:
    """Run a load test ``command`` (its JSON report going to ``out``); that report."""
    subprocess.run(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        timeout=ramp + window + 120,
        check=False,
    )
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def run_once(kind: str, bots: int, args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    """One load test against a fresh server of ``kind``; the load tester's JSON report."""
    wait_quiet(args.quiet_pct)
    proc, url = start_server(kind)
    ramp = args.ramp_up if args.ramp_up is not None else max(3.0, bots / 100)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "report.json"
            command = [*loadtest_command(url, bots, ramp, proc.pid, out, args), *extra]
            print(f"  {kind:5} N={bots:<5} ...", end="", flush=True)
            report = run_loadtest(command, out, ramp, args.window)
    finally:
        stop_server(proc)
    s = report.get("server") or {}
    print(
        f" cpu {s.get('cpu_pct_of_core')}% of a core, {s.get('us_per_client_tick')} µs/client·tick,"
        f" delivered {report['snapshots']['delivered_pct']}%,"
        f" bot lag p99 {report['latency_ms']['loop_lag']['p99']} ms,"
        f" bots {report['bots_cpu']['pct_of_core']}%, machine {report['machine']['busy_pct']}%",
        flush=True,
    )
    return report


def bot_limited(report: dict[str, Any]) -> str | None:
    """Why this point measures the bots or the machine rather than the server (None if not)."""
    cores = os.cpu_count() or 1
    server_cpu = (report.get("server") or {}).get("cpu_pct_of_core") or 0.0
    bots_cpu = report["bots_cpu"]["pct_of_core"] or 0.0
    if server_cpu + bots_cpu > MACHINE_LIMIT * 100 * cores:
        return (
            f"machine saturated: server {server_cpu:.0f}% + bots {bots_cpu:.0f}% "
            f"of one core, on {cores} cores"
        )
    lag = report["latency_ms"]["loop_lag"]["p99"]
    if lag > LAG_LIMIT_MS:
        return f"bots' event-loop lag p99 {lag:.0f} ms > one tick ({LAG_LIMIT_MS:.0f} ms)"
    rate = report["connections"]["failure_rate"]
    if rate > FAILURE_LIMIT:
        return f"{rate:.0%} of connections failed"
    return None


def figures(report: dict[str, Any]) -> dict[str, float | None]:
    s = report.get("server") or {}
    lat = report["latency_ms"]
    per_tick = s.get("us_per_client_tick")
    kernel = s.get("us_per_client_tick_kernel")
    delivered = report["snapshots"]["delivered_pct"]
    return {
        "cpu_us_per_client_tick": per_tick,
        # The kernel's share is mostly the socket writes and reads, one per snapshot
        # and per input for both servers here; the user share is what the server's
        # own code and event loop cost.
        "cpu_us_user": per_tick - kernel if per_tick is not None and kernel is not None else None,
        "cpu_us_kernel": kernel,
        # A saturated server does less work (it skips ticks, snapshots queue up): per
        # snapshot it actually delivered is the fairer price (snapshot_rate = tick_rate).
        "cpu_us_per_delivered_snapshot": (
            per_tick * 100 / delivered if per_tick is not None and delivered else None
        ),
        "cpu_pct_of_core": s.get("cpu_pct_of_core"),
        "tick_p99_pct_of_budget": s.get("tick_p99_pct_of_budget"),
        "ticks_overrun": s.get("ticks_overrun"),
        "snapshots_delivered_pct": report["snapshots"]["delivered_pct"],
        "snapshots_on_time_pct": report["snapshots"]["on_time_pct"],
        "rtt_p99_ms": lat["rtt_bot"]["p99"],
        "rtt_server_p99_ms": lat["rtt_server"]["p99"],
        "lateness_p99_ms": lat["lateness"]["p99"],
        "bots_lag_p99_ms": lat["loop_lag"]["p99"],
        "bots_cpu_pct": report["bots_cpu"]["pct_of_core"],
        "machine_busy_pct": report["machine"]["busy_pct"],
        "other_load_pct": report.get("other_load_pct_of_core"),
    }


CAPACITY_ROWS = (
    ("cpu_us_per_client_tick", "server CPU µs per client·tick"),
    ("cpu_us_user", "… of it in user space (Python, event loop)"),
    ("cpu_us_kernel", "… of it in the kernel (socket I/O)"),
    ("cpu_us_per_delivered_snapshot", "server CPU µs per snapshot delivered"),
    ("cpu_pct_of_core", "server CPU, % of one core"),
    ("tick_p99_pct_of_budget", "tick duration p99, % of 33 ms budget"),
    ("ticks_overrun", "ticks overrun (in window, all rooms)"),
    ("snapshots_delivered_pct", "snapshots delivered %"),
    ("snapshots_on_time_pct", "snapshots on time % (≤ 1 interval late)"),
    ("rtt_p99_ms", "RTT p99 ms (bot: input → ack)"),
    ("rtt_server_p99_ms", "RTT p99 ms (server-reported, ping)"),
    ("bots_lag_p99_ms", "bots' event-loop lag p99 ms"),
    ("bots_cpu_pct", "bots' CPU, % of one core"),
    ("machine_busy_pct", "machine CPU busy % (all cores)"),
    ("other_load_pct", "other processes' CPU, % of one core"),
)


SPREAD_ROWS = {"cpu_us_per_client_tick", "ticks_overrun"}
"""Rows that show their min-max over the repeats next to the median."""


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))  # a median of counts
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _ratio(ours: Any, base: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(base, int | float):
        return "-"
    if ours == 0:
        return "-" if base == 0 else "∞"
    return f"{base / ours:.2f}x"


def median_figures(runs: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Each figure's median over repeated runs (``None`` where no run had it)."""
    merged: dict[str, float | None] = {}
    for key in runs[0]:
        values = [r[key] for r in runs if r.get(key) is not None]
        merged[key] = statistics.median(values) if values else None  # type: ignore[type-var]
    return merged


def spread(point: dict[str, Any], kind: str, key: str) -> str:
    """``min-max`` of a figure over a point's repeated runs ("" for a single run)."""
    values = [r[key] for r in point[kind].get("runs", []) if r.get(key) is not None]
    if len(values) < 2:
        return ""
    return f" ({_num(min(values))}-{_num(max(values))})"


def capacity_table(points: list[dict[str, Any]]) -> str:
    lines = [
        "| N | metric | ours | baseline | baseline ÷ ours |",
        "|---:|---|---:|---:|---:|",
    ]
    for point in points:
        ours, base = point["ours"]["figures"], point["naive"]["figures"] if "naive" in point else {}
        for key, label in CAPACITY_ROWS:
            o, b = ours.get(key), base.get(key)
            o_text = _num(o) + (spread(point, "ours", key) if key in SPREAD_ROWS else "")
            b_text = _num(b) + (spread(point, "naive", key) if key in SPREAD_ROWS and base else "")
            lines.append(f"| {point['bots']} | {label} | {o_text} | {b_text} | {_ratio(o, b)} |")
        if point.get("bot_limited"):
            lines.append(f"| {point['bots']} | **bot-limited**: {point['bot_limited']} | | | |")
    return "\n".join(lines)


def slow_table(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| server | frozen bots | on-time % (others) | delivered % (others) | lateness p99 ms "
        "| RTT p99 ms | ticks overrun | rooms stalled at end | frozen bots dropped by server |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, report in rows.items():
        f, s = figures(report), report.get("server") or {}
        b = report["bots"]
        lines.append(
            f"| {label} | {b['slow']} of {b['requested']} "
            f"| {_num(f['snapshots_on_time_pct'])} | {_num(f['snapshots_delivered_pct'])} "
            f"| {_num(f['lateness_p99_ms'])} | {_num(f['rtt_p99_ms'])} "
            f"| {_num(f['ticks_overrun'])} | {_num(s.get('rooms_stalled', 0))} "
            f"| {b['slow_dropped_by_server']} / {b['slow']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/capacity.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--points", default="100,250,500,1000", help="bot counts, comma-separated")
    parser.add_argument("--window", type=float, default=15.0, help="measured seconds per point")
    parser.add_argument(
        "--ramp-up", type=float, default=None, help="seconds (default: max(3, N/100))"
    )
    parser.add_argument("--procs", type=int, default=3, help="bot processes (default: 3)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each server per point, alternating; the table shows medians and the "
        "min-max of CPU and overruns (default: 1)",
    )
    parser.add_argument(
        "--slow-bots", type=int, default=200, help="bots in the slow-client run (0: skip it)"
    )
    parser.add_argument("--slow-fraction", type=float, default=0.05)
    parser.add_argument(
        "--bots-nice",
        type=int,
        default=10,
        help="niceness of the bot processes (default 10: the server gets the CPU first and "
        "the bots' own measurements absorb the wait; 0: equal footing)",
    )
    parser.add_argument(
        "--slow-rcvbuf", type=int, default=4096, help="SO_RCVBUF of frozen bots (bytes)"
    )
    parser.add_argument(
        "--quiet-pct",
        type=float,
        default=QUIET_PCT,
        help="wait (up to 3 min) before each run until the machine is less busy than this %%",
    )
    parser.add_argument(
        "--other-load-limit",
        type=float,
        default=OTHER_LOAD_LIMIT,
        help="re-run a point once when other processes used more than this %% of a core",
    )
    parser.add_argument("--json", metavar="PATH", help="write every figure and report as JSON")
    args = parser.parse_args(argv)
    points = [int(p) for p in args.points.split(",") if p.strip()]
    cores = os.cpu_count() or 1
    notes = [
        f"machine: {cores} cores; the server (one process, one core at most) and {args.procs} bot "
        f"processes share them; the bots run at nice {args.bots_nice}, so the server gets "
        "the CPU it asks for first and the bots lag instead.",
        "workload: arena, rooms of 50, 30 Hz ticks and snapshots, inputs at 10 Hz, chat every "
        f"~20 s per bot, no churn; {args.window:g} s measured window after the ramp-up; "
        "a fresh server per point.",
        "server CPU = utime + stime of the server process (psutil) over the window; "
        "µs per client·tick = CPU µs / (players * 30 * window s); its user-space and "
        "kernel parts are utime and stime. With --repeat each row is its own median, so "
        "the two parts need not add up to the total exactly.",
        "tick duration: ours = simulation + encoding + a non-blocking write to each socket that "
        "has room (a backed-up client's snapshot waits in its outbox for its writer task); "
        "baseline = simulation + awaiting every send in turn.",
        "RTT (bot) = input sent → first snapshot acking it: includes the wait for the next tick.",
    ]
    print("\n".join("# " + n for n in notes), flush=True)
    results: dict[str, Any] = {"machine": {"cpu_count": cores}, "notes": notes, "capacity": []}
    stop_reason = None
    for bots in points:
        print(f"N = {bots}", flush=True)
        point: dict[str, Any] = {"bots": bots}
        reports: dict[str, list[dict[str, Any]]] = {"ours": [], "naive": []}
        # Ours and the baseline alternate, so a drift of the machine's speed (a shared
        # VM) touches both alike; each figure is the median of the repeats.
        for _ in range(args.repeat):
            for kind in ("ours", "naive"):
                reports[kind].append(run_point(kind, bots, args))
        for kind, runs in reports.items():
            point[kind] = {
                "figures": median_figures([figures(r) for r in runs]),
                "runs": [figures(r) for r in runs],
                "reports": runs,
            }
        limits = sorted({r for r in (bot_limited(x) for k in reports for x in reports[k]) if r})
        point["bot_limited"] = "; ".join(limits) or None
        results["capacity"].append(point)
        if limits:
            stop_reason = (
                f"stopped at N = {bots}: the bots cannot drive more ({point['bot_limited']})"
            )
            break
    results["stop_reason"] = stop_reason
    if points:
        print()
        print("## Capacity: ours vs. the naive baseline")
        print(capacity_table(results["capacity"]))
        print()
        print(
            stop_reason or f"all points ran (up to N = {points[-1]}) without the bots saturating."
        )
    if args.slow_bots > 0:
        frozen = round(args.slow_bots * args.slow_fraction)
        print(f"\nslow clients: {args.slow_bots} bots, {frozen} freeze 1 s in", flush=True)
        extra = ("--slow-fraction", str(args.slow_fraction), "--slow-rcvbuf", str(args.slow_rcvbuf))
        rows: dict[str, dict[str, Any]] = {}
        for kind in ("ours", "naive"):
            rows[f"{kind}, control"] = run_point(kind, args.slow_bots, args)
            rows[kind] = run_point(kind, args.slow_bots, args, *extra)
        results["slow"] = {k: {"figures": figures(r), "report": r} for k, r in rows.items()}
        print()
        print(f"## Slow clients: {args.slow_fraction:.0%} of the bots stop reading")
        print(slow_table(rows))
        print(
            f"\ncontrol = the same run without frozen bots. Frozen bots use "
            f"SO_RCVBUF={args.slow_rcvbuf} (a slow link): with loopback's default buffers "
            "(~200 KB+) the baseline only blocks once they are full: the same collapse, "
            "some seconds later."
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
