"""Resume over real connections (PROTOCOL.md §5.12): a player's TCP connection is cut
mid-game (a reset: no close frame) and a new connection takes the seat back.

Everything on 127.0.0.1, port 0, bounded by trio.fail_after; no sleeps: the tests wait
for what the other players are told (away, back, leave) or for the server's state.
"""

from __future__ import annotations

import gc
import os
import socket
import struct
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio
import trio.testing
from websockets.exceptions import ConnectionClosed

from clients.python.client import GameClient, connect
from gameserver.games.arena import Arena
from gameserver.session import Session
from gameserver.trio import RunningServer
from protocol import CloseCode, Event, ServerMessage, Snapshot, Welcome, decode_server_message

from .conftest import (
    StartServer,
    expect,
    frame,
    hello,
    next_frame,
    read_response,
    upgrade_request,
)

pytestmark = pytest.mark.network


def is_event(kind: str, player: int) -> Callable[[ServerMessage], bool]:
    return lambda m: isinstance(m, Event) and m.kind == kind and m.player == player


async def cut(client: GameClient) -> None:
    """Drop the client's TCP connection with a reset: no close frame, no FIN."""
    stream: Any = client.ws.stream  # type: ignore[attr-defined]
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await trio.aclose_forcefully(stream)


def arena_of(server: RunningServer, room: str) -> Arena:
    found = server.core.rooms.get(room)
    assert found is not None and isinstance(found.game, Arena)
    return found.game


def score_in(snapshot: Snapshot, player: int) -> int:
    for pid, _x, _y, score in snapshot.state["players"]:
        if pid == player:
            return int(score)
    raise AssertionError(f"player {player} not in snapshot")


async def wait_for(condition: Callable[[], bool]) -> None:
    """Let the server run until ``condition`` holds (the caller bounds the time)."""
    while not condition():
        await trio.testing.wait_all_tasks_blocked(cushion=0.01)


async def test_cut_mid_game_and_resume_within_the_grace(start_server: StartServer) -> None:
    """Same id, same score, the seq numbering carries on; the others see away/back, no leave."""
    server = await start_server(ping_interval=0.2)
    with trio.fail_after(10):
        async with AsyncExitStack() as stack:
            ada = await stack.enter_async_context(
                connect(server.url, "ada", game="arena", room="hall")
            )
            bob = await stack.enter_async_context(
                connect(server.url, "bob", game="arena", room="hall", presence=True)
            )
            await ada.send_input({"dx": 0, "dy": 0})
            await ada.send_input({"dx": 0, "dy": 0})
            while (await ada.next_snapshot()).ack != 2:
                pass
            arena_of(server, "hall").avatars[ada.player_id].score = 5
            token, ada_id = ada.resume_token, ada.player_id
            assert token is not None
            await cut(ada)
            await expect(bob, is_event("away", ada_id))

            async with connect(server.url, "x", game="arena", resume=token) as back:
                assert back.resumed and not back.resume_refused
                assert back.player_id == ada_id
                assert back.room is not None and back.room.name == "hall"
                assert back.resume_token not in (None, token)
                first = await back.next_snapshot()
                assert first.id == 1 and first.base is None and first.ack == 2
                assert score_in(first, ada_id) == 5
                assert back.next_seq == 3  # from the snapshot's ack
                seq = await back.send_input({"dx": 1, "dy": 0})
                while (await back.next_snapshot()).ack != seq:
                    pass
                seen: list[ServerMessage] = []
                while not any(is_event("back", ada_id)(m) for m in seen):
                    seen.append(await bob.recv())
                assert not any(is_event("leave", ada_id)(m) for m in seen)
                await back.chat("still me")
                chat = await expect(bob, lambda m: isinstance(m, Event) and m.kind == "chat")
                assert isinstance(chat, Event) and chat.player == ada_id


async def test_resume_after_the_grace_is_a_fresh_player(start_server: StartServer) -> None:
    """Past the grace the leave was sent; the token gets resume_failed and a new player."""
    server = await start_server(reconnect_grace=0.3)
    with trio.fail_after(10):
        async with connect(server.url, "bob", game="arena", room="hall") as bob:
            async with connect(server.url, "ada", game="arena", room="hall") as ada:
                token, ada_id = ada.resume_token, ada.player_id
                await cut(ada)  # leaving the block then closes nothing more
            await expect(bob, is_event("leave", ada_id))  # sent when the grace ended
            async with connect(server.url, "ada2", game="arena", room="hall", resume=token) as new:
                assert new.resume_refused and not new.resumed
                assert new.player_id != ada_id
                assert new.room is not None and new.room.name == "hall"
                await expect(bob, is_event("join", new.player_id))


async def test_token_replay_is_refused(start_server: StartServer) -> None:
    server = await start_server()
    with trio.fail_after(10):
        async with connect(server.url, "ada", game="arena") as ada:
            token = ada.resume_token
            async with connect(server.url, "x", resume=token) as first:
                assert first.resumed and first.player_id == ada.player_id
                async with connect(server.url, "y", resume=token) as second:
                    assert second.resume_refused
                    assert second.player_id not in (ada.player_id, first.player_id)


async def test_resume_racing_its_own_half_open_connection(start_server: StartServer) -> None:
    """The old connection still looks open to the server: it is closed 4006, the new one plays."""
    server = await start_server()
    with trio.fail_after(10):
        async with (
            connect(server.url, "bob", game="arena", room="hall", presence=True) as bob,
            connect(server.url, "ada", game="arena", room="hall") as ada,
            connect(server.url, "x", resume=ada.resume_token) as back,
        ):
            assert back.resumed and back.player_id == ada.player_id
            with pytest.raises(ConnectionClosed):
                while True:
                    await ada.recv()
            assert ada.close_code == CloseCode.REPLACED
            await back.chat("took over")
            seen: list[ServerMessage] = []
            while not (seen and isinstance(seen[-1], Event) and seen[-1].kind == "chat"):
                seen.append(await bob.recv())
            assert seen[-1].player == back.player_id  # type: ignore[union-attr]
            about_ada = [m.kind for m in seen if isinstance(m, Event) and m.player == ada.player_id]
            assert about_ada == ["join", "chat"]  # no away, back or leave


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds in /proc")
async def test_200_players_drop_and_resume_at_once(start_server: StartServer) -> None:
    """Every seat is held, every one resumed; fds, links, sessions back to the baseline."""
    server = await start_server(max_connections_per_ip=1000, max_players_per_room=200)
    n = 200

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    def sessions() -> int:
        gc.collect()
        return sum(1 for obj in gc.get_objects() if type(obj) is Session)

    tokens: dict[int, str | None] = {}
    streams: list[trio.SocketStream] = []

    async def play(i: int) -> None:
        """A player on a raw connection (so it can be reset without a client library)."""
        stream = await trio.open_tcp_stream("127.0.0.1", server.port)
        await stream.send_all(upgrade_request(server.port))
        response = await read_response(stream)
        assert response.status == 101
        await stream.send_all(frame(0x2, hello(f"p{i}", game="arena", room="big")))
        _, payload, _ = await next_frame(stream, response.rest)
        welcome = decode_server_message(payload)
        assert isinstance(welcome, Welcome) and welcome.room is not None
        tokens[welcome.player] = welcome.resume
        streams.append(stream)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(play, i)
        await wait_for(lambda: len(server.links) == n)
        base_fds, base_sessions = fds(), sessions()
        for stream in streams:
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await stream.aclose()
        streams.clear()
        await wait_for(lambda: server.core.seats.held_count() == n and not server.links)
        room = server.core.rooms.get("big")
        assert room is not None and len(room.seats) == n

        resumed: list[GameClient] = []
        done = trio.Event()

        async def come_back(pid: int, token: str | None) -> None:
            async with connect(server.url, "x", resume=token) as client:
                assert client.resumed and client.player_id == pid
                resumed.append(client)
                await done.wait()

        async with trio.open_nursery() as nursery:
            for pid, token in tokens.items():
                nursery.start_soon(come_back, pid, token)
            await wait_for(lambda: len(resumed) == n and len(server.links) == n)
            assert server.core.seats.held_count() == 0 and len(room.seats) == n
            assert all(s.member.player.connected for s in room.seats.values())
            # As many connections as before the drop on both ends, and no session of
            # the cut connections left: the held seats kept none alive.
            assert fds() == base_fds
            assert sessions() == base_sessions
            done.set()
        await wait_for(lambda: not server.links)
