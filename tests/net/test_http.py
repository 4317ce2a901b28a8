"""Plain HTTP on the game port and the checks made before a WebSocket upgrade."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack

import pytest
import trio
import trio.testing

from clients.python.client import connect
from protocol import Error, Input

from .conftest import (
    StartServer,
    expect,
    get_request,
    http_exchange,
    raw_ws,
    read_response,
    read_to_eof,
    upgrade_request,
)

pytestmark = pytest.mark.network


async def test_root_serves_the_html_page(start_server: StartServer) -> None:
    """GET / returns the bundled HTML page as text/html."""
    server = await start_server()
    with trio.fail_after(5):
        response = await http_exchange(server.port, get_request(server.port, "/"))
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    assert b"<html" in response.body.lower()
    assert int(response.headers["content-length"]) == len(response.body)


async def test_healthz_reports_status_players_rooms_and_ticks(start_server: StartServer) -> None:
    """GET /healthz returns JSON counting the connected player, their room and its ticks."""
    server = await start_server()
    with trio.fail_after(5):
        async with connect(server.url, "hp", game="arena") as client:
            await client.next_snapshot()
            await client.send_raw(b"\xc1")  # one bad message, counted
            await client.send_input({"dx": 1})
            await client.send(Input(1, {"dx": 1}))  # seq 1 again: ignored and counted
            await expect(client, lambda m: isinstance(m, Error))
            while (await client.next_snapshot()).ack != 1:
                pass
            response = await http_exchange(server.port, get_request(server.port, "/healthz"))
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    health = json.loads(response.body)
    assert health["status"] == "ok"
    assert health["players"] == 1
    assert health["rooms"] == 1
    assert health["connections"] == 1
    assert health["ticks"]["total"] >= 1
    assert health["clients"]["messages_refused"] == 1
    assert health["clients"]["messages_received"] >= 5
    assert health["room_list"][0]["inputs_ignored"] == 1


async def test_unknown_path_is_404(start_server: StartServer) -> None:
    """A GET for an unknown path (or a traversal attempt) is 404."""
    server = await start_server()
    with trio.fail_after(5):
        for path in ("/nope", "/static/../settings.py", "/static/%2e%2e/x"):
            response = await http_exchange(server.port, get_request(server.port, path))
            assert response.status == 404, path


async def test_oversized_headers_are_431(start_server: StartServer) -> None:
    """Forty headers of 1 KiB each (under websockets' per-line cap) get 431."""
    server = await start_server()
    headers = [(f"X-Filler-{i}", "a" * 1024) for i in range(40)]
    with trio.fail_after(5):
        response = await http_exchange(server.port, get_request(server.port, "/", headers))
        assert response.status == 431
        upgrade = await http_exchange(
            server.port, upgrade_request(server.port, headers=dict(headers))
        )
        assert upgrade.status == 431


async def test_upgrade_at_another_path_is_404(start_server: StartServer) -> None:
    """A WebSocket upgrade anywhere but / is 404."""
    server = await start_server()
    with trio.fail_after(5):
        response = await http_exchange(server.port, upgrade_request(server.port, "/game"))
    assert response.status == 404


async def test_wrong_websocket_version_is_426(start_server: StartServer) -> None:
    """Sec-WebSocket-Version 8 gets 426 naming version 13 (RFC 6455 §4.2.2)."""
    server = await start_server()
    request = upgrade_request(server.port, headers={"Sec-WebSocket-Version": "8"})
    with trio.fail_after(5):
        response = await http_exchange(server.port, request)
    assert response.status == 426
    assert response.headers["sec-websocket-version"] == "13"


async def test_missing_websocket_key_is_400(start_server: StartServer) -> None:
    """An upgrade without Sec-WebSocket-Key is 400."""
    server = await start_server()
    with trio.fail_after(5):
        response = await http_exchange(server.port, upgrade_request(server.port, key=False))
    assert response.status == 400


async def test_origin_allow_list(start_server: StartServer) -> None:
    """A foreign Origin gets 403; no Origin and an allowed Origin both get in."""
    good = "https://game.example"
    server = await start_server(allowed_origins=(good,))
    with trio.fail_after(5):
        evil = upgrade_request(server.port, headers={"Origin": "https://evil.example"})
        assert (await http_exchange(server.port, evil)).status == 403
        assert (await http_exchange(server.port, upgrade_request(server.port))).status == 101
        async with connect(server.url, "browser", origin=good) as client:
            assert client.welcome is not None
        async with connect(server.url, "native") as client:
            assert client.welcome is not None


async def test_per_ip_cap_is_429(start_server: StartServer) -> None:
    """Past max_connections_per_ip the upgrade gets 429; freeing a slot lets the next one in."""
    server = await start_server(max_connections_per_ip=2, hello_timeout=5.0)
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            first = await stack.enter_async_context(raw_ws(server.url))
            await stack.enter_async_context(raw_ws(server.url))
            refused = await http_exchange(server.port, upgrade_request(server.port))
            assert refused.status == 429
            health = await http_exchange(server.port, get_request(server.port, "/healthz"))
            assert json.loads(health.body)["connections"] == 2
            await first.aclose()
            await trio.testing.wait_all_tasks_blocked()
            assert server.counter.total == 1
            async with connect(server.url, "third") as client:
                assert client.welcome is not None


async def test_total_cap_is_503(start_server: StartServer) -> None:
    """Past max_connections the upgrade gets 503 with Retry-After; plain HTTP still works."""
    server = await start_server(max_connections=2, max_connections_per_ip=10, hello_timeout=5.0)
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            first = await stack.enter_async_context(raw_ws(server.url))
            await stack.enter_async_context(raw_ws(server.url))
            refused = await http_exchange(server.port, upgrade_request(server.port))
            assert refused.status == 503
            assert "retry-after" in refused.headers
            health = await http_exchange(server.port, get_request(server.port, "/healthz"))
            assert health.status == 200
            await first.aclose()
            await trio.testing.wait_all_tasks_blocked()
            async with connect(server.url, "third") as client:
                assert client.welcome is not None


async def test_slowloris_is_dropped_after_handshake_timeout(start_server: StartServer) -> None:
    """Half a request line that stalls is dropped after handshake_timeout; others are served."""
    server = await start_server(handshake_timeout=0.5)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(b"GET / HT")
            started = trio.current_time()
            response = await http_exchange(server.port, get_request(server.port, "/healthz"))
            assert response.status == 200
            assert await read_to_eof(stream) == b""
            waited = trio.current_time() - started
    assert 0.4 <= waited < 2.5


async def test_upgrade_gets_101_and_never_permessage_deflate(start_server: StartServer) -> None:
    """A raw upgrade asking for permessage-deflate gets 101 without it (no decompression bombs)."""
    server = await start_server()
    request = upgrade_request(
        server.port, headers={"Sec-WebSocket-Extensions": "permessage-deflate"}
    )
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(request)
            response = await read_response(stream)
    assert response.status == 101
    assert response.headers["upgrade"].lower() == "websocket"
    assert "sec-websocket-accept" in response.headers
    assert "sec-websocket-extensions" not in response.headers


@pytest.mark.parametrize("header", ["Upgrade", "Sec-WebSocket-Version"])
async def test_repeated_upgrade_header_is_400_and_the_server_lives(
    start_server: StartServer, header: str
) -> None:
    """A repeated Upgrade/Sec-WebSocket-Version header gets 400; the next client still plays."""
    server = await start_server()
    request = upgrade_request(server.port)
    head, _, _ = request.partition(b"\r\n\r\n")
    value = b"websocket" if header == "Upgrade" else b"13"
    request = head + b"\r\n" + header.encode() + b": " + value + b"\r\n\r\n"
    with trio.fail_after(5):
        response = await http_exchange(server.port, request)
        assert response.status == 400
        async with connect(server.url, "after", game="arena") as client:
            await client.next_snapshot()


async def test_simultaneous_handshakes_cannot_pass_the_per_ip_cap(
    start_server: StartServer,
) -> None:
    """Six upgrades sent at once against a cap of 2: exactly two get 101, four get 429."""
    server = await start_server(max_connections_per_ip=2)
    with trio.fail_after(5):
        async with AsyncExitStack() as stack:
            streams = [
                await stack.enter_async_context(
                    await trio.open_tcp_stream("127.0.0.1", server.port)
                )
                for _ in range(6)
            ]
            for stream in streams:
                await stream.send_all(upgrade_request(server.port))
            statuses = sorted([(await read_response(s)).status for s in streams])
    assert statuses == [101, 101, 429, 429, 429, 429]


async def test_handshakes_in_progress_are_capped(start_server: StartServer) -> None:
    """Past max_pending_handshakes, a new TCP connection is dropped at once; served again after."""
    server = await start_server(max_pending_handshakes=2, handshake_timeout=5.0)
    with trio.fail_after(4):
        async with AsyncExitStack() as stack:
            idle = [
                await stack.enter_async_context(
                    await trio.open_tcp_stream("127.0.0.1", server.port)
                )
                for _ in range(2)
            ]
            await trio.testing.wait_all_tasks_blocked()
            extra = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with extra:
                assert await read_to_eof(extra) == b""
            for stream in idle:
                await stream.aclose()
        await trio.testing.wait_all_tasks_blocked()
        response = await http_exchange(server.port, get_request(server.port, "/healthz"))
        assert response.status == 200


async def test_request_head_over_the_cap_is_refused_before_it_ends(
    start_server: StartServer,
) -> None:
    """Headers past max_request_header_bytes get 431 while the request is still coming."""
    server = await start_server(max_request_header_bytes=4096)
    with trio.fail_after(4):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            # 5 KiB of headers and no blank line: a request that has not ended.
            pad = "".join(f"X-Pad-{n}: {'a' * 1000}\r\n" for n in range(5))
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n" + pad.encode())
            response = await read_response(stream)
    assert response.status == 431
