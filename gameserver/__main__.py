"""Command line: ``python -m gameserver --port 9001``.

Each option maps to one :class:`~gameserver.settings.Settings` field and its
help text is that field's documentation. SIGINT and SIGTERM close every client
with 1001 and exit 0 within ``shutdown_timeout``.

With ``--redis`` the process is a supervisor (``gameserver/trio/supervisor.py``)
that runs ``--workers`` copies of this command, each given the hidden flag
``--worker-index i``; a worker is a server as above, which also stops when its
supervisor goes away (EOF on the pipe it has for stdin). Exit codes: 0 after a
signal, 1 for an OS error (port in use, …), 2 for a configuration error
(bad flags, ``ConfigError`` at startup).
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import gc
import importlib.metadata
import logging
import os
import signal
import stat
import sys
import tomllib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, NoReturn

import trio

from .auth import Authenticate, load_authenticate
from .cluster.restarts import CONFIG_ERROR
from .config import ConfigError, merge, parse_text
from .game import Game
from .games import default_games, load_game
from .logfmt import configure_logging
from .settings import Settings, setting_docs, settings_table
from .trio.server import RunningServer, serve_game
from .trio.supervisor import supervise, worker_name

log = logging.getLogger("gameserver")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one ``error:`` line and exit 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def _flag_type(kind: str, name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return parse_text(kind, text, name)
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
            type=_flag_type(str(f.type), f.name),
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
        "--worker-index",
        type=int,
        default=None,
        help=argparse.SUPPRESS,  # set by the supervisor: this process is its worker i
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
    worker_index: int | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or, for a worker, until its supervisor goes away)."""
    games = default_games()
    for game in extra_games:
        games.register(game)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server: RunningServer = await nursery.start(
                serve_game, settings, games, authenticate, worker_index
            )
            # Everything allocated so far lives as long as the process: keep the
            # cyclic GC from rescanning it on every collection (shorter GC pauses).
            gc.freeze()
            if worker_index is None:
                local = settings.host in ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost")
                page_host = "localhost" if local else settings.host
                scheme = "https" if server.tls else "http"
                print(
                    f"gameserver listening on {server.url}  "
                    f"(play: {scheme}://{page_host}:{server.port}/)",
                    flush=True,
                )
            else:
                # The supervisor reads this first line as "listening".
                direct = server.worker.url if server.worker is not None else server.url
                print(f"worker {worker_name(worker_index)} listening: {direct}", flush=True)
            stop = trio.Event()
            nursery.start_soon(_on_signal, signals, stop)
            if worker_index is not None and stat.S_ISFIFO(os.fstat(0).st_mode):
                nursery.start_soon(_on_supervisor_gone, stop)
            await stop.wait()
            await server.aclose()
            nursery.cancel_scope.cancel()


async def _on_signal(signals: AsyncIterator[int], stop: trio.Event) -> None:
    async for signum in signals:
        log.info("received %s: closing all clients (1001)", signal.Signals(signum).name)
        stop.set()


async def _on_supervisor_gone(stop: trio.Event) -> None:
    """A worker's stdin is a pipe from its supervisor: EOF means the supervisor is gone
    (even SIGKILLed), and an orphan worker must not keep serving the port."""
    async with trio.lowlevel.FdStream(os.dup(0)) as stdin:
        while await stdin.receive_some():
            pass
    log.warning("the supervisor is gone: closing all clients (1001)")
    stop.set()


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
    supervisor = settings.clustered and args.worker_index is None
    if args.worker_index is not None:
        process = worker_name(args.worker_index)
    else:
        process = "supervisor" if supervisor else ""
    configure_logging(settings.log_level, settings.log_format, process)
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
    if supervisor:
        # The workers get this same command line (plus --worker-index).
        return trio.run(supervise, settings, list(argv if argv is not None else sys.argv[1:]))
    failures: list[BaseException] = []
    config_errors: list[BaseException] = []
    try:
        trio.run(run, settings, games, authenticate, args.worker_index)
    except* ConfigError as group:
        # Cannot start as configured (e.g. Redis unreachable): a supervisor must not retry.
        config_errors.extend(_leaves(group))
    except* OSError as group:
        # Port in use, certificate unreadable, …: trio reports it in an ExceptionGroup.
        failures.extend(_leaves(group))
    for failure in [*config_errors, *failures]:
        if isinstance(failure, OSError) and failure.errno == errno.EADDRINUSE:
            failure = OSError(
                f"port {settings.port} on {settings.host} is in use (another server?); "
                "choose another with --port N"
            )
        print(f"error: {failure}", file=sys.stderr)
    if config_errors:
        return CONFIG_ERROR
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
