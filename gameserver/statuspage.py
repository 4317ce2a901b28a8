"""``GET /status``: a small HTML page for the operator (sans-I/O: rooms in, bytes out).

Rooms with their players, each player's RTT and jitter, and each room's tick
timings; the page reloads itself every few seconds. Names come from players, so
everything is HTML-escaped; nothing secret is shown (no identities' data, no
addresses, no tokens). Served under the same rule as ``/healthz``'s statistics.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from .room import Room

REFRESH_SECONDS = 2
MAX_ROOMS = 200
"""Rooms listed (the page stays small on a full server); the header counts them all."""

_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;"
    "margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}h2{font-size:16px;margin-bottom:0}"
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _room(room: Room) -> str:
    stats = room.tick_stats.as_dict() if room.tick_stats is not None else None
    ticks = (
        f"tick p50 {stats['p50_ms']} ms, p99 {stats['p99_ms']} ms, max {stats['max_ms']} ms, "
        f"{stats['overruns']} overruns"
        if stats
        else "not ticked yet"
    )
    rows = []
    for seat in room.seats.values():
        player = seat.member.player
        latency = player.latency
        rows.append(
            f"<tr><td>{escape(player.name)}</td><td>{player.id}</td>"
            f"<td>{_ms(latency.rtt)}</td><td>{_ms(latency.jitter)}</td>"
            f"<td>{seat.ignored_inputs}</td></tr>"
        )
    return (
        f"<h2>{escape(room.name)} <small>({escape(room.game_name)}, "
        f"{len(room.seats)}/{room.max_players}, tick {room.tick_no}; {ticks})</small></h2>"
        "<table><tr><th>player</th><th>id</th><th>RTT ms</th><th>jitter ms</th>"
        f"<th>inputs ignored</th></tr>{''.join(rows)}</table>"
    )


def render(rooms: Iterable[Room], connections: int, uptime_s: float) -> bytes:
    """The whole page."""
    listed = list(rooms)
    players = sum(len(r.seats) for r in listed)
    body = "".join(_room(r) for r in listed[:MAX_ROOMS])
    more = f"<p>… and {len(listed) - MAX_ROOMS} more rooms</p>" if len(listed) > MAX_ROOMS else ""
    page = (
        "<!doctype html><html><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f"<title>gameserver status</title><style>{_STYLE}</style></head><body>"
        f"<h1>gameserver</h1><p>{connections} connections, {players} players in "
        f"{len(listed)} rooms, up {uptime_s:.0f} s. Counters: <a href=/metrics>/metrics</a>, "
        f"<a href=/healthz>/healthz</a>.</p>{body or '<p>No rooms.</p>'}{more}</body></html>"
    )
    return page.encode()
