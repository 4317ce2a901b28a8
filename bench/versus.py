"""Versus: our server against Colyseus 0.18, the same game, the same bots, on this machine.

``python bench/versus.py`` runs, at N = 100, 250, 500, 1000 clients, our server
(``python -m gameserver``) and Colyseus 0.18 (``bench/colyseus/server.js``: a
port of arena's rules, protocol/PROTOCOL.md §7, so the game costs the same on
both sides) alternately, ``--repeat`` times each, a fresh server per run, driven
by the same lean Node bots (``bench/colyseus/bots.mjs``: rooms of 50, 30 Hz
ticks and snapshots, 10 Hz inputs). Before each run it waits for a quiet
machine; a run in whose window other processes used more than
``--others-limit`` % of a core is marked contaminated (and run again once).
It prints, per point, the medians of the clean runs: server CPU µs per
client·tick (user and kernel), snapshots delivered and on time, tick p99, and
ours ÷ Colyseus; ``--json PATH`` writes every run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

try:
    import psutil  # type: ignore[import-untyped]  # noqa: F401
    import trio  # noqa: F401
except ImportError:  # not the project's environment: make it (./dev setup), then use it
    venv_python = ROOT / ".venv" / "bin" / "python"
    if not venv_python.exists():
        subprocess.run([str(ROOT / "dev"), "setup"], check=True)
    os.execv(venv_python, [str(venv_python), *sys.argv])

import versus_rules  # noqa: E402
from capacity import clean_medians, wait_quiet  # noqa: E402
from versus_runs import bots_missing, colyseus_missing, install_colyseus, run_once  # noqa: E402

KINDS = ("ours", "colyseus")
ROWS = (
    ("cpu_us_per_client_tick", "server CPU µs per client·tick"),
    ("cpu_us_user", "… user"),
    ("cpu_us_kernel", "… kernel"),
    ("cpu_pct_of_core", "server CPU, % of one core"),
    ("on_time_pct", "snapshots on time % (≤ 1 interval late)"),
    ("delivered_pct", "snapshots delivered % (of 30/s)"),
    ("jitter_mean_ms", "snapshot jitter ms, mean (abs(gap - 33 ms))"),
    ("jitter_p99_ms", "snapshot jitter ms, p99"),
    ("tick_p99_ms", "tick p99 ms (step + snapshot/patch send)"),
    ("ticks_per_s", "ticks per second (per room)"),
    ("bytes_per_frame", "bytes per snapshot/patch"),
    ("bots_cpu_pct", "bots' CPU, % of one core"),
    ("others_pct_of_core", "others' CPU, % of one core (max)"),
)
SPREAD = {"cpu_us_per_client_tick"}
SATURATED = 0.85
"""Server + bots above this share of all cores, or the server above it of its one core."""


def run_point(kind: str, clients: int, args: argparse.Namespace) -> dict[str, Any]:
    """One run after waiting for a quiet machine; once more if it was contaminated."""
    for attempt in range(1 + args.retries):
        wait_quiet(args.quiet_pct, args.quiet_patience)
        print(f"  {kind:8} N={clients:<5}", end="", flush=True)
        run = run_once(kind, clients, args)
        run["contaminated"] = run["others_pct_of_core"] > args.others_limit
        run["limited"] = limited(run)
        print(
            f" {run['cpu_us_per_client_tick']} µs/client·tick"
            f" ({run['cpu_us_user']} user, {run['cpu_us_kernel']} kernel),"
            f" {run['cpu_pct_of_core']}% of a core, on time {run['on_time_pct']}%,"
            f" tick p99 {run['tick_p99_ms']} ms, bots {run['bots_cpu_pct']}%,"
            f" others {run['others_pct_of_core']}%"
            + (" CONTAMINATED" if run["contaminated"] else "")
            + (f" ({run['limited']})" if run["limited"] else ""),
            flush=True,
        )
        if not run["contaminated"] or attempt == args.retries:
            return run
    raise AssertionError("unreachable")


def limited(run: dict[str, Any]) -> str | None:
    """Why a run measures the machine or the bots more than the server (None if not)."""
    cores = os.cpu_count() or 1
    used = run["cpu_pct_of_core"] + run["bots_cpu_pct"]
    if used > SATURATED * 100 * cores:
        return f"machine saturated: server + bots {used:.0f}% of a core on {cores}"
    if run["cpu_pct_of_core"] > SATURATED * 100:
        return f"server saturated: {run['cpu_pct_of_core']:.0f}% of its one core"
    if run["bots_lag_p99_ms"] > 1000 / 30:
        return f"bots lag: event-loop p99 {run['bots_lag_p99_ms']:.0f} ms"
    return None


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the clean runs (over all of them, marked, when none was clean)."""
    medians = clean_medians(
        runs, [key for key, _ in ROWS], SPREAD, worst=frozenset({"others_pct_of_core"})
    )
    clean = [r for r in runs if not r["contaminated"]]
    chosen = clean or runs
    medians["all_contaminated"] = not clean
    medians["limited"] = sorted({r["limited"] for r in chosen if r.get("limited")})
    return medians


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _cell(point: dict[str, Any], kind: str, key: str) -> str:
    s = point.get(kind)
    if s is None:
        return "skipped"
    text = _num(s.get(key))
    if key + "_range" in s:
        low, high = s[key + "_range"]
        text += f" ({_num(low)}-{_num(high)})"
    return text


def _ratio(ours: Any, theirs: Any) -> str:
    if not isinstance(ours, int | float) or not isinstance(theirs, int | float) or not theirs:
        return "-"
    return f"{ours / theirs:.2f}"


def table(points: list[dict[str, Any]]) -> str:
    lines = ["| N | metric | ours | Colyseus 0.18 | ours ÷ Colyseus |", "|---:|---|---:|---:|---:|"]
    for point in points:
        n = point["clients"]
        for key, label in ROWS:
            o = (point.get("ours") or {}).get(key)
            c = (point.get("colyseus") or {}).get(key)
            ratio = _ratio(o, c) if key != "others_pct_of_core" else ""
            cells = f"{_cell(point, 'ours', key)} | {_cell(point, 'colyseus', key)}"
            lines.append(f"| {n} | {label} | {cells} | {ratio} |")
        marks = [
            f"{kind}: {s['contaminated']} of {s['runs']} runs contaminated"
            + (" (all: medians of contaminated runs)" if s["all_contaminated"] else "")
            for kind in KINDS
            if (s := point.get(kind)) and s["contaminated"]
        ]
        marks += [
            f"{kind}: {why}" for kind in KINDS for why in (point.get(kind) or {}).get("limited", [])
        ]
        if marks:
            lines.append(f"| {n} | **marked**: {'; '.join(marks)} | | | |")
    return "\n".join(lines)


def reprint(path: Path, args: argparse.Namespace) -> int:
    """The table of a --json file, its runs judged again with today's rules and limits."""
    results = json.loads(path.read_text())
    for point in results["points"]:
        for kind, runs in point["runs"].items():
            for run in runs:
                run["contaminated"] = run["others_pct_of_core"] > args.others_limit
                run["limited"] = limited(run)
            point[kind] = summary(runs)
    print("\n".join("# " + n for n in results["notes"]))
    print()
    print(table(results["points"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/versus.py",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--points", default="100,250,500,1000", help="client counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each server per point")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after the joins")
    parser.add_argument("--window", type=float, default=30.0, help="measured seconds per run")
    parser.add_argument("--workers", type=int, default=2, help="bot processes")
    parser.add_argument("--bots-nice", type=int, default=10, help="niceness of the bots")
    parser.add_argument(
        "--quiet-pct",
        type=float,
        default=10.0,
        help="before a run, wait for machine busy < this %%",
    )
    parser.add_argument(
        "--quiet-patience", type=float, default=120.0, help="longest wait for that (seconds)"
    )
    parser.add_argument(
        "--others-limit",
        type=float,
        default=10.0,
        help="contaminated: other processes used more than this %% of one core in the window",
    )
    parser.add_argument("--retries", type=int, default=1, help="re-runs of a contaminated run")
    parser.add_argument("--skip-colyseus", action="store_true", help="run ours only")
    parser.add_argument("--json", metavar="PATH", help="write every run and the medians as JSON")
    parser.add_argument(
        "--from-json", metavar="PATH", help="print the table of an earlier run's --json and stop"
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the running server and bots are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if args.from_json:
        return reprint(Path(args.from_json), args)
    points = [int(p) for p in args.points.split(",") if p.strip()]
    install_colyseus()
    cannot = bots_missing()
    if cannot is not None:
        print(f"versus: cannot run the bots: {cannot}", file=sys.stderr)
        return 2
    missing = colyseus_missing()
    if missing is None and not args.skip_colyseus:
        # The comparison is fair only if the port runs arena.py's rules to the bit.
        differs = versus_rules.check()
        if differs:
            missing = f"its port of arena's rules differs from arena.py: {differs}"
    kinds = ["ours"] if args.skip_colyseus or missing else list(KINDS)
    if missing:
        print(f"versus: Colyseus skipped: {missing}", file=sys.stderr)
    notes = [
        f"{os.cpu_count()} cores shared by the server, {args.workers} bot processes at nice "
        f"{args.bots_nice} and anything else; a fresh server per run; {args.warmup:g} s warm-up "
        f"then a {args.window:g} s window; rooms of 50, 30 Hz, 10 Hz inputs.",
        "server CPU = utime + stime from /proc/PID/stat over the window; per client·tick = "
        "CPU / (players x ticks per room in the window).",
        "Colyseus runs bench/colyseus/server.js's port of arena's rules, checked against "
        "arena.py first: the same snapshots, tick for tick (50 players, 900 ticks).",
        f"contaminated = others (all tasks' CPU in /proc/stat minus server, bots and this "
        f"script; interrupt time left out) > {args.others_limit:g}% of a core in the window.",
    ]
    print("\n".join("# " + n for n in notes), flush=True)
    if missing and not args.skip_colyseus:
        print("# Colyseus not installed: only our server runs.", flush=True)
    results: dict[str, Any] = {"notes": notes, "points": []}
    for clients in points:
        print(f"N = {clients}", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
        # Alternate, so a drift of the machine's speed touches both servers alike.
        for _ in range(args.repeat):
            for kind in kinds:
                runs[kind].append(run_point(kind, clients, args))
        point: dict[str, Any] = {"clients": clients, "runs": runs}
        point.update({kind: summary(runs[kind]) for kind in kinds})
        results["points"].append(point)
        if args.json:  # after every point: an interrupted sweep keeps what it measured
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results["points"]))
    if args.json:
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
