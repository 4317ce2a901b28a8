"""WebSocket-level keepalive: pings go out on their own; a peer that never pongs is closed 1011."""

from __future__ import annotations

import struct

import pytest
import trio

from protocol import CloseCode

from .conftest import StartServer, frame, hello, parse_frame, read_response, upgrade_request

pytestmark = pytest.mark.network

OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x2, 0x8, 0x9, 0xA


async def _frames_until_close(
    stream: trio.abc.Stream, data: bytes, answer_pings: bool
) -> tuple[list[int], int | None]:
    """Read server frames until a close frame or EOF; return the opcodes seen and the close code."""
    opcodes: list[int] = []
    while True:
        parsed = parse_frame(data)
        while parsed is not None:
            opcode, payload, data = parsed
            opcodes.append(opcode)
            if opcode == OP_CLOSE:
                return opcodes, struct.unpack("!H", payload[:2])[0] if payload else None
            if opcode == OP_PING and answer_pings:
                await stream.send_all(frame(OP_PONG, payload))
            parsed = parse_frame(data)
        chunk = await stream.receive_some(65536)
        if not chunk:
            return opcodes, None
        data += chunk


async def test_peer_that_never_pongs_is_closed_1011(start_server: StartServer) -> None:
    """Keepalive pings go out every interval; without a pong the server closes 1011."""
    server = await start_server(
        keepalive_interval=0.1, keepalive_timeout=0.3, ping_interval=5.0, ping_timeout=30.0
    )
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(upgrade_request(server.port))
            response = await read_response(stream)
            assert response.status == 101
            await stream.send_all(frame(OP_BINARY, hello()))
            started = trio.current_time()
            opcodes, code = await _frames_until_close(stream, response.rest, answer_pings=False)
            waited = trio.current_time() - started
    assert OP_PING in opcodes
    assert code == CloseCode.INTERNAL_ERROR
    assert 0.3 <= waited < 3


async def test_peer_that_pongs_stays(start_server: StartServer) -> None:
    """A peer that answers keepalive pings is still connected after several timeouts' worth."""
    server = await start_server(
        keepalive_interval=0.05, keepalive_timeout=0.15, ping_interval=5.0, ping_timeout=30.0
    )
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(upgrade_request(server.port))
            response = await read_response(stream)
            await stream.send_all(frame(OP_BINARY, hello()))
            with trio.move_on_after(0.8):
                opcodes, code = await _frames_until_close(stream, response.rest, answer_pings=True)
                pytest.fail(f"closed with {code} after {opcodes}")
            assert server.counter.total == 1
