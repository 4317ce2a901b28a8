"""What one load-test bot measures, into its worker's shared metrics.

A :class:`BotMeasures` belongs to one :class:`clients.bots.Bot`, which tells it
what happens (a join, seated, a snapshot, inputs due, out of the room) and
records the rest itself (connection attempts, ``connect``, errors, acks).

What each bot measures goes into the worker's shared
:class:`~clients.loadtest.metrics.Metrics` (histograms in µs):

- ``connect``: TCP + WebSocket handshake; ``join``: hello → welcome with a seat
  (or join → joined), split into ``join_direct`` and ``join_redirected``: a join
  answered with a ``redirect`` (PROTOCOL.md §5.11) is followed by the client,
  and its time includes the second connection and hello. Counters
  ``joins_redirected`` and ``redirect_hops``.
- ``rtt_server``: the server's RTT for this bot (``snapshot.rtt_us``), sampled
  once per answered ping. ``rtt_bot``: input ``seq`` N sent → first snapshot
  whose ``ack`` ≥ N. It includes the wait for the next server tick.
- ``interarrival``: time between consecutive snapshots while seated.
  ``jitter``: ``|interarrival - 1/snapshot_rate|`` per snapshot (report its mean
  as *the* jitter; its p99 shows the bad moments).
- ``lateness``: ``arrival - tick/tick_rate`` minus the smallest such offset this
  bot has seen. The server's tick grid is the schedule, so this is how late a
  snapshot arrived against its own tick, whatever the clocks' origin. A snapshot
  is *on time* when its lateness is at most one snapshot interval.
- Counters: snapshots received and expected (``snapshot_rate`` x seconds seated
  inside the measured window), inputs, chats, acks, bytes in/out (WebSocket payloads),
  connection attempts/failures, and errors by kind (``connect_failures``,
  ``close_codes``, ``server_errors``, ``exceptions``).
- Per bot, once at the end (one sample each, frozen bots and bots seated less than
  a second apart): ``player_bytes_in`` and ``player_snapshot_bytes``, bytes received
  (all messages; snapshots only) per second seated in the window.

Frozen (slow) bots are counted apart: their snapshots, seated time and traffic
are not measured. *Lean* bots (``BotSettings.lean``) count snapshots received,
expected and on time, and record no per-snapshot histogram.
"""

from __future__ import annotations

import math
from collections import deque

from clients.loadtest.metrics import Metrics
from clients.loadtest.plan import Timeline
from clients.loadtest.transport import Traffic
from protocol import Snapshot


class BotMeasures:
    """One bot's measurements, over all its connections."""

    def __init__(self, metrics: Metrics, timeline: Timeline, *, frozen: bool, lean: bool) -> None:
        self.metrics = metrics
        self.timeline = timeline
        self.frozen = frozen
        """A slow bot's: nothing per snapshot, seated time nor traffic is measured."""
        self.lean = lean
        """Count snapshots, record no per-snapshot histogram."""
        self.snapshot_rate = 30
        self.tick_rate = 30
        self.traffic = Traffic()
        """Bytes received inside the window (its BotClient counts them)."""
        self._entered_at = 0.0
        self._last_snapshot_at: float | None = None
        self._offset_base = math.inf
        self._pings_seen = 0
        self._pending: deque[tuple[int, float]] = deque()
        """Inputs sent inside the window (seq, when) not yet acknowledged by a snapshot."""
        self._seated_s = 0.0
        """Seconds seated inside the window, over all connections."""

    def joined(self, took: float, hops: int) -> None:
        """A join (hello or join → a seat) that took ``took`` seconds and ``hops`` redirects."""
        m = self.metrics
        m.record("join", took)
        m.count("joins")
        if hops:
            m.record("join_redirected", took)
            m.count("joins_redirected")
            m.count("redirect_hops", hops)
        else:
            m.record("join_direct", took)

    def entered(self, now: float) -> None:
        """Seated at ``now``."""
        self._entered_at = now
        self._last_snapshot_at = None
        self._pending.clear()

    def left(self, now: float) -> None:
        """Out of the room at ``now``: the time seated inside the window counts."""
        seated = self.timeline.overlap(self._entered_at, now)
        if seated > 0 and not self.frozen:
            self._seated_s += seated
            self.metrics.add_float("seated_s", seated)
            self.metrics.add_float("snapshots_expected", seated * self.snapshot_rate)
        self._last_snapshot_at = None
        self._pending.clear()

    def inputs_due(self, seq: int, now: float, sent: bool, chatted: bool, missed: int) -> None:
        """At ``now`` an input (number ``seq``) was ``sent``, a chat line too (``chatted``),
        and ``missed`` inputs were skipped, late."""
        m = self.metrics
        if not m.recording:
            return
        if sent:
            self._pending.append((seq, now))
            if len(self._pending) > 1000:
                self._pending.popleft()
                m.count("inputs_unacked")
            m.count("inputs_sent")
        if chatted:
            m.count("chats_sent")
        if missed:
            m.count("inputs_late", missed)

    def snapshot(self, snapshot: Snapshot, pings_answered: int, now: float) -> None:
        """A snapshot read at ``now`` while seated; ``pings_answered``: so far, this connection."""
        m = self.metrics
        if self.frozen:
            return  # frozen bots are counted apart; "the others" are the ones measured
        interval = 1.0 / self.snapshot_rate
        tick_time = snapshot.tick / self.tick_rate
        offset = now - tick_time
        if offset < self._offset_base:
            self._offset_base = offset
        previous, self._last_snapshot_at = self._last_snapshot_at, now
        ack = snapshot.ack
        pending = self._pending
        if ack is not None:
            while pending and pending[0][0] <= ack:
                _, sent = pending.popleft()
                m.record("rtt_bot", now - sent)  # only inputs sent inside the window are pending
        # A snapshot belongs to the window when its tick does (its on-time arrival, in
        # this bot's clock), not when it happens to be read: a backlog read late counts
        # where it was due, so received and expected cover the same ticks.
        due = tick_time + self._offset_base
        timeline = self.timeline
        if not timeline.window_start <= due < timeline.window_end:
            return
        m.count("snapshots")
        lateness = offset - self._offset_base
        if lateness <= interval:
            m.count("snapshots_on_time")
        if self.lean:
            return  # counted, not recorded: the histograms below cost more than the rest
        m.record("lateness", lateness)
        if previous is not None:
            gap = now - previous
            m.record("interarrival", gap)
            m.record("jitter", abs(gap - interval))
        if pings_answered != self._pings_seen and snapshot.rtt_us > 0:
            self._pings_seen = pings_answered
            m.record("rtt_server", snapshot.rtt_us / 1e6)

    def record_traffic(self) -> None:
        """This bot's received bytes per second seated, into the per-bot histograms."""
        seated = self._seated_s
        if self.frozen or seated < 1.0:
            return  # frozen, or too short a stay for a rate
        m, traffic = self.metrics, self.traffic
        m.record_amount("player_bytes_in", traffic.bytes_in / seated)
        m.record_amount("player_snapshot_bytes", traffic.snapshot_bytes / seated)
