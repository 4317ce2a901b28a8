"""Every limit, rate and timeout of the server, in one frozen dataclass.

Each field has its default and the reason for it beside it; the README's
settings table is generated from these docstrings (``python -m gameserver
--print-settings``). Code reads limits only from a :class:`Settings`, so each
is enforced in one place.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import ipaddress
import itertools
from dataclasses import dataclass

from protocol import DecodeLimits


@dataclass(frozen=True, slots=True)
class Settings:
    """Server configuration. Build with keywords; every field has a sane default."""

    # -- network ----------------------------------------------------------
    host: str = "127.0.0.1"
    """Interface to listen on. Loopback by default; pass 0.0.0.0 to serve a LAN."""
    port: int = 9001
    """TCP port for HTTP and WebSocket (the tutorial's port). 0 picks a free one."""
    allowed_origins: tuple[str, ...] = ()
    """Browser Origins allowed to open a WebSocket (CLI: comma-separated); empty allows all.
    A request without an Origin header (not a browser) is always allowed."""
    public_stats: bool = False
    """Show ``/healthz``'s statistics (pid, CPU, rooms by name, players, ticks), ``/metrics``
    and ``/status`` to every address. Off: only loopback clients see them; others get just
    the status (403 for the other two), which is what a load balancer's health check needs."""
    trusted_proxies: tuple[str, ...] = ()
    """Reverse proxies (addresses or CIDRs, CLI: comma-separated) whose ``X-Forwarded-For`` or
    ``Forwarded`` header names the client; per-IP caps, logs, auth and metrics then use that
    address. Empty: such headers are ignored (a client could forge them)."""
    metrics: bool = True
    """Serve ``GET /metrics`` (Prometheus) and count for it; visible as ``/healthz``'s
    statistics are (loopback unless ``public_stats``). Off: 404 and no counting."""
    certfile: str | None = None
    """PEM certificate chain: serve wss:// and https:// when set (with ``keyfile``)."""
    keyfile: str | None = None
    """PEM private key matching ``certfile``."""

    # -- simulation -------------------------------------------------------
    tick_rate: int = 30
    """Simulation steps per second. 30 Hz is the common choice for action games over WebSocket."""
    snapshot_rate: int = 30
    """Snapshots per second to each player; at most ``tick_rate``, spread evenly over the ticks."""
    delta_window: float = 1.0
    """Seconds a client's acknowledged snapshot may serve as its delta base (``hello.deltas``);
    with no newer acknowledgement by then, a full snapshot. A second covers RTTs up to ~900 ms
    and keeps each connection's history to ``snapshot_rate`` states. 0 turns deltas off."""
    max_players_per_room: int = 50
    """Seats in a room; join-or-create opens a new room when all are full."""
    max_rooms: int = 1000
    """Rooms alive at once; a join that would create more gets ``too_many_rooms``."""
    rooms_created_per_connection: int = 8
    """Rooms one connection may create (then ``too_many_rooms``): nobody fills max_rooms alone."""
    empty_room_grace: float = 30.0
    """Seconds an empty room lives on (so a player can rejoin) before it is disposed."""
    max_catch_up_ticks: int = 0
    """Late ticks replayed at once after an overrun. 0: skip missed ticks, never spiral."""
    stagger_room_ticks: bool = True
    """Give each room its own phase within the tick period so rooms tick one after another,
    not all in one burst (the last room's tick would wait for all the others)."""

    # -- seats: resume and spectators ---------------------------------------
    reconnect_grace: float = 20.0
    """Seconds a dropped player's seat (entity, score, input seq) is held for a ``hello``
    with its resume token; then the player leaves. Covers a phone's or Wi-Fi's usual
    drop-outs. 0 turns resume off (a drop is a leave, ``welcome`` carries no token)."""
    max_spectators_per_room: int = 50
    """Spectators watching one room; more get ``spectators_full``. Each costs a snapshot
    a tick like a player. 0 turns spectating off."""
    spectator_chat: bool = True
    """Whether spectators may chat in the room they watch (else ``spectating``)."""

    # -- connections --------------------------------------------------------
    max_connections: int = 2000
    """Open WebSocket connections in total; past it the handshake gets HTTP 503."""
    max_connections_per_ip: int = 64
    """Open connections from one IP address; past it HTTP 429. Raise it for load tests."""
    max_pending_handshakes: int = 256
    """Connections still in their handshake (each buffers at most the header cap), their
    authentication included; more: dropped."""
    handshake_timeout: float = 5.0
    """Seconds for TCP + TLS + HTTP upgrade to finish (slowloris guard)."""
    auth_timeout: float = 5.0
    """Seconds the ``authenticate`` hook (if the server has one) may take for one
    connection; then HTTP 503 with Retry-After. Not counted in ``handshake_timeout``."""
    hello_timeout: float = 5.0
    """Seconds from the upgrade to the client's ``hello``; then close 4000."""
    max_request_header_bytes: int = 16384
    """Total size of the HTTP request headers; more gets HTTP 431."""
    close_timeout: float = 2.0
    """Seconds to wait for the peer's close frame before dropping TCP."""

    # -- messages -----------------------------------------------------------
    max_message_bytes: int = 4096
    """Largest client message (WebSocket payload); more is closed 1009 before it is read."""
    messages_per_second: float = 60.0
    """Sustained client messages per second (token bucket): 30 Hz inputs (ack inside) + pongs."""
    message_burst: int = 120
    """Token bucket size: messages a client may send at once after a quiet spell."""
    flood_close_after: int = 60
    """Messages dropped for rate (net of refill at ``messages_per_second``) before close 1008."""
    bad_messages_allowed: int = 10
    """Refused messages a client may send (refilled at one per 10 s) before close 1008."""
    chat_per_second: float = 2.0
    """Sustained chat lines per client: each goes to every member's reliable queue."""
    chat_burst: int = 5
    """Chat lines a client may send at once; with the rate, keeps event queues far from full."""
    max_chat_chars: int = 200
    """Longest chat line in characters, after control characters are removed."""
    input_queue_depth: int = 16
    """Inputs held per player, waiting for the next tick or their ``input.tick``; more get
    ``input_queue_full`` and are dropped. 16 holds, at one input a tick, every input of a
    client targeting ticks up to ``max_input_lead`` (15) ahead, with one to spare."""
    max_input_lead: int = 15
    """Ticks past the room's current tick an ``input.tick`` may target (0.5 s at 30 Hz: above
    any RTT a tick-targeting client needs); a later one gets ``input_too_early`` and is dropped.
    Keep it under ``input_queue_depth``: inputs that wait that long fill the queue."""
    max_input_seq_gap: int = 1024
    """Largest forward jump of an input ``seq``; a larger jump is ignored and counted."""

    read_interval: float = 0.0
    """Batch reads: a message may wait this long to be read (rooms still read before each
    tick; a client that owes a pong is read at once). 0.01 saved 10-15% CPU at 100-250
    clients; server-reported RTT p99 rose 0.3-1.5 ms on loopback. 0: read at once."""
    timer_slack: float = 0.01
    """Seconds a timer (ping, timeout, keepalive) may fire late, so timers close together
    share one wake-up. Pings are stamped when really sent: RTT is not affected."""

    frames_per_second: float = 240.0
    """WebSocket frames per second, control and continuation frames included; a flood: 1008."""
    frame_burst: int = 480
    """Frame token bucket size (frames a client may send at once)."""
    max_fragments: int = 64
    """Fragments in one message (empty ones add no bytes, so size alone cannot bound them)."""

    # -- outbound -----------------------------------------------------------
    event_queue_depth: int = 64
    """Reliable messages (events, replies) queued per client; overflow closes it 4001."""
    max_send_backlog_bytes: int = 1 << 20
    """Bytes waiting for a client's full socket (pongs included) before it is dropped."""
    send_timeout: float = 1.0
    """Seconds one send to a client may block before the client is evicted (4001)."""

    # -- latency --------------------------------------------------------------
    ping_interval: float = 1.0
    """Seconds between application pings (RTT and jitter are measured from their pongs)."""
    ping_timeout: float = 10.0
    """Seconds an unanswered ping may wait before the client is closed 4002."""
    ping_burst: int = 8
    """Pings after a welcome sent ``ping_burst_interval`` apart instead of ``ping_interval``
    (the first included): with the first sample, taken while the client starts, dropped and
    the next ones averaged, RTT and jitter settle within ~1 s of joining, not ~30 s."""
    ping_burst_interval: float = 0.1
    """Seconds between the pings of the burst after a welcome (``ping_burst``)."""
    keepalive_interval: float = 20.0
    """WebSocket-level ping interval (detects dead TCP even in the lobby)."""
    keepalive_timeout: float = 20.0
    """Seconds for a WebSocket-level pong before the connection is closed 1011."""

    # -- cluster: many workers, on Redis (README "Running on many cores and many hosts") --
    workers: int = 1
    """Worker processes (CLI: a number or ``auto`` = one per CPU). 1: one process, no
    Redis, today's server. More: a supervisor runs them on the shared ``port``
    (SO_REUSEPORT), each with its own direct port; needs ``redis``."""
    redis: str | None = None
    """Redis URL (``redis://host:6379/0``) of the cluster's room directory. Needed with
    ``workers`` > 1; with one worker it joins the workers of other hosts."""
    redis_prefix: str = "gameserver"
    """Prefix of every Redis key, so several clusters can share one Redis."""
    public_url: str | None = None
    """The ws:// or wss:// URL players are redirected to for this worker (behind a proxy
    or on another host). ``{index}`` becomes the worker's index and ``{port}`` its direct
    port. Unset: ``ws://HOST:DIRECT_PORT/``, HOST being ``host`` (or this machine's
    name when ``host`` is a wildcard)."""
    worker_port_base: int = 0
    """With ``workers`` > 1, worker i also listens alone on port ``worker_port_base + i``
    (what redirects point at). 0: ``port + 1``, so 9002, 9003, … for port 9001."""
    heartbeat_interval: float = 1.0
    """Seconds between a worker's heartbeats in Redis. A worker that stops beating (and
    its rooms) leaves the directory within three intervals."""
    ticket_ttl: float = 10.0
    """Seconds a redirect's seat ticket (and the seat it reserves) stays valid."""
    redis_timeout: float = 2.0
    """Seconds one directory request may take; then ``directory_unavailable``."""
    directory_joins_per_ip: float = 5.0
    """Joins per second one IP address may send through the directory (each may hold a
    seat behind a ticket for ``ticket_ttl``): keeps one address from squatting a room's
    seats or flooding Redis; past it ``rate_limited``."""
    directory_join_burst: int = 50
    """Joins one IP address may send through the directory at once (a room's worth, for
    players behind one NAT). Raise both for load tests from one machine."""

    # -- process --------------------------------------------------------------
    shutdown_timeout: float = 3.0
    """Seconds SIGINT/SIGTERM waits for clients to take their 1001 before it exits anyway."""
    log_level: str = "INFO"
    """Python logging level name."""
    log_format: str = "text"
    """``text`` (one readable line per record) or ``json`` (one JSON object per line)."""

    def __post_init__(self) -> None:
        if not 1 <= self.tick_rate <= 1000:
            raise ValueError("tick_rate must be 1..1000")
        if not 1 <= self.snapshot_rate <= self.tick_rate:
            raise ValueError(
                f"snapshot_rate ({self.snapshot_rate}) must be 1..tick_rate ({self.tick_rate}):"
                " set snapshot_rate too when you lower tick_rate"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")
        if self.max_players_per_room < 1:
            raise ValueError("max_players_per_room must be at least 1")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("certfile and keyfile go together")
        if self.max_message_bytes < 256:
            raise ValueError("max_message_bytes must be at least 256")
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in _AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("read_interval", "timer_slack"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be 0..1 seconds")
        if self.workers < 1:
            raise ValueError("workers must be at least 1 (or auto)")
        if self.workers > 1 and self.redis is None:
            raise ValueError("workers > 1 needs redis (a redis:// URL for the room directory)")
        if self.redis is not None and not self.redis.startswith(("redis://", "rediss://")):
            raise ValueError("redis must be a redis:// or rediss:// URL")
        if self.public_url is not None:
            if not self.public_url.startswith(("ws://", "wss://")):
                raise ValueError("public_url must be a ws:// or wss:// URL")
            if len(self.public_url) > 400:
                raise ValueError("public_url must be at most 400 characters")
            if self.workers > 1 and not {"{index}", "{port}"} & set(_placeholders(self.public_url)):
                raise ValueError(
                    "public_url with workers > 1 needs {index} or {port}: each worker's own URL"
                )
        if not 0 <= self.worker_port_base <= 65535:
            raise ValueError("worker_port_base must be 0..65535")
        if self.max_catch_up_ticks < 0:
            raise ValueError("max_catch_up_ticks must not be negative")
        if self.log_level.upper() not in _LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(_LOG_LEVELS)}")
        if self.log_format not in ("text", "json"):
            raise ValueError("log_format must be text or json")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {proxy!r} is no address or CIDR") from None
        if self.reconnect_grace < 0:
            raise ValueError("reconnect_grace must not be negative (0 turns resume off)")
        if self.max_spectators_per_room < 0:
            raise ValueError("max_spectators_per_room must not be negative")
        if not 0 <= self.delta_window <= 10:
            raise ValueError("delta_window must be 0..10 seconds (0 turns deltas off)")
        if self.delta_window and self.delta_window_ticks < 1:
            raise ValueError("delta_window must be 0 or at least one tick")

    @property
    def clustered(self) -> bool:
        """True when rooms are found through the Redis directory (any worker count)."""
        return self.redis is not None

    @property
    def tick_interval(self) -> float:
        """Seconds between ticks."""
        return 1.0 / self.tick_rate

    @property
    def delta_window_ticks(self) -> int:
        """``delta_window`` in ticks: how far back a delta's base may be."""
        return round(self.delta_window * self.tick_rate)

    @property
    def decode_limits(self) -> DecodeLimits:
        """The codec's bounds for one client message."""
        return DecodeLimits(max_message_bytes=self.max_message_bytes)

    def client_limits(self) -> dict[str, int]:
        """The limits a client must respect, as sent in ``welcome.limits``."""
        return {
            "max_message_bytes": self.max_message_bytes,
            "messages_per_second": int(self.messages_per_second),
            "message_burst": self.message_burst,
            "max_chat_chars": self.max_chat_chars,
            "input_queue_depth": self.input_queue_depth,
            "max_input_lead": self.max_input_lead,
            "max_players_per_room": self.max_players_per_room,
            "ping_timeout_ms": int(self.ping_timeout * 1000),
            "hello_timeout_ms": int(self.hello_timeout * 1000),
            # Per minute, so a rate under one a second still fits the int map.
            "chat_per_minute": max(1, round(self.chat_per_second * 60)),
            "chat_burst": self.chat_burst,
            # Added later (PROTOCOL.md §4.2): what else a client must respect or plans with.
            # Rates are truncated like messages_per_second: a client keeping to them is safe.
            "frames_per_second": int(self.frames_per_second),
            "frame_burst": self.frame_burst,
            "max_fragments": self.max_fragments,
            "flood_close_after": self.flood_close_after,
            "bad_messages_allowed": self.bad_messages_allowed,
            "max_input_seq_gap": self.max_input_seq_gap,
            "ping_interval_ms": int(self.ping_interval * 1000),
            "empty_room_grace_ms": int(self.empty_room_grace * 1000),
            "reconnect_grace_ms": int(self.reconnect_grace * 1000),
        }


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_POSITIVE = (
    "send_timeout", "ping_interval", "ping_timeout", "hello_timeout", "handshake_timeout",
    "auth_timeout", "ping_burst_interval",
    "close_timeout", "messages_per_second", "frames_per_second", "keepalive_interval",
    "keepalive_timeout", "shutdown_timeout", "empty_room_grace", "chat_per_second",
    "heartbeat_interval", "ticket_ttl", "redis_timeout", "directory_joins_per_ip",
)  # fmt: skip
_AT_LEAST_ONE = (
    "message_burst", "flood_close_after", "bad_messages_allowed", "max_chat_chars",
    "input_queue_depth", "max_input_seq_gap", "max_input_lead", "event_queue_depth", "max_rooms",
    "max_connections", "max_connections_per_ip", "frame_burst", "max_fragments",
    "max_send_backlog_bytes", "max_request_header_bytes", "chat_burst",
    "rooms_created_per_connection", "max_pending_handshakes", "directory_join_burst",
    "ping_burst",
)  # fmt: skip
"""Settings a zero would break (a token bucket of size 0 refuses everything)."""


def _placeholders(text: str) -> list[str]:
    return [part for part in ("{index}", "{port}") if part in text]


def setting_docs() -> dict[str, str]:
    """Map each setting's name to the docstring written under it (for --help and the README)."""
    source = inspect.getsource(Settings)
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
        ):
            docs[node.target.id] = " ".join(str(following.value.value).split())
    return docs


def settings_table() -> str:
    """The settings as a Markdown table: name, default, meaning."""
    docs = setting_docs()
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        rows.append(f"| `{f.name}` | `{f.default!r}` | {docs.get(f.name, '')} |")
    return "\n".join(rows)
