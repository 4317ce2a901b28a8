"""Plain HTTP on the WebSocket port, and the checks made before an upgrade.

The handshake calls :meth:`HttpFront.check_request` for every request. It
answers ``GET /`` (the browser client, ``clients/browser/index.html``),
``GET /static/<file>`` (that page's own .html, .js and .css files, nothing else),
``GET /vendor/msgpack.min.js`` (the one third-party file the page loads, from
``npm ci`` in clients/browser), ``GET /healthz``, ``GET /metrics`` (Prometheus)
and ``GET /status`` (the operator's page), refuses what must not become a
WebSocket (oversized headers 431, wrong version 426, connection caps 503/429,
wrong path 404), and returns None to let a valid upgrade at ``/``
proceed (websockets' protocol then checks the upgrade itself: 400 when
malformed, 403 for an Origin not allowed).
"""

from __future__ import annotations

import email.utils
import http
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.datastructures import Headers, MultipleValuesError
from websockets.http11 import Request, Response

from ..counters import Counters
from ..logfmt import Summarizer
from ..settings import Settings

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Prometheus' text exposition format."""


def _log(level: int, message: str, fields: dict[str, Any]) -> None:
    log.log(level, "%s", message, extra=fields)


DEFAULT_STATIC_DIR = Path(__file__).resolve().parents[2] / "clients" / "browser"
"""The bundled browser client (in a checkout and in an installed wheel alike)."""

_STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
"""What /static/ serves, by suffix, with a fixed type: the page's own files and nothing
else in its directory (package.json, the lockfile); not the host's mimetypes tables,
which on some systems map .js to text/plain, and browsers refuse such ES modules."""

MSGPACK_PATH = "/vendor/msgpack.min.js"
"""The page's msgpack codec: one fixed URL for one fixed file, nothing else under /vendor/."""
MSGPACK_FILE = Path("node_modules", "@msgpack", "msgpack", "dist.umd", "msgpack.min.js")
"""Where ``npm ci --prefix clients/browser`` puts it, relative to the static directory."""
MSGPACK_INSTALL = "./dev setup (or: npm ci --prefix clients/browser)"


def _is_loopback(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def response(
    status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
) -> Response:
    """A complete HTTP/1.1 response that closes the connection."""
    code = http.HTTPStatus(status)
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    for name, value in (extra or {}).items():
        headers[name] = value
    return Response(code.value, code.phrase, headers, body)


def text_response(status: int, text: str, extra: dict[str, str] | None = None) -> Response:
    return response(status, text.encode(), "text/plain; charset=utf-8", extra)


def is_upgrade(request: Request) -> bool:
    """Whether the request asks for a WebSocket (its Upgrade header names websocket)."""
    return "websocket" in ",".join(request.headers.get_all("Upgrade")).lower()


class ConnectionCounter:
    """Open WebSocket connections, in total and per IP: what the caps are checked against."""

    def __init__(self) -> None:
        self.total = 0
        self.per_ip: dict[str, int] = {}

    def opened(self, ip: str) -> None:
        self.total += 1
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1

    def closed(self, ip: str) -> None:
        self.total -= 1
        left = self.per_ip.get(ip, 1) - 1
        if left:
            self.per_ip[ip] = left
        else:
            self.per_ip.pop(ip, None)


class HttpFront:
    """Routes plain HTTP requests and gates WebSocket upgrades."""

    def __init__(
        self,
        settings: Settings,
        counter: ConnectionCounter,
        health: Callable[[], dict[str, Any]],
        static_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.counter = counter
        self.health = health
        self.static_dir = static_dir or DEFAULT_STATIC_DIR
        self.closing = False
        self.metrics: Callable[[], bytes] | None = None
        self.status_page: Callable[[], bytes] | None = None
        """Renders the operator page ``/status``; None: 404."""
        """Renders ``/metrics``; None (404) when the server counts nothing."""
        self.counters: Counters | None = None
        """Where refused upgrades are counted (None: not counted)."""
        self.summary = Summarizer(_log)
        """Repeated refusals of one kind (caps, dropped handshakes, failed authentication):
        the first logged, then one line per 10 s with their count."""
        if not (self.static_dir / MSGPACK_FILE).is_file():
            log.warning(
                "the browser page cannot run: %s is missing; run %s",
                self.static_dir / MSGPACK_FILE,
                MSGPACK_INSTALL,
            )

    @property
    def status(self) -> str:
        """``/healthz``'s status: "ok", or "closing" once shutdown has begun."""
        return "closing" if self.closing else "ok"

    def refused(self, status: int) -> None:
        """An upgrade was answered ``status`` instead of 101."""
        if self.counters is not None:
            self.counters.refused(status)

    def dropped(self, reason: str) -> None:
        """A connection was dropped in its handshake without a response."""
        if self.counters is not None:
            self.counters.dropped(reason)

    def check_request(self, request: Request, ip: str) -> Response | None:
        """Answer a plain HTTP request, refuse a bad upgrade, or None to accept the upgrade."""
        header_bytes = sum(len(k) + len(v) + 4 for k, v in request.headers.raw_items())
        if header_bytes > self.settings.max_request_header_bytes:
            return text_response(431, "Request header fields too large.\n")
        path = request.path.partition("?")[0]
        try:
            upgrade = request.headers.get("Upgrade", "")
            version = request.headers.get("Sec-WebSocket-Version", "13")
        except MultipleValuesError:
            # A repeated header: not a request any WebSocket client sends.
            return text_response(400, "Repeated Upgrade or Sec-WebSocket-Version header.\n")
        if "websocket" not in upgrade.lower():
            return self._plain_http(path, ip)
        if path != "/":
            return text_response(404, "WebSocket endpoint is /\n")
        if version != "13":
            return text_response(
                426, "Only WebSocket version 13 is supported.\n", {"Sec-WebSocket-Version": "13"}
            )
        if self.closing:
            return text_response(503, "Server is shutting down.\n")
        if self.counter.total >= self.settings.max_connections:
            self.summary.event(
                "refused_full",
                f"{ip}: refusing connection: server full ({self.counter.total})",
                time.monotonic(),
                {"peer": ip},
            )
            return text_response(503, "Server full.\n", {"Retry-After": "5"})
        if self.counter.per_ip.get(ip, 0) >= self.settings.max_connections_per_ip:
            self.summary.event(
                "refused_per_ip",
                f"{ip}: refusing connection: per-IP cap",
                time.monotonic(),
                {"peer": ip},
            )
            return text_response(429, "Too many connections from your address.\n")
        return None

    def _plain_http(self, path: str, ip: str) -> Response:
        if path == "/metrics" and self.metrics is not None:
            if not self._shows_stats(ip):
                return text_response(403, "Metrics are served to loopback only (public_stats).\n")
            return response(200, self.metrics(), METRICS_CONTENT_TYPE)
        if path == "/status" and self.status_page is not None:
            if not self._shows_stats(ip):
                return text_response(403, "The status page is for loopback only (public_stats).\n")
            return response(200, self.status_page(), STATIC_TYPES[".html"])
        if path == "/healthz":
            if self.settings.public_stats or _is_loopback(ip):
                document = self.health()
            else:
                # The statistics name rooms and show the pid and CPU use: not for everyone.
                document = {"status": self.status}
            body = json.dumps(document, separators=(",", ":")).encode()
            return response(200, body, "application/json")
        if path == "/":
            return self._static("index.html")
        if path == "/favicon.ico":
            return response(204, b"", "image/x-icon")
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        if path == MSGPACK_PATH:
            return self._msgpack()
        return text_response(404, "Not found.\n")

    def _shows_stats(self, ip: str) -> bool:
        """Whether ``ip`` may see statistics (/healthz's, /metrics, /status)."""
        return self.settings.public_stats or _is_loopback(ip)

    def _msgpack(self) -> Response:
        file = self.static_dir / MSGPACK_FILE
        if not file.is_file():
            return text_response(404, f"msgpack.min.js is not installed: run {MSGPACK_INSTALL}\n")
        return response(200, file.read_bytes(), STATIC_TYPES[".js"])

    def _static(self, name: str) -> Response:
        # Only plain file names directly inside static_dir: no traversal possible.
        content_type = STATIC_TYPES.get(Path(name).suffix)
        if content_type is None or not _STATIC_NAME.match(name):
            return text_response(404, "Not found.\n")
        file = self.static_dir / name
        if not file.is_file():
            return text_response(404, "Not found.\n")
        return response(200, file.read_bytes(), content_type)
