"""One run of ``bench/versus.py``: a fresh server, the Node bots, and what the window cost.

A run starts one server (ours, or Colyseus from ``bench/colyseus/server.js``),
runs ``bench/colyseus/bots.mjs`` against it and samples, when the bots announce
that their measured window opens and closes: the server's CPU from
``/proc/PID/stat`` (utime and stime), its ``/healthz`` (tick counters and tick
durations; both servers answer it in the same form), and the whole machine's
CPU from ``/proc/stat``. What the rest of the machine used in the window (busy
time less the server's and the bots' CPU) decides whether the run is marked
contaminated.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from capacity import ROOT, start_server, stop_server

COLYSEUS = ROOT / "bench" / "colyseus"
NODE_MODULES = COLYSEUS / "node_modules"
INSTALL = "npm ci --legacy-peer-deps --prefix bench/colyseus"
CLK_TCK = os.sysconf("SC_CLK_TCK")
RATE = 30
"""Ticks and snapshots (patches) a second, on both servers."""


def bots_missing() -> str | None:
    """Why the bots cannot run at all (None when they can)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not any((d / "node_modules" / "ws").is_dir() for d in (COLYSEUS, ROOT / "clients/node")):
        return f"no npm packages for the bots: run `{INSTALL}` (or ./dev setup)"
    return None


def colyseus_missing() -> str | None:
    """Why Colyseus cannot run (None when it can)."""
    if not (NODE_MODULES / "@colyseus" / "core").is_dir():
        return f"the npm packages of bench/colyseus are not installed: run `{INSTALL}`"
    return None


def install_colyseus() -> None:
    """``npm ci`` bench/colyseus once, when npm is there and its packages are not."""
    if colyseus_missing() is None or shutil.which("npm") is None:
        return
    print(f"installing bench/colyseus: {INSTALL}", flush=True)
    subprocess.run(INSTALL.split(), cwd=ROOT, check=False, stdout=subprocess.DEVNULL)


def proc_cpu(pid: int) -> tuple[float, float]:
    """(user, kernel) CPU seconds of process ``pid``, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def machine_cpu() -> dict[str, float]:
    """The machine's CPU seconds since boot (all cores) from /proc/stat's first line."""
    with open("/proc/stat") as f:
        values = [int(v) / CLK_TCK for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return {
        "tasks": user + nice + system,
        "interrupts": irq + softirq,
        "steal": steal,
        "total": sum(values[:8]),
    }


def fetch_json(url: str) -> dict[str, Any] | None:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=3) as reply:
            document = json.loads(reply.read())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    server_cpu: tuple[float, float]
    own_cpu: float
    machine: dict[str, float]
    health: dict[str, Any]


def take_sample(pid: int, health_url: str) -> Sample:
    times = os.times()
    return Sample(
        time.monotonic(),
        proc_cpu(pid),
        times.user + times.system,
        machine_cpu(),
        fetch_json(health_url) or {},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(kind: str) -> tuple[subprocess.Popen[str], str, str]:
    """Start a server of ``kind``: the process, the bots' URL and its /healthz URL."""
    if kind == "ours":
        proc, url = start_server("ours")
        return proc, url, url.replace("ws://", "http://") + "healthz"
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(COLYSEUS / "server.js"), str(port)],
        cwd=COLYSEUS,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening" not in line:
        stop_server(proc)
        raise RuntimeError("the Colyseus server did not start")
    return proc, f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}/healthz"


def run_once(kind: str, clients: int, args: Any) -> dict[str, Any]:
    """One run: a fresh ``kind`` server, the bots, the window's figures."""
    proc, url, health_url = start(kind)
    bots: subprocess.Popen[str] | None = None
    try:
        command = [
            *("nice", "-n", str(args.bots_nice), "node", str(COLYSEUS / "bots.mjs")),
            *("--kind", kind, "--url", url, "--clients", str(clients)),
            *("--workers", str(args.workers), "--warmup", str(args.warmup)),
            *("--window", str(args.window), "--ack"),
        ]
        bots = subprocess.Popen(
            command,
            cwd=COLYSEUS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        # A bot process that hangs must not hang the bench: kill it past a generous deadline.
        deadline = clients / 10 + args.warmup + args.window + 60
        watchdog = threading.Timer(deadline, bots.kill)
        watchdog.daemon = True
        watchdog.start()
        before = after = None
        result: dict[str, Any] = {}
        assert bots.stdout is not None and bots.stdin is not None
        for line in bots.stdout:
            if line.startswith("WINDOW_START"):
                before = take_sample(proc.pid, health_url)
            elif line.startswith("WINDOW_END"):
                after = take_sample(proc.pid, health_url)
                bots.stdin.write("sampled\n")
                bots.stdin.close()
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
        bots.wait(timeout=30)
        watchdog.cancel()
    finally:
        if bots is not None and bots.poll() is None:
            bots.kill()
        stop_server(proc)
    if before is None or after is None or not result:
        raise RuntimeError(f"{kind}, N={clients}: the bots did not finish a window")
    return figures(kind, clients, before, after, result)


def figures(
    kind: str, clients: int, before: Sample, after: Sample, bots: dict[str, Any]
) -> dict[str, Any]:
    """The run's figures from the two samples and the bots' result."""
    window = after.at - before.at
    user = after.server_cpu[0] - before.server_cpu[0]
    kernel = after.server_cpu[1] - before.server_cpu[1]
    ticks_before, ticks_after = before.health.get("ticks", {}), after.health.get("ticks", {})
    rooms = int(after.health.get("rooms") or 0)
    room_ticks = int(ticks_after.get("total", 0)) - int(ticks_before.get("total", 0))
    players = int(after.health.get("players") or 0)
    # client·ticks = players x ticks per room in the window (every room ticks alike).
    client_ticks = players * room_ticks / rooms if rooms else 0.0
    per = 1e6 / client_ticks if client_ticks else None
    # Expected snapshots: one per client per tick, and at least the nominal 30 a second
    # (ticks a server skipped count as missed; Colyseus's timers run a little fast).
    # Over the bots' own window (their counters start and stop a few ms off the samples).
    seated = int(bots["seated_at_end"])
    ticks = int(ticks_after.get("patches", ticks_after.get("total", 0))) - int(
        ticks_before.get("patches", ticks_before.get("total", 0))
    )
    rate = max(RATE, ticks / rooms / window if rooms else 0.0)
    expected = seated * rate * float(bots["window_s"])
    machine = {k: after.machine[k] - before.machine[k] for k in after.machine}
    bots_cpu = bots["bots_cpu_pct_of_core"] / 100 * window
    own = after.own_cpu - before.own_cpu
    # Others = every task's CPU but the server's, the bots' and this script's. Interrupt
    # time (loopback TCP runs in softirq) is left out: it grows with the load under test.
    others = max(0.0, machine["tasks"] - user - kernel - bots_cpu - own)
    return {
        "kind": kind,
        "clients": clients,
        "players": players,
        "rooms": rooms,
        "window_s": round(window, 3),
        "ticks_per_s": round(room_ticks / rooms / window, 2) if rooms else None,
        "cpu_us_per_client_tick": round((user + kernel) * per, 2) if per else None,
        "cpu_us_user": round(user * per, 2) if per else None,
        "cpu_us_kernel": round(kernel * per, 2) if per else None,
        "cpu_pct_of_core": round(100 * (user + kernel) / window, 1),
        "tick_p99_ms": ticks_after.get("p99_ms"),
        "delivered_pct": round(100 * bots["frames"] / expected, 1) if expected else None,
        "on_time_pct": round(100 * bots["on_time"] / expected, 1) if expected else None,
        "jitter_mean_ms": bots.get("jitter_mean_ms"),
        "jitter_p99_ms": bots.get("jitter_p99_ms"),
        "bytes_per_frame": bots["bytes_per_frame"],
        "joined": bots["joined"],
        "bots_cpu_pct": bots["bots_cpu_pct_of_core"],
        "bots_lag_p99_ms": round(bots["bots_lag_p99_ms"], 1),
        "others_pct_of_core": round(100 * others / window, 1),
        "interrupts_pct_of_core": round(100 * machine["interrupts"] / window, 1),
        "steal_pct_of_core": round(100 * machine["steal"] / window, 1),
        "bots": bots,
    }
