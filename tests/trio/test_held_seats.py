"""Held seats under trio's autojump clock: the room's own ticker ends a hold on time.

A link's connection ends without a close frame; with nobody sending anything, the
room's ticker (``run_room``) must still run ``on_leave`` at ``dropped_at +
reconnect_grace``, and a resume before then must keep the player.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from gameserver.core import ServerCore
from gameserver.games import default_games
from gameserver.room import Room
from gameserver.settings import Settings
from gameserver.trio.ticker import run_room
from protocol import Event, ServerMessage, Welcome
from tests.trio.test_link import Client, start

QUIET: dict[str, Any] = {
    "log_level": "WARNING",
    # The witness answers no application ping: keep pings out of the way.
    "ping_interval": 100.0,
    "ping_timeout": 100.0,
    "keepalive_interval": 100.0,
    "keepalive_timeout": 100.0,
}


def ticking_core(nursery: trio.Nursery, **settings: Any) -> ServerCore:
    """A core whose rooms run their real ticker in ``nursery``."""

    def start_ticker(room: Room) -> None:
        nursery.start_soon(run_room, core, room)

    core = ServerCore(
        Settings(**{**QUIET, **settings}), default_games(), epoch=0.0, on_room_created=start_ticker
    )
    return core


async def next_event(client: Client) -> Event:
    """The next event this peer receives (snapshots skipped)."""
    while True:
        message: ServerMessage = await client.peer.next_message()
        if isinstance(message, Event):
            return message


async def test_a_held_seat_ends_at_dropped_at_plus_grace(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    core = ticking_core(nursery, reconnect_grace=20.0)
    ann, bob = start(nursery, core), start(nursery, core)
    await ann.hello(game="arena", room="r1")
    await bob.hello(game="arena", room="r1")
    assert (await next_event(ann)).kind == "join"
    await trio.sleep(0.5)
    await bob.peer.stream.aclose()  # TCP gone, no close frame
    await bob.done.wait()
    room = core.rooms.get("r1")
    assert room is not None and bob.session.player_id in room.seats
    left = await next_event(ann)  # nothing before: ann asked for no presence events
    assert (left.kind, left.player) == ("leave", bob.session.player_id)
    assert 20.5 <= trio.current_time() <= 20.5 + 2 / 30  # the first tick at or after it
    assert list(room.seats) == [ann.session.player_id]
    assert core.seats.held_count() == 0


async def test_a_resume_within_the_grace_keeps_the_seat(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    core = ticking_core(nursery, reconnect_grace=20.0)
    ann, bob = start(nursery, core), start(nursery, core)
    await ann.hello(game="arena", room="r1", presence=True)
    welcome = await bob.hello(game="arena", room="r1")
    assert welcome.resume is not None
    assert (await next_event(ann)).kind == "join"
    await bob.peer.stream.aclose()
    assert (await next_event(ann)).kind == "away"
    await trio.sleep(19.0)
    back = start(nursery, core)
    resumed: Welcome = await back.hello(resume=welcome.resume)
    assert resumed.resumed and resumed.player == bob.session.player_id
    event = await next_event(ann)
    assert (event.kind, event.player) == ("back", bob.session.player_id)
    with trio.move_on_after(30.0):  # past the old deadline: no leave comes
        event = await next_event(ann)
        raise AssertionError(f"unexpected {event}")
    room = core.rooms.get("r1")
    assert room is not None and set(room.seats) == {
        ann.session.player_id,
        bob.session.player_id,
    }
