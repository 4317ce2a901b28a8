"""Command line: ``python -m gameserver --port 9001``.

Each option maps to one :class:`~gameserver.settings.Settings` field and its
help text is that field's documentation. SIGINT and SIGTERM close every client
with 1001 and exit 0 within ``shutdown_timeout``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

import trio

from .games import default_games, load_game
from .settings import Settings, setting_docs, settings_table
from .trio.server import RunningServer, serve_game

log = logging.getLogger("gameserver")

_OPTIONS: tuple[tuple[str, type], ...] = (
    ("host", str),
    ("port", int),
    ("tick_rate", int),
    ("snapshot_rate", int),
    ("max_players_per_room", int),
    ("max_rooms", int),
    ("max_connections", int),
    ("max_connections_per_ip", int),
    ("max_message_bytes", int),
    ("messages_per_second", float),
    ("send_timeout", float),
    ("ping_interval", float),
    ("ping_timeout", float),
    ("empty_room_grace", float),
    ("certfile", str),
    ("keyfile", str),
    ("log_level", str),
)


def build_parser() -> argparse.ArgumentParser:
    docs = setting_docs()
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m gameserver",
        description="Authoritative multiplayer game server: WebSocket + msgpack, trio tick loop. "
        "Open http://HOST:PORT/ in a browser to play; GET /healthz for status.",
    )
    for name, kind in _OPTIONS:
        default = getattr(defaults, name)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=kind,
            default=default,
            help=f"{docs.get(name, '')} (default: {default})",
        )
    parser.add_argument(
        "--allowed-origins",
        default="",
        help=docs["allowed_origins"] + " Comma-separated, e.g. https://game.example.",
    )
    parser.add_argument(
        "--game",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="Register another Game subclass (repeatable); arena is always registered.",
    )
    parser.add_argument(
        "--print-settings",
        action="store_true",
        help="Print every setting with its default and meaning as a Markdown table, and exit.",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    values = {name: getattr(args, name) for name, _ in _OPTIONS}
    origins = tuple(o.strip() for o in args.allowed_origins.split(",") if o.strip())
    return Settings(**values, allowed_origins=origins)


async def run(settings: Settings, game_specs: Sequence[str] = ()) -> None:
    games = default_games()
    for spec in game_specs:
        games.register(load_game(spec))
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server: RunningServer = await nursery.start(serve_game, settings, games)
            print(
                f"gameserver listening on {server.url}  (browser: "
                f"http{'s' if server.tls else ''}://{settings.host}:{server.port}/)",
                flush=True,
            )
            async for signum in signals:
                log.info("received %s: closing all clients (1001)", signal.Signals(signum).name)
                await server.aclose()
                break


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.print_settings:
        print(settings_table())
        return 0
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        trio.run(run, settings, args.game)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
