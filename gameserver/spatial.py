"""A uniform grid: which entities are near a point, for interest management in game code.

Sans-I/O and game-agnostic: entities are keys (any hashable, e.g. a player id) at
float positions. ``insert``/``move``/``remove`` keep each key in the bucket of the
square cell it stands in; ``nearby(x, y, radius)`` and ``near_cell(cell, radius)``
look only at the buckets a query can reach, so a query costs the entities near it
plus a dict lookup per reachable cell, not a pass over everything.

Used by ``arena_wide`` (``gameserver.games.arena_wide``): one grid for players, one
for gems; a player's ``view_key`` is ``cell_of`` their position and the snapshot for
a cell is ``near_cell(cell, view_radius)``. The README's "Write a game" shows the
pattern.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

Cell = tuple[int, int]
"""A cell's (column, row): cell (i, j) covers [i*size, (i+1)*size) x [j*size, (j+1)*size)."""

_SLACK = 1e-9
"""Relative margin on a query's reach when choosing cells, so float rounding in the exact
distance test can never accept an entity in a cell the query did not visit."""


class UniformGrid(Generic[K]):
    """Entities by square cell of side ``cell_size``: insert, move, remove by key; query by area.

    A good ``cell_size`` is about the usual query radius: smaller means more empty
    cells visited per query, larger means more entities tested and thrown away.
    """

    __slots__ = ("_cells", "_where", "cell_size")

    def __init__(self, cell_size: float) -> None:
        if not (math.isfinite(cell_size) and cell_size > 0):
            raise ValueError("cell_size must be a positive finite number")
        self.cell_size = float(cell_size)
        self._cells: dict[Cell, dict[K, tuple[float, float]]] = {}
        self._where: dict[K, Cell] = {}

    def cell_of(self, x: float, y: float) -> Cell:
        """The cell holding the point (x, y)."""
        size = self.cell_size
        return (math.floor(x / size), math.floor(y / size))

    def insert(self, key: K, x: float, y: float) -> None:
        """Add a new entity; KeyError if ``key`` is in the grid already."""
        if key in self._where:
            raise KeyError(f"{key!r} is in the grid already")
        cell = self.cell_of(x, y)
        self._where[key] = cell
        bucket = self._cells.get(cell)
        if bucket is None:
            bucket = self._cells[cell] = {}
        bucket[key] = (x, y)

    def move(self, key: K, x: float, y: float) -> None:
        """Put an entity at (x, y); KeyError if it is not in the grid. Cheap when it stays put."""
        old = self._where[key]
        size = self.cell_size
        cell = (math.floor(x / size), math.floor(y / size))
        if cell == old:
            self._cells[old][key] = (x, y)
            return
        self._drop(key, old)
        self._where[key] = cell
        bucket = self._cells.get(cell)
        if bucket is None:
            bucket = self._cells[cell] = {}
        bucket[key] = (x, y)

    def remove(self, key: K) -> None:
        """Forget an entity; KeyError if it is not in the grid."""
        self._drop(key, self._where.pop(key))

    def discard(self, key: K) -> None:
        """Forget an entity if it is in the grid."""
        cell = self._where.pop(key, None)
        if cell is not None:
            self._drop(key, cell)

    def _drop(self, key: K, cell: Cell) -> None:
        bucket = self._cells[cell]
        del bucket[key]
        if not bucket:  # empty cells would make every later query visit them
            del self._cells[cell]

    def position(self, key: K) -> tuple[float, float]:
        """Where an entity is; KeyError if it is not in the grid."""
        return self._cells[self._where[key]][key]

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    def __iter__(self) -> Iterator[K]:
        return iter(self._where)

    def nearby(self, x: float, y: float, radius: float) -> list[K]:
        """Keys of the entities at distance <= ``radius`` from (x, y), in no particular order."""
        return self.near_rect(x, y, x, y, radius)

    def cell_bounds(self, cell: Cell) -> tuple[float, float, float, float]:
        """A cell as (left, top, right, bottom)."""
        size = self.cell_size
        return (cell[0] * size, cell[1] * size, (cell[0] + 1) * size, (cell[1] + 1) * size)

    def near_cell(self, cell: Cell, radius: float) -> list[K]:
        """Keys within ``radius`` of some point of ``cell``: what any viewer in it may see.

        It holds everything within ``radius`` of each point of the cell, and nothing
        further than ``radius`` + the cell's diagonal from any of them.
        """
        return self.near_rect(*self.cell_bounds(cell), radius)

    def near_rect(
        self, left: float, top: float, right: float, bottom: float, radius: float
    ) -> list[K]:
        """Keys at distance <= ``radius`` from the rectangle (a point when left == right, ...)."""
        if radius < 0 or not self._cells:
            return []
        size = self.cell_size
        reach = radius + _SLACK * (1.0 + radius + max(abs(left), abs(right), abs(top), abs(bottom)))
        c0, c1 = math.floor((left - reach) / size), math.floor((right + reach) / size)
        r0, r1 = math.floor((top - reach) / size), math.floor((bottom + reach) / size)
        r2 = radius * radius
        cells = self._cells
        if (c1 - c0 + 1) * (r1 - r0 + 1) > len(cells):
            # A query wider than the occupied cells: walk those instead of the empty ones.
            buckets = [b for (c, r), b in cells.items() if c0 <= c <= c1 and r0 <= r <= r1]
        else:
            get = cells.get
            rows = range(r0, r1 + 1)
            buckets = [b for c in range(c0, c1 + 1) for r in rows if (b := get((c, r)))]
        found: list[K] = []
        append = found.append
        for bucket in buckets:
            for key, (px, py) in bucket.items():
                dx = left - px if px < left else px - right if px > right else 0.0
                dy = top - py if py < top else py - bottom if py > bottom else 0.0
                if dx * dx + dy * dy <= r2:
                    append(key)
        return found
