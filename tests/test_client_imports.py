"""Every client module imports first in a fresh interpreter (no import cycle between the
modules client.py and bots.py were split into), and the old import paths still work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in (ROOT / "clients").rglob("*.py")
    if "node_modules" not in path.parts
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first(module: str) -> None:
    result = run_python(f"import {module}")
    assert result.returncode == 0, result.stderr


def test_old_import_paths_still_work() -> None:
    result = run_python(
        "from clients.python.client import (CLOSE_GRACE, IDLE_ACK_AFTER, MAX_REDIRECTS,"
        " GameClient, Opener, ServerRefused, TooManyRedirects, WebSocketConnection,"
        " connect, redirect_url, websockets_opener)\n"
        "from clients.python import GameClient as G, ServerRefused, TooManyRedirects, connect\n"
        "from clients.bots import (SNAPSHOT_PREFIX, STOP_MARGIN, Bot, BotClient, BotPlan,"
        " BotSettings, Timeline, open_bot_client, parse_snapshot_envelope)\n"
        "assert G is GameClient\n"
    )
    assert result.returncode == 0, result.stderr
