"""One client: a :class:`Session` wired to a :class:`WsConnection` and its tasks.

The link's nursery owns the reader and the writer; its timers (pings,
timeouts, keepalive) are fired by the server's shared
:class:`~gameserver.trio.timers.TimerWheel`. Frames the session or its room
queue in its :class:`Outbox` only mark the link in the server's
:class:`~gameserver.trio.flusher.Flusher`; at the end of the round,
:meth:`ClientLink.pump` writes them all in one write when the socket has room.
While the socket is backed up they stay in the outbox, where a newer snapshot
replaces an older one, and the writer calls ``pump`` again once the backlog is
gone. Without a flusher (tests, embedding) ``pump`` runs at once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import trio
from websockets.frames import Frame

from protocol import CloseCode

from ..auth import Identity
from ..core import ServerCore
from ..outbox import Outbox
from ..session import Session
from .flusher import Flusher
from .timers import TimerWheel
from .wsconn import WsConnection

log = logging.getLogger(__name__)


class ClientLink:
    """Session + outbox + connection for one client."""

    def __init__(
        self,
        core: ServerCore,
        ws: WsConnection,
        peer: str,
        timers: TimerWheel | None = None,
        identity: Identity | None = None,
        flusher: Flusher | None = None,
    ) -> None:
        self.core = core
        self.ws = ws
        self.timers = timers
        """The shared wheel; None: ``run`` starts a private one (tests, embedding)."""
        self.timer_due = math.inf
        self.flusher = flusher
        self.flush_marked = False
        self.outbox = Outbox(
            core.settings.event_queue_depth, self.pump if flusher is None else self._mark
        )
        self.session = Session(core, self.outbox, trio.current_time(), peer, identity)
        self.session.peer = ws.peer = f"{peer}#{self.session.player_id}"
        self.session.timers_changed = self._reschedule
        self._close_started = False
        self._finished = False
        self._reading_urgently = False
        self._next_keepalive = trio.current_time() + core.settings.keepalive_interval
        self._counters = core.counters
        self.frames_sent = 0
        self.opened_at = trio.current_time()
        ws.on_drained = self.pump

    def _mark(self) -> None:
        assert self.flusher is not None
        self.flusher.mark(self)

    def pump(self) -> None:
        """Write what the outbox holds in one write, unless the socket is still busy."""
        ws = self.ws
        if ws.backed_up or self._close_started:
            return
        try:
            frames = self.outbox.take()
            ws.send_binaries(frames)
            counters = self._counters
            if counters is not None:
                for frame in frames:
                    counters.frame_out(frame)
            self.frames_sent += len(frames)
            request = self.outbox.close_request
            if request is not None and not len(self.outbox) and not ws.backed_up:
                self._start_close(request.code, request.reason, request.abort)
        except Exception:
            # pump runs in a round shared with every client (a tick, a read round): a
            # transport bug here must cost this client its connection, nothing more.
            log.exception("%s: send failed", self.session.peer)
            ws.abort()

    def _start_close(self, code: int, reason: str, abort: bool) -> None:
        self._close_started = True
        if abort:
            ws = self.ws
            log.info("%s: dropping connection (%d %s)", self.session.peer, code, reason)
            ws.abort()
            return
        # The connection itself gives the peer close_timeout to finish the handshake.
        self.ws.send_close(code, reason)
        self._reschedule()

    def close(self, code: int, reason: str) -> None:
        """Close this client from outside (server shutdown)."""
        self.session.close(code, reason)

    def on_binary(self, message: bytes) -> None:
        session = self.session
        state = session.state
        session.receive_bytes(message, trio.current_time(), arrived_at=self.ws.last_read_at)
        # Only a change of state (hello) can bring the next timer forward; other
        # messages move it later at most, and an early wake-up just reschedules.
        if session.state is not state and session.next_timer() < self.timer_due:
            self._reschedule()
        self._read_urgently_while_a_pong_is_due()

    def _read_urgently_while_a_pong_is_due(self) -> None:
        """RTT is measured to a pong's kernel arrival stamp, which is only its own if the
        pong is read before anything the client sends after it: while one is due, the
        poller reads this socket at once, not in its batched rounds (``read_interval``)."""
        due = self.session.latency.awaiting_pong
        if due is not self._reading_urgently:
            self._reading_urgently = due
            self.ws.read_urgently(due)

    def on_text(self) -> None:
        self.session.receive_text(trio.current_time())

    def _keepalive_deadline(self) -> float:
        if self.outbox.closing or self._close_started:
            return math.inf  # closing: the connection's close deadline rules now
        sent = self.ws.ping_sent_at
        if sent is not None:
            return sent + self.core.settings.keepalive_timeout
        return self._next_keepalive

    def _keepalive(self, now: float) -> None:
        """WebSocket-level keepalive: a ping every interval, 1011 if a pong is overdue."""
        settings = self.core.settings
        sent = self.ws.ping_sent_at
        if sent is not None:
            if now - sent >= settings.keepalive_timeout:
                log.info("%s: keepalive ping timeout", self.session.peer)
                self.session.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        elif now >= self._next_keepalive:
            self.ws.send_ping(now)
            self._next_keepalive = now + settings.keepalive_interval

    def _next_deadline(self) -> float:
        if self._finished:
            return math.inf
        return min(self.session.next_timer(), self._keepalive_deadline())

    def _reschedule(self) -> None:
        deadline = self._next_deadline()
        if deadline != self.timer_due and self.timers is not None:
            self.timers.schedule(self, deadline)

    def on_timer_due(self, now: float) -> None:
        """Session timers (pings, timeouts) and keepalive."""
        if self._finished:
            return
        self.session.on_timer(now)
        self._read_urgently_while_a_pong_is_due()
        self._keepalive(now)
        self._reschedule()

    async def run(self, early_frames: Iterable[Frame] = ()) -> None:
        """Drive the connection until it ends, then make the session leave its room."""
        ws = self.ws
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.run_writer)
                if self.timers is None:
                    self.timers = TimerWheel()
                    nursery.start_soon(self.timers.run)
                self._reschedule()
                await ws.run_reader(self.on_binary, self.on_text, early_frames)
                # Give the writer close_timeout to flush a close reply and EOF.
                with trio.move_on_after(self.core.settings.close_timeout):
                    await ws.writer_done.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._finished = True
            self._reschedule()  # no deadline any more: the wheel lets go of this link
            if ws.timed_out:
                log.warning(
                    "%s: send blocked for %.1f s, evicted (4001)",
                    self.session.peer,
                    ws.send_timeout,
                )
            # Only a client's own 1000 is a goodbye; any other end may be resumed.
            received = ws.protocol.close_rcvd
            clean = received is not None and received.code == CloseCode.NORMAL
            self.session.connection_lost(trio.current_time(), clean=clean)
            try:
                self._log_closed()
            finally:
                await trio.aclose_forcefully(ws.stream)

    def close_outcome(self) -> tuple[int, str, str]:
        """How the connection ended: close code (1006 without a close frame), reason, and
        who began it ("client": its close frame or its end of TCP; "server")."""
        protocol, ws, request = self.ws.protocol, self.ws, self.outbox.close_request
        if protocol.close_rcvd is not None and protocol.close_rcvd_then_sent is not False:
            return protocol.close_rcvd.code, protocol.close_rcvd.reason, "client"
        if protocol.close_sent is not None:
            return protocol.close_sent.code, protocol.close_sent.reason, "server"
        if request is not None and request.abort:
            return request.code, request.reason, "server"
        if ws.timed_out:
            return 1006, "send blocked", "server"
        if ws.failed_reason is not None:
            return 1006, ws.failed_reason, "server"
        return 1006, "connection lost", "client"

    def _log_closed(self) -> None:
        code, reason, closed_by = self.close_outcome()
        request = self.outbox.close_request
        evicted = (
            self.ws.timed_out
            or self.ws.failed_reason == "send backlog"
            or (request is not None and request.code == CloseCode.TOO_SLOW)
        )
        if self._counters is not None:
            self._counters.closed(code, closed_by, evicted)
        session, ws = self.session, self.ws
        log.info(
            "%s: connection closed",
            session.peer,
            extra={
                "peer": session.peer,
                "event": "closed",
                "code": code,
                "reason": reason,
                "closed_by": closed_by,
                "duration_s": round(trio.current_time() - self.opened_at, 3),
                "bytes_in": ws.bytes_in,
                "bytes_out": ws.bytes_out,
                "messages_in": session.messages_received,
                "messages_out": self.frames_sent,
            },
        )
