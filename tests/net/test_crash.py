"""A crash in game code ends only what it must: one player (on_input) or one room (step)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio
from websockets.exceptions import ConnectionClosed

from clients.python.client import GameClient, connect
from gameserver import Game, GameRegistry, Player
from protocol import CloseCode, Event

from .conftest import StartServer, expect

pytestmark = pytest.mark.network


class Fragile(Game):
    """Crashes in ``on_input`` when a player sends ``"boom"``."""

    name = "fragile"

    def on_input(self, player: Player, command: Any) -> None:
        if command == "boom":
            raise RuntimeError("on_input crashed on purpose")

    def step(self, dt: float) -> None:
        pass

    def snapshot(self, viewer: Player) -> Any:
        return {"ok": True}


class Doomed(Game):
    """Crashes in ``step`` once any player has sent ``"explode"``."""

    name = "doomed"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.armed = False

    def on_input(self, player: Player, command: Any) -> None:
        self.armed = self.armed or command == "explode"

    def step(self, dt: float) -> None:
        if self.armed:
            raise RuntimeError("step crashed on purpose")

    def snapshot(self, viewer: Player) -> Any:
        return {"ok": True}


def registry() -> GameRegistry:
    games = GameRegistry()
    games.register(Fragile)
    games.register(Doomed)
    return games


async def close_code(client: GameClient) -> int | None:
    """Read until the server closes; return the code of its close frame."""
    try:
        while True:
            await client.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def ticks_go_on(client: GameClient, count: int = 5) -> None:
    """``count`` more snapshots arrive, with increasing ticks."""
    ticks = [(await client.next_snapshot()).tick for _ in range(count)]
    assert ticks == sorted(set(ticks))


async def test_on_input_crash_closes_that_player_1011_only(start_server: StartServer) -> None:
    """An exception in on_input closes that client 1011; its roommate keeps its snapshots."""
    server = await start_server(registry())
    with trio.fail_after(8):
        async with AsyncExitStack() as stack:
            crasher = await stack.enter_async_context(
                connect(server.url, "crasher", game="fragile", room="f")
            )
            mate = await stack.enter_async_context(
                connect(server.url, "mate", game="fragile", room="f")
            )
            await mate.next_snapshot()
            await crasher.send_input("fine")
            await crasher.send_input("boom")
            assert await close_code(crasher) == CloseCode.INTERNAL_ERROR
            await expect(
                mate,
                lambda m: isinstance(m, Event) and m.kind == "leave" and m.name == "crasher",
            )
            await ticks_go_on(mate)
            async with connect(server.url, "late", game="fragile", room="f") as late:
                assert late.room is not None and len(late.room.players) == 2
                await ticks_go_on(late, 2)


async def test_step_crash_closes_that_room_1011_only(start_server: StartServer) -> None:
    """An exception in step closes every player of that room 1011; other rooms play on."""
    server = await start_server(registry())
    with trio.fail_after(8):
        async with AsyncExitStack() as stack:
            doomed = [
                await stack.enter_async_context(
                    connect(server.url, f"d{i}", game="doomed", room="d")
                )
                for i in range(2)
            ]
            bystander = await stack.enter_async_context(
                connect(server.url, "bystander", game="fragile", room="safe")
            )
            for client in doomed:
                await client.next_snapshot()
            await doomed[0].send_input("explode")
            for client in doomed:
                assert await close_code(client) == CloseCode.INTERNAL_ERROR
            assert server.core.rooms.get("d") is None
            await ticks_go_on(bystander)
            async with connect(server.url, "again", game="doomed", room="d") as again:
                assert again.room is not None and [p.name for p in again.room.players] == ["again"]
                await ticks_go_on(again, 2)
            await ticks_go_on(bystander, 2)
