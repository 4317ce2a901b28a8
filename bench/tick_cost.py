"""What one arena tick costs, with no network: snapshot bytes and tick time by player count.

Runs the real sans-I/O core (Session, Room, Outbox, arena) with in-memory
outboxes: each player sends one input per tick, the room ticks, and every
player's snapshot is encoded (state once per room, envelope per player). The
socket write is not included; bench/capacity.py measures the whole server.

    python bench/tick_cost.py                 # table
    python bench/tick_cost.py --json out.json # and the same figures as JSON
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from gameserver.core import ServerCore
from gameserver.games import default_games
from gameserver.outbox import Outbox
from gameserver.session import Session
from gameserver.settings import Settings
from protocol import Hello, Input, encode


def measure(players: int, ticks: int) -> dict[str, Any]:
    """Seat ``players`` in one arena room and time ``ticks`` ticks."""
    settings = Settings(max_players_per_room=max(players, 1), messages_per_second=10_000.0)
    core = ServerCore(settings, default_games(), epoch=0.0, seed=1)
    sessions: list[tuple[Session, Outbox]] = []
    for i in range(players):
        outbox = Outbox(10_000)
        session = Session(core, outbox, now=0.0)
        session.receive_bytes(encode(Hello(1, f"p{i}", game="arena")), 0.0)
        sessions.append((session, outbox))
    room = core.rooms.get("arena-1")
    assert room is not None and len(room.seats) == players
    for _, outbox in sessions:
        outbox.take()
    inputs = [
        [encode(Input(t + 1, {"dx": (i % 3) - 1, "dy": ((i + t) % 3) - 1})) for i in range(players)]
        for t in range(ticks)
    ]
    dt = 1 / settings.tick_rate
    tick_times: list[float] = []
    snapshot_bytes: list[int] = []
    gc.collect()
    for t in range(ticks):
        now = (t + 1) * dt
        started = time.perf_counter()
        for (session, _), frame in zip(sessions, inputs[t], strict=True):
            session.receive_bytes(frame, now)
        room.tick(t + 1, dt)
        tick_times.append(time.perf_counter() - started)
        for _, outbox in sessions:
            frames = outbox.take()
            snapshot_bytes.append(len(frames[-1]))
    tick_times.sort()
    per_tick_ms = statistics.fmean(tick_times) * 1000
    return {
        "players": players,
        "snapshot_bytes_mean": round(statistics.fmean(snapshot_bytes), 1),
        "snapshot_bytes_max": max(snapshot_bytes),
        "tick_ms_mean": round(per_tick_ms, 4),
        "tick_ms_p99": round(tick_times[int(0.99 * (len(tick_times) - 1))] * 1000, 4),
        "us_per_player_tick": round(per_tick_ms * 1000 / players, 2),
        "budget_pct_at_30hz": round(per_tick_ms / (1000 / settings.tick_rate) * 100, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", default="1,10,50", help="comma-separated player counts")
    parser.add_argument("--ticks", type=int, default=600)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = [measure(int(n), args.ticks) for n in args.players.split(",")]
    columns = list(rows[0])
    print("arena tick cost (no network; one input per player per tick; 30 Hz budget 33.3 ms)")
    print("  ".join(f"{c:>20}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]!s:>20}" for c in columns))
    if args.json:
        args.json.write_text(json.dumps({"bench": "tick_cost", "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
