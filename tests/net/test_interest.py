"""arena_wide over real WebSockets: two players far apart do not see each other, and do once
they come close; a spectator (who sees the whole world) is the independent witness."""

from __future__ import annotations

import math
from contextlib import AsyncExitStack

import pytest
import trio

from clients.python.client import connect
from gameserver import GameRegistry
from gameserver.games.arena_wide import CELL, VIEW_RADIUS
from protocol import Snapshot
from tests.wide_game import SPAWNS, LinedUpWide

from .conftest import StartServer

pytestmark = pytest.mark.network

SCALE = 10
REACH = VIEW_RADIUS + math.hypot(CELL, CELL)


def positions(snapshot: Snapshot) -> dict[int, tuple[float, float]]:
    return {pid: (x / SCALE, y / SCALE) for pid, x, y, _score in snapshot.state["players"]}


async def test_far_players_see_each_other_only_when_near(start_server: StartServer) -> None:
    games = GameRegistry()
    games.register(LinedUpWide)
    server = await start_server(games=games)
    with trio.fail_after(15):
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(
                connect(server.url, "west", game="arena_wide", room="far")
            )
            b = await stack.enter_async_context(
                connect(server.url, "east", game="arena_wide", room="far")
            )
            watcher = await stack.enter_async_context(
                connect(server.url, "watcher", game="arena_wide", room="far", spectate=True)
            )
            assert a.room is not None and a.room.info["view_radius"] == VIEW_RADIUS
            # Apart: each sees only themselves; the spectator sees both, where they spawned.
            for client, other in ((a, b), (b, a)):
                seen = positions(await client.next_snapshot())
                assert client.player_id in seen and other.player_id not in seen
            both = positions(await watcher.next_snapshot())
            assert both[a.player_id] == SPAWNS[0] and both[b.player_id] == SPAWNS[1]

            # West walks east until each has seen the other (the views are per cell, so
            # one may see the other first); every snapshot of the walk is checked against
            # the spectator's view of the same tick.
            await a.send_input({"dx": 1, "dy": 0})
            truth: dict[int, float] = {}  # tick → distance between them
            views: dict[int, bool] = {}  # tick → west saw east
            west_saw, east_saw = trio.Event(), trio.Event()

            async def watch() -> None:
                while True:
                    snap = await watcher.next_snapshot()
                    where = positions(snap)
                    truth[snap.tick] = math.dist(where[a.player_id], where[b.player_id])

            async def west() -> None:
                while True:
                    snap = await a.next_snapshot()
                    views[snap.tick] = b.player_id in positions(snap)
                    if views[snap.tick]:
                        west_saw.set()

            async def east() -> None:
                while a.player_id not in positions(await b.next_snapshot()):
                    pass
                east_saw.set()

            async with trio.open_nursery() as nursery:
                for task in (watch, west, east):
                    nursery.start_soon(task)
                await west_saw.wait()
                await east_saw.wait()
                nursery.cancel_scope.cancel()

            common = sorted(set(views) & set(truth))
            assert len(common) >= 5
            for tick in common:
                if truth[tick] <= VIEW_RADIUS:
                    assert views[tick], f"tick {tick}: east {truth[tick]:.0f} away, not seen"
                if views[tick]:
                    assert truth[tick] <= REACH, f"tick {tick}: seen from {truth[tick]:.0f}"
            assert not views[common[0]] and views[common[-1]]
            assert truth[common[0]] > REACH
