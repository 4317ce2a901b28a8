"""Bandwidth: full snapshots against delta snapshots, bytes per player per second and CPU.

``python bench/bandwidth.py`` runs our server (``python -m gameserver``, a fresh
process per run) with the load tester's bots (``python -m clients.loadtest``:
lean bots, every one moving, ``--input-rate`` inputs a second (30: what the page
sends while a key is held, so acks ride on inputs), no chat, no churn, all in one room) at
each point, in turn with ``--no-deltas`` (full snapshots: hello without
``deltas``), ``--deltas`` (hello.deltas, every snapshot acknowledged, as PROTOCOL.md
§5.6 asks) and ``--deltas --acks inputs`` (acknowledged only in the inputs: fewer
messages at low input rates, older bases), ``--repeat`` times each. Points: 10 and 50 players in
arena, and 200 in the larger world with interest management (``--wide-game``) when
the server has it. It prints, per point, the medians over the runs:

- bytes received per player per second seated (p50 and mean over the bots): all
  messages, and snapshots only; and bytes per snapshot (snapshot bytes ÷ snapshots);
- server CPU µs per client·tick (``/proc`` via psutil over the window) and % of a core;
- delta encodes per room snapshot tick (patches the server computed: one per audience
  and base; its ``/healthz`` rooms' ``delta_encodes`` over the window), and snapshots on
  time;

then the issue's targets at 50 players: deltas ≤ 50% of full bytes per player per
second, below Colyseus's patches (the figure ``bench/versus.py`` measured, in
bench/README.md), and CPU per client·tick within +10% of full snapshots.
``--json PATH`` writes every run's figures and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
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

from capacity import (  # noqa: E402
    clean_medians,
    other_load,
    start_server,
    stop_server,
    wait_quiet,
)

PYTHON = sys.executable
MODES = ("full", "delta", "delta_input_acks")
MODE_FLAGS = {
    "full": ["--no-deltas"],
    "delta": ["--deltas", "--acks", "every"],
    "delta_input_acks": ["--deltas", "--acks", "inputs"],
}
MODE_NAMES = {
    "full": "full snapshots",
    "delta": "deltas",
    "delta_input_acks": "deltas, acks in inputs only",
}
COLYSEUS_BYTES_PER_PATCH = (316, 319)
"""Colyseus 0.18's bytes per patch, rooms of 50 moving players, 30.3 patches/s: measured by
bench/versus.py on 2026-12-04 (bench/README.md, "bytes per snapshot/patch", N = 100-1000)."""
COLYSEUS_PATCHES_PER_S = 30.3
"""Its patch timer runs a little fast: 33 ms for 33.3 (bench/README.md)."""
DELTA_BYTES_TARGET = 0.5
"""At 50 players, deltas ≤ this share of full snapshots' bytes per player per second."""
CPU_TARGET = 1.10
"""At 50 players, CPU per client·tick with deltas ≤ this times full snapshots'."""

ROWS = (
    ("bytes_in_p50", "bytes in per player·s, p50 (all messages)"),
    ("bytes_in_mean", "… mean"),
    ("snapshot_bytes_p50", "snapshot bytes per player·s, p50"),
    ("snapshot_bytes_mean", "… mean"),
    ("bytes_per_snapshot", "bytes per snapshot"),
    ("cpu_us_per_client_tick", "server CPU µs per client·tick"),
    ("cpu_us_kernel", "… of it in the kernel"),
    ("cpu_pct_of_core", "server CPU, % of one core"),
    ("delta_encodes_per_tick", "delta encodes per room tick"),
    ("on_time_pct", "snapshots on time % (≤ 1 interval late)"),
    ("bots_cpu_pct", "bots' CPU, % of one core"),
    ("others_pct_of_core", "others' CPU, % of one core"),
)
SPREAD = {"cpu_us_per_client_tick", "snapshot_bytes_mean"}
"""Rows shown with their min-max over the runs beside the median."""


def loadtest_command(
    url: str, game: str, players: int, mode: str, pid: int, out: Path, args: argparse.Namespace
) -> list[str]:
    """One room of ``players`` moving bots (lean: they read snapshot heads only, and ack)."""
    nice = ["nice", "-n", str(args.bots_nice)] if args.bots_nice else []
    return [
        *nice, PYTHON, "-m", "clients.loadtest",
        "--url", url,
        "--game", game,
        "--bots", str(players),
        "--room-size", str(players),
        "--duration", str(args.window),
        "--ramp-up", str(args.ramp_up),
        "--procs", str(args.procs),
        "--churn", "0",
        "--chat-interval", "0",
        "--lean",
        "--input-rate", str(args.input_rate),
        *MODE_FLAGS[mode],
        "--server-pid", str(pid),
        "--max-failure-rate", "1",
        "--json", str(out),
        "--quiet",
    ]  # fmt: skip


def run_once(game: str, players: int, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One load test against a fresh server; its figures."""
    wait_quiet(args.quiet_pct, args.quiet_patience)
    proc, url = start_server("ours")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "report.json"
            command = loadtest_command(url, game, players, mode, proc.pid, out, args)
            subprocess.run(
                command,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                timeout=args.ramp_up + args.window + 120,
                check=False,
            )
            report: dict[str, Any] = json.loads(out.read_text())
    finally:
        stop_server(proc)
    return figures(report)


def figures(report: dict[str, Any]) -> dict[str, Any]:
    server = report.get("server") or {}
    per_player = report["bytes"]["per_player_s"]
    rate = report["snapshots"]["rate_hz_per_bot"]
    snapshot_mean = per_player["snapshots"]["mean"]
    return {
        "bots_joined": report["bots"]["joined"],
        "bytes_in_p50": per_player["in"]["p50"],
        "bytes_in_mean": per_player["in"]["mean"],
        "snapshot_bytes_p50": per_player["snapshots"]["p50"],
        "snapshot_bytes_mean": snapshot_mean,
        "bytes_per_snapshot": round(snapshot_mean / rate, 1) if snapshot_mean and rate else None,
        "cpu_us_per_client_tick": server.get("us_per_client_tick"),
        "cpu_us_kernel": server.get("us_per_client_tick_kernel"),
        "cpu_pct_of_core": server.get("cpu_pct_of_core"),
        "delta_encodes_per_tick": server.get("delta_encodes_per_snapshot_tick"),
        "on_time_pct": report["snapshots"]["on_time_pct"],
        "acks_sent": report.get("acks_sent"),
        "bots_cpu_pct": report["bots_cpu"]["pct_of_core"],
        "others_pct_of_core": round(other_load(report), 1),
        "connect_failures": report["connections"]["failed"],
    }


def run_point(game: str, players: int, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """A run; again (``--retries`` times) while other processes took a lot of CPU in its
    window."""
    print(f"  {game} N={players:<4} {mode:16}", end="", flush=True)
    run = run_once(game, players, mode, args)
    run["contaminated"] = run["others_pct_of_core"] > args.others_limit
    for _ in range(args.retries):
        if not run["contaminated"]:
            break
        print(f" others {run['others_pct_of_core']}% of a core: again", end="", flush=True)
        run = run_once(game, players, mode, args)
        run["contaminated"] = run["others_pct_of_core"] > args.others_limit
    print(
        f" {run['bytes_in_p50']} B/s per player ({run['snapshot_bytes_p50']} of snapshots,"
        f" {run['bytes_per_snapshot']} B each), {run['cpu_us_per_client_tick']} µs/client·tick,"
        f" {run['delta_encodes_per_tick']} encodes/tick, on time {run['on_time_pct']}%,"
        f" others {run['others_pct_of_core']}%" + (" CONTAMINATED" if run["contaminated"] else ""),
        flush=True,
    )
    return run


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the clean runs (over all, marked, when none was clean)."""
    return clean_medians(runs, [key for key, _ in ROWS], SPREAD)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cell(s: dict[str, Any] | None, key: str) -> str:
    if s is None:
        return "-"
    text = _num(s.get(key))
    if key + "_range" in s:
        low, high = s[key + "_range"]
        text += f" ({_num(low)}-{_num(high)})"
    return text


def _ratio(delta: Any, full: Any) -> str:
    if not isinstance(delta, int | float) or not isinstance(full, int | float) or not full:
        return ""
    return f"{delta / full:.2f}"


def table(points: list[dict[str, Any]]) -> str:
    head = " | ".join(
        MODE_NAMES[m] + ("" if m == "full" else f" | {MODE_NAMES[m]} ÷ full") for m in MODES
    )
    lines = [f"| point | metric | {head} |", "|---|---|" + "---:|" * (2 * len(MODES) - 1)]
    blank = " |" * (2 * len(MODES) - 1)
    for point in points:
        name = f"{point['game']}, {point['players']}"
        if point.get("not_measured"):
            lines.append(f"| {name} | not measured: {point['not_measured']} |{blank}")
            continue
        full = point.get("full")
        for key, label in ROWS:
            cells = []
            for mode in MODES:
                s = point.get(mode)
                cells.append(_cell(s, key))
                if mode != "full":
                    plain = key in ("others_pct_of_core", "on_time_pct", "delta_encodes_per_tick")
                    value, base = (s or {}).get(key), (full or {}).get(key)
                    cells.append("" if plain else _ratio(value, base))
            lines.append(f"| {name} | {label} | {' | '.join(cells)} |")
        marks = [
            f"{mode}: {s['contaminated']} of {s['runs']} runs contaminated"
            for mode in MODES
            if (s := point.get(mode)) and s["contaminated"]
        ]
        if marks:
            lines.append(f"| {name} | **marked**: {'; '.join(marks)} |{blank}")
    low, high = COLYSEUS_BYTES_PER_PATCH
    lines.append(
        f"| Colyseus 0.18, 50 (reference) | bytes per patch: {low}-{high}; per player·s at "
        f"{COLYSEUS_PATCHES_PER_S}/s: {low * COLYSEUS_PATCHES_PER_S:,.0f}-"
        f"{high * COLYSEUS_PATCHES_PER_S:,.0f} (patches only) |{blank}"
    )
    return "\n".join(lines)


def verdicts(points: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, checked on the 50-player arena point, for each delta mode."""
    point = next((p for p in points if p["game"] == "arena" and p["players"] == 50), None)
    if point is None or not point.get("full"):
        return ["targets: no 50-player arena point measured"]
    full = point["full"]
    out = []
    for mode in MODES[1:]:
        delta, name = point.get(mode), MODE_NAMES[mode]
        if not delta:
            continue
        f, d = full.get("bytes_in_p50"), delta.get("bytes_in_p50")
        if f and d:
            ok = d <= DELTA_BYTES_TARGET * f
            out.append(
                f"{name}: bytes per player·s (all, p50) {d:,.0f} = {d / f:.0%} of full "
                f"{f:,.0f} (target ≤ {DELTA_BYTES_TARGET:.0%}): {'met' if ok else 'NOT met'}"
            )
        snap, per_snapshot = delta.get("snapshot_bytes_p50"), delta.get("bytes_per_snapshot")
        if snap and per_snapshot:
            low, high = COLYSEUS_BYTES_PER_PATCH
            colyseus = low * COLYSEUS_PATCHES_PER_S
            below = per_snapshot < low and snap < colyseus
            out.append(
                f"{name}: {per_snapshot:,.0f} B per snapshot, {snap:,.0f} B/s of snapshots per "
                f"player vs. Colyseus's {low}-{high} B per patch, {colyseus:,.0f} B/s: "
                + ("below" if below else "NOT below")
            )
        fc, dc = full.get("cpu_us_per_client_tick"), delta.get("cpu_us_per_client_tick")
        if fc and dc:
            ok = dc <= CPU_TARGET * fc
            out.append(
                f"{name}: server CPU per client·tick {dc:.2f} µs = {dc / fc:.2f}x full "
                f"{fc:.2f} µs (target ≤ {CPU_TARGET:.2f}x): {'met' if ok else 'NOT met'}"
            )
    return out


def server_games() -> list[str]:
    """The games our server offers when started without --game (its default registry)."""
    from gameserver.games import default_games

    return list(default_games())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/bandwidth.py",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--arena-points", default="10,50", help="players in one arena room")
    parser.add_argument("--wide-game", default="arena_wide", help="the larger world's game")
    parser.add_argument("--wide-players", type=int, default=200, help="players in it (0: none)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode per point")
    parser.add_argument("--window", type=float, default=15.0, help="measured seconds per run")
    parser.add_argument("--ramp-up", type=float, default=3.0, help="seconds to connect the bots")
    parser.add_argument("--procs", type=int, default=2, help="bot processes")
    parser.add_argument(
        "--input-rate",
        type=float,
        default=30.0,
        help="inputs per second per bot: the page sends ~24-30 while a key is held (the "
        "load tester's own default is 10)",
    )
    parser.add_argument("--bots-nice", type=int, default=10, help="niceness of the bots")
    parser.add_argument("--quiet-pct", type=float, default=15.0, help="wait for busy < this %%")
    parser.add_argument("--quiet-patience", type=float, default=60.0, help="… at most (s)")
    parser.add_argument(
        "--others-limit",
        type=float,
        default=25.0,
        help="contaminated: other processes used more than this %% of one core in the window",
    )
    parser.add_argument("--retries", type=int, default=1, help="re-runs of a contaminated run")
    parser.add_argument("--json", metavar="PATH", help="write every run and the medians")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    points: list[tuple[str, int]] = [
        ("arena", int(n)) for n in args.arena_points.split(",") if n.strip()
    ]
    results: dict[str, Any] = {"points": []}
    wide: str | None = None
    if args.wide_players:
        games = server_games()
        if args.wide_game in games:
            points.append((args.wide_game, args.wide_players))
        else:
            wide = f"the server offers no game {args.wide_game!r} (it offers {', '.join(games)})"
    notes = [
        f"{os.cpu_count()} cores shared by the server, {args.procs} bot processes at nice "
        f"{args.bots_nice} and anything else; a fresh server per run; {args.ramp_up:g} s "
        f"ramp-up, then a {args.window:g} s window; one room, 30 Hz ticks and snapshots, "
        f"lean bots all moving ({args.input_rate:g} Hz inputs), no chat; full and delta runs "
        "alternate.",
        "bytes = WebSocket payloads received per bot ÷ its seconds seated in the window; "
        "p50 and mean over the bots, medians over the runs.",
    ]
    print("\n".join("# " + n for n in notes), flush=True)
    results["notes"] = notes
    for game, players in points:
        print(f"{game}, {players} players", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
        for _ in range(args.repeat):
            for mode in MODES:  # alternate: a drift of the machine touches both alike
                runs[mode].append(run_point(game, players, mode, args))
        point: dict[str, Any] = {"game": game, "players": players, "runs": runs}
        point.update({mode: summary(runs[mode]) for mode in MODES})
        results["points"].append(point)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if wide is not None:
        results["points"].append(
            {"game": args.wide_game, "players": args.wide_players, "not_measured": wide}
        )
    print()
    print(table(results["points"]))
    results["verdicts"] = verdicts(results["points"])
    print()
    print("\n".join(results["verdicts"]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
