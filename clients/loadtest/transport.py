"""The bots' connection: a GameClient that counts bytes and reads snapshots cheaply.

:class:`BotClient` is :class:`clients.python.game_client.GameClient` with two
additions: WebSocket payload bytes go into the run's metrics (inside the
measured window), and snapshots are read on a fast path that decodes the
envelope (id, tick, ack, rtt_us, jitter_us) and skips the game state. Lean
bots (``lean=True``) go further: they read only id, tick and ack from the
snapshot's first bytes, where our server always writes them
(:func:`read_snapshot_head`), and decode nothing. Frozen (slow) bots can open
their socket with a small ``SO_RCVBUF`` (a slow link). Each bot's own received
bytes (all, and snapshots') inside the window go into its :class:`Traffic`.

Delta snapshots (PROTOCOL.md §5.6): a BotClient asks for them unless built with
``deltas=False``. Where the state is decoded (``fast_decode=False``) the client
applies each delta (:class:`~clients.python.game_client.GameClient`); the fast and lean
paths skip the state, a patch like a full one, and apply nothing. When to
acknowledge is the bot's call (:meth:`BotClient.ack_due`), not the client's
idle rule.
"""

from __future__ import annotations

import errno
import socket
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import msgpack
import trio
from websockets.exceptions import ConnectionClosed, InvalidStatus

from clients.loadtest.metrics import Metrics
from clients.loadtest.wsclient import LeanConnection, open_lean_connection
from clients.python.connect import websockets_opener
from clients.python.errors import ServerRefused
from clients.python.game_client import GameClient
from clients.python.ws import Opener, WebSocketConnection
from gameserver.trio.poller import ReadPoller
from protocol import (
    Ack,
    ClientMessage,
    Ping,
    Pong,
    ServerMessage,
    Snapshot,
    encode,
)

SNAPSHOT_PREFIX = b"\x88\xa1t\xa8snapshot"
"""How every snapshot frame of the server starts: fixmap(8), "t", "snapshot"."""

HEAD_PREFIX = SNAPSHOT_PREFIX + b"\xa2id"
"""How our server's snapshots start, up to the value of ``id`` (``protocol.encode_snapshot``)."""
_TICK_KEY = b"\xa4tick"
_ACK_KEY = b"\xa3ack"
_UINT_SIZES = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}

_ENVELOPE = frozenset({"id", "tick", "ack", "rtt_us", "jitter_us", "base"})
_HEAD_KEYS = _ENVELOPE | {"t"}
_STATE_KEY = b"\xa5state"


def parse_snapshot_envelope(frame: bytes) -> Snapshot | None:
    """Read a snapshot's envelope fields and skip its state (``state`` is None).

    Returns None when the frame is not a well-formed snapshot envelope; the
    caller then falls back to the full decoder, which reports the problem.
    """
    # The server writes ``state`` last (encode_snapshot): decode the map up to that
    # key as a map of one entry fewer, in one C call; anything else takes the
    # general path below.
    cut = frame.find(_STATE_KEY, len(SNAPSHOT_PREFIX))
    if frame[:1] == b"\x88" and cut > 0:
        try:
            head = msgpack.unpackb(b"\x87" + frame[1:cut], raw=False)
        except (ValueError, msgpack.ExtraData, msgpack.OutOfData, msgpack.FormatError):
            head = None
        if type(head) is dict and head.keys() == _HEAD_KEYS:
            return _envelope(head)
    return _parse_envelope_in_any_order(frame)


def _uint_at(frame: bytes, pos: int) -> tuple[int, int] | None:
    """The msgpack unsigned integer at ``pos`` and the position after it (None if not one)."""
    if pos >= len(frame):
        return None
    first = frame[pos]
    if first < 0x80:
        return first, pos + 1
    size = _UINT_SIZES.get(first)
    if size is None or pos + 1 + size > len(frame):
        return None
    return int.from_bytes(frame[pos + 1 : pos + 1 + size], "big"), pos + 1 + size


def read_snapshot_head(frame: bytes) -> Snapshot | None:
    """A snapshot's id, tick and ack read from its first bytes; nothing else is decoded.

    What lean bots use: it relies on the order our server writes the fields in
    (``t``, ``id``, ``tick``, ``ack`` first) and returns None for any other
    layout (the caller then decodes the frame as usual). ``rtt_us`` and
    ``jitter_us`` are left 0 and ``state`` None: they are not read.
    """
    if not frame.startswith(HEAD_PREFIX):
        return None
    found = _uint_at(frame, len(HEAD_PREFIX))
    if found is None or frame[found[1] : found[1] + 5] != _TICK_KEY:
        return None
    snapshot_id, pos = found
    found = _uint_at(frame, pos + 5)
    if found is None or frame[found[1] : found[1] + 4] != _ACK_KEY:
        return None
    tick, pos = found
    pos += 4
    ack: int | None = None
    if frame[pos : pos + 1] != b"\xc0":  # nil: no input applied yet
        found = _uint_at(frame, pos)
        if found is None:
            return None
        ack = found[0]
    return Snapshot(snapshot_id, tick, ack, 0, 0, None, None)


def _parse_envelope_in_any_order(frame: bytes) -> Snapshot | None:
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(frame) + 16)
    unpacker.feed(frame)
    fields: dict[str, Any] = {}
    try:
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key == "state":
                unpacker.skip()
            elif key in _ENVELOPE or key == "t":
                fields[key] = unpacker.unpack()
            else:
                unpacker.skip()
    except (ValueError, msgpack.OutOfData, msgpack.FormatError, msgpack.StackError):
        return None
    return _envelope(fields)


def _envelope(fields: dict[str, Any]) -> Snapshot | None:
    try:
        snapshot_id, tick = fields["id"], fields["tick"]
        ack, rtt_us, jitter_us = fields["ack"], fields["rtt_us"], fields["jitter_us"]
    except KeyError:
        return None
    if not (type(snapshot_id) is int and type(tick) is int and type(rtt_us) is int):
        return None
    if not (ack is None or type(ack) is int) or type(jitter_us) is not int:
        return None
    return Snapshot(snapshot_id, tick, ack, rtt_us, jitter_us, None, fields.get("base"))


@dataclass(slots=True)
class Traffic:
    """What one bot received inside the measured window, over all its connections."""

    bytes_in: int = 0
    """WebSocket payload bytes of every message."""
    snapshot_bytes: int = 0
    """Those of snapshots (full or delta)."""


class BotClient(GameClient):
    """A :class:`GameClient` that counts bytes into the metrics and decodes snapshots fast."""

    def __init__(
        self,
        ws: WebSocketConnection,
        metrics: Metrics,
        fast_decode: bool = True,
        *,
        opener: Opener | None = None,
        url: str | None = None,
        lean: bool = False,
        traffic: Traffic | None = None,
        deltas: bool = True,
    ) -> None:
        super().__init__(ws, opener=opener, url=url, deltas=deltas)
        self.metrics = metrics
        self.traffic = traffic if traffic is not None else Traffic()
        self.fast_decode = fast_decode
        self.lean = lean
        """Read only id, tick and ack of snapshots (:func:`read_snapshot_head`)."""

    def _count_sent(self, frame: bytes) -> None:
        super()._count_sent(frame)
        if self.metrics.recording:
            self.metrics.count("bytes_out", len(frame))

    def _count_received(self, frame: bytes) -> None:
        super()._count_received(frame)
        if self.metrics.recording:
            self.metrics.count("bytes_in", len(frame))
            self.traffic.bytes_in += len(frame)

    def _decode(self, frame: bytes | str) -> ServerMessage:
        """As :meth:`GameClient._decode`, with the snapshot fast (or lean) path."""
        snapshot_frame = isinstance(frame, bytes) and frame.startswith(SNAPSHOT_PREFIX)
        if snapshot_frame and self.metrics.recording:
            self.traffic.snapshot_bytes += len(frame)
        if self.lean and isinstance(frame, bytes):
            head = read_snapshot_head(frame)
            if head is not None:
                self._count_received(frame)
                return head
        if self.fast_decode and snapshot_frame and isinstance(frame, bytes):
            snapshot = parse_snapshot_envelope(frame)
            if snapshot is not None:
                self._count_received(frame)
                return snapshot
        return super()._decode(frame)

    def track(self, message: ServerMessage) -> ServerMessage | None:
        """As :meth:`GameClient.track`; a snapshot whose state was skipped (fast or lean
        path) is kept as it is: there is no state to apply a delta to, nor a need for one."""
        if isinstance(message, Snapshot) and message.state is None:
            self.latest_snapshot = message
            if message.ack is not None and message.ack >= self.next_seq:
                self.next_seq = message.ack + 1  # after a resume: the seat's numbering
            return message
        return super().track(message)

    async def _ack_if_idle(self, snapshot_id: int) -> None:
        """Nothing: the bot acknowledges by its own rule (:meth:`ack_due`)."""

    def ack_due(self, snapshot_id: int, input_in: float, interval: float) -> Ack | None:
        """The ``ack`` for a snapshot just received, when deltas are on: None when the next
        input (due in ``input_in`` seconds) comes within ``interval`` and will carry it, or
        when it or a newer one was acknowledged already."""
        receiver = self.receiver
        if not (self.deltas and receiver.acking) or snapshot_id <= receiver.acked_id:
            return None
        if input_in < interval:
            return None  # input.ack
        receiver.acked_id = snapshot_id
        return Ack(snapshot_id)

    def start_reading(
        self,
        poller: ReadPoller,
        on_message: Callable[[ServerMessage], None],
        on_end: Callable[[BaseException], None],
    ) -> bool:
        """Let ``poller`` read: ``on_message`` per message (pings answered here), then ``on_end``.

        False when this connection cannot be polled (``wss://``): use ``recv``.
        """
        ws = self.ws
        if not isinstance(ws, LeanConnection):
            return False

        def on_frame(frame: bytes | str) -> None:
            message = self._decode(frame)
            if isinstance(message, Ping):
                self.send_nowait(Pong(message.nonce))
                self.pings_answered += 1
                return
            tracked = self.track(message)
            if tracked is not None:
                on_message(tracked)

        return ws.start_polling(poller, on_frame, on_end)

    def send_nowait(self, message: ClientMessage) -> None:
        """Send without waiting (a lean connection only): what the socket does not take
        waits in its backlog for :meth:`flush`."""
        frame = encode(message)
        ws = self.ws
        assert isinstance(ws, LeanConnection)
        self._count_sent(frame)
        ws.send_nowait(frame)

    def send_input_nowait(self, data: Any) -> int:
        """:meth:`GameClient.send_input` without waiting."""
        message = self.next_input(data)
        self.send_nowait(message)
        return message.seq

    @property
    def backlogged(self) -> bool:
        """True while written bytes wait for the socket (a lean connection only)."""
        return isinstance(self.ws, LeanConnection) and self.ws.backlogged

    async def flush(self) -> None:
        if isinstance(self.ws, LeanConnection):
            await self.ws.flush()

    @property
    def can_cut(self) -> bool:
        """Whether :meth:`cut` can drop this connection (the lean ws:// one)."""
        return isinstance(self.ws, LeanConnection)

    def cut(self) -> None:
        """Drop the TCP connection with a reset, no close frame (``--drop-rate``)."""
        assert isinstance(self.ws, LeanConnection)
        self.ws.cut()

    def stop_reading(self) -> None:
        if isinstance(self.ws, LeanConnection):
            self.ws.stop_polling()


async def _small_window_stream(url: str, rcvbuf: int) -> trio.SocketStream:
    """A TCP stream with a small receive buffer, set before connecting (a slow link)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = trio.socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


@asynccontextmanager
async def open_bot_client(
    url: str,
    metrics: Metrics,
    *,
    open_timeout: float = 10.0,
    fast_decode: bool = True,
    rcvbuf: int = 0,
    lean: bool = False,
    traffic: Traffic | None = None,
    deltas: bool = True,
) -> AsyncIterator[BotClient]:
    """Open a WebSocket like :func:`clients.python.client.connect` does (no hello).

    ``ws://`` connections are lean ones, ``wss://`` websockets' own; a redirect
    opens the next one the same way (a small ``SO_RCVBUF`` included).
    """
    kwargs: dict[str, Any] = {
        "compression": None,
        "open_timeout": open_timeout,
        "max_size": None,
        "proxy": None,
        "ping_interval": None,  # the server pings; a frozen bot must not time itself out
        "close_timeout": 2.0,
    }

    async def open_stream(to: str) -> trio.abc.Stream:
        return await _small_window_stream(to, rcvbuf)

    async with websockets_opener(kwargs, open_stream if rcvbuf > 0 else None) as secure:

        async def opener(to: str) -> WebSocketConnection:
            if not to.startswith("ws://"):
                return await secure(to)
            with trio.fail_after(open_timeout):
                stream = await open_stream(to) if rcvbuf > 0 else None
                return await open_lean_connection(to, stream)

        client = BotClient(
            await opener(url),
            metrics,
            fast_decode,
            opener=opener,
            url=url,
            lean=lean,
            traffic=traffic,
            deltas=deltas,
        )
        try:
            yield client
        finally:
            with trio.CancelScope(shield=True):
                await client.ws.aclose()


def failure_kind(exc: BaseException) -> str:
    """A short, stable name for why a connection attempt failed."""
    if isinstance(exc, InvalidStatus):
        return f"http_{exc.response.status_code}"
    if isinstance(exc, TimeoutError | trio.TooSlowError):
        return "timeout"
    if isinstance(exc, ServerRefused):
        return f"refused_{exc.code}"
    if isinstance(exc, ConnectionClosed):
        return f"closed_{close_code(exc)}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, OSError):
        if exc.errno is not None:
            return errno.errorcode.get(exc.errno, f"errno_{exc.errno}")
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, BaseExceptionGroup):
            cause = cause.exceptions[0]
        if isinstance(cause, OSError) and cause is not exc:
            return failure_kind(cause)
        return "os_error"
    return type(exc).__name__


def close_code(exc: ConnectionClosed) -> int:
    """The close code the server sent, or 1006 when the TCP connection just ended."""
    return exc.rcvd.code if exc.rcvd is not None else 1006
