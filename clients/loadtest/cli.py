"""Command line of the load tester.

Exit status: 0 when the run went through; 1 when more than
``--max-failure-rate`` of connection attempts failed (or a worker crashed);
2 for a usage error. The run lasts ``--ramp-up`` + ``--duration`` seconds (plus
a few seconds to close politely); every figure except connect and join times
covers the ``--duration`` window after the ramp-up. Only ``--url`` is contacted
(its WebSocket and its /healthz).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from clients.loadtest.report import (
    EXIT_USAGE,
    build_report,
    live_view,
    progress_line,
    render_report,
)
from clients.loadtest.runner import LoadTestConfig, Progress, run_pool


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _non_negative(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
        return value

    return parse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m clients.loadtest",
        description="Drive a game server with headless bots and report latency percentiles "
        "from both ends (bots' measurements and the server's /healthz).",
    )
    p.add_argument(
        "--url", required=True, help="WebSocket URL of the server, e.g. ws://127.0.0.1:9001/"
    )
    p.add_argument("--bots", type=_positive(int), default=200, help="number of bots (default: 200)")
    p.add_argument(
        "--duration",
        type=_positive(float),
        default=60.0,
        help="measured window in seconds, after the ramp-up (default: 60)",
    )
    p.add_argument(
        "--procs",
        type=_positive(int),
        default=1,
        help="worker processes to spread the bots over (default: 1)",
    )
    p.add_argument("--game", default="arena", help="game to join (default: arena)")
    p.add_argument(
        "--room-size",
        type=_non_negative(int),
        default=0,
        help="seat bots in named rooms of this many (load-1, load-2, ...); "
        "0: the server's matchmaking (default)",
    )
    p.add_argument(
        "--ramp-up",
        type=_non_negative(float),
        default=5.0,
        help="seconds over which bots connect, evenly spread (default: 5)",
    )
    p.add_argument(
        "--input-rate",
        type=_positive(float),
        default=10.0,
        help="inputs per second per bot (default: 10)",
    )
    p.add_argument(
        "--chat-interval",
        type=_non_negative(float),
        default=20.0,
        help="mean seconds between a bot's chat lines; 0: no chat (default: 20)",
    )
    p.add_argument(
        "--churn",
        type=_fraction,
        default=0.1,
        help="fraction of bots that leave and rejoin once in the window (default: 0.1)",
    )
    p.add_argument(
        "--drop-rate",
        type=_non_negative(float),
        default=0.0,
        help="times a minute each bot cuts its own TCP connection (a reset, no close "
        "frame) and resumes its seat with its token; reports resume times (default: 0)",
    )
    p.add_argument(
        "--slow-fraction",
        type=_fraction,
        default=0.0,
        help="fraction of bots that freeze (stop reading and sending) "
        "--slow-after s into the window (default: 0)",
    )
    p.add_argument(
        "--slow-after",
        type=_non_negative(float),
        default=1.0,
        help="seconds into the window when frozen bots freeze (default: 1)",
    )
    p.add_argument(
        "--slow-rcvbuf",
        type=_non_negative(int),
        default=0,
        help="SO_RCVBUF bytes for frozen bots' sockets (a slow link); 0: system default",
    )
    p.add_argument("--seed", type=int, default=1, help="seed for the bots' choices (default: 1)")
    p.add_argument(
        "--server-pid",
        type=int,
        default=None,
        help="read the server's CPU time from this process (psutil) instead of /healthz",
    )
    p.add_argument(
        "--server-url",
        action="append",
        default=[],
        metavar="URL",
        help="also sample this server's /healthz when the window opens and closes, "
        "e.g. each worker of a cluster on its direct port (repeatable; JSON: servers)",
    )
    p.add_argument(
        "--max-failure-rate",
        type=_fraction,
        default=0.05,
        help="exit 1 when more than this fraction of connection attempts fail (default: 0.05)",
    )
    p.add_argument(
        "--open-timeout",
        type=_positive(float),
        default=10.0,
        help="seconds for connect + hello + seat (default: 10)",
    )
    p.add_argument(
        "--full-decode",
        action="store_true",
        help="decode and validate every snapshot's state "
        "(costs the bots ~20x more CPU per snapshot)",
    )
    p.add_argument(
        "--lean",
        action="store_true",
        help="lean bots: read only id, tick and ack of each snapshot and record no "
        "per-snapshot histogram (lateness, inter-arrival, jitter, server RTT); snapshots "
        "are still counted, on time or not, inputs sent and pings answered "
        "(10-15%% less of the bots' CPU)",
    )
    p.add_argument(
        "--deltas",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ask for delta snapshots (hello.deltas) and acknowledge every snapshot, "
        "with the next input or an ack message; --no-deltas: full snapshots, an ack "
        "only with each input, as clients without deltas do (default: --deltas)",
    )
    p.add_argument(
        "--acks",
        choices=("every", "inputs"),
        default="every",
        help="with --deltas: acknowledge every snapshot (PROTOCOL.md §5.6), or only in "
        "inputs (input.ack, --input-rate a second: fewer messages, older bases, bigger "
        "patches) (default: every)",
    )
    p.add_argument("--json", metavar="PATH", default=None, help="write the report as JSON to PATH")
    p.add_argument(
        "--quiet", action="store_true", help="no live progress (the final table is still printed)"
    )
    return p


def config_from_args(args: argparse.Namespace) -> LoadTestConfig:
    return LoadTestConfig(
        url=args.url,
        bots=args.bots,
        duration=args.duration,
        procs=args.procs,
        game=args.game,
        room_size=args.room_size,
        ramp_up=args.ramp_up,
        input_rate=args.input_rate,
        chat_interval=args.chat_interval,
        churn=args.churn,
        drop_rate=args.drop_rate,
        slow_fraction=args.slow_fraction,
        slow_after=args.slow_after,
        slow_rcvbuf=args.slow_rcvbuf,
        seed=args.seed,
        server_pid=args.server_pid,
        max_failure_rate=args.max_failure_rate,
        open_timeout=args.open_timeout,
        fast_decode=not args.full_decode,
        lean=args.lean,
        deltas=args.deltas,
        ack_every_snapshot=args.acks == "every",
        server_urls=tuple(args.server_url),
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a usage error
    if not args.url.startswith(("ws://", "wss://")):
        parser.print_usage(sys.stderr)
        print("error: --url must start with ws:// or wss://", file=sys.stderr)
        return EXIT_USAGE
    config = config_from_args(args)
    # Ctrl-C or SIGTERM: stop the bots early and still report (a shell may start us
    # with SIGINT ignored, so install both handlers explicitly).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    console = Console()
    if args.quiet:
        result = run_pool(config)
    elif console.is_terminal:
        with Live(console=console, refresh_per_second=2, transient=True) as live:

            def show(progress: Progress) -> None:
                live.update(live_view(progress))

            result = run_pool(config, show)
    else:
        last = [0.0]

        def log_line(progress: Progress) -> None:
            if time.monotonic() - last[0] >= 5.0:
                last[0] = time.monotonic()
                print(progress_line(progress), flush=True)

        result = run_pool(config, log_line)
    report = build_report(config, result)
    render_report(report, console)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return int(report["exit_code"])
