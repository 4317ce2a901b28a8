"""The JSON log of whole sessions on a real server: one object per line, naming the peer."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing

from clients.python.client import connect
from gameserver.logfmt import JsonFormatter
from protocol import Chat, Event

from . import auth_hooks
from .conftest import StartServer, http_exchange, upgrade_request
from .test_http import expect

pytestmark = pytest.mark.network


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the gameserver loggers write at INFO, formatted as --log-format json does."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gameserver")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def records(out: io.StringIO) -> list[dict[str, Any]]:
    lines = out.getvalue().splitlines()
    return [json.loads(line) for line in lines]  # each line alone is one JSON object


async def test_a_whole_session_in_json(start_server: StartServer, json_log: io.StringIO) -> None:
    """Connect (authenticated), join, chat, leave, close: opened, joined, left and closed
    lines, each one JSON object naming the peer; the token never appears."""
    server = await start_server(authenticate=auth_hooks.check)
    with trio.fail_after(10):
        async with connect(
            server.url + "?token=t-ada", "x", game="arena", headers={"User-Agent": "test-agent/1"}
        ) as client:
            await client.send(Chat("hello there"))
            await expect(client, lambda m: isinstance(m, Event) and m.kind == "chat")
            await client.leave()
            peer = f"127.0.0.1#{client.player_id}"
        await trio.testing.wait_all_tasks_blocked()
    logged = records(json_log)
    mine = [r for r in logged if r.get("peer") == peer]
    assert [r["event"] for r in mine] == ["opened", "joined", "left", "closed"]
    opened, joined, left, closed = mine
    assert opened["user_agent"] == "test-agent/1"
    assert opened["user"] == "u-1"
    assert joined["room"] == left["room"] == "arena-1" and joined["game"] == "arena"
    assert closed["code"] == 1000 and closed["closed_by"] == "client"
    assert closed["duration_s"] >= 0
    assert closed["bytes_in"] > 0 and closed["bytes_out"] > 0
    assert closed["messages_in"] >= 3  # hello, chat, leave (and pongs)
    assert closed["messages_out"] >= 4  # welcome, join event, chat event, left
    for record in mine:
        assert record["message"].startswith(peer)
        assert record["level"] == "INFO"
    assert "t-ada" not in json_log.getvalue()


async def test_a_connection_flood_is_summarised(
    start_server: StartServer, json_log: io.StringIO
) -> None:
    """Twenty upgrades over the per-IP cap: one line for the first refusal, not twenty."""
    server = await start_server(max_connections_per_ip=1)
    with trio.fail_after(10):
        async with connect(server.url, "one"):
            for _ in range(20):
                response = await http_exchange(server.port, upgrade_request(server.port))
                assert response.status == 429
    refusals = [r for r in records(json_log) if r.get("event") == "refused_per_ip"]
    assert len(refusals) == 1
    assert refusals[0]["peer"] == "127.0.0.1"
    assert refusals[0]["level"] == "WARNING"
    # What the server's flush task does every 2 s, once the 10 s window has passed.
    server.front.summary.flush(time.monotonic() + 10)
    summaries = [r for r in records(json_log) if r.get("event") == "refused_per_ip"]
    assert summaries[-1]["count"] == 19


async def test_refused_authentication_is_summarised_too(
    start_server: StartServer, json_log: io.StringIO
) -> None:
    """Bad tokens by the dozen: one INFO line for the first, the rest counted."""
    server = await start_server(authenticate=auth_hooks.check)
    with trio.fail_after(10):
        for i in range(12):
            request = upgrade_request(server.port, f"/?token=wrong-{i}")
            assert (await http_exchange(server.port, request)).status == 401
    refusals = [r for r in records(json_log) if r.get("event") == "auth_refused"]
    assert [r["level"] for r in refusals] == ["INFO"]
    assert refusals[0]["message"] == "127.0.0.1: authentication refused: unknown token"
    server.front.summary.flush(time.monotonic() + 10)
    assert records(json_log)[-1]["count"] == 11
    assert "wrong-" not in json_log.getvalue()  # tokens are never logged
