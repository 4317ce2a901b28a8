"""The parent process: start worker processes, start them together, sample the server, merge.

Workers are started with the ``spawn`` context (a clean interpreter each, no
inherited trio state). Each gets every P-th bot index, so a ramp-up spreads
over all of them. When all are ready the parent sends one start instant on the
system-wide monotonic clock; it samples the server (/healthz, psutil) when the
measured window opens and closes, collects progress for the display, and merges
the workers' metrics (HDR histograms add without losing percentiles).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from clients.loadtest.metrics import Metrics
from clients.loadtest.plan import BotSettings
from clients.loadtest.server import ServerSample, fetch_health, sample
from clients.loadtest.worker import CLOSE_GRACE, WorkerSpec, worker_main

START_MARGIN = 0.3
"""Seconds between the go message and t0, so every worker gets it before t0."""
READY_TIMEOUT = 60.0
RESULT_TIMEOUT = 30.0
"""Seconds after the window (past the close grace) to wait for results before killing."""


@dataclass(frozen=True, slots=True)
class LoadTestConfig:
    url: str
    bots: int = 200
    duration: float = 60.0
    procs: int = 1
    game: str = "arena"
    room_size: int = 0
    ramp_up: float = 5.0
    input_rate: float = 10.0
    chat_interval: float = 20.0
    churn: float = 0.1
    drop_rate: float = 0.0
    """Connection cuts per bot per minute (then a resume), in the window."""
    slow_fraction: float = 0.0
    slow_after: float = 1.0
    slow_rcvbuf: int = 0
    seed: int = 1
    server_pid: int | None = None
    max_failure_rate: float = 0.05
    open_timeout: float = 10.0
    fast_decode: bool = True
    lean: bool = False
    deltas: bool = True
    """Bots ask for delta snapshots and acknowledge every snapshot (PROTOCOL.md §5.6)."""
    ack_every_snapshot: bool = True
    """With deltas: an ``ack`` for each snapshot no input carries; False: inputs' acks only."""
    server_urls: tuple[str, ...] = ()
    """More servers whose /healthz to sample with the window (a cluster's workers)."""

    def bot_settings(self) -> BotSettings:
        return BotSettings(
            url=self.url,
            game=self.game,
            input_rate=self.input_rate,
            chat_interval=self.chat_interval,
            open_timeout=self.open_timeout,
            fast_decode=self.fast_decode,
            lean=self.lean,
            deltas=self.deltas,
            ack_every_snapshot=self.ack_every_snapshot,
            slow_rcvbuf=self.slow_rcvbuf,
        )

    def worker_specs(self) -> list[WorkerSpec]:
        procs = max(1, min(self.procs, self.bots))
        return [
            WorkerSpec(
                worker_id=w,
                indices=tuple(range(w, self.bots, procs)),
                total_bots=self.bots,
                settings=self.bot_settings(),
                ramp_up=self.ramp_up,
                duration=self.duration,
                seed=self.seed,
                room_size=self.room_size,
                churn=self.churn,
                drop_rate=self.drop_rate,
                slow_fraction=self.slow_fraction,
                slow_after=self.slow_after,
            )
            for w in range(procs)
        ]


@dataclass(slots=True)
class Progress:
    """What the live display shows; updated by the parent loop."""

    config: LoadTestConfig
    started: float
    window_start: float
    window_end: float
    workers: dict[int, dict[str, Any]] = field(default_factory=dict)
    health: dict[str, Any] | None = None
    phase: str = "starting"

    def total(self, key: str) -> float:
        return sum(float(w.get(key, 0)) for w in self.workers.values())

    def max(self, key: str) -> float:
        return max((float(w.get(key, 0)) for w in self.workers.values()), default=0.0)


@dataclass(slots=True)
class RunResult:
    metrics: Metrics
    workers: int
    server_before: ServerSample | None
    server_after: ServerSample | None
    crashes: list[str]
    interrupted: bool
    elapsed_s: float
    window_s: float
    """The measured window as it ran (shorter than asked when interrupted)."""
    servers_before: list[ServerSample] = field(default_factory=list)
    servers_after: list[ServerSample] = field(default_factory=list)
    """The same instants for each of ``config.server_urls``, in order."""


def merge_results(wires: list[dict[str, Any]]) -> Metrics:
    """Merge the workers' metrics (what the parent does with their results)."""
    return Metrics.merged(wires)


def run_pool(
    config: LoadTestConfig,
    on_progress: Callable[[Progress], None] = lambda p: None,
    health_every: float = 2.0,
) -> RunResult:
    """Run the load test across ``config.procs`` processes; blocks until done."""
    ctx = multiprocessing.get_context("spawn")
    specs = config.worker_specs()
    conns: dict[int, multiprocessing.connection.Connection] = {}
    procs: list[Any] = []
    for spec in specs:
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(
            target=worker_main, args=(child_end, spec), name=f"loadtest-{spec.worker_id}"
        )
        proc.daemon = True
        proc.start()
        child_end.close()
        conns[spec.worker_id] = parent_end
        procs.append(proc)
    started = time.monotonic()
    results: dict[int, dict[str, Any]] = {}
    crashes: list[str] = []
    interrupted = False
    before: ServerSample | None = None
    after: ServerSample | None = None
    servers_before: list[ServerSample] = []
    servers_after: list[ServerSample] = []
    window_start = window_end = stopped_at = 0.0
    try:
        _wait_ready(conns, crashes)
        t0 = time.monotonic() + START_MARGIN
        for conn in conns.values():
            conn.send(("go", t0))
        window_start = t0 + config.ramp_up
        window_end = window_start + config.duration
        progress = Progress(config, t0, window_start, window_end)
        deadline = window_end + CLOSE_GRACE + RESULT_TIMEOUT
        next_health = time.monotonic()
        pending = set(conns)
        while pending and time.monotonic() < deadline:
            try:
                ready = multiprocessing.connection.wait([conns[w] for w in pending], timeout=0.25)
                for ready_conn in ready:
                    conn = cast(multiprocessing.connection.Connection, ready_conn)
                    wid = next(w for w, c in conns.items() if c is conn)
                    if not _receive(conn, wid, progress, results, crashes):
                        pending.discard(wid)
                now = time.monotonic()
                if before is None and now >= window_start:
                    before = sample(config.url, config.server_pid)
                    servers_before = [sample(url, None) for url in config.server_urls]
                    progress.phase = "measuring"
                if after is None and now >= window_end:
                    after = sample(config.url, config.server_pid)
                    servers_after = [sample(url, None) for url in config.server_urls]
                    progress.phase = "closing"
                    progress.health = after.health
                elif now >= next_health and after is None:
                    progress.health = fetch_health(config.url, timeout=1.0)
                    next_health = now + health_every
                if progress.phase == "starting" and now >= t0:
                    progress.phase = "ramping up"
                on_progress(progress)
            except KeyboardInterrupt:
                interrupted = True
                stopped_at = time.monotonic()
                if after is None and before is not None:
                    after = sample(config.url, config.server_pid)
                    servers_after = [sample(url, None) for url in config.server_urls]
                for conn in conns.values():
                    with contextlib.suppress(OSError):
                        conn.send(("stop",))
                deadline = min(deadline, time.monotonic() + CLOSE_GRACE + 5.0)
        for wid in pending:
            crashes.append(f"worker {wid}: no result in time")
    finally:
        for proc in procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5.0)
        for conn in conns.values():
            conn.close()
    return RunResult(
        metrics=merge_results(list(results.values())),
        workers=len(specs),
        server_before=before,
        server_after=after,
        crashes=crashes,
        interrupted=interrupted,
        elapsed_s=time.monotonic() - started,
        window_s=max(0.0, min(window_end, stopped_at or window_end) - window_start),
        servers_before=servers_before,
        servers_after=servers_after,
    )


def _wait_ready(
    conns: dict[int, multiprocessing.connection.Connection], crashes: list[str]
) -> None:
    waiting = set(conns)
    deadline = time.monotonic() + READY_TIMEOUT
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"workers {sorted(waiting)} did not start in {READY_TIMEOUT} s")
        for ready_conn in multiprocessing.connection.wait(
            [conns[w] for w in waiting], timeout=left
        ):
            conn = cast(multiprocessing.connection.Connection, ready_conn)
            wid = next(w for w, c in conns.items() if c is conn)
            try:
                message = conn.recv()
            except EOFError:
                raise RuntimeError(f"worker {wid} exited while starting") from None
            if message[0] == "crash":
                raise RuntimeError(f"worker {wid} crashed while starting:\n{message[2]}")
            waiting.discard(wid)


def _receive(
    conn: multiprocessing.connection.Connection,
    wid: int,
    progress: Progress,
    results: dict[int, dict[str, Any]],
    crashes: list[str],
) -> bool:
    """Handle one message; False once this worker is finished (result, crash or gone)."""
    try:
        message = conn.recv()
    except (EOFError, OSError):
        crashes.append(f"worker {wid}: exited without a result")
        return False
    kind = message[0]
    if kind == "progress":
        progress.workers[wid] = message[2]
        return True
    if kind == "result":
        results[wid] = message[2]
        return False
    if kind == "crash":
        crashes.append(f"worker {wid} crashed:\n{message[2]}")
        return False
    return True
