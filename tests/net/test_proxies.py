"""Behind a trusted reverse proxy the per-IP cap, auth and logs use the forwarded address;
from anyone else, forwarding headers are ignored."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio

from gameserver import AuthRequest, Identity

from .conftest import StartServer, http_exchange, read_response, upgrade_request

pytestmark = pytest.mark.network


async def open_upgrades(
    stack: AsyncExitStack, port: int, headers: dict[str, str], count: int
) -> list[int]:
    """``count`` upgrades held open (until ``stack`` closes); their statuses."""
    statuses = []
    for _ in range(count):
        stream = await stack.enter_async_context(await trio.open_tcp_stream("127.0.0.1", port))
        await stream.send_all(upgrade_request(port, headers=headers))
        statuses.append((await read_response(stream)).status)
    return statuses


async def test_per_ip_cap_applies_to_the_forwarded_address(start_server: StartServer) -> None:
    """Through a trusted proxy (127.0.0.1 here), each forwarded client has its own cap of 2;
    all of them share one TCP peer."""
    server = await start_server(max_connections_per_ip=2, trusted_proxies=("127.0.0.0/8",))
    port = server.port
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            ada = {"X-Forwarded-For": "203.0.113.1"}
            bob = {"Forwarded": 'for="[2001:db8::2]:5555";proto=https'}
            assert await open_upgrades(stack, port, ada, 3) == [101, 101, 429]
            assert await open_upgrades(stack, port, bob, 3) == [101, 101, 429]
            assert server.counter.per_ip == {"203.0.113.1": 2, "2001:db8::2": 2}


async def test_forged_headers_from_an_untrusted_peer_are_ignored(
    start_server: StartServer,
) -> None:
    """Without trusted_proxies (the default), or from a peer not in it, a client that varies
    X-Forwarded-For and Forwarded still meets its own address's cap."""
    default = await start_server(max_connections_per_ip=2)
    elsewhere = await start_server(max_connections_per_ip=2, trusted_proxies=("10.0.0.0/8",))
    with trio.fail_after(10):
        for server in (default, elsewhere):
            async with AsyncExitStack() as stack:
                statuses = []
                for i in range(3):
                    forged = {"X-Forwarded-For": f"198.51.100.{i}", "Forwarded": f"for=192.0.2.{i}"}
                    statuses += await open_upgrades(stack, server.port, forged, 1)
                assert statuses == [101, 101, 429]
                assert server.counter.per_ip == {"127.0.0.1": 2}


async def test_the_auth_hook_sees_the_forwarded_address(start_server: StartServer) -> None:
    seen: list[str] = []

    def check(request: AuthRequest) -> Identity:
        seen.append(request.peer_ip)
        return Identity("u")

    server = await start_server(authenticate=check, trusted_proxies=("127.0.0.1",))
    with trio.fail_after(10):
        forwarded = {"X-Forwarded-For": "203.0.113.50"}
        response = await http_exchange(server.port, upgrade_request(server.port, headers=forwarded))
    assert response.status == 101
    assert seen == ["203.0.113.50"]
