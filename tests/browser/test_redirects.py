"""The browser page follows redirects (PROTOCOL.md §5.11) through tests/fake_cluster.py.

The page is loaded from the fake front (which passes plain HTTP on to the real
server), so its WebSocket goes to the front; the front redirects to the fake
worker, which seats the ticket's holder on the real server. The player must not
notice: no closed panel, no console error, the HUD ends "in room".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.load.conftest import running_server

from .conftest import OpenedPage, OpenPage, Server, join

pytestmark = pytest.mark.network

RECORD_HUD = """
window.hudStates = [];
document.addEventListener("DOMContentLoaded", () => {
    const hud = document.getElementById("hud-state");
    new MutationObserver(() => window.hudStates.push(hud.textContent))
        .observe(hud, { childList: true, characterData: true, subtree: true });
});
"""
"""Every text the HUD's connection state shows, in order (window.hudStates)."""

Cluster = Callable[..., Any]


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture
def cluster(server: Server) -> Iterator[Cluster]:
    """A factory: ``with cluster(*flags) as front:`` runs tests/fake_cluster.py before the
    session's server; ``front`` is its http:// URL."""

    @contextmanager
    def start(*flags: str) -> Iterator[str]:
        command = ("-m", "tests.fake_cluster", "--upstream", server.ws_url, *flags)
        with running_server(*command) as (url, _):
            yield "http" + url.removeprefix("ws")

    yield start


def open_at(open_page: OpenPage, front: str, path: str) -> OpenedPage:
    opened = open_page(path, base=front)
    opened.page.add_init_script(RECORD_HUD)
    opened.page.reload()
    return opened


def session(page: Any, expression: str) -> Any:
    return page.evaluate(
        f"(() => {{ const s = window.arenaClient.session(); return {expression}; }})()"
    )


def test_a_hello_redirected_lands_in_the_room_unnoticed(
    open_page: OpenPage, cluster: Cluster
) -> None:
    with cluster() as front:
        page = open_at(open_page, front, "/?room=b-far").page
        join(page, "ada")
        expect(page.locator("#hud-room")).to_have_text("b-far")
        page.wait_for_function("window.arenaClient.session().latest !== null")
        assert session(page, "s.redirects") == 1
        worker = session(page, "s.connection.url")
        assert worker.startswith("ws://127.0.0.1:") and worker != "ws" + front.removeprefix("http")
        assert "moving to room b-far…" in page.evaluate("window.hudStates")
        expect(page.locator("#closed")).to_be_hidden()
        expect(page.locator("#notice")).to_be_hidden()


def test_a_join_from_the_lobby_redirected_looks_joined(
    open_page: OpenPage, cluster: Cluster
) -> None:
    with cluster("--no-redirect-hello") as front:
        page = open_at(open_page, front, "/?room=b-near").page
        join(page, "bob")
        assert session(page, "s.redirects") == 0
        page.click("#leave")
        expect(page.locator("#hud-state")).to_have_text("connected, in the lobby")
        page.fill("#room", "b-far-2")
        page.click("#join-button")
        expect(page.locator("#hud-state")).to_have_text("in room")
        expect(page.locator("#hud-room")).to_have_text("b-far-2")
        assert session(page, "s.redirects") == 1
        page.wait_for_function("window.arenaClient.session().latest !== null")
        # It plays on the new connection: a chat line comes back.
        page.fill("#chat-input", "after the hop")
        page.press("#chat-input", "Enter")
        expect(page.locator("#chat-log li").last).to_have_text("bob: after the hop")
        expect(page.locator("#closed")).to_be_hidden()


def test_a_refused_ticket_starts_over_once(open_page: OpenPage, cluster: Cluster) -> None:
    with cluster("--refuse-tickets", "1") as front:
        page = open_at(open_page, front, "/?room=b-again").page
        join(page, "cy")
        expect(page.locator("#hud-room")).to_have_text("b-again")
        assert session(page, "[s.redirects, s.startedOver]") == [2, True]
        expect(page.locator("#closed")).to_be_hidden()


def test_a_redirect_loop_is_refused_with_a_reason(open_page: OpenPage, cluster: Cluster) -> None:
    with cluster("--loop") as front:
        page = open_at(open_page, front, "/?room=b-loop").page
        page.fill("#name", "dan")
        page.click("#join-button")
        expect(page.locator("#join-message")).to_contain_text("redirected more than 3 times")
        expect(page.locator("#hud-state")).to_have_text("not connected")
        expect(page.locator("#closed")).to_be_hidden()
        assert session(page, "s.redirects") == 3
