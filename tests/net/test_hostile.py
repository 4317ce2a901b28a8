"""Hostile or broken clients: each gets its documented error or close code, nobody else does."""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from typing import Any

import msgpack
import pytest
import trio
from websockets.exceptions import ConnectionClosed

from clients.python.client import connect
from protocol import (
    PROTOCOL_VERSION,
    Ack,
    CloseCode,
    Error,
    ErrorCode,
    Event,
    Hello,
    Join,
    Ping,
    Welcome,
    encode,
)

from .conftest import (
    StartServer,
    expect,
    frame,
    hello,
    next_frame,
    raw_ws,
    read_response,
    read_until_closed,
    upgrade_request,
)

pytestmark = pytest.mark.network


async def test_text_frame_closes_1003(start_server: StartServer) -> None:
    """A text frame is answered with close 1003: the protocol is binary only."""
    server = await start_server()
    with trio.fail_after(5):
        async with raw_ws(server.url) as ws:
            await ws.send(hello())
            await ws.send("Hello, world!")
            closed = await read_until_closed(ws)
    assert closed.code == CloseCode.UNSUPPORTED_DATA
    assert isinstance(closed.messages[0], Welcome)


async def test_undecodable_bytes_get_an_error_and_the_connection_stays_usable(
    start_server: StartServer,
) -> None:
    """Garbage bytes earn an error bad_message; the same connection then joins and chats."""
    server = await start_server()
    with trio.fail_after(5):
        async with connect(server.url, "ok") as client:
            for garbage in (b"\xc1", b"\x92\x01\x02", msgpack.packb({"t": 7}), b""):
                await client.send_raw(garbage)
                error = await expect(client, lambda m: isinstance(m, Error))
                assert isinstance(error, Error)
                assert error.code == ErrorCode.BAD_MESSAGE
            room = await client.join(game="arena")
            assert room.game == "arena"
            await client.chat("still here")
            chat = await expect(client, lambda m: isinstance(m, Event) and m.kind == "chat")
            assert isinstance(chat, Event) and chat.text == "still here"
        assert client.close_code == CloseCode.NORMAL


async def test_repeated_garbage_closes_1008(start_server: StartServer) -> None:
    """Past bad_messages_allowed refused messages the client is closed 1008."""
    server = await start_server(bad_messages_allowed=3)
    with trio.fail_after(5):
        async with raw_ws(server.url) as ws:
            await ws.send(hello())
            for _ in range(4):
                await ws.send(b"\xc1garbage")
            closed = await read_until_closed(ws)
    errors = [m for m in closed.messages if isinstance(m, Error)]
    assert [e.code for e in errors] == [ErrorCode.BAD_MESSAGE] * 4
    assert closed.code == CloseCode.POLICY_VIOLATION


async def test_oversize_message_closes_1009(start_server: StartServer) -> None:
    """A message over max_message_bytes is closed 1009."""
    server = await start_server(max_message_bytes=1024)
    with trio.fail_after(5):
        async with raw_ws(server.url) as ws:
            await ws.send(hello())
            await ws.send(bytes(1025))
            closed = await read_until_closed(ws)
    assert closed.code == CloseCode.MESSAGE_TOO_BIG


async def test_frame_announcing_too_much_closes_1009_before_its_body(
    start_server: StartServer,
) -> None:
    """A frame header announcing 1 MiB (no body sent) is closed 1009 from the header alone."""
    server = await start_server()
    header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 20) + os.urandom(4)
    with trio.fail_after(5):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(upgrade_request(server.port))
            data = (await read_response(stream)).rest
            await stream.send_all(header)
            opcode, payload, _ = await next_frame(stream, data)
    assert opcode == 0x8
    assert struct.unpack("!H", payload[:2])[0] == CloseCode.MESSAGE_TOO_BIG


async def test_flood_gets_rate_limited_then_closed_1008(start_server: StartServer) -> None:
    """Past the token bucket messages are dropped with one rate_limited error, then close 1008."""
    server = await start_server(messages_per_second=5, message_burst=5, flood_close_after=5)
    with trio.fail_after(5):
        async with raw_ws(server.url) as ws:
            await ws.send(hello())
            with contextlib.suppress(ConnectionClosed):  # the close may come mid-flood
                for _ in range(30):
                    await ws.send(encode(Ack(0)))
            closed = await read_until_closed(ws)
    errors = [m.code for m in closed.messages if isinstance(m, Error)]
    assert errors == [ErrorCode.RATE_LIMITED]
    assert closed.code == CloseCode.POLICY_VIOLATION


async def test_first_message_not_hello_gets_hello_required_then_1008(
    start_server: StartServer,
) -> None:
    """A join before hello earns error hello_required, then close 1008."""
    server = await start_server()
    with trio.fail_after(5):
        async with raw_ws(server.url) as ws:
            await ws.send(encode(Join(game="arena")))
            closed = await read_until_closed(ws)
    assert len(closed.messages) == 1
    error = closed.messages[0]
    assert isinstance(error, Error)
    assert error.code == ErrorCode.HELLO_REQUIRED
    assert error.ref == Join.TYPE
    assert closed.code == CloseCode.POLICY_VIOLATION


async def test_unsupported_version_closes_4003(start_server: StartServer) -> None:
    """A hello with another protocol version earns unsupported_version, then close 4003."""
    server = await start_server()
    with trio.fail_after(5):
        async with raw_ws(server.url) as ws:
            await ws.send(encode(Hello(PROTOCOL_VERSION + 41, "future")))
            closed = await read_until_closed(ws)
    assert [m.code for m in closed.messages if isinstance(m, Error)] == [
        ErrorCode.UNSUPPORTED_VERSION
    ]
    assert not any(isinstance(m, Welcome) for m in closed.messages)
    assert closed.code == CloseCode.UNSUPPORTED_VERSION


async def test_no_hello_closes_4000_after_hello_timeout(start_server: StartServer) -> None:
    """A client that never says hello is closed 4000 after hello_timeout."""
    server = await start_server(hello_timeout=0.3)
    with trio.fail_after(5):
        async with raw_ws(server.url) as ws:
            started = trio.current_time()
            closed = await read_until_closed(ws)
            waited = trio.current_time() - started
    assert closed.code == CloseCode.HELLO_TIMEOUT
    assert closed.messages == []
    assert 0.25 <= waited < 3


async def test_unanswered_pings_close_4002(start_server: StartServer) -> None:
    """A client that never answers application pings is closed 4002 after ping_timeout."""
    server = await start_server(ping_interval=0.1, ping_timeout=0.4)
    with trio.fail_after(5):
        async with raw_ws(server.url) as ws:
            await ws.send(hello())
            started = trio.current_time()
            closed = await read_until_closed(ws)
            waited = trio.current_time() - started
    assert isinstance(closed.messages[0], Welcome)
    assert sum(isinstance(m, Ping) for m in closed.messages) >= 3
    assert closed.code == CloseCode.PING_TIMEOUT
    assert 0.35 <= waited < 3


async def test_hostile_clients_do_not_disturb_a_playing_client(start_server: StartServer) -> None:
    """While other connections are refused and closed, a playing client keeps its snapshots."""
    server = await start_server(bad_messages_allowed=1)
    with trio.fail_after(5):
        async with connect(server.url, "calm", game="arena") as calm:
            await calm.next_snapshot()
            for bad in (b"\xc1\xc1", "text"):
                async with raw_ws(server.url) as ws:
                    await ws.send(hello())
                    await ws.send(bad)
                    await ws.send(bad)
                    closed = await read_until_closed(ws)
                    assert closed.code in (CloseCode.POLICY_VIOLATION, CloseCode.UNSUPPORTED_DATA)
            first = await calm.next_snapshot()
            second = await calm.next_snapshot()
            assert second.tick > first.tick
        assert calm.close_code == CloseCode.NORMAL


@pytest.mark.parametrize(
    ("bad_frame", "code"),
    [
        (lambda: b"\x82\x01x", CloseCode.PROTOCOL_ERROR),  # unmasked client frame
        (lambda: b"\x82\xfe" + struct.pack("!H", 5000) + os.urandom(4), CloseCode.MESSAGE_TOO_BIG),
    ],
)
async def test_bad_frame_glued_to_the_upgrade_gets_its_close_code(
    start_server: StartServer, bad_frame: Any, code: int
) -> None:
    """A bad frame in the same packet as the request: 101, then the close code at once."""
    server = await start_server(max_message_bytes=4096, hello_timeout=5.0)
    with trio.fail_after(3):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(upgrade_request(server.port) + bad_frame())
            response = await read_response(stream)
            assert response.status == 101
            opcode, payload, _ = await next_frame(stream, response.rest)
    assert opcode == 0x8
    assert struct.unpack("!H", payload[:2])[0] == code


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        (struct.pack("!H", 999), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 1004), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 1005), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 1006), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 1015), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 2999), CloseCode.PROTOCOL_ERROR),
        (struct.pack("!H", 5000), CloseCode.PROTOCOL_ERROR),
        (b"\x03", CloseCode.PROTOCOL_ERROR),  # one byte: no code
        (struct.pack("!H", 1000), 1000),
        (struct.pack("!H", 1001), 1001),
        (struct.pack("!H", 1014), 1014),
        (struct.pack("!H", 3000), 3000),
        (struct.pack("!H", 4999), 4999),
    ],
)
async def test_a_clients_close_code_is_checked_as_section_6_1_says(
    start_server: StartServer, payload: bytes, answer: int
) -> None:
    """PROTOCOL.md §6.1: a close frame's code outside the RFC 6455 §7.4 ranges gets 1002; a
    valid one is answered with the same code (the closing handshake)."""
    server = await start_server()
    with trio.fail_after(3):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(upgrade_request(server.port))
            response = await read_response(stream)
            assert response.status == 101
            await stream.send_all(frame(0x8, payload))
            opcode, reply, _ = await next_frame(stream, response.rest)
    assert opcode == 0x8
    assert struct.unpack("!H", reply[:2])[0] == answer


@pytest.mark.parametrize(("payload", "answer"), [(struct.pack("!H", 1000), 1000), (b"", None)])
async def test_a_close_glued_to_the_upgrade_is_answered_after_the_101(
    start_server: StartServer, payload: bytes, answer: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    """A close frame in the same packet as the request: 101, the close echoed, TCP closed;
    nothing logged as an error (websockets took the close before it could answer it)."""
    server = await start_server()
    with trio.fail_after(3):
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with stream:
            await stream.send_all(upgrade_request(server.port) + frame(0x8, payload))
            response = await read_response(stream)
            assert response.status == 101
            opcode, reply, rest = await next_frame(stream, response.rest)
            while chunk := await stream.receive_some(65536):
                rest += chunk  # then the server ends TCP
    assert opcode == 0x8
    assert (struct.unpack("!H", reply[:2])[0] if reply else None) == answer
    assert rest == b""
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
