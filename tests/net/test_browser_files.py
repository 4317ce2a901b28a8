"""The browser page's files over HTTP: the page, its modules, and the one vendored file.

``/vendor/msgpack.min.js`` is a fixed route to @msgpack/msgpack's UMD build in
``clients/browser/node_modules`` (installed by ``npm ci``, never committed). When it
is missing the server warns at startup and the route says what to run.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
from pathlib import Path

import pytest
import trio
from websockets.datastructures import Headers
from websockets.http11 import Request

from gameserver import Settings
from gameserver.trio.http import (
    DEFAULT_STATIC_DIR,
    MSGPACK_FILE,
    MSGPACK_PATH,
    ConnectionCounter,
    HttpFront,
)

from .conftest import StartServer, get_request, http_exchange

pytestmark = pytest.mark.network

MODULES = sorted(p.name for p in DEFAULT_STATIC_DIR.glob("*.js"))


async def test_the_page_and_every_module_it_imports_are_served(start_server: StartServer) -> None:
    """index.html, style.css and each ES module come back with the type a browser requires."""
    server = await start_server()
    page = (DEFAULT_STATIC_DIR / "index.html").read_text()
    assert "/static/main.js" in page and MSGPACK_PATH in page
    imported = set()
    for module in MODULES:
        imported |= set(
            re.findall(r'from "\./([\w.-]+)"', (DEFAULT_STATIC_DIR / module).read_text())
        )
    assert imported <= set(MODULES), imported - set(MODULES)
    with trio.fail_after(5):
        for name in ["style.css", *MODULES]:
            response = await http_exchange(server.port, get_request(server.port, f"/static/{name}"))
            assert response.status == 200, name
            kind = "text/css" if name.endswith(".css") else "text/javascript"
            assert response.headers["content-type"] == f"{kind}; charset=utf-8", name


@pytest.mark.skipif(
    not (DEFAULT_STATIC_DIR / MSGPACK_FILE).is_file() and not os.environ.get("CI"),
    reason="clients/browser/node_modules is missing (./dev setup)",
)
async def test_msgpack_route_serves_the_installed_build(start_server: StartServer) -> None:
    """GET /vendor/msgpack.min.js is the npm package's UMD build, as JavaScript."""
    server = await start_server()
    with trio.fail_after(5):
        response = await http_exchange(server.port, get_request(server.port, MSGPACK_PATH))
    assert response.status == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.body == (DEFAULT_STATIC_DIR / MSGPACK_FILE).read_bytes()


async def test_only_that_one_file_is_served_from_node_modules(start_server: StartServer) -> None:
    """Nothing else under /vendor/ or node_modules is reachable, nor the npm files by the page."""
    server = await start_server()
    assert (DEFAULT_STATIC_DIR / "package.json").is_file()
    paths = [
        "/static/package.json",
        "/static/package-lock.json",
        "/vendor/msgpack.min.js.map",
        "/vendor/",
        "/vendor/../clients/browser/package.json",
        "/static/node_modules",
        "/static/package.json/../node_modules/@msgpack/msgpack/package.json",
        "/node_modules/@msgpack/msgpack/dist.umd/msgpack.min.js",
    ]
    with trio.fail_after(5):
        for path in paths:
            response = await http_exchange(server.port, get_request(server.port, path))
            assert response.status == 404, path


def test_static_types_do_not_depend_on_the_hosts_mimetypes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host whose tables say .js is text/plain (seen on Windows) still gets working modules."""
    monkeypatch.setattr(mimetypes, "guess_type", lambda *args, **kwargs: ("text/plain", None))
    front = HttpFront(Settings(), ConnectionCounter(), dict)
    expected = {
        "/": "text/html",
        "/static/index.html": "text/html",
        "/static/main.js": "text/javascript",
        "/static/style.css": "text/css",
    }
    for path, kind in expected.items():
        response = front.check_request(Request(path, Headers()), "127.0.0.1")
        assert response is not None and response.status_code == 200, path
        assert response.headers["Content-Type"] == f"{kind}; charset=utf-8", path


def test_missing_msgpack_is_a_startup_warning_and_a_clear_404(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without npm ci: a startup warning naming the command; the route says it too."""
    (tmp_path / "index.html").write_text("<html></html>")
    with caplog.at_level(logging.WARNING, logger="gameserver.trio.http"):
        front = HttpFront(Settings(), ConnectionCounter(), dict, static_dir=tmp_path)
    assert "./dev setup" in caplog.text and "npm ci --prefix clients/browser" in caplog.text
    response = front.check_request(Request(MSGPACK_PATH, Headers()), "127.0.0.1")
    assert response is not None
    assert response.status_code == 404
    assert b"./dev setup" in response.body
