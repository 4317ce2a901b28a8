"""Fixtures shared by every test package: a real redis-server for the cluster tests.

One redis-server serves the whole session; each test gets its own key prefix, so
tests never see each other's rooms or workers. A test that stops Redis starts
its own (``tests.redis_server.RedisServer``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.redis_server import RedisServer, running_redis

_prefixes = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_prefix() -> str:
    return f"test{next(_prefixes)}"


@pytest.fixture
def redis_for_module(
    redis_server: RedisServer, redis_prefix: str, request: pytest.FixtureRequest
) -> Iterator[None]:
    """Point the test module's ``REDIS`` and ``REDIS_PREFIX`` at the session's server and
    a prefix of the test's own (for modules whose helpers build worker command lines)."""
    module = request.module
    module.REDIS, module.REDIS_PREFIX = redis_server.url, redis_prefix
    yield
