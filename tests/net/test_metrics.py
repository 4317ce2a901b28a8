"""``GET /metrics`` on a real server: every family parses and moves as traffic happens."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from clients.python.client import connect
from gameserver import GameRegistry
from gameserver.room import Room
from protocol import Chat, Error, Event, Input, Snapshot

from .conftest import (
    StartServer,
    frame,
    get_request,
    hello,
    http_exchange,
    read_response,
    read_to_eof,
    upgrade_request,
)
from .test_http import expect
from .test_slow_client import SLOTH, Hoard

pytestmark = pytest.mark.network

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int, *headers: tuple[str, str]) -> Samples:
    """Every sample of /metrics, parsed by prometheus-client's own parser."""
    response = await http_exchange(port, get_request(port, "/metrics", list(headers)))
    assert response.status == 200, response.body
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    """The sum of a family's samples over all label values."""
    return sum(v for (n, _), v in samples.items() if n == name)


FAMILIES = [
    "gameserver_connections_opened_total",
    "gameserver_connections_closed_total",
    "gameserver_messages_received_total",
    "gameserver_received_bytes_total",
    "gameserver_messages_sent_total",
    "gameserver_sent_bytes_total",
    "gameserver_errors_sent_total",
    "gameserver_snapshots_built_total",
    "gameserver_handshake_refusals_total",
    "gameserver_handshakes_dropped_total",
    "gameserver_clients_evicted_total",
    "gameserver_inputs_ignored_total",
    "gameserver_connections",
    "gameserver_players",
    "gameserver_rooms",
    "gameserver_tick_duration_seconds_count",
    "gameserver_rtt_seconds_count",
    "gameserver_jitter_seconds_count",
    "gameserver_snapshot_bytes_count",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
]

SEPARATE = {"gameserver_clients_evicted_total", "gameserver_handshakes_dropped_total"}


async def test_every_family_moves_with_a_session(start_server: StartServer) -> None:
    """Connect, play, chat, misbehave a little, leave, close: each family counts it, and the
    totals stay after the client and its room are gone."""
    server = await start_server(empty_room_grace=0.05)
    port = server.port
    room_disposed = trio.Event()
    rooms = server.core.rooms
    dispose = rooms.dispose

    def disposing(room: Room) -> None:
        dispose(room)
        room_disposed.set()

    rooms.dispose = disposing  # type: ignore[method-assign]
    with trio.fail_after(10):
        before = await scrape(port)
        names = {name for name, _ in before}
        for family in ("gameserver_connections", "gameserver_players", "process_cpu_seconds_total"):
            assert family in names
        assert value(before, "gameserver_players", game="arena") == 0
        refused = await http_exchange(port, upgrade_request(port, "/nope"))
        assert refused.status == 404
        async with connect(server.url, "mo", game="arena") as client:
            await client.next_snapshot()  # the first ping came before it: answered
            await client.send_raw(b"\xc1")  # undecodable: error bad_message
            await expect(client, lambda m: isinstance(m, Error))
            await client.send_input({"dx": 1})  # it acks snapshot 1: deltas follow
            await expect(client, lambda m: isinstance(m, Snapshot) and m.base is not None)
            await client.send(Input(1, {"dx": 1}))  # seq 1 again: ignored
            await client.send(Chat("hello"))
            await expect(client, lambda m: isinstance(m, Event) and m.kind == "chat")
            during = await scrape(port)
            await client.leave()
            await room_disposed.wait()  # empty for empty_room_grace: gone
        await trio.testing.wait_all_tasks_blocked()
        after = await scrape(port)

    # Gauges move while the client plays, totals by the time it is gone (evictions and
    # dropped handshakes have tests of their own, below).
    for family in set(FAMILIES) - SEPARATE:
        assert max(total(during, family), total(after, family)) > 0, family

    assert value(during, "gameserver_connections") == 1
    assert value(during, "gameserver_players", game="arena") == 1
    assert value(during, "gameserver_rooms", game="arena") == 1
    assert value(during, "gameserver_messages_received_total", type="chat") == 1
    assert value(during, "gameserver_messages_received_total", type="undecodable") == 1
    assert value(during, "gameserver_messages_received_total", type="pong") >= 1
    assert value(during, "gameserver_received_bytes_total", type="chat") > 0
    assert value(during, "gameserver_messages_sent_total", type="welcome") == 1
    assert value(during, "gameserver_messages_sent_total", type="snapshot") >= 1
    assert value(during, "gameserver_sent_bytes_total", type="snapshot") >= value(
        during, "gameserver_snapshot_bytes_sum"
    )
    assert value(during, "gameserver_errors_sent_total", code="bad_message") == 1
    built = value(after, "gameserver_snapshots_built_total", kind="full")
    assert built >= 1 and value(after, "gameserver_snapshots_built_total", kind="delta") >= 1
    assert value(during, "gameserver_handshake_refusals_total", status="404") == 1
    assert value(during, "gameserver_rtt_seconds_count") >= 1
    assert value(during, "gameserver_jitter_seconds_count") >= 1
    assert value(during, "gameserver_tick_duration_seconds_count", game="arena") >= 1
    assert value(during, "gameserver_inputs_ignored_total") == 1

    # The client, its room and its seat are gone; the totals are not.
    assert value(after, "gameserver_connections") == 0
    assert value(after, "gameserver_players", game="arena") == 0
    assert value(after, "gameserver_rooms", game="arena") == 0
    assert value(after, "gameserver_connections_opened_total") == 1
    assert value(after, "gameserver_connections_closed_total", code="1000", closed_by="client") == 1
    assert value(after, "gameserver_inputs_ignored_total") == 1
    assert value(after, "gameserver_messages_received_total", type="leave") == 1
    assert value(after, "gameserver_messages_sent_total", type="left") == 1
    assert value(after, "gameserver_errors_sent_total", code="bad_message") == 1
    assert value(after, "gameserver_clients_evicted_total") == 0


async def test_metrics_are_for_loopback_only_unless_public(start_server: StartServer) -> None:
    """A client seen as remote (here: named by a trusted proxy) gets 403, as /healthz hides
    its statistics; with public_stats it gets them."""
    forwarded = ("X-Forwarded-For", "203.0.113.9")
    private = await start_server(trusted_proxies=("127.0.0.1",))
    public = await start_server(trusted_proxies=("127.0.0.1",), public_stats=True)
    with trio.fail_after(5):
        hidden = await http_exchange(
            private.port, get_request(private.port, "/metrics", [forwarded])
        )
        shown = await scrape(public.port, forwarded)
    assert hidden.status == 403
    assert "gameserver_connections" in {name for name, _ in shown}


async def test_metrics_off_is_404_and_counts_nothing(start_server: StartServer) -> None:
    server = await start_server(metrics=False)
    with trio.fail_after(5):
        async with connect(server.url, "off", game="arena") as client:
            await client.next_snapshot()
        response = await http_exchange(server.port, get_request(server.port, "/metrics"))
    assert response.status == 404
    assert server.core.counters is None


async def test_an_evicted_client_is_counted(start_server: StartServer) -> None:
    """A client that stops reading is dropped after send_timeout: evicted, closed by the
    server without a close frame (1006)."""
    games = GameRegistry()
    games.register(Hoard)
    server = await start_server(games, send_timeout=0.3)
    counters = server.core.counters
    assert counters is not None
    closed = trio.Event()
    count_closed = counters.closed

    def closing(code: int, closed_by: str, evicted: bool) -> None:
        count_closed(code, closed_by, evicted)
        closed.set()

    counters.closed = closing  # type: ignore[method-assign]
    slow = trio.socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stream = trio.SocketStream(slow)
    try:
        with trio.fail_after(10):
            await slow.connect(("127.0.0.1", server.port))
            await stream.send_all(upgrade_request(server.port))
            assert (await read_response(stream)).status == 101
            await stream.send_all(frame(0x2, hello(SLOTH, "hoard", "pit")))
            await closed.wait()  # never reading meanwhile
            samples = await scrape(server.port)
            await read_to_eof(stream)
    finally:
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)
    assert value(samples, "gameserver_clients_evicted_total") == 1
    assert (
        value(samples, "gameserver_connections_closed_total", code="1006", closed_by="server") == 1
    )


async def test_dropped_handshakes_are_counted_by_reason(start_server: StartServer) -> None:
    """One connection idles in its handshake while another finds the pending cap full: one
    dropped at once (pending_cap), the idle one at handshake_timeout (timeout)."""
    server = await start_server(max_pending_handshakes=1, handshake_timeout=0.3)
    with trio.fail_after(5):
        idle = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with idle:
            await trio.testing.wait_all_tasks_blocked()
            extra = await trio.open_tcp_stream("127.0.0.1", server.port)
            async with extra:
                assert await read_to_eof(extra) == b""
            assert await read_to_eof(idle) == b""
        samples = await scrape(server.port)
    assert value(samples, "gameserver_handshakes_dropped_total", reason="pending_cap") == 1
    assert value(samples, "gameserver_handshakes_dropped_total", reason="timeout") == 1
