"""The listeners of one server, alone or as a worker of a multi-worker host (in one process)."""

from __future__ import annotations

import os
import socket

import pytest
import trio
import trio.testing

from gameserver import Settings
from gameserver.config import ConfigError
from gameserver.trio.listeners import open_listeners

from .conftest import FAST, StartServer, free_ports, hello, raw_ws

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("redis_for_module")]

REDIS = "redis://127.0.0.1:1/0"
"""Replaced for each test by the session's real redis-server (``redis_for_module``)."""
REDIS_PREFIX = "gameserver"


"""A directory URL nothing connects to yet: these tests are about listening."""


async def test_a_single_server_is_its_own_direct_port(start_server: StartServer) -> None:
    """workers = 1: one port (0 picks it), also the direct port; no worker without redis."""
    server = await start_server()
    assert server.port != 0
    assert server.direct_port == server.port
    assert server.worker is None


async def test_one_clustered_worker_is_named_host_pid_index(start_server: StartServer) -> None:
    """With redis and one worker, the server is worker 0, HOST-PID-0, reached on its one port."""
    server = await start_server(redis=REDIS, redis_prefix=REDIS_PREFIX)
    assert server.worker is not None
    assert server.worker.index == 0
    assert server.worker.id == f"{socket.gethostname()}-{os.getpid()}-0"
    assert server.worker.url == f"ws://127.0.0.1:{server.port}/"
    assert server.direct_port == server.port


async def test_two_workers_share_the_port_and_each_has_its_own(start_server: StartServer) -> None:
    """Workers 0 and 1 both listen on the shared port (SO_REUSEPORT) and each alone on
    port + 1 + index; a client on worker 1's direct port is served by worker 1 only."""
    port = free_ports(3)
    cluster = {"workers": 2, "redis": REDIS, "redis_prefix": REDIS_PREFIX, "port": port}
    w0 = await start_server(worker_index=0, **cluster)
    w1 = await start_server(worker_index=1, **cluster)
    assert (w0.port, w1.port) == (port, port)
    assert (w0.direct_port, w1.direct_port) == (port + 1, port + 2)
    assert w1.worker is not None and w1.worker.id.endswith(f"-{os.getpid()}-1")
    assert w1.worker.url == f"ws://127.0.0.1:{port + 2}/"
    with trio.fail_after(5):
        async with raw_ws(f"ws://127.0.0.1:{w1.direct_port}/") as ws:
            await ws.send(hello("direct"))
            await ws.recv()  # welcome
            assert (len(w0.links), len(w1.links)) == (0, 1)


async def test_worker_port_base_places_the_direct_ports(start_server: StartServer) -> None:
    """worker_port_base b: worker i listens alone on b + i."""
    port, base = free_ports(1), free_ports(2)
    server = await start_server(
        worker_index=1,
        workers=2,
        redis=REDIS,
        redis_prefix=REDIS_PREFIX,
        port=port,
        worker_port_base=base,
    )
    assert server.direct_port == base + 1


async def test_a_port_held_without_reuseport_is_not_shared() -> None:
    """Another process's plain listener on the port is refused, not joined."""
    port = free_ports(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        settings = Settings(
            **{**FAST, "workers": 2, "redis": REDIS, "redis_prefix": REDIS_PREFIX, "port": port}
        )
        with trio.fail_after(5), pytest.raises(OSError):
            await open_listeners(settings, 0)


@pytest.mark.parametrize(
    ("port", "index"), [(0, 0), (None, None), (None, 2)], ids=["port-0", "no-index", "index-2"]
)
async def test_a_worker_needs_a_fixed_port_and_its_index(
    port: int | None, index: int | None
) -> None:
    """workers > 1: a shared port of 0 or a missing/out-of-range index is a ConfigError."""
    settings = Settings(
        **{
            **FAST,
            "workers": 2,
            "redis": REDIS,
            "redis_prefix": REDIS_PREFIX,
            "port": free_ports(3) if port is None else port,
        }
    )
    with trio.fail_after(5), pytest.raises(ConfigError):
        await open_listeners(settings, index)
