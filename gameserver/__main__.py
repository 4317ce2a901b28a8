"""Command line: ``python -m gameserver --port 9001``.

Each option maps to one :class:`~gameserver.settings.Settings` field and its
help text is that field's documentation. SIGINT and SIGTERM close every client
with 1001 and exit 0 within ``shutdown_timeout``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib.metadata
import logging
import os
import signal
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import trio

from .auth import Authenticate, load_authenticate
from .config import ConfigError, merge, parse_text
from .game import Game
from .games import default_games, load_game
from .logfmt import configure_logging
from .settings import Settings, setting_docs, settings_table
from .trio.server import RunningServer, serve_game

log = logging.getLogger("gameserver")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one ``error:`` line and exit 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def _flag_type(kind: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return parse_text(kind, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    """One ``--flag`` per Settings field, its help text being that field's documentation."""
    docs = setting_docs()
    defaults = Settings()
    parser = _Parser(
        prog="python -m gameserver",
        description="Authoritative multiplayer game server: WebSocket + msgpack, trio tick loop. "
        "Open http://localhost:PORT/ in a browser to play arena; GET /healthz is the status. "
        "Every option below is a named limit or setting (see README, 'Settings'); each can "
        "also come from GAMESERVER_<NAME> in the environment or from the --config file "
        "(flags > environment > file > defaults).",
    )
    for f in dataclasses.fields(Settings):
        default = getattr(defaults, f.name)
        if f.type == "bool":  # --name / --no-name
            parser.add_argument(
                "--" + f.name.replace("_", "-"),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{docs.get(f.name, '')} (default: {default})".replace("%", "%%"),
            )
            continue
        shown = ",".join(default) if isinstance(default, tuple) else default
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=_flag_type(str(f.type)),
            default=argparse.SUPPRESS,
            metavar=f.name.upper(),
            help=f"{docs.get(f.name, '')} (default: {shown})".replace("%", "%%"),
        )
    parser.add_argument(
        "--game",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="Register another Game subclass (repeatable); arena is always registered.",
    )
    parser.add_argument(
        "--auth",
        metavar="MODULE:FUNCTION",
        help="Authenticate each connection with this hook before its 101: it gets a "
        "gameserver.AuthRequest and returns a gameserver.Identity or raises "
        "gameserver.AuthRefused (HTTP 401). See README, 'Who is playing'.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="Read settings from this TOML file (top-level keys named as the settings, "
        "e.g. tick_rate = 20); flags and GAMESERVER_* variables override it.",
    )
    parser.add_argument("--version", action="version", version=f"gameserver {_version()}")
    parser.add_argument(
        "--print-settings",
        action="store_true",
        help="Print every setting with its default and meaning as a Markdown table, and exit.",
    )
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("trio-gameserver")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def settings_from_args(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    toml: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the flags given with the environment and the config file (see gameserver.config)."""
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings) if f.name in args}
    return merge(flags=flags, environ=environ, toml=toml, toml_source=args.config or "config")


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"--config: {exc.strerror}: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


async def run(
    settings: Settings,
    extra_games: Sequence[type[Game]] = (),
    authenticate: Authenticate | None = None,
) -> None:
    games = default_games()
    for game in extra_games:
        games.register(game)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server: RunningServer = await nursery.start(serve_game, settings, games, authenticate)
            # Everything allocated so far lives as long as the process: keep the
            # cyclic GC from rescanning it on every collection (shorter GC pauses).
            gc.freeze()
            local = settings.host in ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost")
            page_host = "localhost" if local else settings.host
            scheme = "https" if server.tls else "http"
            print(
                f"gameserver listening on {server.url}  (play: {scheme}://{page_host}:{server.port}/)",
                flush=True,
            )
            async for signum in signals:
                log.info("received %s: closing all clients (1001)", signal.Signals(signum).name)
                await server.aclose()
                break


def _leaves(exc: BaseException) -> list[BaseException]:
    """The plain exceptions inside (possibly nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.print_settings:
        print(settings_table())
        return 0
    try:
        toml = _read_toml(args.config) if args.config else None
        settings = settings_from_args(args, os.environ, toml)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        games = [load_game(spec) for spec in args.game]
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        print(f"error: --game: {exc}", file=sys.stderr)
        return 2
    try:
        authenticate = load_authenticate(args.auth) if args.auth else None
    except Exception as exc:
        # Importing runs the developer's module: whatever it raises is a startup error.
        print(f"error: --auth: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    failures: list[BaseException] = []
    try:
        trio.run(run, settings, games, authenticate)
    except* OSError as group:
        # Port in use, certificate unreadable, …: trio reports it in an ExceptionGroup.
        failures.extend(_leaves(group))
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
