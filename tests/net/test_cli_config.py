"""The CLI's configuration: --version, GAMESERVER_* variables, --config TOML, and their
precedence (flags > environment > file > defaults), each mistake one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
import trio.testing

from clients.python.client import connect

from .conftest import get_request, http_exchange
from .test_cli import COMMAND, ROOT, cli_server, one_error_line

pytestmark = pytest.mark.network


async def test_version() -> None:
    with trio.fail_after(10):
        result = await trio.run_process([*COMMAND, "--version"], cwd=ROOT, capture_stdout=True)
    assert result.stdout.decode().startswith("gameserver 0.1.0")


@pytest.mark.parametrize(
    ("args", "environ", "start"),
    [
        (["--log-level", "foo"], {}, "error: log_level must be one of DEBUG, INFO"),
        (["--tick-rate", "abc"], {}, "error: argument --tick-rate: 'abc' is not an integer"),
        (["--no-such-flag"], {}, "error: unrecognized arguments: --no-such-flag"),
        ([], {"GAMESERVER_TICK_RATE": "abc"}, "error: GAMESERVER_TICK_RATE: 'abc' is not an"),
        ([], {"GAMESERVER_TICKRATE": "20"}, "error: GAMESERVER_TICKRATE: no such setting"),
        ([], {"GAMESERVER_LOG_FORMAT": "xml"}, "error: log_format must be text or json"),
        (["--config", "/nonexistent.toml"], {}, "error: --config: No such file or directory"),
    ],
)
async def test_mistakes_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, args: list[str], environ: dict[str, str], start: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert (await one_error_line(*args)).startswith(start)


@pytest.mark.parametrize(
    ("toml", "start"),
    [
        ("tick_rat = 20\n", "error: {path}: 'tick_rat' is no setting"),
        ('tick_rate = "fast"\n', "error: {path}: tick_rate: 'fast' is not int"),
        ("tick_rate = \n", "error: {path}: Invalid value"),
    ],
)
async def test_config_file_mistakes_are_one_line(tmp_path: Path, toml: str, start: str) -> None:
    path = tmp_path / "server.toml"
    path.write_text(toml)
    assert (await one_error_line("--config", str(path))).startswith(start.format(path=path))


async def test_precedence_flags_environment_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tick_rate from the flag over the environment over the file; snapshot_rate from the
    environment over the file; log_format from the file: every stderr line is JSON."""
    config = tmp_path / "server.toml"
    config.write_text('tick_rate = 10\nsnapshot_rate = 5\nlog_format = "json"\n')
    monkeypatch.setenv("GAMESERVER_TICK_RATE", "20")
    monkeypatch.setenv("GAMESERVER_SNAPSHOT_RATE", "8")
    log = tmp_path / "stderr.log"
    with trio.fail_after(15):
        async with cli_server(log, "--config", str(config), "--tick-rate", "24") as (proc, url):
            port = int(url.rsplit(":", 1)[1].strip("/"))
            health = json.loads((await http_exchange(port, get_request(port, "/healthz"))).body)
            async with connect(url, "cfg", game="arena") as client:
                welcome_rate = client.welcome.tick_rate if client.welcome else None
            proc.terminate()
            await proc.wait()
    assert health["tick_rate"] == 24
    assert health["snapshot_rate"] == 8
    assert welcome_rate == 24
    lines = log.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"opened", "joined", "left", "closed"} <= {e.get("event") for e in events}
