"""Delta snapshots when clients' acks arrive at different times: encodes per tick, bytes, CPU.

Runs the real sans-I/O core (Session, Room, Outbox, arena) with simulated
links and no sockets. Each player has its own round-trip time (drawn from a
spread of RTTs, ±jitter each way, TCP order kept), moves like the load
tester's bots (a new random direction every 0.5-2 s), and answers every
snapshot as the bundled clients do: applies it (checking the result against
the full state) and sends an input carrying the ack. So each player's base
trails by its own RTT, and a tick costs one diff per distinct (audience,
base): the figure the encode-once economy depends on.

    python bench/delta_spread.py                       # table
    python bench/delta_spread.py --json out.json       # and the figures as JSON
    python bench/delta_spread.py --players 50 --rtt 20,250 --jitter 20

The tick time is the room's tick alone (inputs applied, game step, every
snapshot encoded and put in its slot), the same in both modes, in CPU time of
this thread (so other load on the machine does not count); socket writes are
not included (bench/bandwidth.py measures the whole server).
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from gameserver.core import ServerCore
from gameserver.games import default_games
from gameserver.outbox import Outbox
from gameserver.session import Session
from gameserver.settings import Settings
from protocol import (
    Hello,
    Input,
    Snapshot,
    decode_server_message,
    encode,
    pack_state,
    unpack_state,
)
from protocol.delta import SnapshotStates, same


class SimPlayer:
    """One player: a session on the server side, a delta-applying client on the other."""

    def __init__(self, core: ServerCore, index: int, rtt: float, rng: random.Random) -> None:
        self.outbox = Outbox(10_000)
        self.session = Session(core, self.outbox, now=0.0)
        self.rtt = rtt
        self.rng = rng
        self.states = SnapshotStates()
        self.seq = 0
        self.direction = (0.0, 0.0)
        self.change_at = 0.0
        self.last_arrival = 0.0
        self.index = index

    def one_way(self, jitter: float) -> float:
        return max(0.0, self.rtt / 2 + self.rng.uniform(-jitter, jitter))

    def next_input(self, now: float, ack: int | None) -> bytes:
        if now >= self.change_at:
            angle = self.rng.uniform(0.0, 2 * math.pi)
            self.direction = (round(math.cos(angle), 3), round(math.sin(angle), 3))
            self.change_at = now + self.rng.uniform(0.5, 2.0)
        self.seq += 1
        return encode(Input(self.seq, {"dx": self.direction[0], "dy": self.direction[1]}, ack))


def run(
    players: int,
    ticks: int,
    rtt: tuple[float, float],
    jitter: float,
    deltas: bool,
    seed: int,
    game: str = "arena",
) -> dict[str, Any]:
    settings = Settings(max_players_per_room=max(players, 1), messages_per_second=10_000.0)
    core = ServerCore(settings, default_games(), epoch=0.0, seed=seed)
    rng = random.Random(seed)
    sims = []
    for i in range(players):
        # RTTs spread evenly over the range (log scale): a room of mixed connections.
        share = i / max(players - 1, 1)
        player_rtt = rtt[0] * (rtt[1] / rtt[0]) ** share
        sim = SimPlayer(core, i, player_rtt, random.Random(rng.random()))
        sim.session.receive_bytes(encode(Hello(1, f"p{i}", game=game, deltas=deltas)), 0.0)
        sim.outbox.take()
        sims.append(sim)
    room = core.rooms.get(f"{game}-1")
    assert room is not None and len(room.seats) == players
    dt = 1 / settings.tick_rate
    events: list[tuple[float, int, int, bytes]] = []  # (time, order, player, frame)
    order = 0
    tick_times: list[float] = []
    encodes: list[int] = []
    snapshot_bytes = 0
    snapshots = 0
    applied_deltas = 0
    gc.collect()
    for t in range(1, ticks + 1):
        now = t * dt
        # The clients' inputs (each acking the snapshot that prompted it) due by now.
        while events and events[0][0] <= now:
            at, _, index, frame = heapq.heappop(events)
            sims[index].session.receive_bytes(frame, at)
        before = room.delta_stats.delta_encodes
        started = time.thread_time()
        room.tick(t, dt)
        tick_times.append(time.thread_time() - started)
        encodes.append(room.delta_stats.delta_encodes - before)
        truths: dict[Hashable, Any] = {}  # the server's state per audience, as decoded
        for sim in sims:
            viewer = sim.session.player
            key = room.game.view_key(viewer)
            if key not in truths:
                truths[key] = unpack_state(pack_state(room.game.snapshot(viewer)))
            truth = truths[key]
            for frame in sim.outbox.take():
                message = decode_server_message(frame)
                if not isinstance(message, Snapshot):
                    continue
                snapshots += 1
                snapshot_bytes += len(frame)
                state = sim.states.receive(message.id, message.base, message.state)
                if message.base is not None:
                    applied_deltas += 1
                assert same(state, truth), "a client's state differs from the server's"
                # the client gets it one way later, acks at once; the server one way after
                arrival = max(sim.last_arrival, now + sim.one_way(jitter))
                sim.last_arrival = arrival
                back = arrival + sim.one_way(jitter)
                order += 1
                reply = sim.next_input(arrival, message.id)
                heapq.heappush(events, (back, order, sim.index, reply))
    warm = tick_times[ticks // 10 :]
    per_client_tick_us = statistics.mean(warm) / players * 1e6
    return {
        "game": game,
        "players": players,
        "deltas": deltas,
        "rtt_ms": [rtt[0] * 1000, rtt[1] * 1000],
        "jitter_ms": jitter * 1000,
        "ticks": ticks,
        "bytes_per_snapshot": snapshot_bytes / snapshots,
        "bytes_per_player_per_s": snapshot_bytes / players / (ticks * dt),
        "delta_share": applied_deltas / snapshots,
        "encodes_per_tick_mean": statistics.mean(encodes[ticks // 10 :]),
        "encodes_per_tick_max": max(encodes[ticks // 10 :]),
        "tick_us_per_client": per_client_tick_us,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", default="10,50", help="comma-separated player counts")
    parser.add_argument("--ticks", type=int, default=900, help="ticks per run (30 s at 30 Hz)")
    parser.add_argument(
        "--rtt", default="1,1;20,250", help="RTT ranges in ms, 'low,high' separated by ';'"
    )
    parser.add_argument("--jitter", type=float, default=10.0, help="± ms on each one-way trip")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--game", default="arena", help="arena, or arena_wide (interest management)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = []
    for spread in args.rtt.split(";"):
        low, high = (float(x) / 1000 for x in spread.split(","))
        jitter = args.jitter / 1000 if high > low else 0.0
        for players in (int(p) for p in args.players.split(",")):
            for deltas in (False, True):
                rows.append(
                    run(players, args.ticks, (low, high), jitter, deltas, args.seed, args.game)
                )
    header = (
        f"{'players':>7} {'RTT ms':>9} {'mode':>6} {'B/snapshot':>10} {'kB/s/player':>11} "
        f"{'delta %':>7} {'encodes/tick':>12} {'max':>4} {'tick µs/client':>14}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        spread = f"{r['rtt_ms'][0]:.0f}-{r['rtt_ms'][1]:.0f}"
        print(
            f"{r['players']:>7} {spread:>9} {'delta' if r['deltas'] else 'full':>6} "
            f"{r['bytes_per_snapshot']:>10.0f} {r['bytes_per_player_per_s'] / 1000:>11.1f} "
            f"{100 * r['delta_share']:>7.0f} {r['encodes_per_tick_mean']:>12.2f} "
            f"{r['encodes_per_tick_max']:>4} {r['tick_us_per_client']:>14.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
