"""Who a worker is: its index on the host, its cluster-wide id, its ports and URL."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Settings

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def direct_port(settings: Settings, index: int, shared_port: int) -> int:
    """The port worker ``index`` listens on alone: what redirects to it point at.

    A single worker (``workers`` = 1, joining other hosts through ``redis``) has
    no shared port to tell apart from its own: its direct port is the port.
    """
    if settings.workers == 1:
        return shared_port
    base = settings.worker_port_base or shared_port + 1
    return base + index


def worker_url(settings: Settings, index: int, port: int, hostname: str) -> str:
    """The URL players are redirected to for worker ``index`` listening alone on ``port``."""
    if settings.public_url is not None:
        return settings.public_url.replace("{index}", str(index)).replace("{port}", str(port))
    scheme = "wss" if settings.certfile else "ws"
    host = settings.host
    if host in WILDCARD_HOSTS:
        host = hostname  # this machine's name: the caller asks the OS
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}/"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker process of a cluster."""

    id: str
    """Unique across the cluster and across restarts: ``HOST-PID-INDEX`` by default."""
    index: int
    """0..workers-1 on its host (set by the supervisor)."""
    url: str
    """Where redirected players reach this worker alone."""
