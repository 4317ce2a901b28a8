"""A server for the browser's arena_wide test: arena_wide with known spawn points (a room's
first player at (500, 600), its second 1500 units east: tests/wide_game.py). Run as
``python -m tests.browser.wide_server``; prints its ws:// URL like ``python -m gameserver``
does and serves until killed.
"""

from __future__ import annotations

from tests.browser.one_game import serve_only
from tests.wide_game import LinedUpWide

if __name__ == "__main__":
    serve_only(LinedUpWide, "lined-up arena_wide")
