"""A real ``redis-server`` for the tests: started on a free loopback port, stopped after.

No persistence (``--save ''``, ``--appendonly no``): a restart starts empty, as a
crashed Redis without persistence would. Readiness is read from the server's own
log line, not guessed with a sleep. Missing ``redis-server``: the tests skip with
the reason, except under ``CI``, where they fail (CI installs Debian's package).
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import trio

from tests.missing import skip_or_fail

READY_LINE = b"Ready to accept connections"
START_TIMEOUT = 10.0


def redis_binary() -> str:
    """Path of redis-server, or skip (fail under CI) with the reason."""
    path = shutil.which("redis-server")
    if path is None:
        skip_or_fail("redis tests", "redis-server is not installed (apt-get install redis-server)")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process; ``start()`` may be called again after ``stop()``."""

    def __init__(self, port: int | None = None) -> None:
        self.binary = redis_binary()
        self.port = port if port is not None else free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--loglevel", "notice"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.process = process
        assert process.stdout is not None
        seen = b""
        try:
            # Read its log until it says it is ready (bounded by the line count, and
            # by the process ending if it cannot bind).
            for _ in range(200):
                line = process.stdout.readline()
                seen += line
                if READY_LINE in line:
                    return
                if not line:
                    break
            raise RuntimeError(f"redis-server did not start:\n{seen.decode(errors='replace')}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def eventually(check: Callable[[], Awaitable[bool]], limit: float = 5.0) -> float:
    """Wait until ``check()`` is true; return the seconds it took.

    Only for what runs on another clock than the test's: Redis expiring a key on
    its own time, a heartbeat of a real-time server noticing Redis again. It
    polls, bounded by ``limit`` seconds (then ``trio.TooSlowError``).
    """
    started = trio.current_time()
    with trio.fail_after(limit):
        for _ in itertools.count():
            if await check():
                return trio.current_time() - started
            await trio.sleep(POLL_INTERVAL)
    raise AssertionError("unreachable")


POLL_INTERVAL = 0.02
