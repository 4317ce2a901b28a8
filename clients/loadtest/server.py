"""The server's side of a load test: ``/healthz`` (and psutil, given a pid) before and after.

The game server's ``GET /healthz`` reports its pid, connections, players,
rooms, tick counters and percentiles, and its process CPU time. The load tester
samples it when the measured window opens and when it closes and reports the
difference. With ``--server-pid`` the CPU time comes from the process itself
(``psutil``; works for any server on this machine, with or without /healthz).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import psutil  # type: ignore[import-untyped]


def healthz_url(ws_url: str) -> str:
    """``ws://host:port/…`` → ``http://host:port/healthz`` (wss → https)."""
    parts = urllib.parse.urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urllib.parse.urlunsplit((scheme, parts.netloc, "/healthz", "", ""))


def fetch_health(ws_url: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """The server's /healthz statistics, or None if it has none or does not answer.

    Our server shows them only to loopback clients unless it runs with
    ``--public-stats``; from elsewhere the document is just a status, taken as none.
    """
    try:
        with urllib.request.urlopen(healthz_url(ws_url), timeout=timeout) as reply:
            document = json.loads(reply.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    if not isinstance(document, dict) or "ticks" not in document:
        return None
    return document


def process_cpu(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of process ``pid`` (None if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.Error, OSError):
        return None
    return float(times.user), float(times.system)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, since boot."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = float(sum(times))
    return total - idle, total


@dataclass(frozen=True, slots=True)
class ServerSample:
    at: float
    """time.monotonic() of the sample."""
    health: dict[str, Any] | None
    pid_cpu_s: tuple[float, float] | None
    """(user, system) CPU seconds of the process, when a pid was given."""
    machine: tuple[float, float]
    """(busy, total) CPU seconds of this machine: is it saturated?"""


def sample(ws_url: str, pid: int | None) -> ServerSample:
    health = fetch_health(ws_url)
    cpu = process_cpu(pid) if pid is not None else None
    return ServerSample(time.monotonic(), health, cpu, machine_cpu())


def machine_report(before: ServerSample | None, after: ServerSample | None) -> dict[str, Any]:
    """How busy this machine's cores were in the window (server, bots and everything else)."""
    import os

    cores = os.cpu_count() or 1
    if before is None or after is None:
        return {"cores": cores, "busy_pct": None}
    busy = after.machine[0] - before.machine[0]
    total = after.machine[1] - before.machine[1]
    return {"cores": cores, "busy_pct": round(100 * busy / total, 1) if total > 0 else None}


def _cpu_of(s: ServerSample) -> tuple[float, float] | None:
    """(user, system) CPU seconds of the server at this sample."""
    if s.pid_cpu_s is not None:
        return s.pid_cpu_s
    if s.health is not None and isinstance(s.health.get("cpu_s"), dict):
        cpu = s.health["cpu_s"]
        return float(cpu.get("user", 0.0)), float(cpu.get("system", 0.0))
    return None


def server_report(before: ServerSample | None, after: ServerSample | None) -> dict[str, Any] | None:
    """What the server did in the window: CPU, µs per client·tick, ticks, players.

    ``us_per_client_tick`` = CPU seconds x 1e6 / (players x tick_rate x window
    seconds): the server's whole CPU cost per player per tick, the figure of
    the standard workload. ``us_per_client_tick_kernel`` is the part of it spent
    in the kernel (system time: mostly the socket writes and reads, which any
    server design pays). Tick percentiles are the server's own (its recent
    window, worst room). None when neither /healthz nor a pid answered.
    """
    if before is None or after is None:
        return None
    pids = {(s.health or {}).get("pid") for s in (before, after)}
    if after.pid_cpu_s is None and len(pids) > 1:
        # A cluster's shared port hands each request to any worker: these two samples
        # are two processes, and no figure can be made of them.
        return {
            "unavailable": "a cluster: /healthz on a shared port answers from any one worker;"
            " give --server-pid of one worker, or measure each worker on its direct port"
        }
    window = after.at - before.at
    cpu_before, cpu_after = _cpu_of(before), _cpu_of(after)
    if window <= 0 or (after.health is None and cpu_after is None):
        return None
    report: dict[str, Any] = {"window_s": round(window, 3)}
    report["cpu_source"] = "pid" if after.pid_cpu_s is not None else "healthz"
    cpu_s = system_s = None
    if cpu_before is not None and cpu_after is not None:
        system_s = cpu_after[1] - cpu_before[1]
        cpu_s = cpu_after[0] - cpu_before[0] + system_s
        report["cpu_s"] = round(cpu_s, 3)
        report["cpu_system_s"] = round(system_s, 3)
        report["cpu_pct_of_core"] = round(100 * cpu_s / window, 1)
    health = after.health
    if health is None:
        return report
    ticks_after = health.get("ticks") or {}
    ticks_before = (before.health or {}).get("ticks") or {}
    tick_rate = int(health.get("tick_rate") or 30)
    players = int(health.get("players") or 0)
    players_before = int((before.health or {}).get("players") or players)
    mean_players = (players + players_before) / 2
    report.update(
        {
            "pid": health.get("pid"),
            "connections": health.get("connections"),
            "players": players,
            "players_at_start": players_before,
            "rooms": health.get("rooms"),
            "tick_rate": tick_rate,
            "tick_budget_ms": round(1000 / tick_rate, 3),
            "room_ticks": int(ticks_after.get("total", 0)) - int(ticks_before.get("total", 0)),
            "ticks_overrun": int(ticks_after.get("overruns", 0))
            - int(ticks_before.get("overruns", 0)),
            "ticks_skipped": int(ticks_after.get("skipped", 0))
            - int(ticks_before.get("skipped", 0)),
            "tick_p50_ms": ticks_after.get("p50_ms"),
            "tick_p99_ms": ticks_after.get("p99_ms"),
            "tick_max_ms": ticks_after.get("max_ms"),
        }
    )
    if "stalled" in ticks_after:  # the baseline server reports ticks stuck in progress
        report["rooms_stalled"] = ticks_after["stalled"]
        report["stalled_max_ms"] = ticks_after.get("stalled_max_ms")
    p99 = ticks_after.get("p99_ms")
    if isinstance(p99, int | float):
        report["tick_p99_pct_of_budget"] = round(100 * p99 * tick_rate / 1000, 1)
    if cpu_s is not None and system_s is not None and mean_players > 0:
        client_ticks = mean_players * tick_rate * window
        report["us_per_client_tick"] = round(cpu_s * 1e6 / client_ticks, 2)
        report["us_per_client_tick_kernel"] = round(system_s * 1e6 / client_ticks, 2)
    report.update(_delta_costs(before.health, health))
    return report


def _room_sums(health: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, int] | None:
    """``keys`` summed over /healthz's room list (None when it has none of them)."""
    rooms = (health or {}).get("room_list")
    if not isinstance(rooms, list) or not any(keys[0] in r for r in rooms):
        return None
    return {key: sum(int(r.get(key) or 0) for r in rooms) for key in keys}


def _delta_costs(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """Delta encodes (patches computed: one per audience and base per tick) in the window,
    and per room snapshot tick, from the rooms of /healthz (listed while they exist)."""
    keys = ("delta_encodes", "snapshot_ticks")
    sums = _room_sums(before, keys), _room_sums(after, keys)
    if sums[0] is None or sums[1] is None:
        return {}
    encodes = sums[1]["delta_encodes"] - sums[0]["delta_encodes"]
    ticks = sums[1]["snapshot_ticks"] - sums[0]["snapshot_ticks"]
    return {
        "delta_encodes": encodes,
        "snapshot_ticks": ticks,
        "delta_encodes_per_snapshot_tick": round(encodes / ticks, 3) if ticks > 0 else None,
    }
