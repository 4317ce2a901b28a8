"""Run the game server: websockets' trio server + one ticker task per room.

``serve_game`` is a trio service: ``server = await nursery.start(serve_game,
settings)`` returns a :class:`RunningServer` once the port is bound. One
nursery owns the listener, every connection and every room ticker.
``RunningServer.aclose()`` shuts down in order: refuse new upgrades, close every
client 1001 (bounded by ``shutdown_timeout``), then cancel the rest.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

import trio
from websockets.protocol import OPEN
from websockets.trio.server import Server, ServerConnection, serve
from websockets.typing import Origin

from ..core import ServerCore
from ..game import GameRegistry
from ..games import default_games
from ..room import Room
from ..settings import Settings
from .connection import serve_client
from .http import ConnectionCounter, HttpFront, peer_ip
from .ticker import run_room

log = logging.getLogger(__name__)


class GameServerConnection(ServerConnection):
    """websockets' connection, minus a race that can lose the close frame.

    When a client's first frame after the 101 ends the connection (a close
    frame, or a framing error), ``serve()`` closes the socket as soon as
    ``handshake()`` returns, possibly while the close reply is still being
    written. Waiting for the send lock lets that write finish first.
    """

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await super().handshake(*args, **kwargs)
        if self.protocol.state is not OPEN:
            async with self.send_lock:
                pass


def make_ssl_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


class RunningServer:
    """Handle on a started server: its address, its core, and how to stop it."""

    def __init__(
        self,
        core: ServerCore,
        front: HttpFront,
        counter: ConnectionCounter,
        nursery: trio.Nursery,
    ) -> None:
        self.core = core
        self.front = front
        self.counter = counter
        self._nursery = nursery
        self.ws_server: Server | None = None
        self.started_at = time.monotonic()
        self.host = core.settings.host
        self.port = 0
        self.tls = core.settings.certfile is not None

    @property
    def url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"

    def health(self) -> dict[str, Any]:
        """The /healthz document: liveness plus what a load tester wants to see."""
        rooms = list(self.core.rooms)
        cpu = os.times()
        stats = [r.tick_stats for r in rooms if r.tick_stats is not None]
        return {
            "status": "closing" if self.front.closing else "ok",
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "connections": self.counter.total,
            "players": self.core.rooms.player_count,
            "rooms": len(rooms),
            "tick_rate": self.core.settings.tick_rate,
            "snapshot_rate": self.core.settings.snapshot_rate,
            "ticks": {
                "total": sum(s.ticks for s in stats),
                "overruns": sum(s.overruns for s in stats),
                "skipped": sum(s.skipped for s in stats),
                "p50_ms": max((s.as_dict()["p50_ms"] for s in stats), default=0.0),
                "p99_ms": max((s.as_dict()["p99_ms"] for s in stats), default=0.0),
                "max_ms": max((s.as_dict()["max_ms"] for s in stats), default=0.0),
            },
            "cpu_s": {"user": cpu.user, "system": cpu.system},
            "room_list": [r.stats() for r in rooms[:100]],
        }

    async def aclose(self) -> None:
        """Close every client 1001 and stop, within ``shutdown_timeout``."""
        self.front.closing = True
        if self.ws_server is not None:
            with trio.move_on_after(self.core.settings.shutdown_timeout):
                await self.ws_server.aclose()
        self._nursery.cancel_scope.cancel()


async def serve_game(
    settings: Settings,
    games: GameRegistry | None = None,
    *,
    task_status: trio.TaskStatus[RunningServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled or until ``RunningServer.aclose()``."""
    games = games if games is not None else default_games()
    async with trio.open_nursery() as nursery:
        room_starter: Callable[[Room], None] = lambda room: nursery.start_soon(  # noqa: E731
            run_room, core, room, name=f"room:{room.name}"
        )
        core = ServerCore(settings, games, epoch=trio.current_time(), on_room_created=room_starter)
        counter = ConnectionCounter()
        front = HttpFront(settings, counter, lambda: running.health())
        running = RunningServer(core, front, counter, nursery)

        async def handler(ws: ServerConnection) -> None:
            ip = peer_ip(ws)
            counter.opened(ip)
            try:
                await serve_client(core, ws, ip)
            finally:
                counter.closed(ip)

        origins: Sequence[Origin | None] | None = None
        if settings.allowed_origins:
            origins = [*(Origin(o) for o in settings.allowed_origins), None]
        ssl_context = (
            make_ssl_context(settings.certfile, settings.keyfile)
            if settings.certfile and settings.keyfile
            else None
        )
        running.ws_server = await nursery.start(
            functools.partial(
                serve,
                handler,
                settings.port,
                host=settings.host,
                ssl=ssl_context,
                origins=origins,
                compression=None,
                process_request=front.process_request,
                server_header="gameserver",
                open_timeout=settings.handshake_timeout,
                ping_interval=settings.keepalive_interval,
                ping_timeout=settings.keepalive_timeout,
                close_timeout=settings.close_timeout,
                max_size=settings.max_message_bytes,
                create_connection=GameServerConnection,
            )
        )
        listener = running.ws_server.listeners[0]
        sockname = listener.socket.getsockname()
        running.host, running.port = str(sockname[0]), int(sockname[1])
        log.info(
            "serving %s (http%s://%s:%d/)",
            running.url,
            "s" if running.tls else "",
            settings.host,
            running.port,
        )
        task_status.started(running)
