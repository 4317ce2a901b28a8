"""Fixtures for the load tester's tests: real servers in subprocesses on free ports."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


@contextmanager
def running_server(*command: str) -> Iterator[tuple[str, int]]:
    """Start a server command with ``--port 0``; yield (ws URL, pid); kill it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, *command, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    found: list[str] = []

    def read_url() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            urls = [w for w in line.split() if w.startswith("ws://")]
            if urls:
                found.append(urls[0])
                return

    reader = threading.Thread(target=read_url, daemon=True)
    reader.start()
    try:
        reader.join(START_TIMEOUT)  # returns as soon as the URL line is read
        if not found:
            raise RuntimeError(f"{command} printed no ws:// URL within {START_TIMEOUT} s")
        yield found[0], proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def run_loadtest(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clients.loadtest", "--quiet", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
