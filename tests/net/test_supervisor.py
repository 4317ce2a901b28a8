"""``python -m gameserver --redis URL --workers 2``: the supervisor and its worker processes.

Real processes on 127.0.0.1, each test bounded by trio.fail_after; the supervisor is
stopped (SIGTERM, then SIGKILL) when a test ends, and its workers stop when their
supervisor is gone (EOF on their stdin pipe). The workers get a Redis URL nothing
listens on: they do not use Redis yet.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import coredis
import pytest
import trio

from protocol import CloseCode, Welcome, decode_server_message
from tests.redis_server import eventually

from .conftest import free_ports, get_request, hello, http_exchange, raw_ws, read_until_closed

pytestmark = [pytest.mark.network, pytest.mark.usefixtures("redis_for_module")]

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "gameserver"]
SHUTDOWN_TIMEOUT = 1.0
REDIS = "redis://127.0.0.1:1/0"
"""Replaced for each test by the session's real redis-server (``redis_for_module``)."""
REDIS_PREFIX = "gameserver"


"""Nothing listens there: the workers do not talk to Redis yet (the directory will)."""


@dataclass
class Stderr:
    """The supervisor's stderr (its log and its workers'), line by line as it arrives."""

    lines: list[str] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event)

    async def collect(self, stream: trio.abc.ReceiveStream) -> None:
        data = b""
        while chunk := await stream.receive_some():
            data += chunk
            *complete, rest = data.split(b"\n")
            data = rest
            self.lines.extend(line.decode() for line in complete)
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for(self, pattern: str) -> re.Match[str]:
        """The first line matching ``pattern``, waiting for it to be logged."""
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if match := re.search(pattern, line):
                    return match
            seen = len(self.lines)
            await self._changed.wait()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Cluster:
    process: trio.Process
    port: int
    direct: list[int]
    """Each worker's direct port, read from the start line."""
    stderr: Stderr


@asynccontextmanager
async def supervisor(*args: str, workers: int = 2) -> AsyncIterator[Cluster]:
    """Start the supervisor on free ports; yield once its start line is out; always stop it."""
    port = free_ports(workers + 1)
    process = await trio.lowlevel.open_process(
        [
            *COMMAND, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--redis", REDIS, "--redis-prefix", REDIS_PREFIX,
            "--shutdown-timeout", str(SHUTDOWN_TIMEOUT),
            "--log-level", "WARNING", *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    stderr = Stderr()
    try:
        async with trio.open_nursery() as nursery:
            assert process.stderr is not None and process.stdout is not None
            nursery.start_soon(stderr.collect, process.stderr)
            output = b""
            with trio.fail_after(15):
                while b"\n" not in output:
                    chunk = await process.stdout.receive_some()
                    assert chunk, f"supervisor ended before its start line: {stderr.text}"
                    output += chunk
            line = output.decode()
            assert line.startswith(f"gameserver listening on ws://127.0.0.1:{port}/"), line
            direct = [int(p) for p in re.findall(r"w\d+ ws://127\.0\.0\.1:(\d+)/", line)]
            yield Cluster(process, port, direct, stderr)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with trio.move_on_after(SHUTDOWN_TIMEOUT + 3):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    await stream.aclose()


async def healthz(port: int) -> dict[str, object]:
    response = await http_exchange(port, get_request(port, "/healthz"))
    assert response.status == 200
    document: dict[str, object] = json.loads(response.body)
    return document


async def pid_of(port: int) -> int:
    pid = (await healthz(port))["pid"]
    assert isinstance(pid, int)
    return pid


async def test_each_worker_answers_on_its_direct_port() -> None:
    """Two workers, two direct ports (port + 1, port + 2), two processes other than the
    supervisor."""
    with trio.fail_after(20):
        async with supervisor() as cluster:
            assert cluster.direct == [cluster.port + 1, cluster.port + 2]
            pids = [await pid_of(port) for port in cluster.direct]
            assert len(set(pids)) == 2
            assert cluster.process.pid not in pids


async def test_the_shared_port_reaches_both_workers() -> None:
    """40 connections to the shared port are spread over both workers by the kernel."""
    with trio.fail_after(20):
        async with supervisor() as cluster:
            workers = {await pid_of(port) for port in cluster.direct}
            seen = {await pid_of(cluster.port) for _ in range(40)}
            assert seen == workers


async def test_a_killed_worker_is_restarted_and_its_clients_are_cut() -> None:
    """SIGKILL to worker 0: its client's connection ends, the supervisor logs the signal
    and starts a new worker 0 (a new pid on the same direct port); worker 1 lives on;
    the directory forgets the dead worker's room within three heartbeats, and the
    player can join a room of that name again."""
    redis: coredis.Redis[str] = coredis.Redis.from_url(REDIS, decode_responses=True)
    room_key = f"{REDIS_PREFIX}:r:island"
    with trio.fail_after(20):
        async with redis, supervisor("--heartbeat-interval", "0.3") as cluster:
            w0, w1 = cluster.direct
            old, other = await pid_of(w0), await pid_of(w1)
            async with raw_ws(f"ws://127.0.0.1:{w0}/") as ws:
                await ws.send(hello("doomed", game="arena", room="island"))
                welcome = decode_server_message(await ws.recv())
                assert isinstance(welcome, Welcome) and welcome.room is not None
                assert await redis.exists([room_key]) == 1
                os.kill(old, signal.SIGKILL)
                closed = await read_until_closed(ws)
            assert closed.code is None  # no close frame: the process is gone

            async def forgotten() -> bool:
                return await redis.exists([room_key]) == 0

            assert await eventually(forgotten) <= 3 * 0.3 + 0.5
            await cluster.stderr.wait_for(r"worker w0 \(pid \d+\) died with signal SIGKILL")
            restarted = await cluster.stderr.wait_for(r"worker w0 restarted: pid (\d+) listening")
            new = await pid_of(w0)
            assert new == int(restarted.group(1)) != old
            assert await pid_of(w1) == other
            async with raw_ws(f"ws://127.0.0.1:{w1}/") as ws:
                await ws.send(hello("doomed", game="arena", room="island"))
                again = decode_server_message(await ws.recv())
            assert isinstance(again, Welcome) and again.room is not None


async def test_sigterm_closes_every_client_1001_and_exits_0_in_time() -> None:
    """SIGTERM to the supervisor: every client of every worker gets 1001, and the supervisor
    exits 0 within shutdown_timeout + 1 s."""
    with trio.fail_after(20):
        async with supervisor() as cluster:
            ports = [cluster.port] * 4 + cluster.direct
            codes: list[int | None] = []
            async with trio.open_nursery() as nursery:
                opened = trio.Semaphore(0)

                async def player(port: int, name: str) -> None:
                    async with raw_ws(f"ws://127.0.0.1:{port}/") as ws:
                        await ws.send(hello(name))
                        await ws.recv()  # welcome
                        opened.release()
                        codes.append((await read_until_closed(ws)).code)

                for i, port in enumerate(ports):
                    nursery.start_soon(player, port, f"p{i}")
                for _ in ports:
                    await opened.acquire()
                cluster.process.send_signal(signal.SIGTERM)
                signalled = trio.current_time()
                assert await cluster.process.wait() == 0
                elapsed = trio.current_time() - signalled
            assert codes == [CloseCode.GOING_AWAY] * len(ports)
            assert elapsed < SHUTDOWN_TIMEOUT + 1
            assert "Traceback" not in cluster.stderr.text


async def test_workers_stop_when_the_supervisor_is_killed() -> None:
    """SIGKILL to the supervisor: its workers see their stdin pipe close and close their
    clients 1001 instead of holding the ports as orphans."""
    with trio.fail_after(20):
        async with supervisor() as cluster:
            async with raw_ws(f"ws://127.0.0.1:{cluster.direct[1]}/") as ws:
                await ws.send(hello("orphan"))
                await ws.recv()  # welcome
                cluster.process.kill()
                closed = await read_until_closed(ws)
            assert closed.code == CloseCode.GOING_AWAY
            await cluster.stderr.wait_for(r"w0 .*the supervisor is gone")


async def test_a_worker_failing_with_2_at_start_stops_the_supervisor_with_2() -> None:
    """A worker exiting 2 (a configuration error) is not restarted: the supervisor stops
    the others and exits 2 at once."""
    port = free_ports(3)
    with trio.fail_after(20):
        result = await trio.run_process(
            [
                *COMMAND, "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
                "--redis", REDIS, "--redis-prefix", REDIS_PREFIX,
                "--game", "tests.net.worker_hooks:Clone",
            ],
            cwd=ROOT,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr
    assert result.stdout == b""
    assert "error: --game: worker_hooks refuses to load in a worker" in stderr
    assert "a configuration error): stopping" in stderr
    assert "restarting" not in stderr


@pytest.mark.parametrize(
    ("offset", "what"), [(0, "port"), (2, "w1's direct port")], ids=["shared", "direct"]
)
async def test_a_taken_port_is_one_error_line_and_exit_1(offset: int, what: str) -> None:
    """The shared port, or a worker's direct port, held by another process: one "error:"
    line naming it, exit 1, no worker started."""
    port = free_ports(3)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + offset))
        taken.listen()
        with trio.fail_after(10):
            result = await trio.run_process(
                [*COMMAND, "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
                 "--redis", REDIS, "--redis-prefix", REDIS_PREFIX],
                cwd=ROOT,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode().strip().splitlines() == [
        f"error: {what} {port + offset}: [Errno 98] Address already in use"
    ]
