"""``GET /status`` on a real server: the operator page for loopback, 403 for others."""

from __future__ import annotations

import pytest
import trio

from clients.python.client import connect

from .conftest import StartServer, get_request, http_exchange

pytestmark = pytest.mark.network


async def test_status_page_lists_the_room_and_player(start_server: StartServer) -> None:
    server = await start_server(trusted_proxies=("127.0.0.1",))
    port = server.port
    with trio.fail_after(10):
        async with connect(server.url, "operator-sees-me", game="arena") as client:
            await client.next_snapshot()
            page = await http_exchange(port, get_request(port, "/status"))
            remote = await http_exchange(
                port, get_request(port, "/status", [("X-Forwarded-For", "203.0.113.4")])
            )
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert b"operator-sees-me" in page.body and b"arena-1" in page.body
    assert remote.status == 403
