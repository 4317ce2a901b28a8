"""The pulled output path: a tick (or any round) fills outboxes without touching a
socket; the flush then writes each client once, its events and snapshot together."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from websockets.protocol import Protocol, Side

from gameserver.core import ServerCore
from gameserver.games import default_games
from gameserver.settings import Settings
from gameserver.trio.flusher import Flusher
from gameserver.trio.link import ClientLink
from gameserver.trio.wsconn import WsConnection
from protocol import PROTOCOL_VERSION, Chat, Hello, encode


class Recorded:
    """A client to flush: counts pumps."""

    def __init__(self) -> None:
        self.flush_marked = False
        self.pumps = 0

    def pump(self) -> None:
        self.pumps += 1


def test_a_client_marked_twice_is_pumped_once_per_flush() -> None:
    flusher = Flusher()
    a, b = Recorded(), Recorded()
    flusher.mark(a)
    flusher.mark(b)
    flusher.mark(a)
    flusher.flush()
    assert (a.pumps, b.pumps, flusher.rounds) == (1, 1, 1)
    flusher.flush()  # nothing marked: nothing written, no round counted
    assert (a.pumps, b.pumps, flusher.rounds) == (1, 1, 1)
    flusher.mark(a)
    flusher.flush()
    assert (a.pumps, b.pumps) == (2, 1)


async def test_the_task_flushes_once_the_marking_task_yields() -> None:
    flusher = Flusher()
    client = Recorded()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(flusher.run)
        await trio.testing.wait_all_tasks_blocked()
        flusher.mark(client)
        assert client.pumps == 0  # not while this task runs on
        await trio.testing.wait_all_tasks_blocked()
        assert client.pumps == 1
        nursery.cancel_scope.cancel()


class CountingLink:
    """A ClientLink on a memory stream whose connection counts its writes."""

    def __init__(self, core: ServerCore, flusher: Flusher) -> None:
        server_stream, _ = trio.testing.memory_stream_pair()
        protocol = Protocol(Side.SERVER, max_size=core.settings.max_message_bytes)
        self.ws = WsConnection(server_stream, protocol, send_timeout=1.0, close_timeout=1.0)
        self.link = ClientLink(core, self.ws, "test", flusher=flusher)
        self.writes: list[bytes] = []
        real_write = self.ws.write

        def write(data: bytes) -> None:
            self.writes.append(data)
            real_write(data)

        self.ws.write = write  # type: ignore[method-assign]


def frames_in(data: bytes) -> int:
    """How many unmasked server frames ``data`` holds (RFC 6455 §5.2 headers)."""
    count = offset = 0
    while offset < len(data):
        length = data[offset + 1] & 0x7F
        header = 2
        if length == 126:
            length, header = int.from_bytes(data[offset + 2 : offset + 4], "big"), 4
        elif length == 127:
            length, header = int.from_bytes(data[offset + 2 : offset + 10], "big"), 10
        offset += header + length
        count += 1
    return count


async def test_a_tick_writes_nothing_and_the_flush_writes_each_client_once() -> None:
    core = ServerCore(Settings(log_level="WARNING"), default_games(), epoch=0.0)
    flusher = Flusher()
    clients = [CountingLink(core, flusher) for _ in range(3)]
    async with trio.open_nursery() as nursery:
        for client in clients:  # memory streams: the writer task drains what the socket took
            nursery.start_soon(client.ws.run_writer)
        for i, client in enumerate(clients):
            client.link.on_binary(encode(Hello(PROTOCOL_VERSION, f"p{i}", "arena", "r")))
        assert all(c.writes == [] for c in clients)  # welcomes wait for the round's end
        flusher.flush()
        assert all(len(c.writes) == 1 for c in clients)
        await trio.testing.wait_all_tasks_blocked()
        room = core.rooms.get("r")
        assert room is not None
        clients[0].link.on_binary(encode(Chat("hi")))  # an event for everyone...
        for client in clients:
            client.writes.clear()
        room.tick(room.tick_no + 1, 1 / 30)  # ...and a snapshot for everyone
        assert all(c.writes == [] for c in clients)
        flusher.flush()
        for client in clients:
            (written,) = client.writes  # one write per client per round
            assert frames_in(written) == 2  # the chat event and the snapshot
        nursery.cancel_scope.cancel()


async def test_without_a_flusher_the_link_writes_at_once() -> None:
    core = ServerCore(Settings(log_level="WARNING"), default_games(), epoch=0.0)
    server_stream, _ = trio.testing.memory_stream_pair()
    protocol = Protocol(Side.SERVER, max_size=core.settings.max_message_bytes)
    ws = WsConnection(server_stream, protocol, send_timeout=1.0, close_timeout=1.0)
    writes: list[Any] = []
    real_write = ws.write
    ws.write = lambda data: (writes.append(data), real_write(data))[1]  # type: ignore[method-assign]
    link = ClientLink(core, ws, "test")
    link.on_binary(encode(Hello(PROTOCOL_VERSION, "solo")))
    assert len(writes) == 1  # the welcome, written while the hello is handled
