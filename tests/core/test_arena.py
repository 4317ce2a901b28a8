"""The reference game: bounded movement, walls, world bounds, gems, input checks, determinism."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from gameserver.game import InvalidInput, Player, RoomContext
from gameserver.games.arena import (
    GEM_COUNT,
    GEM_RADIUS,
    HEIGHT,
    PLAYER_RADIUS,
    SCALE,
    SPEED,
    WALLS,
    WIDTH,
    Arena,
    blocked,
)
from gameserver.latency import LatencyReport

DT = 1 / 30


def make_arena(seed: int = 1) -> Arena:
    ctx = RoomContext("arena-1", tick_rate=30, max_players=50, rng=random.Random(seed))
    return Arena(ctx)


def player(pid: int = 1) -> Player:
    return Player(pid, f"p{pid}", LatencyReport)


def joined(arena: Arena, x: float, y: float, pid: int = 1) -> Player:
    """Seat a player and put their avatar at (x, y), far from every gem."""
    p = player(pid)
    arena.on_join(p)
    arena.avatars[pid].x, arena.avatars[pid].y = x, y
    arena.gems = {99: (WIDTH - 20.0, HEIGHT - 20.0)}
    return p


def steer(arena: Arena, p: Player, dx: float, dy: float) -> None:
    arena.on_input(p, arena.validate_input(p, {"dx": dx, "dy": dy}))


def test_one_step_moves_speed_times_dt_in_open_space() -> None:
    """At full stick a step moves SPEED * dt, rounded to the 1/SCALE grid (6.7 at 30 Hz)."""
    arena = make_arena()
    p = joined(arena, 100.0, 300.0)
    steer(arena, p, 1, 0)
    arena.step(DT)
    assert arena.avatars[1].x == round((100.0 + SPEED * DT) * SCALE) / SCALE == 106.7
    assert arena.avatars[1].y == 300.0


@pytest.mark.parametrize(("dx", "dy"), [(1, 1), (-1, 1), (0.6, -0.8), (1, -1), (0.3, 0.2)])
def test_speed_is_bounded(dx: float, dy: float) -> None:
    """Whatever the direction, one step moves at most SPEED * dt (diagonals are not faster)."""
    arena = make_arena()
    p = joined(arena, 100.0, 300.0)
    steer(arena, p, dx, dy)
    arena.step(DT)
    a = arena.avatars[1]
    assert math.hypot(a.x - 100.0, a.y - 300.0) <= SPEED * DT + 1e-9


def test_input_clamped_to_length_one() -> None:
    """A diagonal (1, 1) is normalised to length 1; shorter inputs are kept as they are."""
    arena = make_arena()
    p = player()
    dx, dy = arena.validate_input(p, {"dx": 1, "dy": 1})
    assert math.hypot(dx, dy) == pytest.approx(1.0)
    assert dx == pytest.approx(dy)
    assert arena.validate_input(p, {"dx": 0.5, "dy": -0.25}) == (0.5, -0.25)
    assert arena.validate_input(p, {}) == (0.0, 0.0)


@pytest.mark.parametrize(
    "data",
    [
        {"dx": 5, "dy": 0},
        {"dx": -1.5},
        {"dx": "a"},
        {"dy": None},
        {"dx": True},
        {"dx": float("nan")},
        {"dx": float("inf")},
        [1, 0],
        "left",
        None,
    ],
)
def test_validate_input_refuses_bad_data(data: Any) -> None:
    """Out-of-range, non-numeric, boolean or non-finite axes and non-map data are refused."""
    with pytest.raises(InvalidInput):
        make_arena().validate_input(player(), data)


def test_walls_block() -> None:
    """Running into a wall stops within one step of it: never overlapping, never through."""
    arena = make_arena()
    wx, wy, _, wh = WALLS[4]  # centre bar
    start_x = wx - PLAYER_RADIUS - 20.0
    p = joined(arena, start_x, wy + wh / 2)
    steer(arena, p, 1, 0)
    for _ in range(60):
        arena.step(DT)
        assert not blocked(arena.avatars[1].x, arena.avatars[1].y)
    contact_x = wx - PLAYER_RADIUS
    assert contact_x - SPEED * DT <= arena.avatars[1].x <= contact_x


def test_slides_along_a_wall() -> None:
    """Moving diagonally into a wall keeps the free axis moving."""
    arena = make_arena()
    wx, wy, _, wh = WALLS[4]
    p = joined(arena, wx - PLAYER_RADIUS - 0.1, wy + wh / 2)
    steer(arena, p, 1, 1)
    y0 = arena.avatars[1].y
    arena.step(DT)
    assert arena.avatars[1].x == pytest.approx(wx - PLAYER_RADIUS - 0.1)
    assert arena.avatars[1].y > y0


@pytest.mark.parametrize(("dx", "dy"), [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1)])
def test_stays_inside_the_world(dx: float, dy: float) -> None:
    """Pushing towards any edge for 10 s never leaves the world."""
    arena = make_arena()
    p = joined(arena, 60.0, 60.0) if dx <= 0 and dy <= 0 else joined(arena, 940.0, 540.0)
    steer(arena, p, dx, dy)
    for _ in range(300):
        arena.step(DT)
        a = arena.avatars[1]
        assert PLAYER_RADIUS <= a.x <= WIDTH - PLAYER_RADIUS
        assert PLAYER_RADIUS <= a.y <= HEIGHT - PLAYER_RADIUS


def test_gem_pickup_scores_and_respawns() -> None:
    """Touching a gem scores one point, removes it, and spawns a new gem elsewhere."""
    arena = make_arena()
    p = player()
    arena.on_join(p)
    a = arena.avatars[1]
    gem_id, (gx, gy) = next(iter(arena.gems.items()))
    a.x, a.y = gx + PLAYER_RADIUS + GEM_RADIUS - 1.0, gy
    others = {k: v for k, v in arena.gems.items() if k != gem_id}
    for other_id, (ox, oy) in others.items():
        assert (a.x - ox) ** 2 + (a.y - oy) ** 2 > (PLAYER_RADIUS + GEM_RADIUS) ** 2, other_id
    arena.step(DT)
    assert a.score == 1
    assert gem_id not in arena.gems
    assert len(arena.gems) == GEM_COUNT
    new_ids = set(arena.gems) - set(others)
    assert len(new_ids) == 1 and min(new_ids) > max(others)
    nx, ny = arena.gems[new_ids.pop()]
    assert not blocked(nx, ny, GEM_RADIUS)


def test_gems_spawn_in_free_spots() -> None:
    """All initial gems lie inside the world and off the walls."""
    arena = make_arena(seed=7)
    assert len(arena.gems) == GEM_COUNT
    for x, y in arena.gems.values():
        assert not blocked(x, y, GEM_RADIUS)


def test_join_spawns_in_a_free_spot_and_leave_forgets() -> None:
    """on_join places the avatar off walls; on_leave removes it (twice is harmless)."""
    arena = make_arena()
    p = player(3)
    arena.on_join(p)
    a = arena.avatars[3]
    assert not blocked(a.x, a.y)
    arena.on_leave(p)
    arena.on_leave(p)
    assert 3 not in arena.avatars


def test_snapshot_coordinates_are_scaled_ints() -> None:
    """Snapshot positions are round(world units * SCALE), as ints, with scores."""
    arena = make_arena()
    p = joined(arena, 123.46, 300.04)
    arena.avatars[1].score = 4
    snap = arena.snapshot(p)
    assert snap["players"] == [[1, 1235, 3000, 4]]
    assert snap["gems"] == [[99, round((WIDTH - 20.0) * SCALE), round((HEIGHT - 20.0) * SCALE)]]
    for row in snap["players"] + snap["gems"]:
        assert all(type(v) is int for v in row)


def test_info_describes_the_world() -> None:
    """info() carries the static world data a client draws with."""
    info = make_arena().info()
    assert (info["width"], info["height"], info["scale"], info["speed"]) == (
        WIDTH,
        HEIGHT,
        SCALE,
        SPEED,
    )
    assert info["walls"] == [list(w) for w in WALLS]


def test_deterministic_with_a_seeded_rng() -> None:
    """Same seed and inputs give identical snapshots; another seed gives others."""

    def play(seed: int) -> list[Any]:
        arena = make_arena(seed)
        players = [player(i) for i in (1, 2, 3)]
        for p in players:
            arena.on_join(p)
        snaps = []
        for t in range(200):
            for i, p in enumerate(players):
                angle = (t * 0.05) + i
                steer(arena, p, math.cos(angle), math.sin(angle))
            arena.step(DT)
            snaps.append(arena.snapshot(players[0]))
        return snaps

    assert play(42) == play(42)
    assert play(42) != play(43)


def test_positions_stay_on_the_snapshot_grid() -> None:
    """A long random walk (diagonals, walls, edges): after every tick each moving player is
    exactly where its snapshot says (x, y as integers / SCALE), so a client replaying moves
    from snapshot positions computes the server's own numbers."""
    arena = make_arena()
    rng = random.Random(7)
    players = [joined(arena, 50.0 + 0.123 * i, 300.0 + 0.0456 * i, pid=i) for i in range(1, 5)]
    for _ in range(600):
        for p in players:
            if rng.random() < 0.2:
                steer(arena, p, rng.choice((-1, -0.5, 0, 0.5, 1)), rng.choice((-1, 0, 1)))
        arena.step(DT)
        for pid, x, y, _score in arena.snapshot(players[0])["players"]:
            avatar = arena.avatars[pid]
            if avatar.dx or avatar.dy:
                assert (avatar.x, avatar.y) == (x / SCALE, y / SCALE)
