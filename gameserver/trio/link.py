"""One client: a :class:`Session` wired to a :class:`WsConnection` and its tasks.

The link's nursery owns the reader, the writer and a timer task. Frames the
session queues in its :class:`Outbox` are written synchronously by
:meth:`ClientLink.pump` when the socket has room; while the socket is backed
up they stay in the outbox, where a newer snapshot replaces an older one,
and the writer calls ``pump`` again once the backlog is gone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import trio
from websockets.frames import Frame

from protocol import CloseCode

from ..core import ServerCore
from ..outbox import Outbox
from ..session import Session
from .wsconn import WsConnection

log = logging.getLogger(__name__)


class ClientLink:
    """Session + outbox + connection for one client."""

    def __init__(self, core: ServerCore, ws: WsConnection, peer: str) -> None:
        self.core = core
        self.ws = ws
        self.outbox = Outbox(core.settings.event_queue_depth, self.pump)
        self.session = Session(core, self.outbox, trio.current_time(), peer=peer)
        self.session.peer = f"{peer}#{self.session.player_id}"
        self._close_started = False
        self._close_deadline = math.inf
        self._timer_changed = trio.Event()
        self._armed_deadline = math.inf
        self._next_keepalive = trio.current_time() + core.settings.keepalive_interval
        ws.on_drained = self.pump

    def pump(self) -> None:
        """Write what the outbox holds, unless the socket is still busy with older bytes."""
        ws = self.ws
        if ws.backed_up or self._close_started:
            return
        for frame in self.outbox.take():
            ws.send_binary(frame)
        request = self.outbox.close_request
        if request is not None and not len(self.outbox) and not ws.backed_up:
            self._start_close(request.code, request.reason, request.abort)

    def _start_close(self, code: int, reason: str, abort: bool) -> None:
        self._close_started = True
        if abort:
            ws = self.ws
            log.info("%s: dropping connection (%d %s)", self.session.peer, code, reason)
            ws.abort()
            return
        self.ws.send_close(code, reason)
        self._close_deadline = trio.current_time() + self.core.settings.close_timeout
        self._timer_changed.set()

    def close(self, code: int, reason: str) -> None:
        """Close this client from outside (server shutdown)."""
        self.session.close(code, reason)

    def on_binary(self, message: bytes) -> None:
        self.session.receive_bytes(message, trio.current_time())
        # A message (hello) can bring the next timer forward: wake the timer task
        # only then, not on every message (each wake-up is a task switch).
        if self.session.next_timer() < self._armed_deadline:
            self._timer_changed.set()

    def on_text(self) -> None:
        self.session.receive_text(trio.current_time())

    def _keepalive_deadline(self) -> float:
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

    async def run_timers(self) -> None:
        """Session timers (pings, timeouts), keepalive, and the close handshake's deadline."""
        while True:
            deadline = min(
                self.session.next_timer(), self._keepalive_deadline(), self._close_deadline
            )
            self._armed_deadline = deadline
            with trio.move_on_at(deadline):
                await self._timer_changed.wait()
                self._timer_changed = trio.Event()
                continue
            now = trio.current_time()
            if now >= self._close_deadline:
                # The peer did not answer our close frame in time.
                self.ws.abort()
                return
            self.session.on_timer(now)
            self._keepalive(now)

    async def run(self, early_frames: Iterable[Frame] = ()) -> None:
        """Drive the connection until it ends, then make the session leave its room."""
        ws = self.ws
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.run_writer)
                nursery.start_soon(self.run_timers)
                await ws.run_reader(self.on_binary, self.on_text, early_frames)
                # Give the writer close_timeout to flush a close reply and EOF.
                with trio.move_on_after(self.core.settings.close_timeout):
                    await ws.writer_done.wait()
                nursery.cancel_scope.cancel()
        finally:
            if ws.timed_out:
                log.warning(
                    "%s: send blocked for %.1f s, evicted (4001)",
                    self.session.peer,
                    ws.send_timeout,
                )
            self.session.connection_lost(trio.current_time())
            await trio.aclose_forcefully(ws.stream)
