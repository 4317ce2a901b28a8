"""The TCP listeners of one server process, alone or as one worker of a host.

A single server (``workers`` = 1, with or without ``redis``) listens on
``port`` as it always has, and that port is also its direct port. Worker
``index`` of a multi-worker host listens on the shared ``port`` with
SO_REUSEPORT, so the kernel spreads new connections across the workers, and
alone on its direct port (:func:`gameserver.cluster.direct_port`), which is
what redirects to it point at.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import trio

from ..cluster import WorkerInfo, direct_port, worker_url
from ..config import ConfigError
from ..settings import Settings

_BACKLOG = 0xFFFF
"""What trio asks for by default: the kernel caps it at net.core.somaxconn."""


@dataclass(frozen=True, slots=True)
class Listeners:
    """A process's bound listeners and the ports they ended up on."""

    sockets: list[trio.SocketListener]
    """Every listener: the shared port's, then the direct port's (one list to serve)."""
    host: str
    port: int
    """The port players connect to (the shared one on a multi-worker host)."""
    direct_port: int
    """The port this process listens on alone (``port`` for a single server)."""


def _bound_port(listener: trio.SocketListener) -> tuple[str, int]:
    name = listener.socket.getsockname()
    return str(name[0]), int(name[1])


async def open_shared_listeners(host: str, port: int) -> list[trio.SocketListener]:
    """Listen on ``host``:``port`` with SO_REUSEPORT, beside the other workers of the host.

    Like ``trio.open_tcp_listeners`` (one socket per address ``host`` resolves to),
    plus SO_REUSEPORT: every socket bound so by the same user shares the port,
    and the kernel hashes each new connection to one of them.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("this platform has no SO_REUSEPORT: run one worker per port")
    infos = await trio.socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    listeners: list[trio.SocketListener] = []
    try:
        for family, kind, proto, _, address in infos:
            sock = trio.socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    # As trio does: the IPv4 address gets its own socket.
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                await sock.bind(address)
                sock.listen(_BACKLOG)
            except BaseException:
                sock.close()
                raise
            listeners.append(trio.SocketListener(sock))
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    return listeners


async def open_listeners(settings: Settings, index: int | None) -> Listeners:
    """Bind what this process serves: see the module docstring.

    ``index`` is this process's worker index on the host (None: not started as
    a worker, which only a single server may be). A multi-worker host needs a
    fixed shared ``port``: with port 0 each worker would get a port of its own.
    """
    if settings.workers == 1:
        listeners = await trio.open_tcp_listeners(settings.port, host=settings.host)
        host, port = _bound_port(listeners[0])
        return Listeners(listeners, host, port, port)
    if index is None or not 0 <= index < settings.workers:
        raise ConfigError(f"with workers={settings.workers} each server needs a worker index")
    if settings.port == 0:
        raise ConfigError("workers > 1 needs a fixed port (the one the workers share)")
    shared = await open_shared_listeners(settings.host, settings.port)
    try:
        direct = await trio.open_tcp_listeners(
            direct_port(settings, index, settings.port), host=settings.host
        )
    except BaseException:
        for listener in shared:
            listener.socket.close()
        raise
    host, port = _bound_port(shared[0])
    return Listeners([*shared, *direct], host, port, _bound_port(direct[0])[1])


def worker_identity(settings: Settings, index: int | None, port: int) -> WorkerInfo | None:
    """Who this process is in the cluster (None without ``redis``): ``HOST-PID-INDEX``.

    ``port`` is the direct port actually bound (the URL names it even when
    ``worker_port_base`` is 0 and the port was picked by the kernel).
    """
    if not settings.clustered:
        return None
    index = 0 if index is None else index
    hostname = socket.gethostname()
    return WorkerInfo(
        id=f"{hostname}-{os.getpid()}-{index}",
        index=index,
        url=worker_url(settings, index, port, hostname),
    )
