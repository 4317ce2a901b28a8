"""Shared fixtures and helpers for the end-to-end tests against a real server on 127.0.0.1.

Every server listens on port 0 of the loopback interface and runs in a
nursery owned by the ``start_server`` fixture, which closes it (1001 to the
clients still connected) when the test ends. The raw helpers build WebSocket
and HTTP traffic byte by byte for the cases a client library would refuse.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import ClientConnection
from websockets.trio.client import connect as ws_connect

from clients.python.client import GameClient
from gameserver import GameRegistry, Settings
from gameserver.auth import Authenticate
from gameserver.trio import RunningServer, serve_game
from protocol import PROTOCOL_VERSION, Hello, ServerMessage, decode_server_message, encode

FAST: dict[str, Any] = {
    "port": 0,
    "host": "127.0.0.1",
    "shutdown_timeout": 1.0,
    "close_timeout": 0.5,
    "handshake_timeout": 2.0,
    "hello_timeout": 2.0,
    "log_level": "WARNING",
    "read_interval": 0.0,
}
"""Settings every test server starts from: loopback, port 0, short timeouts, and reads as
soon as data arrives (so a test can wait for the server with wait_all_tasks_blocked;
batched reads have tests of their own)."""

StartServer = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """A factory: ``await start_server(games=None, authenticate=None, worker_index=None,
    **settings)`` → a running server.

    Each server runs in this fixture's nursery and is closed on teardown.
    """
    started: list[RunningServer] = []
    async with trio.open_nursery() as nursery:

        async def start(
            games: GameRegistry | None = None,
            authenticate: Authenticate | None = None,
            worker_index: int | None = None,
            **overrides: Any,
        ) -> RunningServer:
            settings = Settings(**{**FAST, **overrides})
            with trio.fail_after(5):
                server: RunningServer = await nursery.start(
                    serve_game, settings, games, authenticate, worker_index
                )
            started.append(server)
            return server

        try:
            yield start
        finally:
            with trio.move_on_after(5):
                for server in started:
                    await server.aclose()
            nursery.cancel_scope.cancel()


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive TCP ports free on 127.0.0.1 right now.

    For servers that need fixed ports (the shared and direct ports of a
    multi-worker host); another process may still take one before the test binds it.
    """
    for _ in range(50):
        probes: list[socket.socket] = []
        try:
            first = socket.socket()
            probes.append(first)
            first.bind(("127.0.0.1", 0))
            base = int(first.getsockname()[1])
            if base + count > 65536:
                continue
            for port in range(base + 1, base + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


# -- WebSocket helpers ---------------------------------------------------------


def raw_ws(url: str, **kwargs: Any) -> Any:
    """A bare websockets client: no keepalive pings, no compression, never answers app pings."""
    options: dict[str, Any] = {
        "compression": None,
        "ping_interval": None,
        "proxy": None,
        "max_size": None,
        "open_timeout": 5,
        "close_timeout": 1,
    }
    options.update(kwargs)
    return ws_connect(url, **options)


def hello(name: str = "t", game: str | None = None, room: str | None = None) -> bytes:
    """An encoded ``hello`` of the current protocol version."""
    return encode(Hello(PROTOCOL_VERSION, name, game, room))


@dataclass
class Closed:
    """How a connection ended, seen from the client."""

    messages: list[ServerMessage]
    code: int | None
    """The code of the server's close frame; None if the TCP connection ended without one."""
    reason: str | None


async def read_until_closed(ws: ClientConnection) -> Closed:
    """Decode every message until the server closes; return them and the close code."""
    messages: list[ServerMessage] = []
    while True:
        try:
            frame = await ws.recv()
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return Closed(messages, rcvd.code if rcvd else None, rcvd.reason if rcvd else None)
        assert isinstance(frame, bytes), "the server sent a text frame"
        messages.append(decode_server_message(frame))


# -- raw TCP helpers -----------------------------------------------------------


def frame(opcode: int, payload: bytes = b"", *, mask: bool = True, fin: bool = True) -> bytes:
    """One WebSocket frame as a client would write it (masked unless told otherwise)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def parse_frame(data: bytes) -> tuple[int, bytes, bytes] | None:
    """Split one unmasked server frame off ``data``: (opcode, payload, rest), or None if short."""
    if len(data) < 2:
        return None
    opcode = data[0] & 0x0F
    n = data[1] & 0x7F
    offset = 2
    if n == 126:
        if len(data) < 4:
            return None
        n = struct.unpack("!H", data[2:4])[0]
        offset = 4
    elif n == 127:
        if len(data) < 10:
            return None
        n = struct.unpack("!Q", data[2:10])[0]
        offset = 10
    if len(data) < offset + n:
        return None
    return opcode, data[offset : offset + n], data[offset + n :]


async def next_frame(stream: trio.abc.Stream, data: bytes) -> tuple[int, bytes, bytes]:
    """The next server frame, from ``data`` (bytes already read) then ``stream``:
    (opcode, payload, the bytes after it). Fails if the connection ends first."""
    while (parsed := parse_frame(data)) is None:
        chunk = await stream.receive_some(65536)
        assert chunk, f"the connection ended before a whole frame: {data!r}"
        data += chunk
    return parsed


def upgrade_request(
    port: int, path: str = "/", headers: dict[str, str] | None = None, *, key: bool = True
) -> bytes:
    """An HTTP/1.1 WebSocket upgrade request; ``headers`` override or add fields."""
    fields = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
    }
    if key:
        fields["Sec-WebSocket-Key"] = base64.b64encode(os.urandom(16)).decode()
    fields.update(headers or {})
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def get_request(port: int, path: str, extra: list[tuple[str, str]] | None = None) -> bytes:
    """A plain HTTP/1.1 GET."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes
    rest: bytes
    """Bytes after the response (WebSocket frames after a 101)."""


async def read_response(stream: trio.abc.Stream) -> HttpResponse:
    """Read one HTTP response: the head, then a Content-Length body (none after a 101)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise EOFError(f"connection closed before a full response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if status == 101 else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        rest += chunk
    return HttpResponse(status, headers, rest[:length], rest[length:])


async def http_exchange(port: int, request: bytes) -> HttpResponse:
    """Send raw request bytes on a fresh TCP connection and read the response."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        return await read_response(stream)


async def read_to_eof(stream: trio.abc.Stream, data: bytes = b"") -> bytes:
    """Everything the peer sends until it closes (a reset counts as a close)."""
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            return data
        if not chunk:
            return data
        data += chunk


async def expect(client: GameClient, predicate: Callable[[ServerMessage], bool]) -> ServerMessage:
    """Read (answering pings) until a message matches ``predicate``; return it."""
    while True:
        message = await client.recv()
        if predicate(message):
            return message
