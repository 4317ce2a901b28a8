"""TLS and the HTTP/1.1 opening handshake, all within ``handshake_timeout``.

websockets' sans-I/O :class:`~websockets.server.ServerProtocol` parses the
request (it caps line length and header count itself) and builds the 101 or
the refusal (400 for a malformed upgrade, 403 for a foreign Origin). The
:class:`~gameserver.trio.http.HttpFront` answers plain HTTP and enforces our
own caps first. A handshake that trickles in (slowloris) is dropped at the
deadline.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio
from websockets.exceptions import PayloadTooBig
from websockets.frames import Frame
from websockets.http11 import Request
from websockets.protocol import OPEN
from websockets.server import ServerProtocol
from websockets.typing import Origin

from protocol import CloseCode

from ..settings import Settings
from .http import HttpFront, text_response
from .wsconn import RECEIVE_SIZE

log = logging.getLogger(__name__)


@dataclass
class Opened:
    """A connection whose upgrade succeeded."""

    stream: trio.abc.Stream
    protocol: ServerProtocol
    early_frames: list[Frame] = field(default_factory=list)
    """Frames the client sent in the same packets as its request (rare but legal)."""


def make_protocol(settings: Settings) -> ServerProtocol:
    origins: Sequence[Origin | None] | None = None
    if settings.allowed_origins:
        origins = [*(Origin(o) for o in settings.allowed_origins), None]
    return ServerProtocol(origins=origins, max_size=settings.max_message_bytes)


async def _flush(stream: trio.abc.Stream, protocol: ServerProtocol) -> None:
    for data in protocol.data_to_send():
        if data:
            await stream.send_all(data)
        elif isinstance(stream, trio.abc.HalfCloseableStream):
            await stream.send_eof()


async def open_websocket(
    stream: trio.abc.Stream,
    *,
    settings: Settings,
    front: HttpFront,
    peer_ip: str,
    ssl_context: ssl.SSLContext | None = None,
) -> Opened | None:
    """Upgrade ``stream`` to a WebSocket, or answer plain HTTP; None when not upgraded.

    An admitted upgrade is counted in ``front.counter`` at once, before anything
    more is awaited, so simultaneous handshakes cannot all slip under a cap.
    When an ``Opened`` is returned the caller owns that count and releases it
    with ``front.counter.closed(peer_ip)``; otherwise it is released here.
    """
    protocol = make_protocol(settings)
    counted = False
    opened: Opened | None = None
    try:
        with trio.move_on_after(settings.handshake_timeout) as deadline:
            try:
                if ssl_context is not None:
                    tls = trio.SSLStream(
                        stream, ssl_context, server_side=True, https_compatible=True
                    )
                    await tls.do_handshake()
                    stream = tls
                request: Request | None = None
                early: list[Frame] = []
                received = 0
                while request is None:
                    data = await stream.receive_some(RECEIVE_SIZE)
                    received += len(data)
                    if received > settings.max_request_header_bytes:
                        # websockets would buffer up to 128 lines of 8 KiB: refuse early.
                        protocol.send_response(
                            text_response(431, "Request header fields too large.\n")
                        )
                        await _flush(stream, protocol)
                        return None
                    if data:
                        protocol.receive_data(data)
                    else:
                        protocol.receive_eof()
                    for event in protocol.events_received():
                        if isinstance(event, Request):
                            request = event
                        elif isinstance(event, Frame):
                            early.append(event)
                    if request is None:
                        # Malformed or oversized request: the protocol wrote its own refusal.
                        await _flush(stream, protocol)
                        if not data or protocol.close_expected():
                            return None
                # Pongs to pings that came with the request must not precede the response.
                replies = protocol.data_to_send()
                response = front.check_request(request, peer_ip)
                if response is None:
                    front.counter.opened(peer_ip)
                    counted = True
                    response = protocol.accept(request)
                protocol.send_response(response)
                await _flush(stream, protocol)
                if protocol.state is OPEN and protocol.parser_exc is not None:
                    # A bad frame came in the same packets as the request: websockets
                    # failed it while CONNECTING, when no close frame can be sent.
                    # Now that we are OPEN, send the close frame it deserved.
                    too_big = isinstance(protocol.parser_exc, PayloadTooBig)
                    protocol.fail(
                        CloseCode.MESSAGE_TOO_BIG if too_big else CloseCode.PROTOCOL_ERROR,
                        "bad frame with the upgrade request",
                    )
                    await _flush(stream, protocol)
                    return None
                if protocol.state is OPEN:
                    for data in replies:
                        if data:
                            await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError) as e:
                log.debug("%s: handshake failed: %r", peer_ip, e)
                return None
        if deadline.cancelled_caught:
            log.info(
                "%s: handshake not done in %.1f s, dropped", peer_ip, settings.handshake_timeout
            )
            return None
        if protocol.state is not OPEN:
            return None
        # Frames parsed together with the request come out after it.
        early.extend(e for e in protocol.events_received() if isinstance(e, Frame))
        opened = Opened(stream, protocol, early)
        return opened
    finally:
        if counted and opened is None:
            front.counter.closed(peer_ip)
