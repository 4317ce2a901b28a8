"""open_websocket: the HTTP upgrade (and plain HTTP answers) over memory streams, virtual time."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import trio
import trio.testing
from websockets.datastructures import Headers
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import OPEN, Protocol, Side
from websockets.utils import accept_key

from gameserver.core import ServerCore
from gameserver.games import default_games
from gameserver.settings import Settings
from gameserver.trio.handshake import Opened, open_websocket
from gameserver.trio.http import ConnectionCounter, HttpFront
from gameserver.trio.link import ClientLink
from gameserver.trio.wsconn import WsConnection
from protocol import PROTOCOL_VERSION, Hello, Ping, Welcome, encode
from tests.helpers import WsPeer, read_response_head, read_to_eof

KEY = base64.b64encode(b"sixteen byte key").decode()
HEALTH = {"status": "ok", "players": 0}


def upgrade_request(path: str = "/", *, key: str | None = KEY, extra: str = "") -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: localhost",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
    ]
    if key is not None:
        lines.append(f"Sec-WebSocket-Key: {key}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def client_frames(*payloads: bytes) -> bytes:
    """Masked binary frames, as a client writes them."""
    client = Protocol(Side.CLIENT)
    for payload in payloads:
        client.send_binary(payload)
    return b"".join(client.data_to_send())


def start_link(nursery: trio.Nursery, settings: Settings, opened: Opened) -> ClientLink:
    """A ClientLink (with a core of its own) serving an opened connection in ``nursery``."""
    core = ServerCore(settings, default_games(), epoch=0.0)
    ws = WsConnection(opened.stream, opened.protocol, send_timeout=1.0, close_timeout=1.0)
    link = ClientLink(core, ws, "10.0.0.1", identity=opened.identity)
    nursery.start_soon(link.run, opened.early_frames)
    return link


class Handshake:
    """open_websocket on one end of a memory stream pair; the test writes the other end."""

    def __init__(self, **settings: Any) -> None:
        self.settings = Settings(**settings)
        self.front = HttpFront(self.settings, ConnectionCounter(), lambda: HEALTH)
        self.server_stream, self.client = trio.testing.memory_stream_pair()
        self.ended_at: float | None = None

    async def open(self) -> Opened | None:
        opened = await open_websocket(
            self.server_stream, settings=self.settings, front=self.front, peer_ip="10.0.0.1"
        )
        self.ended_at = trio.current_time()
        return opened

    async def response_head(self) -> tuple[str, dict[str, str], bytes]:
        """Status line, headers (lower-case names) and whatever followed the blank line."""
        return await read_response_head(self.client)

    async def until_eof(self) -> bytes:
        return await read_to_eof(self.client)


async def test_valid_upgrade_opens(autojump_clock: trio.testing.MockClock) -> None:
    """A valid upgrade request → Opened with the protocol OPEN, and the 101 on the wire."""
    hs = Handshake()
    await hs.client.send_all(upgrade_request())
    opened = await hs.open()
    assert opened is not None
    assert opened.protocol.state is OPEN
    assert opened.early_frames == []
    status, headers, rest = await hs.response_head()
    assert status == "HTTP/1.1 101 Switching Protocols"
    assert headers["upgrade"].lower() == "websocket"
    assert headers["sec-websocket-accept"] == accept_key(KEY)
    assert rest == b""
    assert hs.ended_at == 0.0


async def test_request_in_pieces_is_still_parsed(autojump_clock: trio.testing.MockClock) -> None:
    """A request arriving in small pieces within the deadline is upgraded when complete."""
    hs = Handshake(handshake_timeout=5.0)
    request = upgrade_request()

    async def trickle() -> None:
        for start in range(0, len(request), 10):
            await trio.sleep(0.125)
            await hs.client.send_all(request[start : start + 10])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trickle)
        opened = await hs.open()
    assert opened is not None and opened.protocol.state is OPEN
    assert hs.ended_at == (len(request) + 9) // 10 * 0.125


async def test_healthz_answers_json_and_returns_none(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """GET /healthz gets a JSON 200 from the front, the server half-closes, and no WebSocket."""
    hs = Handshake(public_stats=True)  # the peer is 10.0.0.1, not loopback
    await hs.client.send_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert await hs.open() is None
    status, headers, rest = await hs.response_head()
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "application/json"
    body = rest + await hs.until_eof()
    assert len(body) == int(headers["content-length"])
    assert json.loads(body) == HEALTH


@pytest.mark.parametrize(
    ("ip", "public_stats", "full"),
    [
        ("127.0.0.1", False, True),
        ("::1", False, True),
        ("::ffff:127.0.0.1", False, True),
        ("10.0.0.1", False, False),
        ("2001:db8::1", False, False),
        ("::ffff:10.0.0.1", False, False),
        ("10.0.0.1", True, True),
    ],
)
def test_healthz_statistics_go_to_loopback_unless_public(
    ip: str, public_stats: bool, full: bool
) -> None:
    """Other addresses get only the status (enough for a load balancer) unless public_stats."""
    front = HttpFront(Settings(public_stats=public_stats), ConnectionCounter(), lambda: HEALTH)
    response = front.check_request(Request("/healthz", Headers()), ip)
    assert response is not None and response.status_code == 200
    assert json.loads(response.body) == (HEALTH if full else {"status": "ok"})
    if not full:
        front.closing = True
        response = front.check_request(Request("/healthz", Headers()), ip)
        assert response is not None and json.loads(response.body) == {"status": "closing"}


async def test_trickling_request_is_dropped_at_handshake_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A request sent a byte every 0.5 s and never finished → None exactly at handshake_timeout."""
    hs = Handshake(handshake_timeout=3.0)

    async def slowloris() -> None:
        for byte in b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + b"a" * 1000:
            await hs.client.send_all(bytes([byte]))
            await trio.sleep(0.5)

    nursery.start_soon(slowloris)
    assert await hs.open() is None
    assert hs.ended_at == 3.0


async def test_frames_in_the_request_packet_are_early_frames(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Frames sent in the same write as the request come back in early_frames, in order."""
    hs = Handshake()
    await hs.client.send_all(upgrade_request() + client_frames(b"one", b"two"))
    opened = await hs.open()
    assert opened is not None
    assert [(f.opcode, bytes(f.data)) for f in opened.early_frames] == [
        (Opcode.BINARY, b"one"),
        (Opcode.BINARY, b"two"),
    ]


async def test_pong_to_an_early_ping_follows_the_101(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A ping sent with the request is answered after the 101, never before it."""
    hs = Handshake()
    client = Protocol(Side.CLIENT)
    client.send_ping(b"early")
    await hs.client.send_all(upgrade_request() + b"".join(client.data_to_send()))
    opened = await hs.open()
    assert opened is not None
    status, _headers, rest = await hs.response_head()
    assert status == "HTTP/1.1 101 Switching Protocols"
    peer = WsPeer(hs.client)
    peer.feed(rest)
    pong = await peer.next_frame()
    assert pong is not None and (pong.opcode, bytes(pong.data)) == (Opcode.PONG, b"early")


async def test_early_hello_is_answered(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A hello in the request's packet reaches the session: welcome and ping follow the 101."""
    hs = Handshake()
    hello = encode(Hello(PROTOCOL_VERSION, "ann"))
    await hs.client.send_all(upgrade_request() + client_frames(hello))
    opened = await hs.open()
    assert opened is not None
    await hs.response_head()
    start_link(nursery, hs.settings, opened)
    peer = WsPeer(hs.client)
    assert isinstance(await peer.next_message(), Welcome)
    assert isinstance(await peer.next_message(), Ping)


async def test_missing_key_is_refused_400(autojump_clock: trio.testing.MockClock) -> None:
    """An upgrade without Sec-WebSocket-Key gets HTTP 400 and no WebSocket."""
    hs = Handshake()
    await hs.client.send_all(upgrade_request(key=None))
    assert await hs.open() is None
    status, _headers, _rest = await hs.response_head()
    assert status == "HTTP/1.1 400 Bad Request"
    await hs.until_eof()


async def test_foreign_origin_is_refused_403(autojump_clock: trio.testing.MockClock) -> None:
    """With allowed_origins set, an upgrade from another Origin gets HTTP 403."""
    hs = Handshake(allowed_origins=("https://game.example",))
    await hs.client.send_all(upgrade_request(extra="Origin: https://evil.example\r\n"))
    assert await hs.open() is None
    status, _headers, _rest = await hs.response_head()
    assert status == "HTTP/1.1 403 Forbidden"


async def test_eof_before_the_request_ends_returns_none(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A client that hangs up mid-request → None at once, nothing written back."""
    hs = Handshake()
    await hs.client.send_all(b"GET / HTTP/1.1\r\nHost: loc")
    await hs.client.send_eof()
    assert await hs.open() is None
    assert hs.ended_at == 0.0
    assert await hs.until_eof() == b""


async def test_malformed_request_returns_none(autojump_clock: trio.testing.MockClock) -> None:
    """Bytes that are not HTTP → None at once, the connection is not upgraded."""
    hs = Handshake()
    await hs.client.send_all(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
    assert await hs.open() is None
    assert hs.ended_at == 0.0
