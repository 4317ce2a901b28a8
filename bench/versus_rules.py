"""Checks that bench/colyseus's port of arena's rules moves exactly as ``arena.py`` does.

``bench/versus.py`` compares the servers' costs with the game's own cost equal on
both sides, so the JavaScript port (``ArenaRules`` in ``bench/colyseus/server.js``)
must run the same rules. This plays one script through both: 50 players, random
directions (some longer than 1, clamped; some refused), changed every few ticks,
for ``ticks`` ticks, the JavaScript side replaying the Python generator's random
numbers; every tick's snapshot must be equal.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
from typing import Any

from versus_runs import COLYSEUS

from gameserver.game import InvalidInput, Player, RoomContext
from gameserver.games.arena import Arena


class RecordingRandom(random.Random):
    """A seeded generator that keeps every ``random()`` value it hands out."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.values: list[float] = []

    def random(self) -> float:
        value = super().random()
        self.values.append(value)
        return value


def python_run(players: int, ticks: int, seed: int) -> tuple[dict[str, Any], list[Any]]:
    """The script and arena.py's snapshot after every tick."""
    rng = RecordingRandom(seed)
    game = Arena(RoomContext("check", 30, players, rng))
    script_rng = random.Random(seed + 1)
    members = [Player(i + 1, f"p{i + 1}", lambda: None) for i in range(players)]  # type: ignore[arg-type, return-value]
    for member in members:
        game.on_join(member)
    script: dict[str, Any] = {"players": [m.id for m in members], "ticks": []}
    snapshots = []
    for _ in range(ticks):
        inputs = []
        for member in members:
            if script_rng.random() < 0.15:
                dx = round(script_rng.uniform(-1.0, 1.0), 3)
                dy = round(script_rng.uniform(-1.0, 1.0), 3)
                data: Any = {"dx": dx, "dy": dy} if script_rng.random() < 0.97 else {"dx": 2}
                inputs.append([member.id, data])
                with contextlib.suppress(InvalidInput):
                    game.on_input(member, game.validate_input(member, data))
        script["ticks"].append(inputs)
        game.step(1.0 / 30)
        snapshots.append(game.snapshot(members[0]))
    script["randoms"] = rng.values
    return script, snapshots


def check(players: int = 50, ticks: int = 900, seed: int = 14) -> str | None:
    """None when the port's snapshots equal arena.py's every tick; else what differs."""
    script, expected = python_run(players, ticks, seed)
    done = subprocess.run(
        ["node", str(COLYSEUS / "check_rules.mjs")],
        input=json.dumps(script),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        return f"check_rules.mjs failed: {done.stderr.strip()[-300:]}"
    got = json.loads(done.stdout)
    if got["randoms_used"] != len(script["randoms"]):
        return f"random() called {got['randoms_used']} times, arena.py {len(script['randoms'])}"
    for tick, (mine, theirs) in enumerate(zip(expected, got["snapshots"], strict=True)):
        if json.loads(json.dumps(mine)) != theirs:
            return f"tick {tick + 1}: arena.py {mine} != port {theirs}"
    return None


if __name__ == "__main__":
    print(check() or "same snapshots")
