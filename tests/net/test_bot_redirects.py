"""The load tester's bots follow redirects (PROTOCOL.md §5.11) through tests/fake_cluster.py.

Their connection (a lean one for ``ws://``) is swapped under the same BotClient,
polled reading carries on over the new one, and a bot's join and rejoin times
are split into direct and redirected ones.
"""

from __future__ import annotations

import random

import pytest
import trio

from clients.bots import Bot, BotPlan, BotSettings, Timeline
from clients.loadtest.metrics import Metrics
from clients.loadtest.transport import open_bot_client
from clients.loadtest.wsclient import LeanConnection
from gameserver.trio.poller import ReadPoller, available
from gameserver.trio.timers import TimerWheel
from protocol import ServerMessage, Snapshot
from tests.fake_cluster import fake_cluster

from .conftest import StartServer

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(not available(), reason="epoll is Linux only"),
]

LIMIT = 10.0


async def test_a_bot_connection_is_swapped_and_polled_after_a_redirect(
    start_server: StartServer,
) -> None:
    # The fake worker's proxy drops its upstream without a close 1000: no seat to hold.
    server = await start_server(reconnect_grace=0)
    poller = ReadPoller()
    got = trio.Event()

    def on_message(message: ServerMessage) -> None:
        if isinstance(message, Snapshot):
            got.set()

    with trio.fail_after(LIMIT):
        async with (
            fake_cluster(server.url) as cluster,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(poller.run)
            async with open_bot_client(cluster.front_url, Metrics()) as client:
                first = client.ws
                welcome = await client.hello("lean", "arena", "r1")
                assert welcome.room is not None and welcome.room.name == "r1"
                assert client.redirects == 1
                assert client.ws is not first and isinstance(client.ws, LeanConnection)
                assert first.close_code is not None  # the old one is closed
                assert client.start_reading(poller, on_message, lambda exc: None)
                await got.wait()
                client.stop_reading()
            nursery.cancel_scope.cancel()
        assert server.core.rooms.player_count == 0


async def test_a_bots_rejoin_redirected_is_counted_apart(start_server: StartServer) -> None:
    """Hello goes straight through; the rejoin's join (leave + join) is redirected."""
    server = await start_server()
    metrics = Metrics()
    with trio.fail_after(LIMIT):
        async with (
            fake_cluster(server.url, redirect_hello=False) as cluster,
            trio.open_nursery() as nursery,
        ):
            poller, pacer = ReadPoller(), TimerWheel()
            nursery.start_soon(poller.run)
            nursery.start_soon(pacer.run)
            now = trio.current_time()
            timeline = Timeline(now, now + 3.0)
            plan = BotPlan(0, start_at=now, room="r2", churn_at=now + 0.2)
            settings = BotSettings(cluster.front_url, input_rate=10, chat_interval=0)
            bot = Bot(plan, settings, timeline, metrics, random.Random(1), poller, pacer)
            metrics.recording = True
            await bot.run()
            nursery.cancel_scope.cancel()
    c = metrics.counters
    assert c["joins"] == 2 and c["joins_redirected"] == 1 and c["redirect_hops"] == 1
    assert metrics.summary("join_direct")["count"] == 1
    assert metrics.summary("join_redirected")["count"] == 1
    assert c["dropped"] == 0 and c["connect_failures"] == 0
    assert not any(metrics.errors.values()), metrics.errors
    assert c["snapshots"] > 0  # it played on after the hop
    assert [r.room for r in cluster.redirects] == ["r2"]
