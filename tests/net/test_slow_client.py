"""A client that stops reading is evicted without costing the others a single snapshot."""

from __future__ import annotations

import itertools
import logging
import socket
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio

from clients.python.client import GameClient, connect
from gameserver import Game, GameRegistry, Player
from protocol import Event, Snapshot

from .conftest import StartServer, frame, hello, read_response, read_to_eof, upgrade_request

pytestmark = pytest.mark.network

BIG = bytes(512 * 1024)
"""The non-reader's snapshot: 512 KiB at 30 Hz fills any loopback buffer in well under a second."""

SLOTH = "sloth"


class Hoard(Game):
    """Tiny snapshots for everyone except the player named ``sloth``, who gets huge ones."""

    name = "hoard"

    def step(self, dt: float) -> None:
        pass

    def view_key(self, viewer: Player) -> bool:
        return viewer.name == SLOTH

    def snapshot(self, viewer: Player) -> Any:
        return BIG if viewer.name == SLOTH else {"ok": 1}


async def watch(client: GameClient, ticks: list[int], done: trio.Event) -> int:
    """Record snapshot ticks from the sloth's join until its leave plus 10 more snapshots."""
    sloth_id: int | None = None
    after_leave = None
    while after_leave is None or after_leave < 10:
        message = await client.recv()
        if isinstance(message, Event) and message.name == SLOTH:
            if message.kind == "join":
                sloth_id = message.player
            elif message.kind == "leave":
                after_leave = 0
                done.set()
        elif isinstance(message, Snapshot) and sloth_id is not None:
            ticks.append(message.tick)
            if after_leave is not None:
                after_leave += 1
    assert sloth_id is not None
    return sloth_id


async def test_non_reading_client_is_evicted_while_others_keep_every_snapshot(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that never reads is dropped after send_timeout; the others miss no tick."""
    caplog.set_level(logging.WARNING, logger="gameserver.trio.sender")
    games = GameRegistry()
    games.register(Hoard)
    # reconnect_grace 0: the eviction is a leave at once, which the watchers wait for
    # (with resume on, the evicted player's seat would be held for a resume).
    server = await start_server(
        games,
        tick_rate=30,
        snapshot_rate=30,
        send_timeout=0.5,
        ping_timeout=9.0,
        reconnect_grace=0,
    )
    slow = trio.socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stream = trio.SocketStream(slow)
    try:
        with trio.fail_after(10):
            async with AsyncExitStack() as stack:
                watchers = [
                    await stack.enter_async_context(
                        connect(server.url, f"w{i}", game="hoard", room="pit")
                    )
                    for i in range(3)
                ]
                ticks: list[list[int]] = [[] for _ in watchers]
                evicted = trio.Event()
                async with trio.open_nursery() as nursery:
                    for client, record in zip(watchers, ticks, strict=True):
                        nursery.start_soon(watch, client, record, evicted)
                    await slow.connect(("127.0.0.1", server.port))
                    await stream.send_all(upgrade_request(server.port))
                    assert (await read_response(stream)).status == 101
                    await stream.send_all(frame(0x2, hello(SLOTH, "hoard", "pit")))
                    joined_at = trio.current_time()
                    # From here on the sloth never reads.
                    await evicted.wait()
                    stalled_for = trio.current_time() - joined_at
                assert server.counter.total == 3
                assert server.core.rooms.player_count == 3
                assert stalled_for >= 0.5
                for record in ticks:
                    assert len(record) >= 20
                    gaps = [b - a for a, b in itertools.pairwise(record)]
                    assert min(gaps) >= 1, "snapshot ticks went backwards or repeated"
                    assert max(gaps) <= 3, f"a watcher lost snapshots during the stall: {gaps}"
                # The server dropped the TCP connection: after the backlog, EOF.
                await read_to_eof(stream)
        assert any("evicted" in r.getMessage() for r in caplog.records)
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)
