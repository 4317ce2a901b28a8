"""What interest management saves: arena_wide's snapshot bytes and tick time, per view
vs the whole world, with no network.

Runs the real sans-I/O core (Session, Room, Outbox) on ``arena_wide`` (4000 x 3600,
288 gems): the players spawn spread over the world (random free spots), each sends
one input per tick (a direction that changes every second), the room ticks and every
player's snapshot frame is encoded. Two games are compared on the same seed:

- ``interest``: arena_wide as shipped: a player's snapshot holds what is within the
  view radius of their grid cell, encoded once per occupied cell;
- ``whole world``: the same game with interest management off (view_key None, every
  player gets every player and gem, encoded once).

The frames are what the socket would carry (the snapshot envelope included); the
write itself is not timed.

    python bench/interest.py                  # table, 50 and 200 players
    python bench/interest.py --players 200 --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from gameserver.core import ServerCore
from gameserver.game import GameRegistry, Player
from gameserver.games.arena import Arena
from gameserver.games.arena_wide import ArenaWide
from gameserver.outbox import Outbox
from gameserver.session import Session
from gameserver.settings import Settings
from protocol import Hello, Input, encode


class WholeWorld(ArenaWide):
    """arena_wide with interest management off: everyone is sent everything.

    Its own name, so a server can offer it beside arena_wide for a load test over the
    network: ``PYTHONPATH=bench ./dev serve --game interest:WholeWorld``, then
    ``./dev loadtest --game arena_wide_all``.
    """

    name = "arena_wide_all"

    def view_key(self, viewer: Player) -> Hashable:
        return None

    def snapshot(self, viewer: Player) -> dict[str, Any]:
        return Arena.snapshot(self, viewer)


def measure(game: type[ArenaWide], players: int, ticks: int) -> dict[str, Any]:
    """Seat ``players`` in one room of ``game`` and run ``ticks`` ticks (a snapshot each)."""
    games = GameRegistry()
    games.register(game)
    settings = Settings(messages_per_second=10_000.0)
    core = ServerCore(settings, games, epoch=0.0, seed=1)
    sessions: list[tuple[Session, Outbox]] = []
    for i in range(players):
        outbox = Outbox(10_000)
        session = Session(core, outbox, now=0.0)
        session.receive_bytes(encode(Hello(1, f"p{i}", game=game.name, room="wide")), 0.0)
        sessions.append((session, outbox))
    room = core.rooms.get("wide")
    assert room is not None and len(room.seats) == players
    state = room.game
    encodes: list[int] = []
    counted = state.snapshot

    def counting(viewer: Player) -> Any:
        encodes[-1] += 1
        return counted(viewer)

    state.snapshot = counting  # type: ignore[method-assign]
    for _, outbox in sessions:
        outbox.take()
    # A direction per player that changes once a second (30 ticks), 8 directions.
    steer = [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)]
    inputs = [
        [
            encode(Input(t + 1, dict(zip(("dx", "dy"), steer[(i * 7 + t // 30) % 8], strict=True))))
            for i in range(players)
        ]
        for t in range(ticks)
    ]
    dt = 1 / settings.tick_rate
    tick_times: list[float] = []
    frame_bytes: list[int] = []
    gc.collect()
    for t in range(ticks):
        now = (t + 1) * dt
        encodes.append(0)
        started = time.perf_counter()
        for (session, _), frame in zip(sessions, inputs[t], strict=True):
            session.receive_bytes(frame, now)
        room.tick(t + 1, dt)
        tick_times.append(time.perf_counter() - started)
        for _, outbox in sessions:
            frame_bytes.append(len(outbox.take()[-1]))
    tick_times.sort()
    per_tick_ms = statistics.fmean(tick_times) * 1000
    mean_bytes = statistics.fmean(frame_bytes)
    return {
        "mode": "interest" if game is ArenaWide else "whole world",
        "players": players,
        "snapshot_bytes_mean": round(mean_bytes, 1),
        "snapshot_bytes_max": max(frame_bytes),
        "kbit_s_per_player": round(mean_bytes * 8 * settings.snapshot_rate / 1000, 1),
        "encodes_per_tick": round(statistics.fmean(encodes), 1),
        "tick_ms_mean": round(per_tick_ms, 3),
        "tick_ms_p99": round(tick_times[int(0.99 * (len(tick_times) - 1))] * 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", default="50,200", help="comma-separated player counts")
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = [
        measure(game, int(n), args.ticks)
        for n in args.players.split(",")
        for game in (ArenaWide, WholeWorld)
    ]
    columns = list(rows[0])
    print("arena_wide snapshots per player, per view vs whole world (no network; 30 snapshots/s)")
    print("  ".join(f"{c:>19}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]!s:>19}" for c in columns))
    if args.json:
        args.json.write_text(json.dumps({"bench": "interest", "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
