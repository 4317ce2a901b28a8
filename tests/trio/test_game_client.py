"""GameClient.close(): it reads to the end while closing, without fighting another reader.

A fake connection stands in for websockets': one recv() at a time (a second one
raises ConcurrencyError, as websockets does) and a close handshake that ends
when the test says.
"""

from __future__ import annotations

import trio
import trio.testing
from websockets.exceptions import ConcurrencyError, ConnectionClosedOK

from clients.python.client import GameClient
from protocol import Event, encode


class FakeConnection:
    def __init__(self) -> None:
        self.to_client, self._incoming = trio.open_memory_channel[bytes](100)
        self.close_code: int | None = None
        self.handshake_done = trio.Event()
        self._in_recv = False

    async def recv(self) -> bytes:
        if self._in_recv:
            raise ConcurrencyError("cannot call recv while another coroutine is running recv")
        self._in_recv = True
        try:
            return await self._incoming.receive()
        except trio.EndOfChannel:
            raise ConnectionClosedOK(None, None) from None
        finally:
            self._in_recv = False

    async def send(self, message: bytes) -> None:
        pass

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self.handshake_done.wait()
        self.close_code = code
        await self.to_client.aclose()


async def test_close_reads_what_arrives_until_the_handshake_ends() -> None:
    ws = FakeConnection()
    client = GameClient(ws)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.close)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(50):  # more than any queue would hold unread
            ws.to_client.send_nowait(encode(Event("chat", 1, "ada", "x")))
        await trio.testing.wait_all_tasks_blocked()
        assert ws._incoming.statistics().current_buffer_used == 0
        ws.handshake_done.set()
    assert ws.close_code == 1000


async def test_a_reader_that_starts_during_close_gets_the_end_not_an_error() -> None:
    ws = FakeConnection()
    client = GameClient(ws)
    ended: list[str] = []

    async def reader() -> None:
        async for _ in client:
            pass
        ended.append("quietly")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.close)
        await trio.testing.wait_all_tasks_blocked()  # close() is reading to the end
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        ws.handshake_done.set()
    assert ended == ["quietly"]


async def test_close_leaves_the_reading_to_a_task_already_reading() -> None:
    ws = FakeConnection()
    client = GameClient(ws)
    received: list[object] = []

    async def reader() -> None:
        async for message in client:
            received.append(message)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()  # the reader waits in recv()
        nursery.start_soon(client.close)
        await trio.testing.wait_all_tasks_blocked()
        ws.to_client.send_nowait(encode(Event("chat", 1, "ada", "still read")))
        await trio.testing.wait_all_tasks_blocked()
        ws.handshake_done.set()
    assert len(received) == 1
