"""Netcode feel at 150 ms RTT (±20 ms jitter each way), in Chromium, measured from drawn frames.

The page plays through a latency proxy (75 ms each way, uniform ±20 ms, TCP order
kept); a Python witness in the room reads the server's positions directly. The
assertions are about what is drawn (positions, within one world unit), never about
how fast this machine draws: frame times only place the frames.
"""

from __future__ import annotations

import pytest

from .conftest import OpenPage, Server
from .feel import Move, converged_after, play_move, rejoin, session_reports, start
from .players import ThreadPlayer
from .proxy import CuttableProxy

pytestmark = pytest.mark.network

ONE_WAY = 0.075
JITTER = 0.020
UNIT = 1.0
"""The issue's bound: no lurch, slide-back or creep beyond one world unit."""


def _check(move: Move, what: str) -> None:
    assert move.frames >= 5, f"{what}: too few frames drawn while held to judge ({move})"
    assert move.lurch_deficit <= UNIT, f"{what}: the disc lagged steady motion ({move})"
    assert move.lurch_surge <= UNIT, f"{what}: the disc surged past steady motion ({move})"
    assert move.slide_back <= UNIT, f"{what}: the disc slid back after the release ({move})"
    assert move.creep <= UNIT, f"{what}: the disc crept on after it stopped ({move})"
    assert move.end_error < 0.002, f"{what}: drawn away from the server's position ({move})"


def test_first_move_and_release_at_150_ms(open_page: OpenPage, server: Server) -> None:
    """The first move after a join and after a Reconnect, and a later one: no lurch, no
    slide-back, no creep.

    Each move: an arrow key held until the server has moved the player 60 units,
    then released. From the first frame the disc is drawn moving until the release
    it keeps to steady motion at `speed` within one unit; after the release it never
    goes back more than one unit, once drawn at rest it never moves on more than one
    unit (the stop is applied at the tick the page asked for, `input.tick`), and it
    ends on the server's position. The RTT the
    page shows is near the link's within a few seconds of the join.
    """
    port = int(server.ws_url.rsplit(":", 1)[1].split("/")[0])
    with CuttableProxy(port, delay=ONE_WAY, jitter=JITTER, seed=150) as proxy:
        page = open_page("/?room=b-feel", base=f"http://127.0.0.1:{proxy.port}").page
        player, joined_at = start(page, "feel")
        with ThreadPlayer(server.ws_url, "witness", room="b-feel") as witness:
            moves = {"first after join": play_move(page, witness, player)}
            moves["second"] = play_move(page, witness, player)
            player = rejoin(page)
            moves["first after Reconnect"] = play_move(page, witness, player)
        latency = page.evaluate("window.feel.latency")
    for what, move in moves.items():
        _check(move, what)
    # The RTT reported settles within a few seconds of the join (3 s, generous for a shared
    # machine) to within 20 ms of where it stands at the end of the first session (~5 s;
    # the link's 150 ms plus what the page and server add, more on a loaded machine).
    first = session_reports(latency, joined_at)
    # Reports are recorded when the shown RTT changes, seen by animation frames: on a
    # loaded machine the ping burst's changes may come before the join is seen, or
    # between two frames; two reports are enough to judge where it settles.
    assert len(first) >= 2, first
    final_ms = first[-1][1] / 1000
    assert converged_after(first, joined_at, final_ms, within=20) <= 3000, (final_ms, first)
