"""arena_wide: the larger world, its view filter, view_key per cell and encode-once per cell."""

from __future__ import annotations

import math
import random

import pytest

from gameserver.game import Player, RoomContext
from gameserver.games import default_games
from gameserver.games.arena import GEM_COUNT, PLAYER_RADIUS, Arena, blocked
from gameserver.games.arena_wide import (
    CELL,
    VIEW_RADIUS,
    WHOLE,
    WIDE_WORLD,
    ArenaWide,
)
from gameserver.latency import LatencyReport
from gameserver.room import Room
from gameserver.settings import Settings
from tests.helpers import RecordingMember, unpack

DT = 1 / 30
SCALE = 10
DIAGONAL = math.hypot(CELL, CELL)


def make_wide(seed: int = 1) -> ArenaWide:
    ctx = RoomContext("arena_wide-1", tick_rate=30, max_players=256, rng=random.Random(seed))
    return ArenaWide(ctx)


def put(game: ArenaWide, pid: int, x: float, y: float) -> Player:
    """Seat a player and place their avatar at (x, y) (the grid follows at the next step)."""
    p = Player(pid, f"p{pid}", LatencyReport)
    game.on_join(p)
    game.avatars[pid].x, game.avatars[pid].y = x, y
    return p


def test_registered_and_described_to_clients() -> None:
    games = default_games()
    assert list(games) == ["arena", "arena_wide"]
    assert games.seats("arena_wide", 50) == 256
    info = make_wide().info()
    assert (info["width"], info["height"]) == (4000, 3600)
    assert info["view_radius"] == VIEW_RADIUS
    assert len(info["walls"]) == 120
    assert info["walls"][:5] == Arena(RoomContext("a", 30, 8, random.Random(0))).info()["walls"]


def test_gems_scale_with_area_and_sit_clear_of_walls() -> None:
    game = make_wide()
    assert len(game.gems) == GEM_COUNT * 24
    assert len(game.gem_grid) == len(game.gems)
    for x, y in game.gems.values():
        assert not WIDE_WORLD.blocked(x, y, 8.0)


def test_bucketed_walls_block_exactly_as_testing_every_wall() -> None:
    """World.blocked with its wall buckets agrees with a plain test against all 120 walls."""
    rng = random.Random(5)
    edges = [(x, y, x + w, y + h) for x, y, w, h in WIDE_WORLD.walls]

    def every_wall(x: float, y: float, r: float) -> bool:
        if x < r or y < r or x > WIDE_WORLD.width - r or y > WIDE_WORLD.height - r:
            return True
        for left, top, right, bottom in edges:
            nx, ny = min(max(x, left), right), min(max(y, top), bottom)
            if (x - nx) ** 2 + (y - ny) ** 2 < r * r:
                return True
        return False

    hits = 0
    for _ in range(20000):
        x, y = rng.uniform(-20, 4020), rng.uniform(-20, 3620)
        r = rng.choice([8.0, PLAYER_RADIUS, 40.0])
        assert WIDE_WORLD.blocked(x, y, r) == every_wall(x, y, r), (x, y, r)
        hits += every_wall(x, y, r)
    assert 2000 < hits < 18000  # both answers were exercised


def test_a_wall_stops_a_player_in_the_wide_world() -> None:
    """Arena.step uses the game's world: a wall of tile (1, 0) stops a player."""
    game = make_wide()
    p = put(game, 1, 1100.0, 140.0)  # left of the block at x 1180..1320, y 120..160
    game.gems = {}
    game.gem_grid = type(game.gem_grid)(CELL)
    game.on_input(p, (1.0, 0.0))
    for _ in range(30):
        game.step(DT)
    assert game.avatars[1].x == pytest.approx(1180 - PLAYER_RADIUS, abs=SPEED_STEP)
    assert WIDE_WORLD.blocked(1250, 140) and not blocked(250, 300)  # a tile of its own


SPEED_STEP = 200 / 30


def test_view_holds_everything_within_radius_and_nothing_beyond_radius_plus_diagonal() -> None:
    """For 150 players and the gems spread over the world: each player's snapshot (the one of
    their view_key) holds every player and gem within VIEW_RADIUS of them, and none further
    than VIEW_RADIUS + a cell's diagonal."""
    game = make_wide(seed=7)
    rng = random.Random(3)
    viewers = []
    for pid in range(1, 151):
        viewers.append(put(game, pid, rng.uniform(20, 3980), rng.uniform(20, 3580)))
        game.avatars[pid].dx = rng.uniform(-1, 1)
    game.step(DT)  # moves everyone and files the new positions in the grid
    for viewer in viewers:
        me = game.avatars[viewer.id]
        state = game.snapshot(viewer)
        seen_players = {row[0] for row in state["players"]}
        seen_gems = {row[0] for row in state["gems"]}
        assert viewer.id in seen_players
        for pid, a in game.avatars.items():
            d = math.dist((me.x, me.y), (a.x, a.y))
            if d <= VIEW_RADIUS:
                assert pid in seen_players
            if pid in seen_players:
                assert d <= VIEW_RADIUS + DIAGONAL
        for gid, (gx, gy) in game.gems.items():
            d = math.dist((me.x, me.y), (gx, gy))
            if d <= VIEW_RADIUS:
                assert gid in seen_gems
            if gid in seen_gems:
                assert d <= VIEW_RADIUS + DIAGONAL
        # arena's shape and units, rows in id order
        assert [r[0] for r in state["players"]] == sorted(seen_players)
        assert [r[0] for r in state["gems"]] == sorted(seen_gems)
        row = next(r for r in state["players"] if r[0] == viewer.id)
        assert row == [viewer.id, round(me.x * SCALE), round(me.y * SCALE), me.score]
    # interest management is a filter: far fewer rows than the world holds
    sizes = [len(game.snapshot(v)["players"]) for v in viewers]
    assert max(sizes) < 60 and sum(sizes) / len(sizes) < 30


def test_view_key_is_the_cell_and_spectators_see_everything() -> None:
    game = make_wide()
    a = put(game, 1, 100.0, 100.0)
    b = put(game, 2, CELL - 10.0, 10.0)
    c = put(game, 3, CELL + 10.0, 10.0)
    game.step(DT)
    assert game.view_key(a) == game.view_key(b) == (0, 0)
    assert game.view_key(c) == (1, 0)
    watcher = Player(9, "w", LatencyReport)
    watcher.spectator = True
    assert game.view_key(watcher) == WHOLE
    whole = game.snapshot(watcher)
    assert len(whole["players"]) == 3 and len(whole["gems"]) == len(game.gems)


def test_grids_follow_moves_gem_pickups_and_leaves() -> None:
    game = make_wide()
    p = put(game, 1, 2000.0, 610.0)
    game.gems = {}
    game.gem_grid = type(game.gem_grid)(CELL)
    game._spawn_gem()  # one gem, then move it right in front of the player
    (gid,) = game.gems
    game.gem_grid.move(gid, 2010.0, 610.0)
    game.gems[gid] = (2010.0, 610.0)
    game.on_input(p, (1.0, 0.0))
    game.step(DT)
    assert game.avatars[1].score == 1
    assert gid not in game.gems and gid not in game.gem_grid  # taken: out of the grid
    assert len(game.gems) == len(game.gem_grid) == 1  # its replacement is in
    assert game.player_grid.position(1) == (game.avatars[1].x, game.avatars[1].y)
    game.on_leave(p)
    assert 1 not in game.player_grid


def seat(room: Room, game: ArenaWide, pid: int, x: float, y: float) -> RecordingMember:
    member = RecordingMember(pid, f"p{pid}", room)
    room.add(member)
    game.avatars[pid].x, game.avatars[pid].y = x, y
    game.player_grid.move(pid, x, y)
    return member


def test_players_in_one_cell_share_one_encode() -> None:
    """Five players: three in cell (2, 2), two in cells of their own → three snapshot() calls
    per tick, and the three cellmates get the very same bytes."""
    settings = Settings()
    game = make_wide()
    room = Room("w", "arena_wide", game, max_players=256, settings=settings, now=0.0)
    calls: list[int] = []
    real = game.snapshot

    def counting(viewer: Player) -> dict[str, object]:
        calls.append(viewer.id)
        return real(viewer)

    game.snapshot = counting  # type: ignore[method-assign]
    members = [
        seat(room, game, 1, 520.0, 610.0),
        seat(room, game, 2, 600.0, 620.0),
        seat(room, game, 3, 740.0, 700.0),
        seat(room, game, 4, 1600.0, 610.0),
        seat(room, game, 5, 3000.0, 3000.0),
    ]
    room.tick(0, DT)
    assert len(calls) == 3
    states = [m.snapshots[-1][2] for m in members]
    assert states[0] is states[1] is states[2]
    assert states[3] is not states[0] and states[4] is not states[3]
    seen = {m.player.id: {row[0] for row in unpack(m.snapshots[-1][2])["players"]} for m in members}
    assert seen[1] == {1, 2, 3}  # 4 is 1000 away, 5 much further
    assert seen[4] == {4} and seen[5] == {5}


def test_cached_gem_rows_stay_right_while_gems_are_taken() -> None:
    """Gem rows are kept per cell between ticks: after 10 s of 120 players wandering (gems
    taken and respawned all the while), every snapshot still equals a fresh filter."""
    game = make_wide(seed=4)
    rng = random.Random(9)
    viewers = []
    for pid in range(1, 121):
        viewers.append(put(game, pid, rng.uniform(20, 3980), rng.uniform(20, 3580)))
    for tick in range(300):
        if tick % 30 == 0:
            for a in game.avatars.values():
                a.dx, a.dy = rng.uniform(-1, 1), rng.uniform(-1, 1)
        game.step(DT)
        if tick % 10 == 0:
            for v in viewers:
                game.snapshot(v)  # fills the cache as the room would
    assert sum(a.score for a in game.avatars.values()) > 20  # gems did change
    for viewer in viewers:
        cell = game.view_key(viewer)
        assert isinstance(cell, tuple)
        left, top, right, bottom = game.gem_grid.cell_bounds(cell)
        expected = []
        for gid, (gx, gy) in sorted(game.gems.items()):
            dx = max(left - gx, 0.0, gx - right)
            dy = max(top - gy, 0.0, gy - bottom)
            if dx * dx + dy * dy <= VIEW_RADIUS * VIEW_RADIUS:
                expected.append([gid, round(gx * SCALE), round(gy * SCALE)])
        assert game.snapshot(viewer)["gems"] == expected
