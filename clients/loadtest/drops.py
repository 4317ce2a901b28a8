"""Dropped connections on purpose (``--drop-rate``), and how fast a bot gets its seat back.

A bot with drops scheduled cuts its own TCP connection at those times: a reset,
no close frame, the way Wi-Fi or a phone loses one. The server holds its seat
(PROTOCOL.md §5.12); the bot reconnects at once and says ``hello`` with its resume
token. What is measured (only inside the window):

- ``resume``: the cut → the ``welcome`` with ``resumed: true`` (TCP + WebSocket
  handshake + hello included): how long a player is away;
- counters ``drops``, ``resumes`` (the seat came back) and ``resume_failed`` (the
  server answered ``resume_failed`` and seated a fresh player).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import trio

from clients.loadtest.metrics import Metrics
from protocol import Welcome


def drop_times(
    seed: int, index: int, per_minute: float, start: float, end: float
) -> tuple[float, ...]:
    """When bot ``index`` cuts its connection: a Poisson process of ``per_minute`` in
    [start, end], from its own random stream (other plans are unchanged by it)."""
    if per_minute <= 0 or end <= start:
        return ()
    rng = random.Random(f"drop:{seed}:{index}")
    times = []
    at = start + rng.expovariate(per_minute / 60.0)
    while at < end:
        times.append(at)
        at += rng.expovariate(per_minute / 60.0)
    return tuple(times)


@dataclass(slots=True)
class ResumeState:
    """One bot's pending resume: the token of the connection it cut, and when."""

    token: str | None = None
    url: str | None = None
    """Where to resume: the worker that holds the seat, in a cluster (else the bot's URL)."""
    dropped_at: float = 0.0
    next_drop: int = 0
    """Index into the plan's drop times of the next one to do."""

    def take_token(self) -> str | None:
        token, self.token = self.token, None
        return token

    def after_welcome(self, welcome: Welcome, sent_token: str | None, metrics: Metrics) -> None:
        """Record how the hello that carried ``sent_token`` ended."""
        if sent_token is None or not metrics.recording:
            return
        if welcome.resumed:
            metrics.count("resumes")
            metrics.record("resume", trio.current_time() - self.dropped_at)
        else:
            metrics.count("resume_failed")
