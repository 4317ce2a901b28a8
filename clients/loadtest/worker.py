"""One load-test worker process: its share of the bots under trio, metrics back to the parent.

Protocol over the worker's pipe (pickled tuples):

- worker → parent ``("ready", wid)`` once imports are done;
- parent → worker ``("go", t0)`` with ``t0`` on the system-wide monotonic clock
  (``time.monotonic()``), the same instant for every worker; or ``("stop",)``;
- worker → parent ``("progress", wid, {...})`` about once a second;
- parent → worker ``("stop",)`` at any time: end early (Ctrl-C);
- worker → parent ``("result", wid, metrics_wire)`` or ``("crash", wid, text)``.

Bot ``i`` of ``N`` starts at ``t0 + ramp_up * i / N``; the measured window is
``[t0 + ramp_up, t0 + ramp_up + duration]``, after which every bot closes 1000.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import trio

from clients.bots import Bot
from clients.loadtest.drops import drop_times
from clients.loadtest.metrics import Metrics
from clients.loadtest.plan import BotPlan, BotSettings, Timeline
from gameserver.trio.poller import ReadPoller
from gameserver.trio.poller import available as poller_available
from gameserver.trio.timers import TimerWheel

CLOSE_GRACE = 6.0
"""Seconds after the window for bots to close politely (frozen bots drain first)."""
LAG_PROBE_INTERVAL = 0.01
PACER_SLACK = 0.002
"""Seconds a bot's input may be late, so that inputs due close together share one
wake-up of the shared pacer (an input is timed from that wake-up, at most a few
milliseconds before it is written)."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything one worker needs; picklable for the spawn context."""

    worker_id: int
    indices: tuple[int, ...]
    total_bots: int
    settings: BotSettings
    ramp_up: float
    duration: float
    seed: int
    room_size: int = 0
    room_prefix: str = "load"
    churn: float = 0.0
    drop_rate: float = 0.0
    slow_fraction: float = 0.0
    slow_after: float = 1.0


def slow_bots(total: int, fraction: float, seed: int) -> frozenset[int]:
    """Which bot indices freeze: the same choice in every worker, from the seed."""
    count = round(total * fraction)
    return frozenset(random.Random(f"slow:{seed}").sample(range(total), count))


def plan_bots(spec: WorkerSpec, t0: float, timeline: Timeline) -> list[BotPlan]:
    """Each bot's script, deterministic given the seed and the bot's index."""
    frozen = slow_bots(spec.total_bots, spec.slow_fraction, spec.seed)
    plans = []
    for i in spec.indices:
        rng = random.Random(f"plan:{spec.seed}:{i}")
        room = f"{spec.room_prefix}-{i // spec.room_size + 1}" if spec.room_size else None
        churn_at: float | None = None
        span = timeline.window_end - timeline.window_start
        earliest, latest = timeline.window_start + 0.2 * span, timeline.window_start + 0.7 * span
        if rng.random() < spec.churn and latest > earliest:
            churn_at = rng.uniform(earliest, latest)
        plans.append(
            BotPlan(
                index=i,
                start_at=t0 + spec.ramp_up * i / max(1, spec.total_bots),
                room=room,
                churn_at=churn_at,
                churn_reconnect=rng.random() < 0.5,
                slow_at=timeline.window_start + spec.slow_after if i in frozen else None,
                drops=()
                if i in frozen
                else drop_times(
                    spec.seed, i, spec.drop_rate, earliest, timeline.window_end - 0.1 * span
                ),
            )
        )
    return plans


class _Probe:
    """Event-loop lag of this process: how late a 10 ms sleep wakes up."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.recent_max = 0.0

    async def run(self) -> None:
        while True:
            before = trio.current_time()
            await trio.sleep(LAG_PROBE_INTERVAL)
            lag = trio.current_time() - before - LAG_PROBE_INTERVAL
            self.recent_max = max(self.recent_max, lag)
            if self.metrics.recording:
                self.metrics.record("loop_lag", lag)


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


async def _window(metrics: Metrics, timeline: Timeline) -> None:
    """Record only inside the window; note this process's CPU time over it."""
    await trio.sleep_until(timeline.window_start)
    cpu = _cpu_seconds()
    metrics.recording = True
    await trio.sleep_until(timeline.window_end)
    metrics.recording = False
    metrics.add_float("window_s", timeline.window_end - timeline.window_start)
    metrics.add_float("bot_cpu_s", _cpu_seconds() - cpu)


async def _progress(
    conn: Connection, wid: int, bots: list[Bot], metrics: Metrics, probe: _Probe
) -> None:
    while True:
        await trio.sleep(1.0)
        conn.send(
            (
                "progress",
                wid,
                {
                    "connected": sum(b.connected for b in bots),
                    "in_room": sum(b.in_room for b in bots),
                    "joined": metrics.counters["bots_joined"],
                    "snapshots": metrics.counters["snapshots"],
                    "connect_failures": metrics.counters["connect_failures"],
                    "dropped": metrics.counters["dropped"],
                    "lag_ms": round(probe.recent_max * 1000, 1),
                },
            )
        )
        probe.recent_max = 0.0


async def _watch_for_stop(conn: Connection, scope: trio.CancelScope) -> None:
    while True:
        await trio.lowlevel.wait_readable(conn.fileno())
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone: stop
            message = ("stop",)
        if message[0] == "stop":
            scope.cancel()
            return


async def run_worker(conn: Connection, spec: WorkerSpec, t0_monotonic: float) -> dict[str, Any]:
    """Run this worker's bots through the timeline; return its metrics (wire form)."""
    to_trio = trio.current_time() - time.monotonic()
    t0 = t0_monotonic + to_trio
    window_start = t0 + spec.ramp_up
    timeline = Timeline(window_start, window_start + spec.duration)
    metrics = Metrics()
    poller = ReadPoller() if poller_available() else None
    pacer = TimerWheel(slack=PACER_SLACK)
    bots = [
        Bot(
            plan,
            spec.settings,
            timeline,
            metrics,
            random.Random(f"bot:{spec.seed}:{plan.index}"),
            poller,
            pacer,
        )
        for plan in plan_bots(spec, t0, timeline)
    ]
    metrics.count("bots", len(bots))
    probe = _Probe(metrics)
    async with trio.open_nursery() as nursery:
        if poller is not None:
            nursery.start_soon(poller.run)
        nursery.start_soon(pacer.run)
        nursery.start_soon(probe.run)
        nursery.start_soon(_window, metrics, timeline)
        nursery.start_soon(_progress, conn, spec.worker_id, bots, metrics, probe)
        with trio.move_on_at(timeline.window_end + CLOSE_GRACE) as bots_scope:
            nursery.start_soon(_watch_for_stop, conn, bots_scope)
            async with trio.open_nursery() as bot_nursery:
                for bot in bots:
                    bot_nursery.start_soon(bot.run, name=f"bot{bot.plan.index}")
        if bots_scope.cancelled_caught:
            metrics.count("bots_cut_short", sum(b.connected for b in bots))
        metrics.recording = False
        nursery.cancel_scope.cancel()
    return metrics.to_wire()


def worker_main(conn: Connection, spec: WorkerSpec) -> None:
    """Process entry point (spawn context). The parent handles Ctrl-C and tells us to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        conn.send(("ready", spec.worker_id))
        message = conn.recv()
        if message[0] != "go":
            return
        wire = trio.run(run_worker, conn, spec, float(message[1]))
        conn.send(("result", spec.worker_id, wire))
    except (EOFError, BrokenPipeError):
        pass  # the parent went away
    except BaseException:
        with contextlib.suppress(OSError):
            conn.send(("crash", spec.worker_id, traceback.format_exc()))
    finally:
        conn.close()
