"""``arena``: the reference game. Top-down 2D, move inside walls, collect gems.

Server-authoritative: a client sends only a direction (``{"dx", "dy"}`` in
[-1, 1], clamped to length 1); the server moves each player at ``SPEED`` units
per second, stops them at walls, awards a point per gem touched and respawns
that gem elsewhere. Positions in snapshots are integers in 1/``SCALE`` world
units, which keeps a 50-player snapshot under 1 KB.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..game import Game, InvalidInput, Player, RoomContext

WIDTH = 1000
HEIGHT = 600
SCALE = 10
"""Snapshot coordinates are world units * SCALE, as integers."""
SPEED = 200.0
"""World units per second at full stick."""
PLAYER_RADIUS = 12.0
GEM_RADIUS = 8.0
GEM_COUNT = 12
WALLS: tuple[tuple[float, float, float, float], ...] = (
    # (x, y, w, h): a frame-less arena with four blocks and a centre bar.
    (180, 120, 140, 40),
    (680, 120, 140, 40),
    (180, 440, 140, 40),
    (680, 440, 140, 40),
    (470, 220, 60, 160),
)


@dataclass(slots=True)
class Avatar:
    x: float
    y: float
    dx: float = 0.0
    dy: float = 0.0
    score: int = 0


Edge = tuple[float, float, float, float]
"""A wall as (left, top, right, bottom)."""
BUCKET = 200.0
"""Side of the squares a many-walled world sorts its walls into for ``World.blocked``."""
FEW_WALLS = 8
"""Up to this many walls ``World.blocked`` tests them all: a lookup would cost more."""


@dataclass(frozen=True, slots=True)
class World:
    """A map: its size and walls ((x, y, w, h) each), and the collision test against them."""

    width: float
    height: float
    walls: tuple[tuple[float, float, float, float], ...]
    edges: tuple[Edge, ...] = field(init=False, repr=False)
    """Walls as (left, top, right, bottom): the form the collision test wants."""
    buckets: dict[tuple[float, float], tuple[Edge, ...]] | None = field(
        init=False, repr=False, compare=False
    )
    """For many walls: the edges within PLAYER_RADIUS of each BUCKET square, by square."""

    def __post_init__(self) -> None:
        edges = tuple((x, y, x + w, y + h) for x, y, w, h in self.walls)
        object.__setattr__(self, "edges", edges)
        buckets = None
        if len(edges) > FEW_WALLS:
            found: dict[tuple[float, float], list[Edge]] = {}
            m = PLAYER_RADIUS
            for edge in edges:
                left, top, right, bottom = edge
                i0, i1 = math.floor((left - m) / BUCKET), math.floor((right + m) / BUCKET)
                j0, j1 = math.floor((top - m) / BUCKET), math.floor((bottom + m) / BUCKET)
                for i in range(i0, i1 + 1):
                    for j in range(j0, j1 + 1):
                        found.setdefault((i, j), []).append(edge)
            buckets = {square: tuple(edges) for square, edges in found.items()}
        object.__setattr__(self, "buckets", buckets)

    def blocked(self, x: float, y: float, r: float = PLAYER_RADIUS) -> bool:
        """True if a disc of radius ``r`` at (x, y) leaves the world or overlaps a wall.

        Runs twice per moving player per tick, so it is written for speed: a
        bounding-box test rejects far walls before the exact disc-rectangle test,
        and a many-walled world tests only the walls sorted into (x, y)'s square
        (every wall a disc of radius up to PLAYER_RADIUS there could touch).
        """
        if x < r or y < r or x > self.width - r or y > self.height - r:
            return True
        edges = self.edges
        if self.buckets is not None and r <= PLAYER_RADIUS:
            edges = self.buckets.get((x // BUCKET, y // BUCKET), ())  # 3.0 finds key (3, …)
        r2 = r * r
        for left, top, right, bottom in edges:
            if left - r < x < right + r and top - r < y < bottom + r:
                nx = left if x < left else right if x > right else x
                ny = top if y < top else bottom if y > bottom else y
                if (x - nx) * (x - nx) + (y - ny) * (y - ny) < r2:
                    return True
        return False


ARENA_WORLD = World(WIDTH, HEIGHT, WALLS)


def blocked(x: float, y: float, r: float = PLAYER_RADIUS) -> bool:
    """True if a disc of radius ``r`` at (x, y) leaves the arena or overlaps a wall."""
    return ARENA_WORLD.blocked(x, y, r)


def _axis(data: dict[str, Any], key: str) -> float:
    value = data.get(key, 0)
    if type(value) not in (int, float) or not math.isfinite(value):
        raise InvalidInput(f"{key} must be a finite number")
    if not -1.0 <= value <= 1.0:
        raise InvalidInput(f"{key} must be in [-1, 1]")
    return float(value)


class Arena(Game):
    """Move, avoid walls, collect gems."""

    name = "arena"
    world: ClassVar[World] = ARENA_WORLD
    """The map; a subclass with another one (``arena_wide``) plays by the same rules."""
    gem_count: ClassVar[int] = GEM_COUNT

    def __init__(self, ctx: RoomContext) -> None:
        super().__init__(ctx)
        self.rng = ctx.rng
        self.avatars: dict[int, Avatar] = {}
        self.gems: dict[int, tuple[float, float]] = {}
        self._next_gem = 1
        for _ in range(self.gem_count):
            self._spawn_gem()

    def _free_spot(self, radius: float) -> tuple[float, float]:
        world = self.world
        for _ in range(1000):
            x = self.rng.uniform(radius, world.width - radius)
            y = self.rng.uniform(radius, world.height - radius)
            if not world.blocked(x, y, radius):
                return x, y
        return world.width / 2, radius  # top edge is always free of walls

    def _spawn_gem(self) -> None:
        self.gems[self._next_gem] = self._free_spot(GEM_RADIUS)
        self._next_gem += 1

    def info(self) -> dict[str, Any]:
        return {
            "width": self.world.width,
            "height": self.world.height,
            "scale": SCALE,
            "speed": SPEED,
            "player_radius": PLAYER_RADIUS,
            "gem_radius": GEM_RADIUS,
            "walls": [list(w) for w in self.world.walls],
        }

    def on_join(self, player: Player) -> None:
        x, y = self._free_spot(PLAYER_RADIUS)
        self.avatars[player.id] = Avatar(x, y)

    def on_leave(self, player: Player) -> None:
        self.avatars.pop(player.id, None)

    def on_disconnect(self, player: Player) -> None:
        # Stand still while away: the last input would otherwise keep the avatar moving.
        avatar = self.avatars.get(player.id)
        if avatar is not None:
            avatar.dx = avatar.dy = 0.0

    def validate_input(self, player: Player, data: Any) -> tuple[float, float]:
        if type(data) is not dict:
            raise InvalidInput("input data must be a map {dx, dy}")
        dx, dy = _axis(data, "dx"), _axis(data, "dy")
        length = math.hypot(dx, dy)
        if length > 1.0:
            dx, dy = dx / length, dy / length
        return dx, dy

    def on_input(self, player: Player, command: Any) -> None:
        avatar = self.avatars[player.id]
        avatar.dx, avatar.dy = command

    def gems_near(self, x: float, y: float) -> Iterable[tuple[int, tuple[float, float]]]:
        """(id, position) of every gem a player at (x, y) may touch, in a fixed order.

        Here all of them; ``arena_wide`` asks its grid, which makes a tick's pickups
        cost the players, not players x gems.
        """
        return self.gems.items()

    def step(self, dt: float) -> None:
        blocked = self.world.blocked
        reach = (PLAYER_RADIUS + GEM_RADIUS) ** 2
        stride = SPEED * dt
        gems = self.gems
        for avatar in self.avatars.values():
            x, y = avatar.x, avatar.y
            if avatar.dx or avatar.dy:
                # Positions stay on the 1/SCALE grid that snapshots carry, so a client
                # replaying moves from a snapshot computes exactly these (PROTOCOL.md §7).
                gx, gy = round(x * SCALE) / SCALE, round(y * SCALE) / SCALE
                if not blocked(gx, gy):  # a spawn point off the grid, unless that touches a wall
                    x, y = gx, gy
                # Move per axis so a player slides along a wall instead of sticking.
                nx = round((x + avatar.dx * stride) * SCALE) / SCALE
                if not blocked(nx, y):
                    x = nx
                ny = round((y + avatar.dy * stride) * SCALE) / SCALE
                if not blocked(x, ny):
                    y = ny
                avatar.x, avatar.y = x, y
            taken = None
            for gem_id, (gx, gy) in self.gems_near(x, y):
                if (x - gx) * (x - gx) + (y - gy) * (y - gy) <= reach:
                    taken = gem_id
                    break
            if taken is not None:  # at most one gem per player per tick
                avatar.score += 1
                del gems[taken]
                self._spawn_gem()

    def snapshot(self, viewer: Player) -> dict[str, Any]:
        return {
            "players": self.player_rows(self.avatars.items()),
            "gems": self.gem_rows(self.gems.items()),
        }

    @staticmethod
    def player_rows(avatars: Iterable[tuple[int, Avatar]]) -> list[list[int]]:
        """Snapshot rows [id, x, y, score] of these players (``arena_wide``: the near ones)."""
        return [[pid, round(a.x * SCALE), round(a.y * SCALE), a.score] for pid, a in avatars]

    @staticmethod
    def gem_rows(gems: Iterable[tuple[int, tuple[float, float]]]) -> list[list[int]]:
        """Snapshot rows [id, x, y] of these gems."""
        return [[gid, round(x * SCALE), round(y * SCALE)] for gid, (x, y) in gems]
