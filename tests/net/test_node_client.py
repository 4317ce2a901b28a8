"""The Node.js client written from protocol/PROTOCOL.md alone, against a real server.

``clients/node/spec_client.mjs`` plays a whole session (hello, inputs until a
snapshot acknowledges one and shows the move, chat, ack, leave, close 1000)
and validates every frame it receives; it prints one JSON summary line. The
test needs ``node`` on PATH and ``npm install`` run in ``clients/node``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import trio

from .conftest import StartServer

NODE_DIR = Path(__file__).resolve().parents[2] / "clients" / "node"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules").is_dir(),
        reason="clients/node/node_modules is missing: run `npm ci` in clients/node",
    ),
]


async def test_node_spec_client_plays_a_session(start_server: StartServer) -> None:
    server = await start_server()
    assert NODE is not None
    with trio.fail_after(20):
        result = await trio.run_process(
            [NODE, str(NODE_DIR / "spec_client.mjs"), server.url, "node-test"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    stdout = result.stdout.decode()
    stderr = result.stderr.decode()
    assert result.returncode == 0, f"spec_client failed ({result.returncode}): {stderr}{stdout}"
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    summary = json.loads(lines[0])
    assert summary["ok"] is True
    assert isinstance(summary["player"], int)
    assert summary["snapshots"] >= 1
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
