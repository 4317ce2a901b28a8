"""Connection churn and reconnect storms (hostile-input checklist rows 7 and 30).

Churn: hundreds of connections that end every way a connection can end
(before the upgrade, mid-handshake, before hello, after joining, by a TCP
reset, plain HTTP) leave nothing behind: the server's counters, its set of
links, the process's file descriptors and the per-connection objects all
return to where they were. A storm: three times more connections than the cap
arrive at once; each is either served or refused with 503, nothing else, and
a player already in a room plays on through it.
"""

from __future__ import annotations

import gc
import os
import socket
import struct

import pytest
import trio
import trio.testing
from websockets.exceptions import InvalidStatus

from clients.python.client import GameClient, connect
from gameserver.outbox import Outbox
from gameserver.session import Session
from gameserver.trio import RunningServer
from gameserver.trio.link import ClientLink
from gameserver.trio.wsconn import WsConnection
from protocol import Snapshot, Welcome

from .conftest import (
    StartServer,
    frame,
    get_request,
    hello,
    http_exchange,
    parse_frame,
    read_response,
    upgrade_request,
)

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds in /proc"),
]

CHURN_SETTINGS = {
    # Timers far beyond the test's length: a closed connection's old deadlines would
    # keep its objects alive for all of it unless the server lets go of them.
    "hello_timeout": 30.0,
    "keepalive_interval": 30.0,
    # Every connection comes from 127.0.0.1.
    "max_connections_per_ip": 1000,
    # A player reset mid-game has their seat held for a resume: briefly, so the test
    # sees those seats expire too.
    "reconnect_grace": 0.5,
}


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def live(kind: type) -> int:
    return sum(1 for obj in gc.get_objects() if type(obj) is kind)


async def _upgraded(port: int) -> tuple[trio.SocketStream, bytes]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade_request(port))
    response = await read_response(stream)
    assert response.status == 101
    return stream, response.rest


async def _first_frame(stream: trio.SocketStream, data: bytes) -> bytes:
    while parse_frame(data) is None:
        chunk = await stream.receive_some(65536)
        assert chunk, "closed before the first frame"
        data += chunk
    return data


async def close_at_once(server: RunningServer, n: int) -> None:
    """TCP only, closed before a byte is sent."""
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    await stream.aclose()


async def half_a_request(server: RunningServer, n: int) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", server.port)
    await stream.send_all(upgrade_request(server.port)[:40])
    await stream.aclose()


async def upgraded_without_hello(server: RunningServer, n: int) -> None:
    stream, _ = await _upgraded(server.port)
    await stream.aclose()


async def a_whole_game(server: RunningServer, n: int) -> None:
    """hello, join arena, a snapshot, a clean close."""
    async with connect(server.url, f"churn{n}", game="arena") as client:
        assert isinstance(client.welcome, Welcome)
        await client.next_snapshot()


async def joined_then_reset(server: RunningServer, n: int) -> None:
    """In a room, then the TCP connection is reset: no close frame, no FIN."""
    stream, rest = await _upgraded(server.port)
    await stream.send_all(frame(0x2, hello(f"reset{n}", game="arena")))
    await _first_frame(stream, rest)
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


async def plain_http(server: RunningServer, n: int) -> None:
    response = await http_exchange(server.port, get_request(server.port, "/healthz"))
    assert response.status == 200


ENDINGS = (
    close_at_once,
    half_a_request,
    upgraded_without_hello,
    a_whole_game,
    joined_then_reset,
    plain_http,
)
"""Every way a connection can end, taken in turn."""


async def churn(server: RunningServer, count: int, concurrency: int) -> None:
    for start in range(0, count, concurrency):
        async with trio.open_nursery() as nursery:
            for n in range(start, min(count, start + concurrency)):
                nursery.start_soon(ENDINGS[n % len(ENDINGS)], server, n)


PER_CONNECTION = (ClientLink, WsConnection, Session, Outbox)


async def test_connection_churn_leaves_nothing_behind(start_server: StartServer) -> None:
    server = await start_server(**CHURN_SETTINGS)
    with trio.fail_after(60):
        await churn(server, 12, 6)  # warm up: whatever is made once, lazily, is made now
        await trio.testing.wait_all_tasks_blocked()
        gc.collect()
        fds_before = open_fds()
        objects_before = {kind.__name__: live(kind) for kind in PER_CONNECTION}

        await churn(server, 600, 30)
        await trio.testing.wait_all_tasks_blocked()
        while server.core.seats.held_count() or len(server.core.seats):
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)  # the holds expire

    assert server.counter.total == 0
    assert server.handshaking.total == 0
    assert not server.links
    assert server.core.rooms.player_count == 0
    assert open_fds() == fds_before
    gc.collect()
    objects_after = {kind.__name__: live(kind) for kind in PER_CONNECTION}
    # 300 of the 600 got as far as a session. What may stay is bounded by the
    # timer wheel's purge floor, however long the churn runs; before the wheel let
    # go of finished links, every one of them stayed for the 30 s of its timers.
    for name, before in objects_before.items():
        assert objects_after[name] - before < 64, (name, objects_before, objects_after)


async def play_until(client: GameClient, done: trio.Event) -> None:
    """Keep reading (and answering pings) until ``done``, like a player would."""
    async with trio.open_nursery() as nursery:

        async def read() -> None:
            async for _ in client:
                pass

        nursery.start_soon(read)
        await done.wait()
        nursery.cancel_scope.cancel()


async def test_a_reconnect_storm_is_served_or_refused_and_a_player_plays_on(
    start_server: StartServer,
) -> None:
    cap = 40
    server = await start_server(max_connections=cap, max_connections_per_ip=1000)
    storm_over = trio.Event()
    outcomes: list[str] = []

    async def storm_client(n: int) -> None:
        try:
            async with connect(server.url, f"storm{n}", game="arena") as client:
                assert isinstance(client.welcome, Welcome)
                outcomes.append("served")
                await play_until(client, storm_over)  # hold the slot until all have an answer
        except InvalidStatus as refused:
            outcomes.append(f"http {refused.response.status_code}")

    with trio.fail_after(30):
        async with connect(server.url, "player", game="arena") as player:
            first = await player.next_snapshot()
            async with trio.open_nursery() as nursery:
                for n in range(3 * cap):
                    nursery.start_soon(storm_client, n)
                while len(outcomes) < 3 * cap:
                    assert isinstance(await player.next_snapshot(), Snapshot)
                storm_over.set()
            # The player's connection lived through it and its snapshots still come.
            last = await player.next_snapshot()
            assert last.tick > first.tick

        assert outcomes.count("served") == cap - 1  # the player holds one slot
        assert outcomes.count("http 503") == 2 * cap + 1
        await trio.testing.wait_all_tasks_blocked()
        assert server.counter.total == 0 and not server.links
        async with connect(server.url, "after", game="arena") as late:
            assert isinstance(late.welcome, Welcome)
