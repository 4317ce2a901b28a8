"""Workers sharing a real Redis, end to end on 127.0.0.1: matchmaking across workers,
redirects and tickets, a worker vanishing, Redis lost and back, nothing left behind.

The workers run in this process (one trio run, each its own server and directory);
``tests/cluster/test_supervisor_cluster.py`` covers real worker processes. Clients
follow redirects by hand here (``Player``), so each step of §5.11 is visible.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import coredis
import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.client import ClientConnection

from gameserver.trio import RunningServer
from protocol import (
    PROTOCOL_VERSION,
    Chat,
    CloseCode,
    Error,
    ErrorCode,
    Event,
    Hello,
    Join,
    Ping,
    Pong,
    Redirect,
    ServerMessage,
    Snapshot,
    Welcome,
    decode_server_message,
    encode,
)
from tests.cluster.conftest import Cluster, cluster_settings
from tests.net.conftest import get_request, http_exchange, raw_ws
from tests.redis_server import RedisServer, eventually


def url_of(server: RunningServer) -> str:
    return f"ws://127.0.0.1:{server.port}/"


@dataclass
class Player:
    """One test player: its live connection, what it was told, how it got there.

    Its connections run in its own nursery (opened by ``open_player``), so a redirect
    can open the next one anywhere, even under a ``fail_after``.
    """

    nursery: trio.Nursery
    ws: ClientConnection
    redirects: list[Redirect] = field(default_factory=list)
    welcome: Welcome | None = None

    async def recv(self) -> ServerMessage:
        """The next message, pings answered."""
        while True:
            frame = await self.ws.recv()
            assert isinstance(frame, bytes)
            message = decode_server_message(frame)
            if isinstance(message, Ping):
                await self.ws.send(encode(Pong(message.nonce)))
                continue
            return message

    async def until(self, kind: type[Any]) -> Any:
        while True:
            message = await self.recv()
            if isinstance(message, kind):
                return message

    async def follow(self, redirect: Redirect, name: str) -> None:
        """§5.11: reconnect to the redirect's URL and say hello with its ticket."""
        self.redirects.append(redirect)
        with trio.fail_after(5):
            closed = await self.recv_close()
        assert closed == CloseCode.REDIRECTED
        self.ws = await raw_ws(redirect.url).connect(self.nursery)
        await self.ws.send(encode(Hello(PROTOCOL_VERSION, name, ticket=redirect.ticket)))

    async def recv_close(self) -> int | None:
        try:
            while True:
                await self.ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    async def hello(self, name: str, **fields: Any) -> ServerMessage:
        """Say hello; follow redirects; return the welcome or the first other answer."""
        await self.ws.send(encode(Hello(PROTOCOL_VERSION, name, **fields)))
        while True:
            message = await self.recv()
            if isinstance(message, Redirect):
                await self.follow(message, name)
                continue
            if isinstance(message, Welcome):
                self.welcome = message
            return message


async def open_player(stack: AsyncExitStack, url: str) -> Player:
    nursery = await stack.enter_async_context(trio.open_nursery())
    player = Player(nursery, await raw_ws(url).connect(nursery))

    async def close() -> None:
        await player.ws.aclose()
        nursery.cancel_scope.cancel()

    stack.push_async_callback(close)
    return player


def seated(servers: list[RunningServer]) -> dict[str, int]:
    """Players per room over all workers (rooms are local objects: read them directly)."""
    counts: dict[str, int] = {}
    for server in servers:
        for room in server.core.rooms:
            assert room.name not in counts, f"room {room.name} on two workers"
            counts[room.name] = len(room.seats)
    return counts


async def test_one_hundred_players_matchmade_through_two_workers(cluster: Cluster) -> None:
    servers = await cluster.start(2)
    welcomes: list[Welcome] = []
    redirected = 0
    first_in = trio.Event()
    all_in = trio.Event()
    checked = trio.Event()

    async def join(i: int) -> None:
        # Each player's connections live in its own task (their nurseries must nest).
        nonlocal redirected
        async with AsyncExitStack() as stack:
            player = await open_player(stack, url_of(servers[i % 2]))
            with trio.fail_after(20):
                answer = await player.hello(f"p{i}", game="arena")
            assert isinstance(answer, Welcome) and answer.room is not None, answer
            welcomes.append(answer)
            redirected += bool(player.redirects)
            first_in.set()
            if len(welcomes) == 100:
                all_in.set()
            await checked.wait()

    async with trio.open_nursery() as nursery:
        # The first opens arena-1 on worker 0, so worker 1's players must be redirected.
        nursery.start_soon(join, 0)
        with trio.fail_after(5):
            await first_in.wait()
        for i in range(1, 100):
            nursery.start_soon(join, i)
        with trio.fail_after(30):
            await all_in.wait()
        assert seated(servers) == {"arena-1": 50, "arena-2": 50}
        assert len({w.player for w in welcomes}) == 100, "player ids must be unique"
        assert redirected > 0
        checked.set()


async def test_a_named_room_is_joined_through_the_other_worker(cluster: Cluster) -> None:
    first, second = await cluster.start(2)
    async with AsyncExitStack() as stack:
        ada = await open_player(stack, url_of(first))
        bob = await open_player(stack, url_of(second))
        with trio.fail_after(5):
            welcome_ada = await ada.hello("ada", game="arena", room="duel")
            welcome_bob = await bob.hello("bob", room="duel")
        assert isinstance(welcome_ada, Welcome) and isinstance(welcome_bob, Welcome)
        assert [r.room for r in bob.redirects] == ["duel"]
        assert bob.redirects[0].url == url_of(first)
        assert bob.redirects[0].ttl_ms == 10_000
        assert welcome_bob.room is not None
        assert [p.name for p in welcome_bob.room.players] == ["ada", "bob"]
        with trio.fail_after(5):
            joined = await ada.until(Event)
            while joined.kind != "join" or joined.name != "bob":
                joined = await ada.until(Event)
            await bob.ws.send(encode(Chat("hi ada")))
            chat = await ada.until(Event)
            while chat.kind != "chat":
                chat = await ada.until(Event)
        assert (chat.name, chat.text) == ("bob", "hi ada")
        assert seated([first, second]) == {"duel": 2}


async def test_a_join_from_the_lobby_keeps_the_player_id(cluster: Cluster) -> None:
    first, second = await cluster.start(2)
    async with AsyncExitStack() as stack:
        ada = await open_player(stack, url_of(first))
        bob = await open_player(stack, url_of(second))
        with trio.fail_after(5):
            await ada.hello("ada", game="arena", room="duel")
            lobby = await bob.hello("bob")
            assert isinstance(lobby, Welcome) and lobby.room is None
            await bob.ws.send(encode(Join(room="duel")))
            redirect = await bob.until(Redirect)
            await bob.follow(redirect, "bob")
            again = await bob.until(Welcome)
        assert again.player == lobby.player
        assert again.room is not None and again.room.name == "duel"


async def test_forged_replayed_and_misdirected_tickets(cluster: Cluster) -> None:
    first, second = await cluster.start(2)
    async with AsyncExitStack() as stack:
        ada = await open_player(stack, url_of(first))
        with trio.fail_after(5):
            await ada.hello("ada", game="arena", room="duel")
        # A forged ticket: bad_ticket, nothing else; the connection waits for a hello.
        eve = await open_player(stack, url_of(first))
        with trio.fail_after(5):
            refused = await eve.hello("eve", ticket="A" * 22)
            assert isinstance(refused, Error) and refused.code == ErrorCode.BAD_TICKET
            assert refused.ref == "hello"
            fresh = await eve.hello("eve")
        assert isinstance(fresh, Welcome) and fresh.room is None
        # A real ticket presented to the wrong worker is used up and refused.
        bob = await open_player(stack, url_of(second))
        with trio.fail_after(5):
            await bob.ws.send(encode(Hello(PROTOCOL_VERSION, "bob", room="duel")))
            redirect = await bob.until(Redirect)
        wrong = await open_player(stack, url_of(second))
        with trio.fail_after(5):
            answer = await wrong.hello("bob", ticket=redirect.ticket)
        assert isinstance(answer, Error) and answer.code == ErrorCode.BAD_TICKET
        # ...so replaying it at the right worker fails too.
        late = await open_player(stack, url_of(first))
        with trio.fail_after(5):
            replay = await late.hello("bob", ticket=redirect.ticket)
        assert isinstance(replay, Error) and replay.code == ErrorCode.BAD_TICKET
        # The seat it held went back: only ada is counted.
        assert (
            await first.directory.client.hget(  # type: ignore[union-attr]
                f"{cluster.prefix}:r:duel", "taken"
            )
            == "1"
        )


async def test_an_expired_ticket_is_refused(cluster: Cluster) -> None:
    first, second = await cluster.start(2, ticket_ttl=0.2)
    async with AsyncExitStack() as stack:
        ada = await open_player(stack, url_of(first))
        bob = await open_player(stack, url_of(second))
        with trio.fail_after(5):
            await ada.hello("ada", game="arena", room="duel")
            await bob.ws.send(encode(Hello(PROTOCOL_VERSION, "bob", room="duel")))
            redirect = await bob.until(Redirect)
        client = first.directory.client  # type: ignore[union-attr]

        async def ticket_expired() -> bool:  # Redis expires it on its own clock
            return await client.exists([f"{cluster.prefix}:t:{redirect.ticket}"]) == 0

        await eventually(ticket_expired)
        late = await open_player(stack, redirect.url)
        with trio.fail_after(5):
            answer = await late.hello("bob", ticket=redirect.ticket)
        assert isinstance(answer, Error) and answer.code == ErrorCode.BAD_TICKET


async def test_players_keep_playing_while_redis_is_away(redis_prefix: str) -> None:
    redis = RedisServer()
    redis.start()
    try:
        async with trio.open_nursery() as nursery:
            cluster = Cluster(nursery, redis.url, redis_prefix)
            first, second = await cluster.start(2)
            async with AsyncExitStack() as stack:
                ada = await open_player(stack, url_of(first))
                with trio.fail_after(5):
                    await ada.hello("ada", game="arena")  # matchmade: arena-1
                redis.stop()
                # Snapshots keep coming while Redis is gone...
                with trio.fail_after(5):
                    ticks = [(await ada.until(Snapshot)).tick for _ in range(10)]
                assert ticks == sorted(set(ticks))
                # ...and a join that needs the directory is told to retry.
                bob = await open_player(stack, url_of(second))
                with trio.fail_after(5):
                    welcome = await bob.hello("bob", game="arena")
                    assert isinstance(welcome, Welcome) and welcome.room is None
                    error = await bob.until(Error)
                assert error.code == ErrorCode.DIRECTORY_UNAVAILABLE
                redis.start()  # empty: no persistence

                async def both_back() -> bool:  # their heartbeats run on the real clock
                    return all(
                        s.directory is not None and s.directory.available for s in cluster.workers
                    )

                await eventually(both_back, limit=10)
                # The room was registered again, as matchmade (PROTOCOL.md §5.2): matchmaking
                # finds it, through the other worker.
                await bob.ws.send(encode(Join(game="arena")))
                with trio.fail_after(5):
                    redirect = await bob.until(Redirect)
                assert redirect.room == "arena-1"
                await bob.follow(redirect, "bob")
                with trio.fail_after(5):
                    back = await bob.until(Welcome)
                assert back.room is not None and back.room.name == "arena-1"
                with trio.fail_after(5):
                    await ada.until(Snapshot)
            await cluster.aclose()
            nursery.cancel_scope.cancel()
    finally:
        redis.stop()


async def test_a_vanished_worker_leaves_the_directory_within_three_heartbeats(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with trio.open_nursery() as nursery:
        cluster = Cluster(nursery, redis_server.url, redis_prefix)
        (survivor,) = await cluster.start(1, heartbeat_interval=0.2)
        doomed_scope = trio.CancelScope()

        async def doomed(task_status: trio.TaskStatus[RunningServer]) -> None:
            from gameserver.trio import serve_game

            with doomed_scope:
                settings = cluster_settings(redis_server.url, redis_prefix, heartbeat_interval=0.2)
                async with trio.open_nursery() as inner:
                    server: RunningServer = await inner.start(serve_game, settings, None, None, 7)
                    task_status.started(server)

        gone: RunningServer = await nursery.start(doomed)
        client = survivor.directory.client  # type: ignore[union-attr]
        async with AsyncExitStack() as stack:
            ada = await open_player(stack, url_of(gone))
            with trio.fail_after(5):
                await ada.hello("ada", game="arena", room="island")
            assert await client.exists([f"{redis_prefix}:r:island"])
            # Cancelled without leaving the directory: as if killed.
            doomed_scope.cancel()

            async def forgotten() -> bool:
                return await client.exists([f"{redis_prefix}:r:island"]) == 0

            # Three heartbeats of 0.2 s, plus Redis's expiry cycle (it may lag ~0.1 s).
            assert await eventually(forgotten) <= 3 * 0.2 + 0.3
            # The name is free again: a player asking for it gets a new room here.
            bob = await open_player(stack, url_of(survivor))
            with trio.fail_after(5):
                welcome = await bob.hello("bob", game="arena", room="island")
            assert isinstance(welcome, Welcome) and not bob.redirects
        await cluster.aclose()
        nursery.cancel_scope.cancel()


async def test_stopping_leaves_no_key_without_a_ttl(cluster: Cluster) -> None:
    servers = await cluster.start(2)
    client: coredis.Redis[str] = coredis.Redis.from_url(cluster.url, decode_responses=True)
    async with client, AsyncExitStack() as stack:
        for i in range(6):
            player = await open_player(stack, url_of(servers[i % 2]))
            with trio.fail_after(5):
                await player.hello(f"p{i}", game="arena", room=f"r{i % 3}")
        keys = [k async for k in client.scan_iter(match=f"{cluster.prefix}:*")]
        assert any(":r:" in k for k in keys) and any(":w:" in k for k in keys)
        for key in keys:
            assert await client.pttl(key) > 0, key
        await cluster.aclose()
        left = [k async for k in client.scan_iter(match=f"{cluster.prefix}:*")]
        # Rooms and presence are gone; only the counters remain, and they expire.
        assert all(":seq:" in k or ":open:" in k for k in left), left
        for key in left:
            assert await client.pttl(key) > 0, key


async def test_healthz_names_the_worker_and_shows_the_cluster(cluster: Cluster) -> None:
    first, second = await cluster.start(2)
    async with AsyncExitStack() as stack:
        for i in range(3):
            player = await open_player(stack, url_of(first))
            with trio.fail_after(5):
                await player.hello(f"p{i}", game="arena")

        # The next heartbeat (0.5 s) publishes the counts.
        async def counted() -> bool:
            response = await http_exchange(second.port, get_request(second.port, "/healthz"))
            return bool(json.loads(response.body)["cluster"]["players"] == 3)

        await eventually(counted)
        response = await http_exchange(second.port, get_request(second.port, "/healthz"))
    document = json.loads(response.body)
    assert document["worker"]["url"] == url_of(second)
    assert document["worker"]["index"] == 1
    assert document["cluster"] == {
        "directory": "ok",
        "workers": 2,
        "rooms": 1,
        "players": 3,
        "worker_urls": sorted([url_of(first), url_of(second)]),
    }
