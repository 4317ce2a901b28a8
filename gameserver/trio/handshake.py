"""TLS and the HTTP/1.1 opening handshake, all within ``handshake_timeout``.

websockets' sans-I/O :class:`~websockets.server.ServerProtocol` parses the
request (it caps line length and header count itself) and builds the 101 or
the refusal (400 for a malformed upgrade, 403 for a foreign Origin). The
:class:`~gameserver.trio.http.HttpFront` answers plain HTTP and enforces our
own caps first. A handshake that trickles in (slowloris) is dropped at the
deadline.

With an ``authenticate`` hook (:class:`AuthGate`), an upgrade that passed every
check is held before its 101 until the hook answers: an Identity lets it
through, anything else ends it with 401, 503 or 500 (``gameserver.auth``). The
hook's time has its own bound, ``auth_timeout``; the handshake's clock stops
meanwhile.
"""

from __future__ import annotations

import inspect
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import cast

import trio
from websockets.exceptions import PayloadTooBig
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import OPEN
from websockets.server import ServerProtocol
from websockets.typing import Origin

from protocol import CloseCode

from ..auth import Authenticate, AuthRefused, AuthRequest, AuthStats, HttpRefusal, Identity
from ..logfmt import Summarizer
from ..proxies import ProxyResolver
from ..settings import Settings
from .http import HttpFront, is_upgrade, text_response
from .wsconn import RECEIVE_SIZE

log = logging.getLogger(__name__)


@dataclass
class Opened:
    """A connection whose upgrade succeeded."""

    stream: trio.abc.Stream
    protocol: ServerProtocol
    early_frames: list[Frame] = field(default_factory=list)
    """Frames the client sent in the same packets as its request (rare but legal)."""
    identity: Identity | None = None
    """What the ``authenticate`` hook returned; None when the server has none."""
    peer_ip: str = "?"
    """The client's address (the forwarded one from a trusted proxy): the per-IP cap's key."""
    user_agent: str = ""
    """The request's User-Agent, for the connection's log line."""


def _is_async(hook: Authenticate) -> bool:
    """A coroutine function, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(type(hook).__call__)


def _http(refusal: HttpRefusal) -> Response:
    return text_response(refusal.status, refusal.text, dict(refusal.headers))


class AuthGate:
    """Runs the server's ``authenticate`` hook for an upgrade, within ``auth_timeout``.

    A coroutine function is awaited in the connection's handshake task (it is
    cancelled at the timeout); a plain function runs in one of trio's worker
    threads (at most 40 at once, trio's default; waiting for one counts against
    the timeout), so a hook that blocks stalls no tick. A thread past the timeout
    is abandoned: it runs on, its answer is dropped.
    """

    def __init__(
        self, hook: Authenticate, timeout: float, summary: Summarizer | None = None
    ) -> None:
        self.hook = hook
        self.timeout = timeout
        self.summary = summary
        """Where refusals are logged (summarised when they come in floods)."""
        self.is_async = _is_async(hook)
        self.stats = AuthStats()

    async def check(self, request: Request, peer_ip: str) -> Identity | Response:
        """The Identity for this upgrade, or the response that refuses it."""
        described = AuthRequest.build(request.path, request.headers.raw_items(), peer_ip)
        result: object = None
        with trio.move_on_after(self.timeout) as scope:
            try:
                if self.is_async:
                    result = await cast(Awaitable[object], self.hook(described))
                else:
                    result = await trio.to_thread.run_sync(
                        self.hook, described, abandon_on_cancel=True
                    )
            except AuthRefused as refusal:
                self._refused(
                    "auth_refused", f"{peer_ip}: authentication refused: {refusal.reason}", peer_ip
                )
                return _http(self.stats.refuse(refusal))
            except Exception:
                log.exception("%s: the authenticate hook failed", peer_ip)
                return _http(self.stats.fail())
        if scope.cancelled_caught:
            self._refused(
                "auth_timeout",
                f"{peer_ip}: authentication not done in {self.timeout:.1f} s",
                peer_ip,
                logging.WARNING,
            )
            return _http(self.stats.time_out())
        if not isinstance(result, Identity):
            log.error("%s: the authenticate hook returned %.100r, not an Identity", peer_ip, result)
            return _http(self.stats.fail())
        self.stats.accept()
        return result

    def _refused(self, kind: str, message: str, peer: str, level: int = logging.INFO) -> None:
        if self.summary is None:
            log.log(level, "%s", message, extra={"peer": peer, "event": kind})
        else:
            self.summary.event(kind, message, time.monotonic(), {"peer": peer}, level)


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
    auth: AuthGate | None = None,
    proxies: ProxyResolver | None = None,
) -> Opened | None:
    """Upgrade ``stream`` to a WebSocket, or answer plain HTTP; None when not upgraded.

    With ``auth``, an upgrade the front and websockets accept waits for the hook
    before its 101; the Identity it returns is ``Opened.identity``.

    An admitted upgrade is counted in ``front.counter`` at once, before anything
    more is awaited, so simultaneous handshakes cannot all slip under a cap.
    When an ``Opened`` is returned the caller owns that count and releases it
    with ``front.counter.closed(opened.peer_ip)``; otherwise it is released here.

    With ``proxies``, a request from a trusted proxy is treated as coming from the
    client its forwarding headers name (caps, /healthz's visibility, the hook, logs).
    """
    protocol = make_protocol(settings)
    counted = False
    opened: Opened | None = None
    identity: Identity | None = None
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
                        front.refused(431)
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
                if proxies is not None:
                    peer_ip = proxies.client_ip(peer_ip, request.headers.raw_items())
                response = front.check_request(request, peer_ip)
                if response is None:
                    front.counter.opened(peer_ip)
                    counted = True
                    response = protocol.accept(request)  # 400, 403 (Origin) or 101
                    if auth is not None and response.status_code == 101:
                        # The hook has its own bound; the handshake's clock stops meanwhile.
                        handshake_deadline, paused_at = deadline.deadline, trio.current_time()
                        deadline.deadline = math.inf
                        outcome = await auth.check(request, peer_ip)
                        deadline.deadline = handshake_deadline + trio.current_time() - paused_at
                        if isinstance(outcome, Identity):
                            identity = outcome
                        else:
                            response = outcome
                if response.status_code != 101 and is_upgrade(request):
                    front.refused(response.status_code)
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
                if protocol.state is OPEN and protocol.close_rcvd is not None:
                    # A close frame came in the same packets as the request: websockets
                    # took it while CONNECTING, when it cannot answer, and counts the
                    # connection as ended. Answer it now, as RFC 6455 asks, and end.
                    await stream.send_all(close_echo(protocol.close_rcvd))
                    return None
                if protocol.state is OPEN:
                    for data in replies:
                        if data:
                            await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError) as e:
                log.debug("%s: handshake failed: %r", peer_ip, e)
                return None
        if deadline.cancelled_caught:
            front.dropped("timeout")
            front.summary.event(
                "handshake_timeout",
                f"{peer_ip}: handshake not done in {settings.handshake_timeout:.1f} s, dropped",
                time.monotonic(),
                {"peer": peer_ip},
                logging.INFO,
            )
            return None
        if protocol.state is not OPEN:
            return None
        # Frames parsed together with the request come out after it.
        early.extend(e for e in protocol.events_received() if isinstance(e, Frame))
        agent = request.headers.get_all("User-Agent") if request is not None else []
        opened = Opened(stream, protocol, early, identity, peer_ip, agent[0][:200] if agent else "")
        return opened
    finally:
        if counted and opened is None:
            front.counter.closed(peer_ip)


NO_STATUS_RECEIVED = 1005
"""What websockets records for a close frame without a code (RFC 6455 §7.1.5)."""


def close_echo(received: Close) -> bytes:
    """The close frame answering ``received`` (the same code; none when it had none)."""
    payload = b"" if received.code == NO_STATUS_RECEIVED else received.serialize()
    return Frame(Opcode.CLOSE, payload).serialize(mask=False, extensions=[])
