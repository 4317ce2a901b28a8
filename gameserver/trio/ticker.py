"""A room's tick loop: sleep until the deadline, tick, repeat. Never awaits a client.

Everything a tick produces goes into outboxes synchronously, and ``flush`` then
writes each client once (its events and snapshot together); the only await is
``trio.sleep_until``. Before each tick the room has the shared poller read
what clients have sent (synchronously too). A crash in the game fails that room alone (its players
get 1011); the room is disposed when it fails or stays empty past the grace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from ..core import ServerCore
from ..room import Room
from ..tick import TickSchedule

log = logging.getLogger(__name__)


async def run_room(
    core: ServerCore,
    room: Room,
    read_now: Callable[[], None] | None = None,
    flush: Callable[[], None] | None = None,
) -> None:
    """Tick ``room`` on the server-wide grid until it is disposable.

    ``read_now`` (if any) runs just before each tick: it reads whatever clients have sent,
    so an input that arrived before the tick is applied by it.
    """
    settings = core.settings
    schedule = TickSchedule(
        settings.tick_rate,
        epoch=core.epoch,
        now=trio.current_time(),
        max_catch_up=settings.max_catch_up_ticks,
        phase=room.tick_phase,
    )
    # Events sent since the room was created carry its tick_no (the tick it was created
    # in): its first tick must come after, or a snapshot would reflect them at that number.
    schedule.next_tick = max(schedule.next_tick, room.tick_no + 1)
    room.tick_stats = schedule.stats
    counters = core.counters
    try:
        while True:
            await trio.sleep_until(schedule.next_deadline)
            started = trio.current_time()
            if read_now is not None:
                read_now()  # counted in the tick's duration: it delays the tick
            core.seats.expire(room, started)  # held seats past the grace: on_leave now
            if room.disposable(started, settings.empty_room_grace):
                return
            try:
                room.tick(schedule.next_tick, schedule.dt)
            except Exception:
                log.exception("room %s: game crashed in step/snapshot", room.name)
                room.fail("game crashed")
                return
            if flush is not None:
                flush()  # counted in the tick's duration: the writes are its fan-out
            finished = trio.current_time()
            schedule.tick_done(started, finished)
            if counters is not None:
                counters.tick(room.game_name, finished - started)
    finally:
        core.seats.forget_room(room)
        if counters is not None:
            counters.room_retired(room.inputs_ignored)
        core.rooms.dispose(room)
