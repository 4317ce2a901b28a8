"""The Node.js client written from protocol/PROTOCOL.md alone, against a real server.

``clients/node/spec_client.mjs`` plays a whole session (hello, inputs until a
snapshot acknowledges one and shows the move, chat, ack, leave, close 1000)
and validates every frame it receives; it prints one JSON summary line. It also
plays through tests/fake_cluster.py, which redirects its hello (§5.11). The
tests need ``node`` on PATH and ``npm ci`` run in ``clients/node``; without
them they are skipped, except under the ``CI`` environment variable: then they fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.fake_cluster import fake_cluster
from tests.missing import skip_or_fail

from .conftest import StartServer

NODE_DIR = Path(__file__).resolve().parents[2] / "clients" / "node"
NODE = shutil.which("node")


@pytest.fixture
def node() -> str:
    """The node binary, once clients/node is installed; else skip (fail under CI)."""
    reason = None
    if NODE is None:
        reason = "node is not on PATH"
    elif not (NODE_DIR / "node_modules").is_dir():
        reason = "clients/node/node_modules is missing: run `npm ci` in clients/node"
    if reason is not None:
        skip_or_fail("the Node client", reason)
    assert NODE is not None
    return NODE


async def run_spec_client(node: str, url: str, name: str) -> tuple[int, str, str]:
    """Run spec_client.mjs against ``url``: its exit code, stdout and stderr."""
    with trio.fail_after(20):
        result = await trio.run_process(
            [node, str(NODE_DIR / "spec_client.mjs"), url, name],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def summary_of(code: int, stdout: str, stderr: str) -> dict[str, Any]:
    assert code == 0, f"spec_client failed ({code}): {stderr}{stdout}"
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    summary: dict[str, Any] = json.loads(lines[0])
    assert summary["ok"] is True
    return summary


async def test_node_spec_client_plays_a_session(start_server: StartServer, node: str) -> None:
    server = await start_server()
    summary = summary_of(*await run_spec_client(node, server.url, "node-test"))
    assert summary["redirects"] == 0 and summary["retired_closes"] == []
    assert isinstance(summary["player"], int)
    assert summary["snapshots"] >= 1
    # It asked for deltas and acknowledged what it applied: the server sent it some,
    # and every one applied (a base it did not hold would have failed the run).
    assert summary["full_snapshots"] >= 1 and summary["delta_snapshots"] >= 1
    dx, dy = summary["moved"]
    assert (dx, dy) != (0, 0)
    # The player moved along the one axis it pushed, in the pushed direction.
    ddx, ddy = summary["dir"]
    assert dx * ddx + dy * ddy > 0
    assert dx * ddy + dy * ddx == 0
    assert summary["input_acked"] >= 1
    assert summary["chat"] is True
    assert summary["left"] is True
    assert summary["close"] == 1000


async def test_node_spec_client_follows_a_redirect(start_server: StartServer, node: str) -> None:
    server = await start_server()
    async with fake_cluster(server.url) as cluster:
        summary = summary_of(*await run_spec_client(node, cluster.front_url, "node-hop"))
    assert summary["redirects"] == 1 and summary["started_over"] is False
    assert summary["room"] == cluster.far_room
    assert summary["retired_closes"] == [4005]  # the first connection's close
    [hello] = cluster.worker_hellos
    assert hello == {
        "t": "hello",
        "version": 1,
        "name": "node-hop",
        "ticket": cluster.redirects[0].ticket,
        "deltas": True,  # a capability of the connection: asked on each one (§5.6)
    }
    # The whole session then ran on the worker: moved, chatted, left, closed 1000.
    assert summary["input_acked"] >= 1 and summary["left"] is True and summary["close"] == 1000


async def test_node_spec_client_ignores_what_a_later_server_adds(
    start_server: StartServer, node: str
) -> None:
    """Unknown fields (bin included: they are of type any, §2) in every message and unknown
    welcome.limits keys (§4.2) are ignored: the whole session still plays."""
    server = await start_server()
    later = {"x_blob": b"\x00\xff", "x_note": "from a later server", "x_map": {7: [1.5]}}
    async with fake_cluster(
        server.url,
        redirect_hello=False,
        redirect_join=False,
        later_fields=later,
        later_limits={"x_new_limit": 7},
    ) as cluster:
        summary = summary_of(*await run_spec_client(node, cluster.front_url, "node-later"))
    assert summary["redirects"] == 0 and summary["left"] is True and summary["close"] == 1000


async def test_node_spec_client_starts_over_after_bad_ticket(
    start_server: StartServer, node: str
) -> None:
    server = await start_server()
    async with fake_cluster(server.url, refuse_tickets=1) as cluster:
        summary = summary_of(*await run_spec_client(node, cluster.front_url, "node-again"))
    assert summary["started_over"] is True and summary["redirects"] == 2
    assert summary["retired_closes"] == [4005, 1000, 4005]
    assert [h.get("ticket") for h in cluster.front_hellos] == [None, None]


async def test_node_spec_client_gives_up_on_a_redirect_loop(
    start_server: StartServer, node: str
) -> None:
    server = await start_server()
    async with fake_cluster(server.url, loop=True) as cluster:
        code, stdout, stderr = await run_spec_client(node, cluster.front_url, "node-loop")
    assert code == 1 and stdout == ""
    assert "more than 3 redirects" in stderr
    assert len(cluster.worker_hellos) == 3
