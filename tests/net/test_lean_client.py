"""The load tester's lean WebSocket client against a real server on 127.0.0.1.

Both ways of reading: ``await recv()`` in the caller's task, and handing the
socket to a ReadPoller that calls back per message (what the bots use). Every
wait is on an event or a message, bounded by ``fail_after``.
"""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.protocol import OPEN, Protocol, Side
from websockets.uri import parse_uri

from clients.loadtest.metrics import Metrics
from clients.loadtest.transport import open_bot_client
from clients.loadtest.wsclient import LeanConnection, open_lean_connection
from gameserver.trio.poller import ReadPoller, available
from protocol import CloseCode, ServerMessage, Snapshot
from tests.net.conftest import StartServer

LIMIT = 10.0

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(not available(), reason="epoll is Linux only"),
]


async def test_recv_hello_and_snapshots_then_a_clean_close(start_server: StartServer) -> None:
    server = await start_server()
    with trio.fail_after(LIMIT):
        async with open_bot_client(server.url, Metrics()) as client:
            welcome = await client.hello("lean", "arena", "r1")
            assert welcome.room is not None and welcome.room.name == "r1"
            first = await client.next_snapshot()
            second = await client.next_snapshot()
            assert second.tick > first.tick
            assert client.bytes_in > 0
        assert client.ws.close_code == CloseCode.NORMAL  # the server's reply to ours
        await trio.testing.wait_all_tasks_blocked()
        assert server.core.rooms.player_count == 0


async def test_polled_reading_delivers_messages_and_answers_pings(
    start_server: StartServer,
) -> None:
    server = await start_server(ping_interval=0.05)
    poller = ReadPoller()
    snapshots: list[Snapshot] = []
    ended: list[BaseException] = []
    got_rtt, closed = trio.Event(), trio.Event()

    def on_message(message: ServerMessage) -> None:
        if isinstance(message, Snapshot):
            snapshots.append(message)
            if message.rtt_us > 0:
                got_rtt.set()

    def on_end(exc: BaseException) -> None:
        ended.append(exc)
        closed.set()

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poller.run)
            async with open_bot_client(server.url, Metrics()) as client:
                await client.hello("polled", "arena", "r1")
                assert client.start_reading(poller, on_message, on_end)
                # The server measures an RTT only if our pongs come back: they are
                # written from inside the poller's callback.
                await got_rtt.wait()
                assert client.pings_answered >= 1
                ticks = [s.tick for s in snapshots]
                assert ticks == sorted(set(ticks))
                await server.aclose()  # 1001 to everyone
                await closed.wait()
                assert len(poller) == 0
            nursery.cancel_scope.cancel()
    (exc,) = ended
    assert isinstance(exc, ConnectionClosed)
    assert exc.rcvd is not None and exc.rcvd.code == CloseCode.GOING_AWAY


async def test_a_bug_in_the_message_handler_ends_reading_with_that_exception(
    start_server: StartServer,
) -> None:
    server = await start_server()
    poller = ReadPoller()
    ended: list[BaseException] = []
    done = trio.Event()

    def on_message(message: ServerMessage) -> None:
        raise ValueError("bot bug")

    def on_end(exc: BaseException) -> None:
        ended.append(exc)
        done.set()

    with trio.fail_after(LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poller.run)
            async with open_bot_client(server.url, Metrics()) as client:
                await client.hello("buggy", "arena", "r1")
                assert client.start_reading(poller, on_message, on_end)
                await done.wait()
                assert len(poller) == 0
                # Reading goes on in the caller's task, where the connection left off.
                client.stop_reading()
                assert isinstance(await client.recv(), Snapshot)
            nursery.cancel_scope.cancel()
    assert [type(e) for e in ended] == [ValueError]


async def test_a_refused_upgrade_raises_invalid_status(start_server: StartServer) -> None:
    server = await start_server()
    with trio.fail_after(LIMIT), pytest.raises(InvalidStatus) as refused:
        await open_lean_connection(server.url + "not-the-endpoint")
    assert refused.value.response.status_code == 404


async def test_wss_is_not_spoken() -> None:
    """TLS bots use websockets' own connection (open_bot_client picks it for wss://)."""
    with pytest.raises(InvalidURI):
        await open_lean_connection("wss://127.0.0.1:1/")


async def test_writes_the_socket_does_not_take_wait_in_order_for_flush() -> None:
    """send_nowait to a peer that is not reading: the rest waits; flush() writes it in order."""
    with trio.fail_after(LIMIT):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            ours = socket.socket()
            # Small buffers, set before connecting: 4 MiB is sure not to fit.
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            ours.connect(listener.getsockname())
            theirs, _ = listener.accept()
        ours.setblocking(False)
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        peer = trio.SocketStream(trio.socket.from_stdlib_socket(theirs))
        protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), max_size=None, state=OPEN)
        lean = LeanConnection(stream, protocol)
        payloads = [bytes([n]) * 65536 for n in range(64)]  # 4 MiB: more than the buffers
        for payload in payloads:
            lean.send_nowait(payload)
        assert lean.backlogged
        server = Protocol(Side.SERVER, max_size=None)
        received: list[bytes] = []

        async def read_all() -> None:
            while len(received) < len(payloads):
                server.receive_data(await peer.receive_some(1 << 20))
                received.extend(bytes(e.data) for e in server.events_received())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all)
            await lean.flush()
            assert not lean.backlogged
        assert received == payloads
        await stream.aclose()
        await peer.aclose()
