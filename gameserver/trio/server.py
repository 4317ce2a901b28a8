"""Run the game server: TCP listeners, a task per client, a ticker per room.

``serve_game`` is a trio service: ``server = await nursery.start(serve_game,
settings)`` returns a :class:`RunningServer` once the port is bound. One
nursery owns the listeners, every client link and every room ticker.
``RunningServer.aclose()`` shuts down in order: stop accepting, close every
client 1001, wait for them (at most ``shutdown_timeout``), cancel the rest.
With an ``authenticate`` hook (``gameserver.auth``), each upgrade waits for it
in its own handshake task before the 101. As worker ``i`` of a multi-worker host
(``worker_index``, set by the supervisor) it also listens on its direct port
(``gameserver/trio/listeners.py``).
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from typing import TYPE_CHECKING, Any

import trio

from protocol import CloseCode

from .. import statuspage
from ..auth import Authenticate
from ..cluster import WorkerInfo
from ..core import ServerCore
from ..game import GameRegistry
from ..games import default_games
from ..metrics import ServerMetrics, Sources
from ..proxies import ProxyResolver
from ..ratelimit import TokenBucket
from ..room import Room
from ..settings import Settings
from ..tick import TickStats
from .flusher import Flusher
from .handshake import AuthGate, Opened, open_websocket
from .http import ConnectionCounter, HttpFront
from .link import ClientLink
from .listeners import open_listeners, worker_identity

if TYPE_CHECKING:
    from .directory import RedisDirectory
from .poller import ReadPoller
from .poller import available as poller_available
from .ticker import run_room
from .timers import TimerWheel
from .wsconn import WsConnection

log = logging.getLogger(__name__)


def make_ssl_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


def stream_peer_ip(stream: trio.abc.Stream) -> str:
    """The peer's IP address for a TCP stream, "?" for anything else."""
    if isinstance(stream, trio.SocketStream):
        try:
            return str(stream.socket.getpeername()[0])
        except OSError:
            return "?"
    return "?"


def _tick_summary(stats: list[TickStats]) -> dict[str, Any]:
    details = [s.as_dict() for s in stats]
    return {
        "total": sum(s.ticks for s in stats),
        "overruns": sum(s.overruns for s in stats),
        "skipped": sum(s.skipped for s in stats),
        # Worst room: what the unluckiest players feel.
        "p50_ms": max((d["p50_ms"] for d in details), default=0.0),
        "p99_ms": max((d["p99_ms"] for d in details), default=0.0),
        "max_ms": max((d["max_ms"] for d in details), default=0.0),
    }


class RunningServer:
    """Handle on a started server: its address, its core, and how to stop it."""

    def __init__(
        self, core: ServerCore, nursery: trio.Nursery, authenticate: Authenticate | None = None
    ) -> None:
        self.core = core
        self.counter = ConnectionCounter()
        self.handshaking = ConnectionCounter()
        """TCP connections still in TLS/HTTP handshake (or a plain HTTP request)."""
        self.front = HttpFront(core.settings, self.counter, self.health)
        self.auth = (
            AuthGate(authenticate, core.settings.auth_timeout, self.front.summary)
            if authenticate is not None
            else None
        )
        """Runs the ``authenticate`` hook for each upgrade; None without one."""
        self.proxies = ProxyResolver(core.settings.trusted_proxies)
        self.metrics: ServerMetrics | None = None
        if core.counters is not None:
            self.metrics = ServerMetrics(
                Sources(
                    counters=core.counters,
                    rooms=lambda: core.rooms,
                    games=lambda: core.games,
                    connections=lambda: self.counter.total,
                    seats=core.seats,
                    directory_up=(
                        (lambda: self.directory is not None and self.directory.available)
                        if core.settings.clustered
                        else None
                    ),
                )
            )
            self.front.metrics = self.metrics.render
            self.front.counters = core.counters
        self.links: set[ClientLink] = set()
        self.flusher = Flusher()
        """Writes each client whose outbox changed once, at the end of each round."""
        self.timers = TimerWheel(slack=core.settings.timer_slack, after_round=self.flusher.flush)
        """Fires every client's timers from one task."""
        self.poller = (
            ReadPoller(interval=core.settings.read_interval, after_round=self.flusher.flush)
            if poller_available()
            else None
        )
        """Reads every plain-TCP client socket from one task (Linux epoll)."""
        self.directory: RedisDirectory | None = None
        """The cluster's room directory (with ``settings.redis``), else None."""
        self.listen_scope = trio.CancelScope()
        self._nursery = nursery
        self._no_links = trio.Event()
        self.started_at = time.monotonic()
        self.front.status_page = lambda: statuspage.render(
            self.core.rooms, self.counter.total, time.monotonic() - self.started_at
        )
        self.host = core.settings.host
        self.port = 0
        self.direct_port = 0
        """The port this process listens on alone (redirects point there); ``port`` for
        a single server, whose one port is its own."""
        self.worker: WorkerInfo | None = None
        """Who this process is in the cluster (id, index, direct URL); None without redis."""
        self.tls = core.settings.certfile is not None
        self.ssl_context = (
            make_ssl_context(core.settings.certfile, core.settings.keyfile)
            if core.settings.certfile and core.settings.keyfile
            else None
        )

    @property
    def url(self) -> str:
        scheme = "wss" if self.tls else "ws"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"

    def health(self) -> dict[str, Any]:
        """The /healthz document: liveness plus what a load tester wants to see."""
        rooms = list(self.core.rooms)
        cpu = os.times()
        document: dict[str, Any] = {
            "status": self.front.status,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "connections": self.counter.total,
            "players": self.core.rooms.player_count,
            "rooms": len(rooms),
            "tick_rate": self.core.settings.tick_rate,
            "snapshot_rate": self.core.settings.snapshot_rate,
            "ticks": _tick_summary([r.tick_stats for r in rooms if r.tick_stats is not None]),
            "cpu_s": {"user": cpu.user, "system": cpu.system},
            "clients": self._client_counters(),
            "room_list": [r.stats() for r in rooms[:100]],
        }
        if self.auth is not None:
            # Since the start: accepted, refused (401), timed_out (503), failed (500).
            document["auth"] = self.auth.stats.as_dict()
        directory = self.directory
        if directory is not None:
            worker = directory.worker
            document["worker"] = {"id": worker.id, "index": worker.index, "url": worker.url}
            document["cluster"] = {
                "directory": "ok" if directory.available else "unreachable",
                **directory.summary.as_dict(),
            }
        return document

    def _client_counters(self) -> dict[str, int]:
        """What the connected clients' sessions counted (bad input is logged and counted)."""
        sessions = [link.session for link in self.links]
        return {
            "messages_received": sum(s.messages_received for s in sessions),
            "messages_dropped_for_rate": sum(s.messages_dropped for s in sessions),
            "messages_refused": sum(s.messages_refused for s in sessions),
            "snapshots_replaced": sum(s.outbox.snapshots_replaced for s in sessions),
        }

    async def handle_tcp(self, stream: trio.SocketStream) -> None:
        """One accepted TCP connection. Whatever goes wrong ends this connection only."""
        try:
            await self._serve_tcp(stream)
        except Exception:
            # A bug reached here (ours or a library's): log it, drop this client,
            # and keep serving everyone else.
            log.exception("connection handler failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _serve_tcp(self, stream: trio.SocketStream) -> None:
        ip = stream_peer_ip(stream)
        settings = self.core.settings
        pending = self.handshaking
        if pending.total >= settings.max_pending_handshakes:
            # Each handshake holds a task and buffers; past the cap, hang up at once.
            self.front.dropped("pending_cap")
            self.front.summary.event(
                "dropped_pending",
                f"{ip}: too many handshakes in progress, dropped",
                time.monotonic(),
                {"peer": ip},
                logging.INFO,
            )
            return
        pending.opened(ip)
        try:
            opened = await open_websocket(
                stream,
                settings=settings,
                front=self.front,
                peer_ip=ip,
                ssl_context=self.ssl_context,
                auth=self.auth,
                proxies=self.proxies,
            )
        finally:
            pending.closed(ip)
        if opened is None:
            return  # handle_tcp closes the stream
        try:
            await self._run_link(opened, opened.peer_ip)
        finally:
            self.counter.closed(opened.peer_ip)

    async def _run_link(self, opened: Opened, ip: str) -> None:
        settings = self.core.settings
        ws = WsConnection(
            opened.stream,
            opened.protocol,
            send_timeout=settings.send_timeout,
            close_timeout=settings.close_timeout,
            frame_limit=TokenBucket(
                settings.frames_per_second, settings.frame_burst, trio.current_time()
            ),
            max_backlog_bytes=settings.max_send_backlog_bytes,
            max_fragments=settings.max_fragments,
            poller=self.poller,
        )
        # Counted in self.counter by open_websocket.
        link = ClientLink(self.core, ws, ip, self.timers, opened.identity, self.flusher)
        self.links.add(link)
        if self.core.counters is not None:
            self.core.counters.opened()
        peer = link.session.peer
        user = opened.identity.user_id if opened.identity is not None else None
        log.info(
            "%s: connection opened",
            peer,
            extra={"peer": peer, "event": "opened", "user_agent": opened.user_agent, "user": user},
        )
        try:
            if self.front.closing:
                link.close(CloseCode.GOING_AWAY, "server shutting down")
            await link.run(opened.early_frames)
        finally:
            self.links.discard(link)
            if not self.links and self.front.closing:
                self._no_links.set()

    async def aclose(self) -> None:
        """Close every client 1001 and stop, within ``shutdown_timeout``."""
        self.front.closing = True
        self.listen_scope.cancel()
        links = list(self.links)
        # Every outbox stops taking frames first: players leaving their rooms one by
        # one must not announce "X left" to the others, who are being closed too.
        for link in links:
            link.outbox.close(CloseCode.GOING_AWAY, "server shutting down")
        for link in links:
            link.close(CloseCode.GOING_AWAY, "server shutting down")
        if self.links:
            with trio.move_on_after(self.core.settings.shutdown_timeout):
                await self._no_links.wait()
        if self.directory is not None:
            await self.directory.aclose()
        self._nursery.cancel_scope.cancel()


async def _flush_summaries(front: HttpFront) -> None:
    """Write the counts of refusals summarised in the last window, every few seconds."""
    while True:
        await trio.sleep(2.0)
        front.summary.flush(time.monotonic())


async def serve_game(
    settings: Settings,
    games: GameRegistry | None = None,
    authenticate: Authenticate | None = None,
    worker_index: int | None = None,
    *,
    task_status: trio.TaskStatus[RunningServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled or until ``RunningServer.aclose()``.

    ``authenticate``: a hook (sync or async) that turns each upgrade's
    :class:`~gameserver.auth.AuthRequest` into an :class:`~gameserver.auth.Identity`
    or raises :class:`~gameserver.auth.AuthRefused`; None lets everyone in, as
    nobody in particular. Positional, so ``nursery.start(serve_game, settings,
    games, authenticate)`` works.

    ``worker_index``: this process's index among the host's ``workers`` (the
    supervisor passes ``--worker-index``; ``nursery.start(serve_game, settings,
    games, authenticate, index)``). Needed when ``workers`` > 1; None otherwise
    (with ``redis`` and one worker, the worker is index 0).
    """
    games = games if games is not None else default_games()
    async with trio.open_nursery() as nursery:

        def start_ticker(room: Room) -> None:
            poller = running.poller
            read_now = poller.drain if poller is not None else None
            nursery.start_soon(
                run_room, core, room, read_now, running.flusher.flush, name=f"room:{room.name}"
            )

        core = ServerCore(settings, games, epoch=trio.current_time(), on_room_created=start_ticker)
        running = RunningServer(core, nursery, authenticate)
        bound = await open_listeners(settings, worker_index)
        listeners = bound.sockets
        running.host, running.port, running.direct_port = bound.host, bound.port, bound.direct_port
        running.worker = worker_identity(settings, worker_index, bound.direct_port)
        if running.worker is not None:
            # Imported here: coredis takes ~0.35 s to import, which a lone server never needs.
            from .directory import RedisDirectory

            running.directory = RedisDirectory(core, running.worker, nursery)
            # DirectoryUnreachable (a ConfigError) propagates: the CLI exits 2 in one line.
            await nursery.start(running.directory.serve, name="directory")
            core.attach_directory(running.directory)

        async def listen() -> None:
            with running.listen_scope:
                await trio.serve_listeners(
                    running.handle_tcp,
                    listeners,
                    handler_nursery=nursery,
                )

        nursery.start_soon(running.flusher.run, name="flusher")
        nursery.start_soon(running.timers.run, name="timers")
        nursery.start_soon(_flush_summaries, running.front, name="log summaries")
        if running.poller is not None:
            nursery.start_soon(running.poller.run, name="poller")
        nursery.start_soon(listen)
        if running.worker is not None:
            worker = running.worker
            log.info("serving %s as worker %s (%s)", running.url, worker.id, worker.url)
        else:
            log.info("serving %s", running.url)
        task_status.started(running)
