"""``python -m gameserver`` as a real subprocess: --help, and SIGTERM/SIGINT shutdown."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from websockets.exceptions import ConnectionClosed, InvalidStatus

from clients.python.client import connect
from gameserver.__main__ import build_parser, settings_from_args
from protocol import CloseCode

from .conftest import free_ports

pytestmark = pytest.mark.network

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "gameserver"]


@asynccontextmanager
async def cli_server(log: Path, *args: str) -> AsyncIterator[tuple[trio.Process, str]]:
    """Start the CLI on a free port; yield the process and the URL it printed; always kill it."""
    with log.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(
            [*COMMAND, "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert proc.stdout is not None
        output = b""
        with trio.fail_after(8):
            while b"\n" not in output:
                chunk = await proc.stdout.receive_some(4096)
                if not chunk:
                    errors = await trio.Path(log).read_text()
                    raise AssertionError(f"CLI exited early: {output!r} {errors}")
                output += chunk
        line = output.decode()
        match = re.search(r"gameserver listening on (ws://127\.0\.0\.1:\d+/)", line)
        assert match, line
        yield proc, match.group(1)
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.aclose()


async def test_help_documents_the_options() -> None:
    """--help exits 0 and documents the main options."""
    with trio.fail_after(8):
        result = await trio.run_process([*COMMAND, "--help"], cwd=ROOT, capture_stdout=True)
    assert result.returncode == 0
    text = result.stdout.decode()
    for option in (
        "--tick-rate",
        "--snapshot-rate",
        "--max-players-per-room",
        "--certfile",
        "--keyfile",
        "--allowed-origins",
        "--log-level",
        "--port",
    ):
        assert option in text, option


@pytest.mark.parametrize(
    ("argv", "expected"),
    [([], True), (["--no-stagger-room-ticks"], False), (["--stagger-room-ticks"], True)],
)
def test_a_yes_no_setting_has_a_flag_and_its_negation(argv: list[str], expected: bool) -> None:
    """Boolean settings get --name / --no-name; the parsed Settings carry the choice."""
    args = build_parser().parse_args(["--tick-rate", "60", *argv])
    settings = settings_from_args(args)
    assert settings.stagger_room_ticks is expected
    assert settings.tick_rate == 60


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_signal_closes_clients_1001_and_exits_0(tmp_path: Path, signum: int) -> None:
    """On SIGTERM or SIGINT a connected client gets close 1001 and the process exits 0."""
    log = tmp_path / "stderr.log"
    with trio.fail_after(10):
        async with cli_server(log, "--tick-rate", "20", "--snapshot-rate", "10") as (proc, url):
            async with connect(url, "sig", game="arena") as client:
                await client.next_snapshot()
                proc.send_signal(signum)
                signalled = trio.current_time()
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await client.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == CloseCode.GOING_AWAY
            assert await proc.wait() == 0
            assert trio.current_time() - signalled < 3
    stderr = await trio.Path(log).read_text()
    assert "Traceback" not in stderr, stderr
    assert "closing all clients (1001)" in stderr


async def test_port_in_use_is_one_clear_line() -> None:
    """A port already taken gives one "error:" line and exit 1, not a traceback."""
    taken = trio.socket.socket()
    with taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with trio.fail_after(10):
            result = await trio.run_process(
                [*COMMAND, "--port", str(port)],
                cwd=ROOT,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (another server?); choose another with --port N"
    ]


async def one_error_line(*args: str) -> str:
    """Run the server with ``args``; it must print one line on stderr, nothing on stdout,
    and exit 2 before anything listens. That line."""
    with trio.fail_after(10):
        result = await trio.run_process(
            [*COMMAND, "--port", "0", *args],
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("spec", ["nosuch_module:Game", "gameserver.games.arena.Arena"])
async def test_bad_game_spec_is_one_clear_line(spec: str) -> None:
    """An unimportable or malformed --game gives one "error: --game" line and exit 2."""
    assert (await one_error_line("--game", spec)).startswith("error: --game:")


@pytest.mark.parametrize(
    "spec",
    [
        "nosuch_module:check",
        "tests.net.auth_hooks:no_such_hook",
        "tests.net.auth_hooks.check",
        "tests.net.auth_hooks:TOKENS",
    ],
    ids=["no-module", "no-attribute", "no-colon", "not-callable"],
)
async def test_bad_auth_spec_is_one_clear_line(spec: str) -> None:
    """An --auth that cannot be imported (or is no function) gives one "error: --auth:" line
    and exit 2 before anything listens."""
    assert (await one_error_line("--auth", spec)).startswith("error: --auth:")


async def test_auth_hook_from_the_command_line(tmp_path: Path) -> None:
    """--auth module:function is imported and used: a known token plays under its
    identity's name, an unknown one gets 401."""
    log = tmp_path / "stderr.log"
    with trio.fail_after(10):
        async with cli_server(log, "--auth", "tests.net.auth_hooks:check") as (_proc, url):
            async with connect(url + "?token=t-ada", "someone", game="arena") as client:
                assert client.room is not None
                assert [p.name for p in client.room.players] == ["Ada"]
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url + "?token=wrong", "someone"):
                    pass
            assert refused.value.response.status_code == 401


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_an_unreachable_redis_is_one_error_line(workers: str) -> None:
    """Redis away at start: one "error:" line naming it, exit 2, no worker started (the
    supervisor checks it before starting any)."""
    url = f"redis://127.0.0.1:{free_ports(1)}/0"  # nothing listens there
    port = str(free_ports(3))  # several workers share a fixed port
    line = await one_error_line("--workers", workers, "--redis", url, "--port", port)
    assert line.startswith(f"error: Redis at {url} did not answer"), line


async def test_workers_without_redis_is_one_error_line() -> None:
    line = await one_error_line("--workers", "2")
    assert line == "error: workers > 1 needs redis (a redis:// URL for the room directory)"
