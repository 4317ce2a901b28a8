"""The directory's Lua scripts against a real Redis: seats, names, tickets, expiry.

Each test plays one or more "workers" by calling the scripts as the worker's
directory does, through the same argument builders' order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import coredis
import pytest
import trio

from gameserver.cluster.directory import (
    CLAIM,
    CONSUME,
    LEAVE,
    REFRESH,
    REGISTER,
    RELEASE,
    SeatElsewhere,
    SeatHere,
    SeatRefused,
    TicketRefused,
    TicketSeat,
    parse_claim,
    parse_consume,
)
from protocol import ErrorCode
from tests.redis_server import RedisServer, eventually

TTL_MS = 3000


class Scripts:
    def __init__(self, client: coredis.Redis[str], prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.claim_script = client.register_script(CLAIM)
        self.consume_script = client.register_script(CONSUME)
        self.release_script = client.register_script(RELEASE)
        self.leave_script = client.register_script(LEAVE)
        self.refresh_script = client.register_script(REFRESH)
        self.register_script = client.register_script(REGISTER)
        self.tickets = 0

    async def claim(
        self,
        worker: str,
        game: str = "arena",
        room: str = "",
        *,
        seats: int = 50,
        may_create: bool = True,
        ticket_ttl_ms: int = 10_000,
        player: int = 1,
        user: str = "",
        spectate: bool = False,
    ) -> SeatHere | SeatElsewhere | SeatRefused:
        self.tickets += 1
        reply: Any = await self.claim_script(
            args=[
                self.prefix, TTL_MS, game, room, worker, f"ws://{worker}/", seats,
                "1" if may_create else "0", f"ticket-{self.tickets}", ticket_ttl_ms,
                player, f"p{player}", user, "1" if spectate else "0",
            ]
        )  # fmt: skip
        return parse_claim(reply)

    async def consume(
        self, ticket: str, worker: str, user: str = "", room: str = ""
    ) -> TicketSeat | TicketRefused:
        reply: Any = await self.consume_script(
            args=[self.prefix, TTL_MS, ticket, worker, user, f"ws://{worker}/", room]
        )
        return parse_consume(reply)

    async def run(self, script: Any, *args: Any) -> Any:
        """Any other script, with the prefix and TTL every script starts with."""
        return await script(args=[self.prefix, TTL_MS, *args])

    async def alive(self, *workers: str) -> None:
        """Presence for these workers (rooms of a worker without one are dropped)."""
        for worker in workers:
            await self.client.set(f"{self.prefix}:w:{worker}", "{}", px=60_000)

    async def room(self, name: str) -> dict[str, str]:
        return dict(await self.client.hgetall(f"{self.prefix}:r:{name}"))

    async def taken(self, name: str) -> int:
        return int((await self.room(name))["taken"])


@pytest.fixture
async def scripts(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[Scripts]:
    client: coredis.Redis[str] = coredis.Redis.from_url(redis_server.url, decode_responses=True)
    async with client:
        scripts = Scripts(client, redis_prefix)
        await scripts.alive(*(f"w{i}" for i in range(10)))
        yield scripts


async def test_matchmaking_creates_a_room_owned_by_the_claimer(scripts: Scripts) -> None:
    first = await scripts.claim("w1")
    assert first == SeatHere("arena-1", "arena", created=True, matchmade=True)
    again = await scripts.claim("w1")
    assert again == SeatHere("arena-1", "arena", created=False, matchmade=True)
    record = await scripts.room("arena-1")
    assert record["worker"] == "w1" and record["taken"] == "2" and record["seats"] == "50"
    assert 0 < await scripts.client.pttl(f"{scripts.prefix}:r:arena-1") <= TTL_MS


async def test_another_worker_gets_a_ticket_for_the_same_room(scripts: Scripts) -> None:
    await scripts.claim("w1")
    there = await scripts.claim("w2", player=9)
    assert isinstance(there, SeatElsewhere)
    assert there.room == "arena-1" and there.url == "ws://w1/"
    assert await scripts.taken("arena-1") == 2  # the reservation holds a seat
    seat = await scripts.consume(there.ticket, "w1")
    assert seat == TicketSeat("arena-1", "arena", 9, "p9", matchmade=True)
    assert await scripts.taken("arena-1") == 2  # the reservation became the seat
    replay = await scripts.consume(there.ticket, "w1")
    assert isinstance(replay, TicketRefused)


async def test_a_full_room_is_skipped_and_the_next_created(scripts: Scripts) -> None:
    for _ in range(3):
        assert isinstance(await scripts.claim("w1", seats=3), SeatHere)
    fourth = await scripts.claim("w2", seats=3)
    assert fourth == SeatHere("arena-2", "arena", created=True, matchmade=True)
    named = await scripts.claim("w2", room="arena-1", seats=3)
    assert named == SeatRefused(ErrorCode.ROOM_FULL, "room 'arena-1' is full")


async def test_matchmaking_never_picks_a_room_created_by_name(scripts: Scripts) -> None:
    """PROTOCOL.md §5.2: a join by game fills only rooms matchmaking created, on any worker."""
    named = await scripts.claim("w1", room="lobby")
    assert named == SeatHere("lobby", "arena", created=True, matchmade=False)
    assert await scripts.client.zrange(f"{scripts.prefix}:open:arena", 0, -1) == ()
    matched = await scripts.claim("w2")
    assert matched == SeatHere("arena-1", "arena", created=True, matchmade=True)
    assert await scripts.claim("w2") == SeatHere("arena-1", "arena", created=False, matchmade=True)
    assert await scripts.taken("lobby") == 1  # nobody was matched into it
    # Watching by game alone picks a matchmade room too, never the named one.
    watched = await scripts.claim("w1", spectate=True)
    assert isinstance(watched, SeatElsewhere) and watched.room == "arena-1"
    # The named room is still joined by its name, from any worker.
    by_name = await scripts.claim("w2", room="lobby", player=5)
    assert isinstance(by_name, SeatElsewhere) and by_name.room == "lobby"
    seat = await scripts.consume(by_name.ticket, "w1")
    assert seat == TicketSeat("lobby", "arena", 5, "p5", matchmade=False)
    # Reopened from a ticket or re-registered after Redis lost it, a room keeps its kind.
    await scripts.run(scripts.leave_script, "w1", "lobby")
    await scripts.run(scripts.register_script, "w1", "ws://w1/", "lobby", "arena", 50, 2, "0")
    assert (await scripts.room("lobby"))["mm"] == "0"
    await scripts.run(scripts.leave_script, "w2", "arena-1")
    await scripts.run(scripts.register_script, "w2", "ws://w2/", "arena-1", "arena", 50, 2, "1")
    assert (await scripts.room("arena-1"))["mm"] == "1"
    assert await scripts.client.zrange(f"{scripts.prefix}:open:arena", 0, -1) == ("arena-1",)


async def test_named_rooms_refusals(scripts: Scripts) -> None:
    missing = await scripts.claim("w1", game="", room="lobby")
    assert isinstance(missing, SeatRefused) and missing.code is ErrorCode.NO_SUCH_ROOM
    assert await scripts.claim("w1", room="lobby") == SeatHere("lobby", "arena", created=True)
    other = await scripts.claim("w2", game="pong", room="lobby")
    assert isinstance(other, SeatRefused) and other.code is ErrorCode.ROOM_GAME_MISMATCH
    no_create = await scripts.claim("w1", room="new", may_create=False)
    assert isinstance(no_create, SeatRefused) and no_create.code is ErrorCode.TOO_MANY_ROOMS


async def test_two_hundred_racing_claims_on_two_workers_never_overfill(scripts: Scripts) -> None:
    results: list[SeatHere | SeatElsewhere | SeatRefused] = []

    async def one(worker: str, player: int) -> None:
        results.append(await scripts.claim(worker, seats=50, player=player))

    async with trio.open_nursery() as nursery:
        for player in range(200):
            nursery.start_soon(one, "w1" if player % 2 else "w2", player)
    rooms: dict[str, int] = {}
    for result in results:
        assert not isinstance(result, SeatRefused)
        rooms[result.room] = rooms.get(result.room, 0) + 1
    assert rooms == {"arena-1": 50, "arena-2": 50, "arena-3": 50, "arena-4": 50}
    for name in rooms:
        assert await scripts.taken(name) == 50


async def test_racing_creations_of_one_name_make_one_room(scripts: Scripts) -> None:
    results: list[Any] = []

    async def one(worker: str) -> None:
        results.append(await scripts.claim(worker, room="final", seats=4))

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(one, f"w{i % 3}")
    created = [r for r in results if isinstance(r, SeatHere) and r.created]
    assert len(created) == 1
    seated = [r for r in results if not isinstance(r, SeatRefused)]
    assert len(seated) == 4
    assert all(r.code is ErrorCode.ROOM_FULL for r in results if isinstance(r, SeatRefused))


async def test_tickets_for_another_worker_or_user_are_refused_and_free_the_seat(
    scripts: Scripts,
) -> None:
    await scripts.claim("w1", seats=2)
    ticket = await scripts.claim("w2", seats=2, user="alice")
    assert isinstance(ticket, SeatElsewhere)
    assert await scripts.taken("arena-1") == 2
    wrong_worker = await scripts.consume(ticket.ticket, "w3", user="alice")
    assert wrong_worker == TicketRefused("ticket for another worker")
    assert await scripts.taken("arena-1") == 1  # given back
    second = await scripts.claim("w2", seats=2, user="alice")
    assert isinstance(second, SeatElsewhere)
    wrong_user = await scripts.consume(second.ticket, "w1", user="mallory")
    assert wrong_user == TicketRefused("ticket for another user")
    assert await scripts.taken("arena-1") == 1
    forged = await scripts.consume("not-a-ticket", "w1")
    assert isinstance(forged, TicketRefused)


async def test_an_expired_reservation_gives_its_seat_back(scripts: Scripts) -> None:
    await scripts.claim("w1", seats=2)
    ticket = await scripts.claim("w2", seats=2, ticket_ttl_ms=50)
    assert isinstance(ticket, SeatElsewhere)
    assert await scripts.taken("arena-1") == 2

    # Wait out the ticket on Redis's clock (it expires keys by its own time).
    async def ticket_expired() -> bool:
        return await scripts.client.exists([f"{scripts.prefix}:t:{ticket.ticket}"]) == 0

    await eventually(ticket_expired)
    assert isinstance(await scripts.consume(ticket.ticket, "w1"), TicketRefused)
    # The next claim reads the room and gives the lapsed seat back first.
    assert await scripts.claim("w3", seats=2) == SeatElsewhere("arena-1", "ws://w1/", "ticket-3")
    assert await scripts.taken("arena-1") == 2


async def test_release_reopens_a_full_room(scripts: Scripts) -> None:
    await scripts.claim("w1", seats=1)
    assert (await scripts.claim("w1", seats=1)).room == "arena-2"  # type: ignore[union-attr]
    await scripts.run(scripts.release_script, "w1", "arena-1", 1)
    assert await scripts.taken("arena-1") == 0
    assert await scripts.claim("w2", seats=1) == SeatElsewhere("arena-1", "ws://w1/", "ticket-3")
    # Only the owner may give seats back.
    await scripts.run(scripts.release_script, "w2", "arena-1", 1)
    assert await scripts.taken("arena-1") == 1


async def test_leave_refresh_and_register(scripts: Scripts) -> None:
    await scripts.claim("w1", room="a")
    await scripts.claim("w1", room="b")
    lost: Any = await scripts.run(
        scripts.refresh_script, "w1", "{}", 0, "1", "a", 5, "b", 0, "c", 0
    )
    assert list(lost) == ["c"]
    assert await scripts.taken("a") == 5  # reconciled from the worker's own count
    await scripts.run(scripts.leave_script, "w2", "a")  # not its room: nothing happens
    assert await scripts.room("a") != {}
    await scripts.run(scripts.leave_script, "w1", "a")
    assert await scripts.room("a") == {}
    taken_over: Any = await scripts.run(
        scripts.register_script,
        "w2",
        "ws://w2/",
        "b",
        "arena",
        50,
        3,
        "0",
        "c",
        "arena",
        50,
        7,
        "0",
    )
    assert list(taken_over) == ["b"]  # w1 holds b
    record = await scripts.room("c")
    assert record["worker"] == "w2" and record["taken"] == "7"
    # A ticket for a room disposed of meanwhile: its worker opens it again.
    ticket = await scripts.claim("w1", room="c")
    assert isinstance(ticket, SeatElsewhere)
    await scripts.run(scripts.leave_script, "w2", "c")
    seat = await scripts.consume(ticket.ticket, "w2")
    assert isinstance(seat, TicketSeat) and seat.room == "c"
    assert (await scripts.room("c"))["taken"] == "1"


async def test_a_ticket_for_a_room_now_on_another_worker_is_refused(scripts: Scripts) -> None:
    await scripts.claim("w1", room="r")
    ticket = await scripts.claim("w2", room="r")
    assert isinstance(ticket, SeatElsewhere)
    await scripts.run(scripts.leave_script, "w1", "r")  # w1 disposes of r...
    await scripts.claim("w3", room="r")  # ...and w3 opens a new r
    refused = await scripts.consume(ticket.ticket, "w1")
    assert refused == TicketRefused("the room moved to another worker")
    assert await scripts.taken("r") == 1  # w3's room is not charged for it


async def test_a_ticket_for_another_room_is_refused(scripts: Scripts) -> None:
    await scripts.claim("w1", room="r")
    ticket = await scripts.claim("w2", room="r")
    assert isinstance(ticket, SeatElsewhere)
    assert await scripts.consume(ticket.ticket, "w1", room="s") == TicketRefused(
        "ticket for another room"
    )
    assert await scripts.taken("r") == 1


async def test_a_new_room_does_not_inherit_an_old_one_s_reservations(scripts: Scripts) -> None:
    await scripts.claim("w1", room="r", seats=4)
    ticket = await scripts.claim("w2", room="r", seats=4, ticket_ttl_ms=50)
    assert isinstance(ticket, SeatElsewhere)
    await scripts.run(scripts.leave_script, "w1", "r")
    for _ in range(3):
        await scripts.claim("w3", room="r", seats=4)
    assert await scripts.taken("r") == 3

    async def ticket_expired() -> bool:
        return await scripts.client.exists([f"{scripts.prefix}:t:{ticket.ticket}"]) == 0

    await eventually(ticket_expired)
    await scripts.claim("w3", room="r", seats=4)  # reads the room: nothing to give back
    assert await scripts.taken("r") == 4


async def test_the_rooms_of_a_worker_without_presence_are_forgotten(scripts: Scripts) -> None:
    await scripts.claim("w1", room="gone")
    await scripts.client.delete([f"{scripts.prefix}:w:w1"])  # w1 died
    assert await scripts.claim("w2", room="gone") == SeatHere("gone", "arena", created=True)
    assert (await scripts.room("gone"))["worker"] == "w2"


async def test_a_restarted_worker_retires_its_dead_predecessor(scripts: Scripts) -> None:
    """Same host, index and port, a new id: the old id's presence and rooms go at once,
    not three heartbeats later (players would be sent to a URL that has no such room)."""
    url_doc = '{"url": "ws://host:9002/"}'
    await scripts.run(scripts.refresh_script, "old", url_doc, 0, "1")  # its presence
    await scripts.claim("old", room="r")
    await scripts.run(scripts.refresh_script, "new", url_doc, 0, "1")
    assert await scripts.client.exists([f"{scripts.prefix}:w:old"]) == 0
    # The room of the dead one is forgotten: asking for it opens a new one.
    assert await scripts.claim("new", room="r") == SeatHere("r", "arena", created=True)


async def test_counters_are_raised_to_what_workers_hold(scripts: Scripts) -> None:
    await scripts.claim("w1", seats=1)  # arena-1, full
    await scripts.client.delete(
        [f"{scripts.prefix}:seq:player", f"{scripts.prefix}:seq:name:arena"]
    )  # as if Redis restarted empty
    await scripts.run(scripts.refresh_script, "w1", "{}", 8192, "1", "arena-1", 1)
    assert await scripts.client.get(f"{scripts.prefix}:seq:player") == "8192"
    assert await scripts.client.get(f"{scripts.prefix}:seq:name:arena") == "1"
    # The next matchmade room is arena-2, not a second arena-1.
    assert await scripts.claim("w1", seats=1) == SeatHere(
        "arena-2", "arena", created=True, matchmade=True
    )


async def test_every_key_expires(scripts: Scripts) -> None:
    await scripts.claim("w1", room="x")
    await scripts.claim("w2", room="x")
    await scripts.claim("w1")
    await scripts.run(scripts.refresh_script, "w1", "{}", 4096, "1", "x", 1, "arena-1", 1)
    await scripts.run(scripts.register_script, "w3", "ws://w3/", "y", "arena", 50, 2, "0")
    keys = [k async for k in scripts.client.scan_iter(match=f"{scripts.prefix}:*")]
    assert keys
    for key in keys:
        assert await scripts.client.pttl(key) > 0, key
