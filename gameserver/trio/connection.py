"""One client connection: three tasks around a sans-I/O :class:`Session`.

The connection's nursery owns a reader (frames → session), the sender
(outbox → socket) and a timer (pings, hello and ping timeouts). When the peer
goes away the nursery is cancelled; when the session asks for a close the
sender performs it and then the nursery is cancelled. Either way the session
hears ``connection_lost`` and leaves its room.
"""

from __future__ import annotations

import logging

import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.server import ServerConnection

from ..core import ServerCore
from ..outbox import Outbox
from ..session import Session
from .sender import Wakeup, run_sender

log = logging.getLogger(__name__)


async def _read(
    ws: ServerConnection, session: Session, done: trio.CancelScope, rearm: Wakeup
) -> None:
    try:
        async for message in ws:
            now = trio.current_time()
            if isinstance(message, str):
                session.receive_text(now)
                return  # stop reading; the sender closes 1003
            session.receive_bytes(message, now)
            rearm.set()  # a message (hello) can bring the next timer forward
            if session.outbox.closing:
                return
    except ConnectionClosed:
        pass
    # The peer closed (or the socket broke): nothing more can be sent.
    done.cancel()


async def _timers(session: Session, rearm: Wakeup) -> None:
    while True:
        # Woken early when a message may have changed next_timer(); on_timer()
        # fires only what is due, so an early call is harmless.
        with trio.move_on_at(session.next_timer()):
            await rearm.wait()
        session.on_timer(trio.current_time())


async def serve_client(core: ServerCore, ws: ServerConnection, peer: str) -> Session:
    """Run one client until its connection ends; return its session (for tests and stats)."""
    wakeup = Wakeup()
    outbox = Outbox(core.settings.event_queue_depth, wakeup.set)
    session = Session(core, outbox, trio.current_time(), peer=f"{peer}#?")
    session.peer = f"{peer}#{session.player_id}"
    log.debug("%s: connected", session.peer)
    try:
        async with trio.open_nursery() as nursery:
            rearm = Wakeup()
            nursery.start_soon(_read, ws, session, nursery.cancel_scope, rearm)
            nursery.start_soon(_timers, session, rearm)
            await run_sender(
                ws, outbox, wakeup, send_timeout=core.settings.send_timeout, peer=session.peer
            )
            nursery.cancel_scope.cancel()
    finally:
        session.connection_lost(trio.current_time())
        log.debug("%s: disconnected (%s)", session.peer, ws.close_code)
    return session
