"""The browser page keeps its seat through a dropped connection (PROTOCOL.md §5.12), and
watches a room as a spectator (§5.13). Real Chromium, a real server; the drop is a TCP
reset of every connection through a proxy the page was loaded from.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from protocol import Event

from .conftest import OpenPage, Server, join
from .head_start_server import HEAD_START
from .players import ThreadPlayer
from .proxy import CuttableProxy

pytestmark = pytest.mark.network

RECORD_HUD = """() => {
  window.hudStates = [];
  const hud = document.getElementById("hud-state");
  new MutationObserver(() => window.hudStates.push(hud.textContent))
    .observe(hud, { childList: true, characterData: true, subtree: true });
}"""
"""Keeps every text the HUD's connection field shows (a reconnect may be brief)."""


AT_LEAST_HEAD_START = re.compile(rf"^([{HEAD_START}-9]|[1-9]\d+)$")
"""A score of at least the head start (7: a single digit 7-9, or two digits or more)."""


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_the_page_survives_a_dropped_connection(open_page: OpenPage) -> None:
    """Cut mid-game: "reconnecting…", then the same player in the same room with the same
    score (a head start of 7 no fresh player gets); a player already there never hears
    that the page left."""
    from tests.load.conftest import running_server

    with running_server("-m", "tests.browser.head_start_server") as (url, _pid):
        port = urlsplit(url).port
        assert port is not None
        with CuttableProxy(port) as proxy:
            opened = open_page("/?room=b-resume", base=f"http://127.0.0.1:{proxy.port}")
            page = opened.page
            player = join(page, "ada")
            with ThreadPlayer(url, "witness", room="b-resume") as witness:
                expect(page.locator("#leaderboard li")).to_have_count(2)
                # The head start, plus a gem the player may have spawned on.
                own_score = page.locator("#leaderboard li.own .score")
                expect(own_score).to_have_text(AT_LEAST_HEAD_START)
                before = int(own_score.inner_text())
                page.evaluate(RECORD_HUD)
                assert proxy.cut() >= 1  # the page's WebSocket among them
                expect(page.locator("#hud-state")).to_have_text("in room")
                expect(page.locator("#hud-player")).to_have_text(str(player))
                expect(page.locator("#hud-room")).to_have_text("b-resume")
                expect(page.locator("#chat-log")).to_contain_text(
                    "Reconnected: back in room b-resume as the same player."
                )
                assert any(s.startswith("reconnecting") for s in page.evaluate("window.hudStates"))
                expect(page.locator("#hud-snapshots")).to_have_text(re.compile(r"^[1-9]\d*/s$"))
                expect(own_score).to_have_text(AT_LEAST_HEAD_START)  # a fresh player: 0 or 1
                assert int(own_score.inner_text()) >= before
                assert page.locator("#closed").is_hidden()
                # The witness's view: the page's player never left (no event about it at
                # all, since the witness asked for no presence events), and is still there.
                witness.chat("still here?")
                witness.wait_for(lambda m: isinstance(m, Event) and m.text == "still here?")
                about = [m for m in witness.messages if isinstance(m, Event) and m.player == player]
                assert [m.kind for m in about] == []
                expect(page.locator("#chat-log")).to_contain_text("still here?")


def test_watch_a_room_without_playing(open_page: OpenPage, server: Server) -> None:
    """?watch=ROOM: the page watches (no seat, no inputs); the players see no join."""
    with ThreadPlayer(server.ws_url, "actor", room="b-watch") as actor:
        page = open_page("/?watch=b-watch").page
        page.fill("#name", "eve")
        page.click("#watch-button")
        expect(page.locator("#hud-state")).to_have_text("in room")
        expect(page.locator("#hud-room")).to_have_text("b-watch")
        expect(page.locator("#chat-log")).to_contain_text("You are watching room b-watch")
        expect(page.locator("#hud-snapshots")).to_have_text(re.compile(r"^[1-9]\d*/s$"))
        names = page.locator("#leaderboard li .who")
        expect(names).to_have_text(["actor"])  # only the player: a spectator has no entity
        first = page.evaluate("window.arenaClient.session().latest.id")
        page.keyboard.down("ArrowRight")
        # Ten snapshots later (a third of a second), a player would have sent ten inputs.
        page.wait_for_function(
            "(id) => window.arenaClient.session().latest.id >= id + 10", arg=first
        )
        page.keyboard.up("ArrowRight")
        assert page.evaluate("window.arenaClient.session().seq") == 0
        assert "watch=b-watch" in page.url
        joins = [m for m in actor.messages if isinstance(m, Event) and m.kind == "join"]
        assert [m.name for m in joins] == ["actor"]
