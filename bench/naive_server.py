"""The baseline for ``bench/capacity.py``: the straightforward websockets.trio game server.

Same wire protocol (the ``protocol`` codec), same game (``Arena`` through
``gameserver.game``'s ``Player``/``RoomContext``), same tick grid and tick
accounting (``TickSchedule``), same ``/healthz`` fields. Run it with
``python bench/naive_server.py --port 9002``.

What it does the obvious way, on purpose:

- Each room's loop, on every snapshot tick, writes one snapshot per client with
  ``await ws.send(frame)``, client after client. A client whose socket is full
  stalls the loop, and everyone in its room waits with it.
- Replies and room events (join, leave, chat) are awaited in the task that read
  the request, one member after another.
- Inputs are applied when they arrive; no rate limit, no send timeout, no
  latest-wins slot, no eviction of slow clients.

It is not a strawman on encoding: like our server it encodes the room state once
per tick and splices it into each client's envelope (``encode_snapshot``), so the
comparison measures the I/O design. ``--per-client-encode`` builds and encodes
the state for every client instead (the naive-naive variant).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

import trio
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.trio.server import ServerConnection, serve

from gameserver.game import Game, InvalidInput, Player, RoomContext
from gameserver.games.arena import Arena
from gameserver.latency import LatencyEstimator
from gameserver.settings import Settings
from gameserver.tick import TickSchedule, TickStats, current_tick
from protocol import (
    PROTOCOL_VERSION,
    Chat,
    Error,
    Event,
    Hello,
    Input,
    Join,
    Joined,
    Leave,
    Left,
    Ping,
    PlayerInfo,
    Pong,
    ProtocolError,
    RoomInfo,
    Snapshot,
    Welcome,
    decode_client_message,
    encode,
    encode_snapshot,
    pack_state,
)

EMPTY_ROOM_GRACE = 30.0
PING_INTERVAL = 1.0


class Client:
    """One connected player."""

    def __init__(self, ws: ServerConnection, player: Player, latency: LatencyEstimator) -> None:
        self.ws = ws
        self.player = player
        self.latency = latency
        self.room: NaiveRoom | None = None
        self.snapshot_id = 0
        self.applied_seq: int | None = None


class NaiveRoom:
    def __init__(self, name: str, game: Game, max_players: int) -> None:
        self.name = name
        self.game = game
        self.max_players = max_players
        self.clients: dict[int, Client] = {}
        self.empty_since: float | None = None
        self.stats: TickStats | None = None
        self.tick_started: float | None = None
        """When the tick in progress began (None between ticks): a stalled loop shows here."""

    def info(self) -> RoomInfo:
        players = tuple(PlayerInfo(c.player.id, c.player.name) for c in self.clients.values())
        return RoomInfo(self.name, Arena.name, self.max_players, players, self.game.info())


class NaiveServer:
    def __init__(self, settings: Settings, per_client_encode: bool = False) -> None:
        self.settings = settings
        self.per_client_encode = per_client_encode
        self.rooms: dict[str, NaiveRoom] = {}
        self.connections = 0
        self.next_player = 1
        self.next_room = 1
        self.epoch = 0.0
        self.started = time.monotonic()
        self.nursery: trio.Nursery | None = None
        self.seeds = random.Random(1)

    # -- HTTP ------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        stats = [r.stats for r in self.rooms.values() if r.stats is not None]
        cpu = os.times()
        now = trio.current_time()
        budget = 1.0 / self.settings.tick_rate
        running = [now - r.tick_started for r in self.rooms.values() if r.tick_started is not None]
        return {
            "status": "ok",
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 3),
            "connections": self.connections,
            "players": sum(len(r.clients) for r in self.rooms.values()),
            "rooms": len(self.rooms),
            "tick_rate": self.settings.tick_rate,
            "snapshot_rate": self.settings.snapshot_rate,
            "ticks": {
                "total": sum(s.ticks for s in stats),
                "overruns": sum(s.overruns for s in stats),
                "skipped": sum(s.skipped for s in stats),
                "p50_ms": max((s.as_dict()["p50_ms"] for s in stats), default=0.0),
                "p99_ms": max((s.as_dict()["p99_ms"] for s in stats), default=0.0),
                "max_ms": max((s.as_dict()["max_ms"] for s in stats), default=0.0),
                "stalled": sum(1 for r in running if r > budget),
                "stalled_max_ms": round(1000 * max(running, default=0.0), 1),
            },
            "cpu_s": {"user": cpu.user, "system": cpu.system},
        }

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.partition("?")[0] != "/healthz":
            return None
        body = json.dumps(self.health()).encode()
        headers = Headers(
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]
        )
        return Response(200, "OK", headers, body)

    # -- rooms ---------------------------------------------------------------

    def find_room(self, room_name: str | None) -> NaiveRoom | None:
        if room_name is not None:
            room = self.rooms.get(room_name)
            if room is None:
                room = self.create_room(room_name)
            return None if len(room.clients) >= room.max_players else room
        for room in self.rooms.values():
            if len(room.clients) < room.max_players:
                return room
        while f"arena-{self.next_room}" in self.rooms:
            self.next_room += 1
        return self.create_room(f"arena-{self.next_room}")

    def create_room(self, name: str) -> NaiveRoom:
        s = self.settings
        ctx = RoomContext(
            name, s.tick_rate, s.max_players_per_room, random.Random(self.seeds.random())
        )
        room = NaiveRoom(name, Arena(ctx), s.max_players_per_room)
        self.rooms[name] = room
        assert self.nursery is not None
        self.nursery.start_soon(self.room_loop, room)
        return room

    async def broadcast(self, room: NaiveRoom, frame: bytes) -> None:
        for client in list(room.clients.values()):
            with contextlib.suppress(ConnectionClosed):
                await client.ws.send(frame)

    async def seat(
        self, client: Client, game: str | None, room_name: str | None
    ) -> RoomInfo | None:
        if game is not None and game != Arena.name:
            await client.ws.send(encode(Error("unknown_game", f"no game named {game!r}", "join")))
            return None
        room = self.find_room(room_name)
        if room is None:
            await client.ws.send(encode(Error("room_full", "room is full", "join")))
            return None
        room.game.on_join(client.player)
        room.clients[client.player.id] = client
        room.empty_since = None
        client.room = room
        client.applied_seq = None
        return room.info()

    async def unseat(self, client: Client) -> None:
        room, client.room = client.room, None
        if room is None or room.clients.pop(client.player.id, None) is None:
            return
        room.game.on_leave(client.player)
        if not room.clients:
            room.empty_since = trio.current_time()
        p = client.player
        await self.broadcast(room, encode(Event("leave", p.id, p.name, tick=self.tick_now())))

    def tick_now(self) -> int:
        return current_tick(self.settings.tick_rate, self.epoch, trio.current_time())

    async def room_loop(self, room: NaiveRoom) -> None:
        s = self.settings
        schedule = TickSchedule(s.tick_rate, epoch=self.epoch, now=trio.current_time())
        room.stats = schedule.stats
        game = room.game
        while True:
            await trio.sleep_until(schedule.next_deadline)
            started = room.tick_started = trio.current_time()
            if room.empty_since is not None and started - room.empty_since > EMPTY_ROOM_GRACE:
                del self.rooms[room.name]
                return
            tick = schedule.next_tick
            game.step(schedule.dt)
            due = (
                tick * s.snapshot_rate // s.tick_rate != (tick - 1) * s.snapshot_rate // s.tick_rate
            )
            if due and room.clients:
                shared = None
                if not self.per_client_encode:  # everyone sees the same arena: encode once
                    viewer = next(iter(room.clients.values())).player
                    shared = pack_state(game.snapshot(viewer))
                for client in list(room.clients.values()):
                    client.snapshot_id += 1
                    report = client.latency.report
                    if shared is None:
                        frame = encode(
                            Snapshot(
                                client.snapshot_id,
                                tick,
                                client.applied_seq,
                                report.rtt_us,
                                report.jitter_us,
                                game.snapshot(client.player),
                            )
                        )
                    else:
                        frame = encode_snapshot(
                            snapshot_id=client.snapshot_id,
                            tick=tick,
                            ack=client.applied_seq,
                            rtt_us=report.rtt_us,
                            jitter_us=report.jitter_us,
                            state=shared,
                        )
                    with contextlib.suppress(ConnectionClosed):
                        await client.ws.send(frame)
            room.tick_started = None
            schedule.tick_done(started, trio.current_time())

    # -- connections -----------------------------------------------------------

    async def pinger(self, client: Client) -> None:
        while True:
            await trio.sleep(PING_INTERVAL)
            await client.ws.send(encode(Ping(client.latency.ping_sent(trio.current_time()))))

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        latency = LatencyEstimator()
        player_id = self.next_player
        self.next_player += 1
        client = Client(ws, Player(player_id, "", lambda: latency.report), latency)
        try:
            async with trio.open_nursery() as nursery:
                try:
                    async for frame in ws:
                        if isinstance(frame, str):
                            break
                        await self.on_frame(client, frame, nursery)
                except ConnectionClosed:
                    pass
                nursery.cancel_scope.cancel()
        finally:
            self.connections -= 1
            with trio.CancelScope(shield=True):
                await self.unseat(client)

    async def on_frame(self, client: Client, frame: bytes, nursery: trio.Nursery) -> None:
        ws = client.ws
        try:
            message = decode_client_message(frame)
        except ProtocolError as exc:
            await ws.send(encode(Error(exc.code.value, exc.detail, exc.ref)))
            return
        if isinstance(message, Hello):
            client.player.name = message.name
            info = None
            if message.game is not None or message.room is not None:
                info = await self.seat(client, message.game, message.room)
            s = self.settings
            welcome = Welcome(
                PROTOCOL_VERSION,
                client.player.id,
                s.tick_rate,
                s.snapshot_rate,
                self.tick_now(),
                s.client_limits(),
                (Arena.name,),
                info,
            )
            await ws.send(encode(welcome))
            nursery.start_soon(self.pinger, client)
            if info is not None and client.room is not None:
                await self.announce_join(client)
        elif isinstance(message, Input):
            if client.room is not None:
                try:
                    command = client.room.game.validate_input(client.player, message.data)
                except InvalidInput as exc:
                    await ws.send(encode(Error("bad_input", str(exc), "input")))
                    return
                client.room.game.on_input(client.player, command)
                client.applied_seq = message.seq
        elif isinstance(message, Pong):
            client.latency.pong_received(message.nonce, trio.current_time())
        elif isinstance(message, Chat):
            if client.room is not None:
                p = client.player
                event = Event("chat", p.id, p.name, message.text[:200], self.tick_now())
                await self.broadcast(client.room, encode(event))
        elif isinstance(message, Join):
            if client.room is None:
                info = await self.seat(client, message.game, message.room)
                if info is not None:
                    await ws.send(encode(Joined(info)))
                    await self.announce_join(client)
        elif isinstance(message, Leave):
            room = client.room
            if room is not None:
                await self.unseat(client)
                await ws.send(encode(Left(room.name)))

    async def announce_join(self, client: Client) -> None:
        assert client.room is not None
        p = client.player
        await self.broadcast(client.room, encode(Event("join", p.id, p.name, tick=self.tick_now())))


async def run(settings: Settings, per_client_encode: bool) -> None:
    server = NaiveServer(settings, per_client_encode)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server.nursery = nursery
            server.epoch = trio.current_time()
            ws_server = await nursery.start(
                functools.partial(
                    serve,
                    server.handler,
                    settings.port,
                    host=settings.host,
                    compression=None,
                    process_request=server.process_request,
                    max_size=settings.max_message_bytes,
                )
            )
            port = ws_server.listeners[0].socket.getsockname()[1]
            print(f"naive server listening on ws://{settings.host}:{port}/", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/naive_server.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9002)
    parser.add_argument("--tick-rate", type=int, default=30)
    parser.add_argument("--snapshot-rate", type=int, default=30)
    parser.add_argument("--max-players-per-room", type=int, default=50)
    parser.add_argument(
        "--per-client-encode",
        action="store_true",
        help="build and encode the state for every client",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        host=args.host,
        port=args.port,
        tick_rate=args.tick_rate,
        snapshot_rate=args.snapshot_rate,
        max_players_per_room=args.max_players_per_room,
    )
    trio.run(run, settings, args.per_client_encode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
