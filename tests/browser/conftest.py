"""Fixtures for the browser tests: Debian's Chromium driven by sync Playwright against a real
server in a subprocess (``python -m gameserver --port 0``, as tests/load starts it).

What they need: ``/usr/bin/chromium`` (``apt-get install chromium``; never ``playwright
install``), the ``playwright`` package (the dev extras) and the page's msgpack build
(``npm ci --prefix clients/browser``; ``./dev setup`` does it). Without one of them the
tests are skipped, saying which, except when the ``CI`` environment variable is set:
then they fail, so CI can never pass by skipping them.

One Chromium per session; each page gets its own browser context (its own storage)
and records console errors and warnings, uncaught exceptions, failed requests and HTTP
errors, which must stay empty unless the test says what it expects.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gameserver.trio.http import MSGPACK_FILE
from tests.load.conftest import running_server
from tests.missing import skip_or_fail

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_BINARY = Path("/usr/lib/chromium/chromium")
"""What /usr/bin/chromium (a wrapper script that prints noise) runs; used when present."""
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 5_000
"""Every Playwright wait and expect gives up after this long."""
MAX_PLAYERS = 2
"""Seats per room on the shared server: two are all any test needs, and a full room is easy."""


def missing_requirement() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing (pip install -e '.[dev]')"
    if not (ROOT / "clients" / "browser" / MSGPACK_FILE).is_file():
        return (
            "clients/browser/node_modules is missing "
            "(./dev setup, or npm ci --prefix clients/browser)"
        )
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    reason = missing_requirement()
    if reason is not None:
        skip_or_fail("browser tests", reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    executable = CHROMIUM_BINARY if CHROMIUM_BINARY.exists() else CHROMIUM
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Server:
    ws_url: str
    pid: int

    @property
    def http_url(self) -> str:
        return "http" + self.ws_url.removeprefix("ws")


@pytest.fixture(scope="session")
def server(browser: Browser) -> Iterator[Server]:
    """One server for the session's tests (each test plays in rooms of its own)."""
    with running_server(
        "-m", "gameserver", "--log-level", "WARNING", "--max-players-per-room", str(MAX_PLAYERS)
    ) as (url, pid):
        yield Server(url, pid)


@dataclass
class Problems:
    """What a page reported that normal play never should."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("requestfailed", lambda r: self.requests.append(f"failed {r.url}: {r.failure}"))
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.requests.append(f"HTTP {response.status} {response.url}")

    def expect(self, pattern: str) -> None:
        """Allow reports matching ``pattern`` (a regular expression) in this test."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        reports = self.console + self.errors + self.requests
        return [r for r in reports if not any(p.search(r) for p in self.expected)]


@dataclass
class OpenedPage:
    page: Page
    problems: Problems


OpenPage = Callable[..., OpenedPage]


@pytest.fixture
def open_page(browser: Browser, server: Server) -> Iterator[OpenPage]:
    """A factory: ``open_page("/?room=x")`` → a new page (own context) at that path.

    On teardown every page must have reported no unexpected problem.
    """
    opened: list[OpenedPage] = []
    contexts = []

    def open_(path: str = "/", base: str | None = None) -> OpenedPage:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        problems = Problems()
        problems.watch(page)
        page.goto((base or server.http_url).rstrip("/") + path)
        result = OpenedPage(page, problems)
        opened.append(result)
        return result

    try:
        yield open_
        reports = [r for o in opened for r in o.problems.unexpected()]
        assert not reports, reports
    finally:
        for context in contexts:
            context.close()


def join(page: Page, name: str) -> int:
    """Fill the join form, play, wait until in a room; the player id the HUD shows."""
    from playwright.sync_api import expect

    page.fill("#name", name)
    page.click("#join-button")
    expect(page.locator("#hud-state")).to_have_text("in room")
    player = page.locator("#hud-player").inner_text()
    assert player.isdigit(), player
    return int(player)
