"""arena_wide with known spawn points, for the tests that need players far apart at first.

A room's first player starts at (500, 600), its second at (2000, 600), then again: both
on the free band between two rows of tiles (y 480..720 has no wall across the whole
world), 1500 units apart: further than VIEW_RADIUS + a cell's diagonal, so neither
sees the other until one walks towards the other.
"""

from __future__ import annotations

from gameserver.game import Player, RoomContext
from gameserver.games.arena_wide import ArenaWide

SPAWNS = ((500.0, 600.0), (2000.0, 600.0))


class LinedUpWide(ArenaWide):
    """arena_wide where the n-th player to join spawns at SPAWNS[n % 2]."""

    name = "arena_wide"

    def __init__(self, ctx: RoomContext) -> None:
        super().__init__(ctx)
        self.joins = 0

    def on_join(self, player: Player) -> None:
        x, y = SPAWNS[self.joins % len(SPAWNS)]
        self.joins += 1
        super().on_join(player)
        self.avatars[player.id].x, self.avatars[player.id].y = x, y
        self.player_grid.move(player.id, x, y)
