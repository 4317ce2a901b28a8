"""The operator page: rooms, players, RTT and tick timings, escaped, self-refreshing."""

from __future__ import annotations

from gameserver import statuspage
from gameserver.core import ServerCore
from gameserver.games import default_games
from gameserver.outbox import Outbox
from gameserver.session import Session
from gameserver.settings import Settings
from gameserver.tick import TickStats
from protocol import Hello, Pong, encode


def test_rooms_players_and_latency_escaped() -> None:
    core = ServerCore(Settings(), default_games(), epoch=0.0)
    outbox = Outbox(64)
    session = Session(core, outbox, now=0.0)
    session.receive_bytes(encode(Hello(1, "<b>Ada</b>", game="arena", room="a&b")), 0.0)
    session.receive_bytes(encode(Pong(1)), 0.040, arrived_at=0.040)  # the first ping's nonce
    room = core.rooms.get("a&b")
    assert room is not None
    room.tick_stats = TickStats()
    room.tick_stats.record(0.002)
    page = statuspage.render(core.rooms, connections=3, uptime_s=12.0).decode()
    assert '<meta http-equiv="refresh" content="2">' in page
    assert "3 connections, 1 players in 1 rooms" in page
    assert "&lt;b&gt;Ada&lt;/b&gt;" in page and "<b>Ada" not in page
    assert "a&amp;b" in page
    assert "<td>40.0</td>" in page  # RTT in ms from the pong
    assert "tick p50 2.0 ms" in page


def test_no_rooms() -> None:
    core = ServerCore(Settings(), default_games(), epoch=0.0)
    assert b"No rooms." in statuspage.render(core.rooms, 0, 0.0)
