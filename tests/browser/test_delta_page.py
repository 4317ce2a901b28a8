"""The page on delta snapshots (PROTOCOL.md §5.6), in Chromium against a real server.

The page asks for deltas in hello and acknowledges what it applies, so the server
sends it deltas; a Python player in the same room, who asks for none, receives
every snapshot whole and is the witness: the state the page built from deltas for
a tick is the state the witness was sent for that tick.
"""

from __future__ import annotations

from typing import Any

import pytest

from protocol import Snapshot

from .conftest import OpenPage, Server, join
from .players import ThreadPlayer
from .test_page import _free_key

pytestmark = pytest.mark.network

PAGE_STATE = """() => {
    const s = window.arenaClient.session();
    return {
        id: s.latest.id, tick: s.latest.tick, base: s.latest.base, state: s.latest.state,
        full: s.deltas.full, deltas: s.deltas.deltas, failures: s.deltaFailures,
        acked: s.ackedId,
    };
}"""


def test_the_page_plays_on_deltas(open_page: OpenPage, server: Server) -> None:
    """Most snapshots the page applies are deltas; what it holds is what a full client sees."""
    opened = open_page("/?room=b-delta")
    page = opened.page
    player = join(page, "delta")
    with ThreadPlayer(server.ws_url, "witness", room="b-delta", deltas=False) as witness:
        x0, y0 = witness.wait_for_position(player, lambda x, y: True)
        key, _, dx, dy = _free_key(x0, y0)
        pressed = witness.mark()
        page.keyboard.down(key)  # walk: the states change from snapshot to snapshot
        try:
            witness.wait_for_position(
                player, lambda x, y: (x - x0) * dx + (y - y0) * dy >= 20, since=pressed
            )
        finally:
            page.keyboard.up(key)
        page.wait_for_function("window.arenaClient.session().deltas.deltas >= 30")
        seen: dict[str, Any] = page.evaluate(PAGE_STATE)
        tick = seen["tick"]
        sent = witness.wait_for(lambda m: isinstance(m, Snapshot) and m.tick == tick)
        assert isinstance(sent, Snapshot) and sent.base is None  # the witness asked for none
        assert seen["state"] == sent.state
    assert seen["failures"] == 0
    # Deltas from the second snapshot on (the first is full; the server may send another
    # full one when a base is too old): nearly all of them.
    assert seen["deltas"] >= 4 * seen["full"], seen
    # Every snapshot is acknowledged, the newest within an input interval or so.
    assert seen["id"] - seen["acked"] <= 3, seen
    assert opened.problems.unexpected() == []
