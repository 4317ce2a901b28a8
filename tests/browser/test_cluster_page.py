"""The browser page on a real cluster: two worker processes under the supervisor, one
real Redis. A page that reached the other worker is redirected into the room and
plays there without noticing (PROTOCOL.md §5.11)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.net.conftest import free_ports
from tests.redis_server import RedisServer

from .conftest import ROOT, OpenPage, join

pytestmark = pytest.mark.network

START_LINES = 200


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@contextmanager
def two_workers(redis: RedisServer, prefix: str) -> Iterator[list[str]]:
    """``python -m gameserver --workers 2 --redis …``; yield each worker's http:// URL."""
    port = free_ports(3)
    command = [sys.executable, "-m", "gameserver", "--port", str(port), "--workers", "2"]
    command += ["--redis", redis.url, "--redis-prefix", prefix, "--log-level", "WARNING"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        for _ in range(START_LINES):  # the supervisor's start line names each worker
            line = process.stdout.readline()
            direct = re.findall(r"w\d+ ws://([\d.]+:\d+)/", line)
            if direct or not line:
                break
        assert len(direct) == 2, f"no start line from the supervisor: {line!r}"
        yield [f"http://{address}" for address in direct]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]


def test_a_page_on_the_other_worker_is_redirected_into_the_room(
    open_page: OpenPage, redis_server: RedisServer, redis_prefix: str
) -> None:
    with two_workers(redis_server, redis_prefix) as (first, second):
        ada = open_page("/?room=duel", base=first).page
        join(ada, "ada")
        bob = open_page("/?room=duel", base=second).page
        bob_id = join(bob, "bob")
        expect(bob.locator("#hud-room")).to_have_text("duel")
        redirects = bob.evaluate("window.arenaClient.session().redirects")
        assert redirects == 1
        url = bob.evaluate("window.arenaClient.session().connection.url")
        assert url == "ws" + first.removeprefix("http") + "/"
        expect(bob.locator("#closed")).to_be_hidden()
        # Both play in one room: each sees the other's chat.
        bob.fill("#chat-input", "hello from the other worker")
        bob.press("#chat-input", "Enter")
        expect(ada.locator("#chat-log li").last).to_have_text("bob: hello from the other worker")
        assert bob_id > 0
