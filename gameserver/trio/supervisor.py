"""The supervisor: ``python -m gameserver --redis URL`` runs a host's worker processes.

It checks the ports can be bound, starts ``workers`` processes (``python -m
gameserver <the same arguments> --worker-index i``), prints one line once all
are listening (the URL to play, each worker's direct URL), and restarts a
worker that dies (``gameserver.cluster.restarts``: backoff, and a worker exiting
2, a configuration error, stops the supervisor with 2 instead). SIGINT or
SIGTERM sends SIGTERM to every worker (each closes its clients 1001 within
``shutdown_timeout``) and exits 0 within ``shutdown_timeout`` + 1 s, SIGKILLing
any worker still alive by then.

Each worker reads the pipe on its stdin and stops when the supervisor goes
away (``gameserver/__main__.py``); its first stdout line says it is listening.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence

import trio

from ..cluster import direct_port, worker_url
from ..cluster.restarts import CONFIG_ERROR, RestartBackoff, Stop, describe_exit
from ..settings import Settings

log = logging.getLogger("gameserver.supervisor")

KILL_MARGIN = 0.5
"""Seconds past ``shutdown_timeout`` a worker gets to exit after SIGTERM before SIGKILL
(the supervisor must be gone by ``shutdown_timeout`` + 1 s)."""


def worker_name(index: int) -> str:
    """``w0``, ``w1``, …: how logs and the start line name a worker."""
    return f"w{index}"


async def check_ports(settings: Settings) -> str | None:
    """Bind (then release) the shared port and every direct port, as a lone server would;
    the error line to print, or None when all are free.

    A plain bind, without SO_REUSEPORT: a port some other process listens on, even
    another cluster's workers, must be refused rather than shared with it.
    """
    ports = [("port", settings.port)]
    if settings.workers > 1:
        if settings.port == 0:
            return "error: workers > 1 needs a fixed --port (the one the workers share)"
        ports += [
            (f"{worker_name(i)}'s direct port", direct_port(settings, i, settings.port))
            for i in range(settings.workers)
        ]
    for what, port in ports:
        try:
            listeners = await trio.open_tcp_listeners(port, host=settings.host)
        except OSError as exc:
            return f"error: {what} {port}: {exc}"
        for listener in listeners:
            await listener.aclose()
    return None


def start_line(settings: Settings) -> str:
    """The line printed once every worker listens: where to play, where each worker is."""
    local = settings.host in ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost")
    page_host = "localhost" if local else settings.host
    scheme = "https" if settings.certfile else "http"
    # public_url names the workers, not the shared port: that is HOST:port.
    host = socket.gethostname()
    shared = worker_url(dataclasses.replace(settings, public_url=None), 0, settings.port, host)
    workers = "  ".join(
        f"{worker_name(i)} {worker_url(settings, i, direct_port(settings, i, settings.port), host)}"
        for i in range(settings.workers)
    )
    return (
        f"gameserver listening on {shared}  (play: {scheme}://{page_host}:{settings.port}/)"
        f"  {settings.workers} worker(s): {workers}"
    )


class Supervisor:
    """Runs the worker processes of one host until a signal or a configuration error."""

    def __init__(self, settings: Settings, argv: Sequence[str]) -> None:
        self.settings = settings
        self.argv = list(argv)
        """The command line given to the supervisor, passed on to each worker."""
        self.processes: dict[int, trio.Process] = {}
        """The live worker process of each slot."""
        self.exit_code: int | None = None
        """Set once the supervisor stops: 0 on a signal, 2 on a worker's configuration error."""
        self._stop = trio.Event()
        self._ready = [trio.Event() for _ in range(settings.workers)]

    def command(self, index: int) -> list[str]:
        return [sys.executable, "-m", "gameserver", *self.argv, "--worker-index", str(index)]

    def stop(self, code: int) -> None:
        if self.exit_code is None:
            self.exit_code = code
        self._stop.set()

    async def run(self) -> int:
        """Start the workers, supervise them, stop them; the exit code."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                for index in range(self.settings.workers):
                    nursery.start_soon(self._run_slot, index, name=f"slot:{worker_name(index)}")
                nursery.start_soon(self._announce)
                nursery.start_soon(self._on_signal, signals)
                await self._stop.wait()
                await self._stop_workers()
                nursery.cancel_scope.cancel()
        assert self.exit_code is not None
        return self.exit_code

    async def _on_signal(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            log.info("received %s: stopping the workers", signal.Signals(signum).name)
            self.stop(0)

    async def _announce(self) -> None:
        for ready in self._ready:
            await ready.wait()
        print(start_line(self.settings), flush=True)

    async def _run_slot(self, index: int) -> None:
        """Keep worker ``index`` running: start it, wait for it, restart it after a backoff."""
        backoff = RestartBackoff()
        restarts = 0
        while True:
            process = await trio.lowlevel.open_process(
                self.command(index), stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
            self.processes[index] = process
            backoff.started(trio.current_time())
            try:
                if self._stop.is_set():
                    return  # stopped while it was starting: the finally ends it
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read_stdout, index, process, restarts)
                    returncode = await process.wait()
            finally:
                del self.processes[index]
                if process.returncode is None:
                    # Cancelled (the supervisor is stopping): never leave a worker behind.
                    process.kill()
                    with trio.CancelScope(shield=True):
                        await process.wait()
            if self._stop.is_set():
                return
            ever_ready = self._ready[index].is_set()
            decision = backoff.exited(trio.current_time(), returncode, ever_ready=ever_ready)
            if isinstance(decision, Stop):
                log.error(
                    "worker %s (pid %d) failed with %s (a configuration error): stopping",
                    worker_name(index), process.pid, describe_exit(returncode),
                )  # fmt: skip
                self.stop(decision.code)
                return
            log.warning(
                "worker %s (pid %d) died with %s: restarting it in %.1f s",
                worker_name(index), process.pid, describe_exit(returncode), decision.delay,
            )  # fmt: skip
            await trio.sleep(decision.delay)
            restarts += 1

    async def _read_stdout(self, index: int, process: trio.Process, restarts: int) -> None:
        """The worker's first line means it listens; what it prints later is passed on."""
        assert process.stdout is not None
        async with process.stdout:
            data = b""
            while b"\n" not in data:
                chunk = await process.stdout.receive_some()
                if not chunk:
                    return  # it died before listening: _run_slot sees its exit
                data += chunk
            rest: bytes | bytearray
            _, _, rest = data.partition(b"\n")
            if restarts:
                name = worker_name(index)
                log.warning("worker %s restarted: pid %d listening", name, process.pid)
            self._ready[index].set()
            # What it prints later (a game's print() included) reaches the supervisor's
            # stdout; the pipe stays open until the worker ends, or its writes would fail.
            while True:
                if rest:
                    sys.stdout.buffer.write(rest)
                    sys.stdout.flush()
                rest = await process.stdout.receive_some()
                if not rest:
                    return

    async def _stop_workers(self) -> None:
        """SIGTERM every worker; SIGKILL those still alive ``shutdown_timeout`` + margin later."""
        processes = list(self.processes.values())
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        with trio.move_on_after(self.settings.shutdown_timeout + KILL_MARGIN):
            for process in processes:
                await process.wait()
        for process in processes:
            if process.returncode is None:
                log.warning("worker pid %d still alive: SIGKILL", process.pid)
                process.kill()
        for process in processes:
            await process.wait()
        for process in processes:
            if process.stdin is not None:
                await process.stdin.aclose()


async def supervise(settings: Settings, argv: Sequence[str]) -> int:
    """``python -m gameserver`` with ``redis``: run the host's workers; the exit code.

    ``argv`` is the command line given (the workers get it, plus ``--worker-index``).
    """
    error = await check_ports(settings)
    if error is not None:
        print(error, file=sys.stderr)
        return 1
    from .directory import check_redis  # coredis: imported only where Redis is used

    error = await check_redis(settings)
    if error is not None:
        # Every worker would fail the same way: say it once, before starting any.
        print(f"error: {error}", file=sys.stderr)
        return CONFIG_ERROR
    argv = list(argv)
    if settings.port == 0:
        # One worker on a free port: pick it here, so the start line can name it.
        listeners = await trio.open_tcp_listeners(0, host=settings.host)
        port = int(listeners[0].socket.getsockname()[1])
        for listener in listeners:
            await listener.aclose()
        settings = dataclasses.replace(settings, port=port)
        argv += ["--port", str(port)]
    return await Supervisor(settings, argv).run()
