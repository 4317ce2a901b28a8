"""``GET /metrics``: the server's totals and gauges in the Prometheus text format.

One :class:`~prometheus_client.CollectorRegistry` per server (never the global
one, so several servers in one process, as in the tests, stay apart), holding
prometheus-client's process collector (CPU, memory, fds) and
:class:`GameCollector`, which reads :class:`~gameserver.counters.Counters` and
the live rooms only when scraped: nothing of prometheus-client runs on a hot path.
Every family is listed in the README ("Metrics").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .counters import Buckets, Counters
from .room import Room
from .seats import SeatKeeper

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""


@dataclass
class Sources:
    """What the collector reads at scrape time."""

    counters: Counters
    rooms: Callable[[], Iterable[Room]]
    games: Callable[[], Iterable[str]]
    connections: Callable[[], int]
    seats: SeatKeeper | None = None
    """Held seats and resumes (issue: seats outlive connections)."""
    directory_up: Callable[[], bool] | None = None
    """On a cluster: whether this worker's last exchange with Redis worked."""


def _histogram(name: str, doc: str, label: str | None = None) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=[label] if label else None)


def _add_buckets(family: HistogramMetricFamily, buckets: Buckets, *labels: str) -> None:
    family.add_metric(list(labels), buckets.cumulative(), buckets.sum)


def _counter(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


class GameCollector(Collector):
    """The ``gameserver_*`` families, computed from the counters at each scrape."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        c = self.sources.counters
        opened = CounterMetricFamily(
            "gameserver_connections_opened", "WebSocket connections opened (upgrade done)."
        )
        opened.add_metric([], c.connections_opened)
        yield opened
        closed = CounterMetricFamily(
            "gameserver_connections_closed",
            "WebSocket connections ended, by close code (1006: no close frame) and by who "
            "began the close (client: its close frame or its end of TCP; server).",
            labels=["code", "closed_by"],
        )
        for (code, by), value in sorted(c.connections_closed.items()):
            closed.add_metric([code, by], value)
        yield closed
        yield _counter(
            "gameserver_messages_received",
            "Client messages by type (undecodable: refused by the codec; dropped: over the "
            "message rate, not decoded).",
            "type",
            c.messages_in,
        )
        yield _counter(
            "gameserver_received_bytes",
            "Bytes of client messages (WebSocket payloads) by message type.",
            "type",
            c.bytes_in,
        )
        snapshots = c.snapshot_sizes
        yield _counter(
            "gameserver_messages_sent",
            "Messages written to clients' sockets, by type.",
            "type",
            {**c.messages_out, "snapshot": snapshots.count},
        )
        yield _counter(
            "gameserver_sent_bytes",
            "Bytes of messages written to clients' sockets (WebSocket payloads), by type.",
            "type",
            {**c.bytes_out, "snapshot": int(snapshots.sum)},
        )
        yield _counter(
            "gameserver_snapshots_built",
            "Snapshots made for clients: full, or delta against the client's acknowledged one.",
            "kind",
            c.snapshots_built,
        )
        yield _counter(
            "gameserver_errors_sent", "error messages sent to clients, by code.", "code",
            c.errors_sent,
        )  # fmt: skip
        yield _counter(
            "gameserver_handshake_refusals",
            "WebSocket upgrades answered with an HTTP error instead of 101, by status.",
            "status",
            {str(k): v for k, v in c.handshake_refusals.items()},
        )
        yield _counter(
            "gameserver_handshakes_dropped",
            "Connections dropped in their handshake without a response: over "
            "max_pending_handshakes (pending_cap) or past handshake_timeout (timeout).",
            "reason",
            c.handshakes_dropped,
        )
        evicted = CounterMetricFamily(
            "gameserver_clients_evicted",
            "Clients dropped for backpressure (4001: event queue overflow, send blocked "
            "past send_timeout, or send backlog over max_send_backlog_bytes).",
        )
        evicted.add_metric([], c.evicted)
        yield evicted
        rooms = list(self.sources.rooms())
        ignored = CounterMetricFamily(
            "gameserver_inputs_ignored",
            "Inputs ignored because their seq went backwards or jumped too far.",
        )
        ignored.add_metric([], c.inputs_ignored_retired + sum(r.inputs_ignored for r in rooms))
        yield ignored

        connections = GaugeMetricFamily(
            "gameserver_connections", "Open WebSocket connections (in a room or not)."
        )
        connections.add_metric([], self.sources.connections())
        yield connections
        players = GaugeMetricFamily(
            "gameserver_players", "Players seated in rooms.", labels=["game"]
        )
        room_count = GaugeMetricFamily("gameserver_rooms", "Rooms alive.", labels=["game"])
        per_game = {game: [0, 0] for game in self.sources.games()}
        for room in rooms:
            row = per_game.setdefault(room.game_name, [0, 0])
            row[0] += len(room.seats)
            row[1] += 1
        for game, (seated, alive) in sorted(per_game.items()):
            players.add_metric([game], seated)
            room_count.add_metric([game], alive)
        yield players
        yield room_count
        spectators = GaugeMetricFamily(
            "gameserver_spectators", "Spectators watching rooms (they hold no seat)."
        )
        spectators.add_metric([], sum(len(room.spectators) for room in rooms))
        yield spectators
        yield from self._seats_and_directory()

        ticks = _histogram(
            "gameserver_tick_duration_seconds",
            "Time one room's tick took (inputs, step, snapshots), by game.",
            "game",
        )
        for game, buckets in sorted(c.tick_durations.items()):
            _add_buckets(ticks, buckets, game)
        yield ticks
        rtt = _histogram("gameserver_rtt_seconds", "Round-trip time measured by every pong.")
        _add_buckets(rtt, c.rtt)
        yield rtt
        jitter = _histogram(
            "gameserver_jitter_seconds", "The client's RTT jitter estimate after every pong."
        )
        _add_buckets(jitter, c.jitter)
        yield jitter
        size = _histogram("gameserver_snapshot_bytes", "Size of each snapshot message sent.")
        _add_buckets(size, snapshots)
        yield size

    def _seats_and_directory(self) -> Iterator[Metric]:
        seats = self.sources.seats
        if seats is not None:
            held = GaugeMetricFamily(
                "gameserver_seats_held",
                "Seats of dropped players held for a resume (within reconnect_grace); "
                "counted in gameserver_players too.",
            )
            held.add_metric([], seats.held_count())
            yield held
            yield _counter(
                "gameserver_resumes",
                "Held seats by outcome: resumed (taken back), failed (a resume token that "
                "named no held seat), expired (not back within reconnect_grace).",
                "outcome",
                {"resumed": seats.resumed, "failed": seats.failed, "expired": seats.expired},
            )
        if self.sources.directory_up is not None:
            up = GaugeMetricFamily(
                "gameserver_directory_up",
                "1 while this worker's last exchange with the cluster's Redis worked.",
            )
            up.add_metric([], 1 if self.sources.directory_up() else 0)
            yield up


class ServerMetrics:
    """A server's registry: the process collector and the game families."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.registry.register(GameCollector(sources))

    def render(self) -> bytes:
        """The text exposition of every family, as ``/metrics`` serves it."""
        return generate_latest(self.registry)
