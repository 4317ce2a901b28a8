"""The page in arena_wide, the larger world with interest management: it joins through
?game=arena_wide, predicts with the world's own size and walls, a camera follows the
player, and another player shows only once near. Real Chromium, a real server.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from gameserver.game import RoomContext
from gameserver.games.arena_wide import CELL, VIEW_RADIUS, WIDE_WORLD, ArenaWide
from protocol import Snapshot
from tests.wide_game import SPAWNS

from .conftest import OpenPage, join
from .players import ThreadPlayer

pytestmark = pytest.mark.network

RULES = """async ([info, points]) => {
  const { ArenaRules, parseInfo } = await import("/static/arena.js");
  const world = parseInfo(info);
  const rules = new ArenaRules(world, 30);
  const blocked = points.map(([x, y, r]) => rules.blocked(x, y, r));
  return { viewRadius: world.viewRadius, blocked };
}"""

OWN = "(window.arenaClient.view().players.find((p) => p.own) ?? null)"


def test_prediction_uses_the_wide_worlds_size_and_walls(open_page: OpenPage) -> None:
    """arena.js reads arena_wide's info: its collision test agrees with the server's World
    at points all over the 4000 x 3600 world (walls of every tile, edges)."""
    page = open_page("/").page
    info = ArenaWide(RoomContext("w", 30, 8, random.Random(0))).info()
    rng = random.Random(11)
    points = [
        (rng.uniform(-10, 4010), rng.uniform(-10, 3610), rng.choice([8.0, 12.0]))
        for _ in range(3000)
    ]
    seen = page.evaluate(RULES, [info, points])
    assert seen["viewRadius"] == VIEW_RADIUS
    expected = [WIDE_WORLD.blocked(x, y, r) for x, y, r in points]
    assert seen["blocked"] == expected
    assert 300 < sum(expected) < 2700


def test_the_default_arena_has_no_camera(open_page: OpenPage) -> None:
    """arena is drawn whole, as before: no view radius, no camera."""
    page = open_page("/?room=b-nocam").page
    join(page, "still")
    page.wait_for_function(f"{OWN} !== null")
    assert page.evaluate("window.arenaClient.session().world.viewRadius") is None
    assert page.evaluate("window.arenaClient.camera()") is None


def test_the_page_plays_the_wide_world(open_page: OpenPage) -> None:
    """?game=arena_wide: the page spawns at (500, 600), a witness 1500 units east is not in
    its snapshots; holding → walks east, the camera keeps the player at its centre, and the
    witness shows up once near (within the view radius + a cell's diagonal)."""
    from tests.load.conftest import running_server

    with running_server("-m", "tests.browser.wide_server") as (url, _pid):
        base = "http" + url.removeprefix("ws")
        page = open_page("/?game=arena_wide&room=b-wide", base=base).page
        me = join(page, "explorer")
        assert page.evaluate("window.arenaClient.session().room.game") == "arena_wide"
        assert "game=arena_wide" in page.url  # the invite keeps the game
        page.wait_for_function(f"{OWN} !== null && window.arenaClient.camera() !== null")
        start = page.evaluate("window.arenaClient.camera()")
        assert (start["x"], start["y"]) == pytest.approx(SPAWNS[0])

        with ThreadPlayer(url, "witness", room="b-wide", game="arena_wide") as witness:
            first = witness.wait_for(lambda m: isinstance(m, Snapshot))
            assert isinstance(first, Snapshot)
            where = {pid: (x / 10, y / 10) for pid, x, y, _ in first.state["players"]}
            assert where[witness.player_id] == SPAWNS[1]
            assert me not in where  # the witness does not see the page's player either
            # The page's snapshots from then on (the witness is in the room) lack it.
            page.wait_for_function(f"window.arenaClient.session().latest?.tick >= {first.tick}")
            latest = page.evaluate("[...window.arenaClient.session().latest.players.keys()]")
            assert latest == [me]

            page.keyboard.down("ArrowRight")
            try:
                page.wait_for_function(
                    f"window.arenaClient.view().players.some((p) => p.id === {witness.player_id})"
                )
                view: dict[str, Any] = page.evaluate(
                    "({view: window.arenaClient.view(), camera: window.arenaClient.camera()})"
                )
            finally:
                page.keyboard.up("ArrowRight")
        own = next(p for p in view["view"]["players"] if p["own"])
        other = next(p for p in view["view"]["players"] if p["id"] == witness.player_id)
        camera = view["camera"]
        # The camera follows: centred on the (predicted) own player, who walked east.
        assert (camera["x"], camera["y"]) == pytest.approx((own["x"], own["y"]))
        assert camera["x"] > SPAWNS[0][0] + 100
        assert camera["y"] == pytest.approx(SPAWNS[0][1], abs=1)
        distance = math.dist((own["x"], own["y"]), (other["x"], other["y"]))
        assert distance <= VIEW_RADIUS + math.hypot(CELL, CELL) + 20  # + prediction's lead
