"""Netcode feel at a given latency, measured: what a player of the browser page notices.

Two parts:

- the page in Chromium (Debian's /usr/bin/chromium, sync Playwright) through a
  latency proxy (tests/browser/proxy.py: ``--one-way`` ms each way, uniform
  ``--jitter`` ms, TCP order kept) against a real server, a Python witness in the
  room. Each round joins, moves (the first move after the join), moves again,
  presses Reconnect and moves (the first move after it); each move is judged from
  the frames the page drew (tests/browser/feel.py says how): time to the first
  visible move, lurch (behind or ahead of steady motion while held), slide-back
  and creep after the release, end error against the server; and how long the
  RTT the page shows takes to settle after a join;
- the server's RTT/jitter estimator on simulated samples (no browser): how long
  SRTT takes to come within 15 ms of the link's mean and jitter within half of
  the link's mean |R_i - R_{i-1}|, with the burst after a welcome and, for
  comparison, with RFC gains from the first sample and a ping a second.

    python bench/feel.py                          # both, a table
    python bench/feel.py --rounds 5 --json out.json
    python bench/feel.py --estimator-only         # the simulation only
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import itertools
import json
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gameserver.latency import LatencyEstimator
from gameserver.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


# -- the estimator on simulated samples ------------------------------------------------


def _rfc_from_first(samples: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """(t, SRTT, J) after each sample with RFC 6298 / RFC 3550 gains from the first sample
    (the estimator before the burst and the restart)."""
    out = []
    srtt = jitter = last = 0.0
    for i, (t, r) in enumerate(samples):
        if i == 0:
            srtt, jitter = r, 0.0
        else:
            srtt = 0.875 * srtt + 0.125 * r
            jitter += (abs(r - last) - jitter) / 16
        last = r
        out.append((t, srtt, jitter))
    return out


def _estimator(samples: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    est = LatencyEstimator()
    out = []
    for t, r in samples:
        sent = t - r
        est.pong_received(est.ping_sent(sent), t)
        out.append((t, est.report.rtt, est.report.jitter))
    return out


def _settled(
    series: list[tuple[float, float, float]], index: int, target: float, tol: float
) -> float:
    """Seconds from which series[index] stays within ``tol`` of ``target`` (inf: never)."""
    since = float("inf")
    for row in series:
        if abs(row[index] - target) > tol:
            since = float("inf")
        elif since == float("inf"):
            since = row[0]
    return since


def simulate(
    rtt_ms: float, jitter_ms: float, first_extra_ms: float, runs: int = 200, seconds: float = 60.0
) -> dict[str, Any]:
    """Convergence times (s after the welcome, median and 90th percentile over ``runs``)."""
    settings = Settings()
    base, spread, extra = rtt_ms / 1000, jitter_ms / 1000, first_extra_ms / 1000
    # Mean |R_i - R_{i-1}| for two independent uniform legs: measured on many draws.
    rng = random.Random(0)
    legs = [
        base + rng.uniform(-spread, spread) + rng.uniform(-spread, spread) for _ in range(20000)
    ]
    true_jitter = statistics.fmean(abs(a - b) for a, b in itertools.pairwise(legs))
    result: dict[str, Any] = {"link_mean_abs_d_ms": round(true_jitter * 1000, 1)}
    schemes: dict[str, tuple[int, Callable[..., list[tuple[float, float, float]]]]] = {
        "burst": (settings.ping_burst, _estimator),
        "one_a_second_rfc": (1, _rfc_from_first),
    }
    for name, (burst, estimate) in schemes.items():
        rtt_times, jitter_times = [], []
        for seed in range(runs):
            rng = random.Random(seed)
            samples, t, sent = [], 0.0, 0
            while t < seconds:
                sent += 1
                r = base + rng.uniform(-spread, spread) + rng.uniform(-spread, spread)
                if sent == 1:
                    r += extra
                samples.append((t + r, r))
                t += settings.ping_burst_interval if sent < burst else settings.ping_interval
            series = estimate(samples)
            rtt_times.append(_settled(series, 1, base, 0.015))
            jitter_times.append(_settled(series, 2, true_jitter, true_jitter / 2))
        result[name] = {
            "rtt_within_15ms_s": _quantiles(rtt_times),
            "jitter_within_half_s": _quantiles(jitter_times),
        }
    return result


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(ordered[len(ordered) // 2], 2),
        "p90": round(ordered[int(len(ordered) * 0.9)], 2),
    }


# -- the page in Chromium ---------------------------------------------------------------


def measure_page(rounds: int, one_way_ms: float, jitter_ms: float) -> dict[str, Any]:
    """Play ``rounds`` rounds in Chromium through the latency proxy; per-move figures."""
    from playwright.sync_api import expect, sync_playwright

    # The browser tests' own pieces (tests/ is not a package mypy checks from here).
    conftest = importlib.import_module("tests.browser.conftest")
    feel = importlib.import_module("tests.browser.feel")
    players = importlib.import_module("tests.browser.players")
    proxies = importlib.import_module("tests.browser.proxy")
    running_server = importlib.import_module("tests.load.conftest").running_server
    CHROMIUM, CHROMIUM_BINARY = conftest.CHROMIUM, conftest.CHROMIUM_BINARY
    TIMEOUT_MS = conftest.TIMEOUT_MS

    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium)")
    moves: dict[str, list[dict[str, float]]] = {}
    settle_ms: list[float] = []
    expect.set_options(timeout=TIMEOUT_MS)
    executable = CHROMIUM_BINARY if CHROMIUM_BINARY.exists() else CHROMIUM
    with (
        running_server("-m", "gameserver", "--log-level", "WARNING") as (url, _pid),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=str(executable), args=conftest.CHROMIUM_FLAGS
        )
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        try:
            for n in range(rounds):
                room = f"feel-{n}"
                with (
                    proxies.CuttableProxy(
                        port, one_way_ms / 1000, jitter_ms / 1000, seed=n
                    ) as proxy,
                    contextlib.closing(browser.new_context()) as context,
                ):
                    context.set_default_timeout(TIMEOUT_MS)
                    page = context.new_page()
                    page.goto(f"http://127.0.0.1:{proxy.port}/?room={room}")
                    player, joined_at = feel.start(page, "feel")
                    with players.ThreadPlayer(url, "witness", room=room) as witness:
                        played = {"first after join": feel.play_move(page, witness, player)}
                        played["second"] = feel.play_move(page, witness, player)
                        player = feel.rejoin(page)
                        played["first after Reconnect"] = feel.play_move(page, witness, player)
                    first = feel.session_reports(page.evaluate("window.feel.latency"), joined_at)
                    final_ms = first[-1][1] / 1000
                    settle_ms.append(feel.converged_after(first, joined_at, final_ms, within=15))
                for what, move in played.items():
                    moves.setdefault(what, []).append(move.as_dict())
        finally:
            browser.close()
    return {"moves": moves, "rtt_settled_ms": settle_ms}


# -- output --------------------------------------------------------------------------------


def print_page(page: dict[str, Any], one_way_ms: float, jitter_ms: float) -> None:
    print(f"\nThe page at {2 * one_way_ms:.0f} ms RTT (±{jitter_ms:.0f} ms each way), per move:")
    columns = [
        ("first_visible_ms", "first visible (ms)"),
        ("lurch_deficit", "lurch behind"),
        ("lurch_surge", "lurch ahead"),
        ("slide_back", "slide-back"),
        ("creep", "creep after stop"),
        ("end_error", "end error"),
    ]
    print(f"{'move':<24}" + "".join(f"{title:>20}" for _, title in columns))
    for what, rows in page["moves"].items():
        cells = []
        for key, _ in columns:
            values = [row[key] for row in rows]
            cells.append(f"{statistics.median(values):.3g} / {max(values):.3g}")
        print(f"{what:<24}" + "".join(f"{cell:>20}" for cell in cells))
    print("(median / max over rounds; distances in world units)")
    settled = page["rtt_settled_ms"]
    print(
        "HUD RTT within 15 ms of where it ends, after the join: "
        + ", ".join(f"{v:.0f} ms" for v in settled)
    )


def print_estimator(sim: dict[str, Any], rtt_ms: float, jitter_ms: float, extra: float) -> None:
    print(
        f"\nRTT/jitter estimator, simulated: {rtt_ms:.0f} ms link, ±{jitter_ms:.0f} ms each way,"
        f" first sample {extra:.0f} ms high (link mean |D| {sim['link_mean_abs_d_ms']} ms)"
    )
    print(f"{'pings':<40}{'SRTT within 15 ms':>22}{'jitter within half':>22}")
    for name, title in (
        ("burst", "burst after welcome (now)"),
        ("one_a_second_rfc", "one a second, RFC gains from the first"),
    ):
        row = sim[name]
        rtt = "{p50} s / {p90} s".format(**row["rtt_within_15ms_s"])
        jit = "{p50} s / {p90} s".format(**row["jitter_within_half_s"])
        print(f"{title:<40}{rtt:>22}{jit:>22}")
    print("(median / 90th percentile, seconds after the welcome)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="browser rounds (3)")
    parser.add_argument("--one-way", type=float, default=75.0, help="ms each way (75)")
    parser.add_argument("--jitter", type=float, default=20.0, help="± ms each way (20)")
    parser.add_argument("--first-extra", type=float, default=30.0, help="simulated: ms (30)")
    parser.add_argument("--estimator-only", action="store_true", help="no browser")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    rtt_ms = 2 * args.one_way
    report: dict[str, Any] = {
        "one_way_ms": args.one_way,
        "jitter_ms": args.jitter,
        "estimator": simulate(rtt_ms, args.jitter, args.first_extra),
    }
    if not args.estimator_only:
        sys.path.insert(0, str(ROOT))  # tests/ is not installed: run from the repository
        report["page"] = measure_page(args.rounds, args.one_way, args.jitter)
        print_page(report["page"], args.one_way, args.jitter)
    print_estimator(report["estimator"], rtt_ms, args.jitter, args.first_extra)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
