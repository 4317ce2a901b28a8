"""Fixtures for the cluster tests: workers in this process that share the session's
redis-server (``tests/conftest.py``), each test under its own key prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from gameserver import Settings
from gameserver.trio import RunningServer, serve_game
from tests.net.conftest import FAST
from tests.redis_server import RedisServer


def cluster_settings(url: str, prefix: str, **overrides: Any) -> Settings:
    """Settings of one worker of a test cluster (a lone worker per "host": its port is its URL)."""
    base: dict[str, Any] = {
        **FAST,
        "redis": url,
        "redis_prefix": prefix,
        # Records live three heartbeats: 1.5 s, enough for a test process whose loop is
        # busy with a hundred clients on a shared 2-core machine.
        "heartbeat_interval": 0.5,
        "redis_timeout": 1.0,
        "max_connections_per_ip": 1000,
        "directory_join_burst": 1000,
    }
    return Settings(**{**base, **overrides})


class Cluster:
    """Workers started in one trio run, sharing one Redis: ``await cluster.start(n)``."""

    def __init__(self, nursery: trio.Nursery, url: str, prefix: str) -> None:
        self.nursery = nursery
        self.url = url
        self.prefix = prefix
        self.workers: list[RunningServer] = []

    async def start(self, count: int = 1, **overrides: Any) -> list[RunningServer]:
        for _ in range(count):
            settings = cluster_settings(self.url, self.prefix, **overrides)
            index = len(self.workers)
            with trio.fail_after(5):
                server: RunningServer = await self.nursery.start(
                    serve_game, settings, None, None, index
                )
            self.workers.append(server)
        return self.workers[-count:]

    async def aclose(self) -> None:
        with trio.move_on_after(5):
            for server in self.workers:
                await server.aclose()


@pytest.fixture
async def cluster(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[Cluster]:
    async with trio.open_nursery() as nursery:
        made = Cluster(nursery, redis_server.url, redis_prefix)
        try:
            yield made
        finally:
            await made.aclose()
            nursery.cancel_scope.cancel()
