"""Small fakes shared by tests/core and tests/trio (no sockets; only WsPeer does trio I/O)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import msgpack
import trio
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side

from gameserver.game import Player
from gameserver.latency import LatencyReport
from gameserver.room import Room
from protocol import PackedState, ServerMessage, decode_server_message


class RecordingMember:
    """A RoomMember that records what the room hands it and, like Session, leaves when kicked."""

    def __init__(self, player_id: int, name: str = "p", room: Room | None = None) -> None:
        self.player = Player(player_id, name, LatencyReport)
        self.room = room
        self.now = 0.0
        self.frames: list[bytes] = []
        self.snapshots: list[tuple[int, int | None, PackedState]] = []
        self.kicks: list[tuple[int, str]] = []

    def deliver(self, frame: bytes) -> None:
        self.frames.append(frame)

    def deliver_snapshot(
        self, tick: int, ack: int | None, state: PackedState, audience: object = None
    ) -> None:
        self.snapshots.append((tick, ack, state))

    def kick(self, code: int, reason: str) -> None:
        self.kicks.append((code, reason))
        if self.room is not None:
            self.room.remove(self.player.id, self.now)

    def messages(self) -> list[ServerMessage]:
        """Every reliable frame delivered so far, decoded."""
        return [decode_server_message(frame) for frame in self.frames]


def unpack(state: PackedState) -> Any:
    """Decode a packed game state (as the client sees it inside a snapshot)."""
    return msgpack.unpackb(state, raw=False)


class WsPeer:
    """The client end of an open WebSocket on a trio stream: websockets' client Protocol by hand.

    It encodes (and masks) what the test sends and decodes what the server wrote.
    With ``answer=True`` it behaves like a polite client: it answers pings and
    close frames and half-closes after the server's EOF; with ``answer=False``
    its replies are held until the test calls ``flush()`` (or sends something).
    """

    def __init__(self, stream: trio.abc.Stream, *, answer: bool = True) -> None:
        self.stream = stream
        self.answer = answer
        self.protocol = Protocol(Side.CLIENT, state=OPEN, max_size=None)
        self.frames: deque[Frame] = deque()
        self.eof = False

    async def flush(self) -> None:
        """Write what the client protocol produced (frames, then possibly EOF)."""
        for data in self.protocol.data_to_send():
            if data:
                await self.stream.send_all(data)
            elif isinstance(self.stream, trio.abc.HalfCloseableStream):
                await self.stream.send_eof()
            else:
                await self.stream.aclose()

    async def send_binary(self, payload: bytes) -> None:
        self.protocol.send_binary(payload)
        await self.flush()

    def feed(self, data: bytes | bytearray) -> None:
        """Decode bytes already taken from the stream (say, behind an HTTP response head)."""
        self.protocol.receive_data(data)
        self.frames.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))

    async def read(self) -> None:
        """Receive once from the stream and decode what arrived."""
        data = await self.stream.receive_some()
        if data:
            self.feed(data)
        else:
            self.eof = True
            self.protocol.receive_eof()
            self.frames.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))
        if self.answer:
            await self.flush()

    async def next_frame(self) -> Frame | None:
        """The next frame from the server, or None after its end of stream."""
        while not self.frames:
            if self.eof:
                return None
            await self.read()
        return self.frames.popleft()

    async def next_binary(self) -> bytes:
        """The payload of the next frame, which must be a complete binary message."""
        frame = await self.next_frame()
        assert frame is not None and frame.opcode is Opcode.BINARY and frame.fin, frame
        return bytes(frame.data)

    async def next_message(self) -> ServerMessage:
        """The next binary frame, decoded as a server message."""
        return decode_server_message(await self.next_binary())

    async def rest(self) -> list[Frame]:
        """Every frame until the server's end of stream."""
        frames = []
        while (frame := await self.next_frame()) is not None:
            frames.append(frame)
        return frames


def queue_frames(protocol: Protocol, kind: str, data: object) -> bool:
    """Queue the frames of one generated spec on ``protocol`` (either side, so masking is
    the protocol's): ``binary``, ``fragmented`` (a list of parts), ``text``, ``ping``.
    Returns False, queueing nothing, for any other kind (the caller's own)."""
    if kind == "binary":
        assert isinstance(data, bytes)
        protocol.send_binary(data)
    elif kind == "fragmented":
        assert isinstance(data, list)
        protocol.send_binary(data[0], fin=False)
        for part in data[1:-1]:
            protocol.send_continuation(part, fin=False)
        protocol.send_continuation(data[-1], fin=True)
    elif kind == "text":
        assert isinstance(data, bytes | str)
        protocol.send_text(data.encode() if isinstance(data, str) else data)
    elif kind == "ping":
        assert isinstance(data, bytes)
        protocol.send_ping(data)
    else:
        return False
    return True


def whole_messages(events: Iterable[object]) -> list[bytes | str]:
    """websockets' frames joined into messages (text decoded), control frames skipped."""
    messages: list[bytes | str] = []
    parts: list[bytes] = []
    opcode: Opcode | None = None
    for event in events:
        assert isinstance(event, Frame)
        if event.opcode in (Opcode.BINARY, Opcode.TEXT):
            opcode, parts = event.opcode, [bytes(event.data)]
        elif event.opcode is Opcode.CONT:
            parts.append(bytes(event.data))
        else:
            continue
        if event.fin:
            data = b"".join(parts)
            messages.append(data.decode() if opcode is Opcode.TEXT else data)
    return messages


async def read_response_head(stream: trio.abc.ReceiveStream) -> tuple[str, dict[str, str], bytes]:
    """An HTTP response's status line, headers (lower-case names) and what followed them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some()
        assert chunk, f"EOF inside the response head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, rest


async def read_to_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data
