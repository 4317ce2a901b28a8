"""Delta snapshots end to end on a link: a slow reader whose snapshots get replaced.

A real Room ticks a game whose state changes every tick; the peer reads only
every quarter second over a lockstep stream (so the server's latest-wins slot
replaces most snapshots), acknowledges what it read, applies the deltas, and
must hold exactly the state the server had at each tick it received.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from gameserver.core import ServerCore
from gameserver.game import Game, Player
from gameserver.games import default_games
from gameserver.settings import Settings
from protocol import Ack, Hello, Join, Joined, Ping, Pong, Snapshot, encode
from protocol.delta import SnapshotStates, same
from tests.trio.test_link import start


class Drift(Game):
    """Ten entities drifting one unit a tick; one leaves and one arrives every 7 ticks."""

    name = "drift"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.ticks = 0
        self.history: dict[int, Any] = {}

    def step(self, dt: float) -> None:
        self.ticks += 1

    def snapshot(self, viewer: Player) -> Any:
        t = self.ticks
        first = t // 7
        rows = [[i, 100 * i + t, -t, i % 3] for i in range(first, first + 10)]
        state = {"rows": rows, "tick": t // 10}
        self.history[t] = state
        return state


async def test_a_slow_reader_applies_deltas_to_exactly_the_servers_state(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    games = default_games()
    games.register(Drift)
    core = ServerCore(
        Settings(log_level="WARNING", send_timeout=5.0, ping_interval=100.0), games, epoch=0.0
    )
    client = start(nursery, core, lockstep=True)
    await client.hello(deltas=True)
    await client.peer.send_binary(encode(Join(game="drift", room="d")))
    while not isinstance(await client.peer.next_message(), Joined):
        pass
    room = core.rooms.get("d")
    assert room is not None and isinstance(room.game, Drift)
    game = room.game

    async def ticker() -> None:
        for n in range(1, 91):
            await trio.sleep_until(n / 30 + 1 / 120)
            room.tick(n, 1 / 30)

    nursery.start_soon(ticker)
    states = SnapshotStates()
    received: list[Snapshot] = []
    for k in range(1, 13):
        await trio.sleep_until(k / 4)
        message = await client.peer.next_message()
        while not isinstance(message, Snapshot):  # the join event, a ping
            if isinstance(message, Ping):
                await client.peer.send_binary(encode(Pong(message.nonce)))
            message = await client.peer.next_message()
        assert isinstance(message, Snapshot)
        state = states.receive(message.id, message.base, message.state)
        assert same(state, game.history[message.tick])
        received.append(message)
        await client.peer.send_binary(encode(Ack(message.id)))
    assert client.outbox.snapshots_replaced > 50
    deltas = [m for m in received if m.base is not None]
    assert len(deltas) >= 8
    # every base is a snapshot this peer read and acknowledged
    read = {m.id for m in received}
    assert all(m.base in read for m in deltas)
    assert room.delta_stats.delta_encodes >= len(deltas)
    assert client.ended_at is None


async def test_hello_without_deltas_gets_full_snapshots_over_the_link(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    games = default_games()
    games.register(Drift)
    core = ServerCore(Settings(log_level="WARNING", ping_interval=100.0), games, epoch=0.0)
    client = start(nursery, core)
    await client.peer.send_binary(encode(Hello(1, "ann", game="drift", room="d")))
    room = None
    for n in range(1, 6):
        await trio.testing.wait_all_tasks_blocked()
        room = room or core.rooms.get("d")
        assert room is not None
        room.tick(n, 1 / 30)
        await trio.testing.wait_all_tasks_blocked()
    got = []
    with trio.move_on_after(1):
        while len(got) < 5:
            message = await client.peer.next_message()
            if isinstance(message, Snapshot):
                got.append(message)
                await client.peer.send_binary(encode(Ack(message.id)))
    assert len(got) >= 1 and all(m.base is None for m in got)
