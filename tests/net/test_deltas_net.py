"""Delta snapshots over real sockets: the Python client applies them and ends exact."""

from __future__ import annotations

import pytest
import trio

from clients.python.client import GameClient, connect
from protocol import Snapshot
from protocol.delta import same

from .conftest import StartServer

pytestmark = pytest.mark.network


async def snapshots_by_tick(client: GameClient, count: int, move: bool) -> dict[int, Snapshot]:
    got: dict[int, Snapshot] = {}
    direction = 1
    while len(got) < count:
        snapshot = await client.next_snapshot()
        got[snapshot.tick] = snapshot
        if move and len(got) % 10 == 0:
            direction = -direction
            await client.send_input({"dx": direction, "dy": 0.5 * direction})
    return got


async def test_a_delta_client_holds_the_same_states_as_a_full_one(
    start_server: StartServer,
) -> None:
    server = await start_server()
    with trio.fail_after(20):
        async with (
            connect(server.url, "deltas", game="arena", room="d") as mover,
            connect(server.url, "full", game="arena", room="d", deltas=False) as witness,
        ):
            results: dict[str, dict[int, Snapshot]] = {}

            async def read(name: str, client: GameClient, move: bool) -> None:
                results[name] = await snapshots_by_tick(client, 90, move)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read, "mover", mover, True)
                nursery.start_soon(read, "witness", witness, False)
            common = sorted(set(results["mover"]) & set(results["witness"]))
            assert len(common) >= 60
            for tick in common:
                assert same(results["mover"][tick].state, results["witness"][tick].state), tick
            assert mover.deltas_applied >= 60
            assert all(s.base is None for s in results["witness"].values())
            assert mover.bytes_in < witness.bytes_in
