"""Several real clients playing in one arena room over loopback WebSockets."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest
import trio

from clients.python.client import GameClient, ServerRefused, connect
from protocol import Event, ServerMessage, Snapshot

from .conftest import StartServer, expect

pytestmark = pytest.mark.network

DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))
"""An avatar on a free spot can move along at least one of these."""


def position(snapshot: Snapshot, player_id: int) -> tuple[int, int]:
    for pid, x, y, _score in snapshot.state["players"]:
        if pid == player_id:
            return x, y
    raise AssertionError(f"player {player_id} missing from snapshot {snapshot.id}")


def is_event(kind: str, player: int, text: str | None = None) -> Callable[[ServerMessage], bool]:
    def match(m: ServerMessage) -> bool:
        return (
            isinstance(m, Event)
            and m.kind == kind
            and m.player == player
            and (text is None or m.text == text)
        )

    return match


def rtt_measured(client: GameClient, pongs: int) -> Callable[[ServerMessage], bool]:
    """Matches a snapshot reporting an RTT once ``client`` has answered ``pongs`` pings."""

    def match(m: ServerMessage) -> bool:
        return isinstance(m, Snapshot) and client.pings_answered >= pongs and m.rtt_us > 0

    return match


async def move_and_get_acked(client: GameClient) -> None:
    """Send inputs until the avatar moves; each input's seq comes back as a snapshot's ack."""
    before = position(await client.next_snapshot(), client.player_id)
    for dx, dy in DIRECTIONS:
        seq = await client.send_input({"dx": dx, "dy": dy})
        while True:
            snapshot = await client.next_snapshot()
            assert snapshot.ack is None or snapshot.ack <= seq, "ack ahead of the inputs sent"
            if snapshot.ack == seq:
                break
        # The snapshot acking an input already shows the step that applied it.
        if position(snapshot, client.player_id) != before:
            return
    raise AssertionError(f"player {client.player_id} could not move in any direction")


async def test_four_players_move_chat_and_see_joins_and_leaves(start_server: StartServer) -> None:
    """Four clients in one arena room get their inputs acked, RTT, and every chat/join/leave."""
    server = await start_server(ping_interval=0.1)
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            clients: list[GameClient] = []
            for i in range(4):
                client = await stack.enter_async_context(
                    connect(server.url, f"p{i}", game="arena", room="hall")
                )
                clients.append(client)
            ids = [c.player_id for c in clients]
            assert len(set(ids)) == 4
            for i, client in enumerate(clients):
                assert client.room is not None and client.room.name == "hall"
                assert [p.id for p in client.room.players] == ids[: i + 1]
                # Everyone hears their own join and every later one, in order.
                for j in range(i, 4):
                    await expect(client, is_event("join", ids[j]))

            for client in clients:
                await move_and_get_acked(client)

            # Pings come every ping_interval from the hello on, not only after hello_timeout.
            with trio.fail_after(1.5):
                for client in clients:
                    snapshot = await expect(client, rtt_measured(client, pongs=3))
                    assert isinstance(snapshot, Snapshot)
                    assert snapshot.rtt_us < 1_000_000

            await clients[1].chat("hello hall")
            for client in clients:
                await expect(client, is_event("chat", ids[1], "hello hall"))

            await clients[3].leave()
            for client in clients[:3]:
                await expect(client, is_event("leave", ids[3]))

            await clients[2].close()
            for client in clients[:2]:
                await expect(client, is_event("leave", ids[2]))
            assert server.core.rooms.player_count == 2


async def test_client_hello_raises_when_the_join_in_it_fails(start_server: StartServer) -> None:
    """connect(..., game=unknown) raises ServerRefused instead of yielding a lobby client."""
    server = await start_server()
    with trio.fail_after(5), pytest.raises(ServerRefused) as refused:
        async with connect(server.url, "ada", game="no-such-game"):
            pass
    assert refused.value.code == "unknown_game"


async def test_a_client_that_stopped_reading_still_closes_at_once(
    start_server: StartServer,
) -> None:
    """Closing with many unread snapshots completes the close handshake, not a timeout.

    websockets stops reading while 16 frames wait unread, so the server's close frame
    sat behind them until websockets' 10 s close timeout; the client now drains while
    it closes, and the server sees a clean 1000.
    """
    server = await start_server()
    async with (
        connect(server.url, "reader", game="arena") as reader,
        connect(server.url, "idle", game="arena") as idle,
    ):
        for _ in range(40):  # the idle client's queue fills meanwhile
            await reader.next_snapshot()
        with trio.fail_after(3):  # a third of websockets' close timeout
            await idle.close()
        assert idle.ws.close_code == 1000


async def test_closing_while_another_task_reads(start_server: StartServer) -> None:
    """close() from one task while another is reading: the reader sees the end, no error."""
    server = await start_server()
    async with connect(server.url, "p", game="arena") as client:
        first_snapshot = trio.Event()

        async def read_all() -> None:
            async for message in client:
                if isinstance(message, Snapshot):
                    first_snapshot.set()

        with trio.fail_after(3):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all)
                await first_snapshot.wait()
                await client.close()  # read_all ends when the connection does
        assert client.ws.close_code == 1000


async def test_shutdown_announces_no_one_leaving(start_server: StartServer) -> None:
    """At shutdown everyone gets 1001, and nobody is told that the others left."""
    server = await start_server()
    async with (
        connect(server.url, "ada", game="arena", room="shut") as ada,
        connect(server.url, "bob", game="arena", room="shut") as bob,
    ):
        await expect(ada, is_event("join", bob.player_id))
        seen: dict[str, list[ServerMessage]] = {"ada": [], "bob": []}

        async def read(name: str, client: GameClient) -> None:
            async for message in client:
                seen[name].append(message)

        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read, "ada", ada)
                nursery.start_soon(read, "bob", bob)
                await server.aclose()
        assert ada.close_code == bob.close_code == 1001
        for messages in seen.values():
            assert not [m for m in messages if isinstance(m, Event) and m.kind == "leave"]
