"""A server for the browser's resume test: arena, where the first player of a room starts
with 7 points (everyone else with 0), so "the same score after the resume" is a score
no fresh player could have. Run as ``python -m tests.browser.head_start_server``; prints
its ws:// URL like ``python -m gameserver`` does and serves until killed.
"""

from __future__ import annotations

from gameserver.game import Player
from gameserver.games.arena import Arena
from tests.browser.one_game import serve_only

HEAD_START = 7


class HeadStartArena(Arena):
    """The reference game with a head start for a room's first player."""

    name = "arena"

    def on_join(self, player: Player) -> None:
        super().on_join(player)
        if len(self.avatars) == 1:
            self.avatars[player.id].score = HEAD_START


if __name__ == "__main__":
    serve_only(HeadStartArena, "head-start arena")
