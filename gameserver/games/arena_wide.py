"""``arena_wide``: arena's rules in a world 24 times larger, with interest management.

The map is arena's 1000 x 600 floor tiled 4 x 6 (4000 x 3600, 120 walls, the centre
bar turned on every other tile) with arena's gem density (12 per tile, 288 in all).
Movement, gems and scoring are arena's own code (``Arena.step``); only what each
player is sent differs: a player's snapshot holds the players and gems near them.

How, with encode-once kept: players and gems sit in uniform grids
(``gameserver.spatial``) of ``CELL`` units. A player's ``view_key`` is the cell they
stand in, and that cell's snapshot is everything within ``VIEW_RADIUS`` of any point
of the cell. So every player sees at least everything within ``VIEW_RADIUS`` of
themselves, nothing further than ``VIEW_RADIUS`` + the cell's diagonal, and players
in the same cell share one snapshot, encoded once. ``CELL`` trades the two: smaller
cells fit the view tighter (fewer bytes) but share it among fewer players (more
encodes, and with delta snapshots one diff per audience and tick). At ``VIEW_RADIUS``
a cell's view covers 2.6 times a player's own circle (1.7 at half that), and 200
players spread over the world make ~63 audiences instead of ~143: with deltas, 203
bytes a snapshot against 173, for about half the CPU (bench/README.md, "Delta
snapshots with spread acks").

Gems stand still, so a cell's gem rows are kept from tick to tick and dropped only
when a gem near the cell is taken or appears; player rows are found afresh each
snapshot. Spectators see the whole world (view_key ``WHOLE``). The snapshot has arena's shape,
``{"players": [[id, x, y, score]...], "gems": [[id, x, y]...]}``, rows by id, so an
entity coming into view or leaving it is a row added or removed.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any, ClassVar

from ..game import Player, RoomContext
from ..spatial import Cell, UniformGrid
from .arena import GEM_COUNT, GEM_RADIUS, HEIGHT, PLAYER_RADIUS, WALLS, WIDTH, Arena, World

TILES_X = 4
TILES_Y = 6
VIEW_RADIUS = 500.0
"""World units a player sees around them: the page's camera shows 1000 x 600 of the world."""
CELL = VIEW_RADIUS
"""Side of a grid cell, and of the area whose players share one snapshot."""
WHOLE = "whole"
"""The view_key of a viewer with no avatar (a spectator): the whole world."""
MAX_PLAYERS = 256
"""Seats per room: room for a 200-bot load test in one world."""

_TURNED_BAR = (420, 270, 160, 60)
"""Arena's centre bar (470, 220, 60, 160) turned 90 degrees, on every other tile."""


def _tiled_walls() -> tuple[tuple[float, float, float, float], ...]:
    walls: list[tuple[float, float, float, float]] = []
    for ty in range(TILES_Y):
        for tx in range(TILES_X):
            ox, oy = tx * WIDTH, ty * HEIGHT
            for i, (x, y, w, h) in enumerate(WALLS):
                if i == len(WALLS) - 1 and (tx + ty) % 2:
                    x, y, w, h = _TURNED_BAR
                walls.append((ox + x, oy + y, w, h))
    return tuple(walls)


WIDE_WORLD = World(TILES_X * WIDTH, TILES_Y * HEIGHT, _tiled_walls())


class ArenaWide(Arena):
    """Arena in a 4000 x 3600 world; each player sees what is within VIEW_RADIUS."""

    name = "arena_wide"
    max_players = MAX_PLAYERS
    world: ClassVar[World] = WIDE_WORLD
    gem_count: ClassVar[int] = GEM_COUNT * TILES_X * TILES_Y
    view_radius: ClassVar[float] = VIEW_RADIUS
    cell: ClassVar[float] = CELL

    def __init__(self, ctx: RoomContext) -> None:
        # Before Arena.__init__: it spawns the gems, and _spawn_gem files them here.
        self.player_grid: UniformGrid[int] = UniformGrid(self.cell)
        self.gem_grid: UniformGrid[int] = UniformGrid(self.cell)
        # Gems stand still and few are taken per tick: a cell's gem rows are kept until
        # a gem within reach of the cell changes. Reach in cells: radius plus one cell.
        self._gem_rows: dict[Cell, list[list[int]]] = {}
        self._cache_span = math.ceil(self.view_radius / self.cell) + 1
        super().__init__(ctx)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "view_radius": self.view_radius}

    def _spawn_gem(self) -> None:
        gem_id = self._next_gem
        super()._spawn_gem()
        x, y = self.gems[gem_id]
        self.gem_grid.insert(gem_id, x, y)
        self._gems_changed(x, y)

    def on_join(self, player: Player) -> None:
        super().on_join(player)
        avatar = self.avatars[player.id]
        self.player_grid.insert(player.id, avatar.x, avatar.y)

    def on_leave(self, player: Player) -> None:
        super().on_leave(player)
        self.player_grid.discard(player.id)

    def gems_near(self, x: float, y: float) -> list[tuple[int, tuple[float, float]]]:
        gems = self.gems
        # A gem taken earlier in this tick is still in the grid until step() ends.
        near = self.gem_grid.nearby(x, y, PLAYER_RADIUS + GEM_RADIUS)
        return [(gem_id, gems[gem_id]) for gem_id in sorted(near) if gem_id in gems]

    def step(self, dt: float) -> None:
        super().step(dt)
        # Arena.step moved players and replaced taken gems (new ones are filed by
        # _spawn_gem); bring the grids up to date.
        move = self.player_grid.move
        for player_id, avatar in self.avatars.items():
            move(player_id, avatar.x, avatar.y)
        if len(self.gem_grid) != len(self.gems):  # some were taken this tick
            for gem_id in [g for g in self.gem_grid if g not in self.gems]:
                self._gems_changed(*self.gem_grid.position(gem_id))
                self.gem_grid.remove(gem_id)

    def view_key(self, viewer: Player) -> Hashable:
        avatar = self.avatars.get(viewer.id)
        if avatar is None or viewer.spectator:
            return WHOLE
        return self.player_grid.cell_of(avatar.x, avatar.y)

    def snapshot(self, viewer: Player) -> dict[str, Any]:
        key = self.view_key(viewer)
        if not isinstance(key, tuple):
            return super().snapshot(viewer)
        return self.cell_snapshot(key)

    def cell_snapshot(self, cell: Cell) -> dict[str, Any]:
        """What every player standing in ``cell`` is sent."""
        avatars = self.avatars
        players = sorted(self.player_grid.near_cell(cell, self.view_radius))
        gem_rows = self._gem_rows.get(cell)
        if gem_rows is None:
            gems = self.gems
            near = sorted(self.gem_grid.near_cell(cell, self.view_radius))
            gem_rows = self._gem_rows[cell] = self.gem_rows((g, gems[g]) for g in near)
        return {"players": self.player_rows((p, avatars[p]) for p in players), "gems": gem_rows}

    def _gems_changed(self, x: float, y: float) -> None:
        """A gem appeared or went at (x, y): forget the rows of the cells that may see it."""
        gx, gy = self.gem_grid.cell_of(x, y)
        span = self._cache_span
        stale = [c for c in self._gem_rows if abs(c[0] - gx) <= span and abs(c[1] - gy) <= span]
        for cell in stale:
            del self._gem_rows[cell]
