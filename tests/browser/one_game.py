"""Serve one game in place of the defaults, for browser tests that need a game variant.

``serve_only(game, label)`` is the body of the small server modules beside it
(``python -m tests.browser.head_start_server``, ``… wide_server``): it prints the ws://
URL as ``python -m gameserver`` does and serves until killed.
"""

from __future__ import annotations

import trio

from gameserver.game import Game, GameRegistry
from gameserver.settings import Settings
from gameserver.trio import serve_game


def serve_only(game: type[Game], label: str) -> None:
    """Serve ``game`` (alone, on a free port) until killed; print ``<label> listening on <url>``."""

    async def main() -> None:
        games = GameRegistry()
        games.register(game)
        settings = Settings(port=0, log_level="WARNING")
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_game, settings, games)
            print(f"{label} listening on {server.url}", flush=True)
            await trio.sleep_forever()

    trio.run(main)
