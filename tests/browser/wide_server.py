"""A server for the browser's arena_wide test: arena_wide with known spawn points (a room's
first player at (500, 600), its second 1500 units east: tests/wide_game.py). Run as
``python -m tests.browser.wide_server``; prints its ws:// URL like ``python -m gameserver``
does and serves until killed.
"""

from __future__ import annotations

import trio

from gameserver.game import GameRegistry
from gameserver.settings import Settings
from gameserver.trio import serve_game
from tests.wide_game import LinedUpWide


async def main() -> None:
    games = GameRegistry()
    games.register(LinedUpWide)
    settings = Settings(port=0, log_level="WARNING")
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_game, settings, games)
        print(f"lined-up arena_wide listening on {server.url}", flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main)
