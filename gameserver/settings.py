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
    """Show ``/healthz``'s statistics (pid, CPU, rooms by name, players, ticks) to every
    address. Off: only loopback clients see them; others get just the status, which is
    what a load balancer's health check needs."""
    certfile: str | None = None
    """PEM certificate chain: serve wss:// and https:// when set (with ``keyfile``)."""
    keyfile: str | None = None
    """PEM private key matching ``certfile``."""

    # -- simulation -------------------------------------------------------
    tick_rate: int = 30
    """Simulation steps per second. 30 Hz is the common choice for action games over WebSocket."""
    snapshot_rate: int = 30
    """Snapshots per second to each player; at most ``tick_rate``, spread evenly over the ticks."""
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
    """Inputs held per player between two ticks; more get ``input_queue_full`` and are dropped."""
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
    keepalive_interval: float = 20.0
    """WebSocket-level ping interval (detects dead TCP even in the lobby)."""
    keepalive_timeout: float = 20.0
    """Seconds for a WebSocket-level pong before the connection is closed 1011."""

    # -- process --------------------------------------------------------------
    shutdown_timeout: float = 3.0
    """Seconds SIGINT/SIGTERM waits for clients to take their 1001 before it exits anyway."""
    log_level: str = "INFO"
    """Python logging level name."""

    def __post_init__(self) -> None:
        if not 1 <= self.tick_rate <= 1000:
            raise ValueError("tick_rate must be 1..1000")
        if not 1 <= self.snapshot_rate <= self.tick_rate:
            raise ValueError("snapshot_rate must be 1..tick_rate")
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
        if self.max_catch_up_ticks < 0:
            raise ValueError("max_catch_up_ticks must not be negative")
        if self.reconnect_grace < 0:
            raise ValueError("reconnect_grace must not be negative (0 turns resume off)")
        if self.max_spectators_per_room < 0:
            raise ValueError("max_spectators_per_room must not be negative")

    @property
    def tick_interval(self) -> float:
        """Seconds between ticks."""
        return 1.0 / self.tick_rate

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
            "max_players_per_room": self.max_players_per_room,
            "ping_timeout_ms": int(self.ping_timeout * 1000),
            "hello_timeout_ms": int(self.hello_timeout * 1000),
            # Per minute, so a rate under one a second still fits the int map.
            "chat_per_minute": max(1, round(self.chat_per_second * 60)),
            "chat_burst": self.chat_burst,
        }


_POSITIVE = (
    "send_timeout", "ping_interval", "ping_timeout", "hello_timeout", "handshake_timeout",
    "auth_timeout",
    "close_timeout", "messages_per_second", "frames_per_second", "keepalive_interval",
    "keepalive_timeout", "shutdown_timeout", "empty_room_grace", "chat_per_second",
)  # fmt: skip
_AT_LEAST_ONE = (
    "message_burst", "flood_close_after", "bad_messages_allowed", "max_chat_chars",
    "input_queue_depth", "max_input_seq_gap", "event_queue_depth", "max_rooms",
    "max_connections", "max_connections_per_ip", "frame_burst", "max_fragments",
    "max_send_backlog_bytes", "max_request_header_bytes", "chat_burst",
    "rooms_created_per_connection", "max_pending_handshakes",
)  # fmt: skip
"""Settings a zero would break (a token bucket of size 0 refuses everything)."""


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
