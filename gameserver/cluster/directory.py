"""The cluster's room directory in Redis: its keys, and its scripts' answers.

Sans-I/O: this module only builds arguments and reads replies; the trio shell
(``gameserver/trio/directory.py``) sends them. Every decision that must hold
across workers (a seat, a room name, a ticket) is one Lua script
(:mod:`.scripts`), which Redis runs atomically: two workers never both take
the last seat, and two rooms never get one name.

Keys, under ``P`` = ``Settings.redis_prefix``; each expires unless its owner
keeps it alive, so nothing outlives the workers by more than three heartbeats
(the counters: a day)::

    P:w:<worker>     worker presence: JSON {url, index, host, pid, rooms, players}; TTL
    P:workers        live workers (zset: worker -> when its presence expires)
    P:r:<room>       room record (hash): worker, url, game, seats, taken, seq, mm
                     ('1': matchmaking created it); TTL, refreshed by the owner's heartbeat
    P:rv:<room>      seats reserved behind tickets (zset: ticket -> expiry in ms)
    P:open:<game>    matchmade rooms of a game with a free seat (zset: room -> creation seq);
                     a room created by name is never in it (joined by name only)
    P:t:<ticket>     a redirect's seat ticket (hash): room, worker, game, seats,
                     player, name, user, mm; expires after ``ticket_ttl``
    P:seq:room       creation order of rooms (matchmaking fills the oldest first)
    P:seq:name:<g>   the n of matchmade room names ``<game>-<n>``
    P:seq:player     player ids, handed out to workers in blocks

``taken`` counts seated players plus live reservations. The owner adds a seat
for each local join (through ``CLAIM``, like everyone) and gives it back on
each leave (``RELEASE``); reservations that expire are given back lazily by
whoever reads the room next, and every heartbeat (``REFRESH``) sets ``taken``
again from the owner's own count. A room whose worker has no presence any more
is dropped by whoever reads it. After losing Redis, an owner re-registers its
rooms with their local counts (``REGISTER``) and raises the counters to what it
holds, so a Redis restarted empty hands out no id or room name twice once every
worker has beaten once (until then, within one heartbeat, it could).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol import ErrorCode

from .scripts import (
    CLAIM,
    CONSUME,
    COUNTER_TTL_MS,
    LEAVE,
    PLAYER_ID_BLOCK,
    REFRESH,
    REGISTER,
    RELEASE,
    TAKE_IDS,
)

__all__ = [
    "CLAIM",
    "CONSUME",
    "COUNTER_TTL_MS",
    "LEAVE",
    "PLAYER_ID_BLOCK",
    "REFRESH",
    "REGISTER",
    "RELEASE",
    "TAKE_IDS",
]


# -- what the scripts answer -------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeatHere:
    """The seat is in a room this worker runs (or must now create: ``created``)."""

    room: str
    game: str
    created: bool
    matchmade: bool = False
    """Matchmaking created the room (so it may pick it again); False: created by name."""


@dataclass(frozen=True, slots=True)
class SeatElsewhere:
    """The room runs on another worker: send the player there with ``ticket``."""

    room: str
    url: str
    ticket: str


@dataclass(frozen=True, slots=True)
class SeatRefused:
    """No seat: ``code`` and ``detail`` go to the client as an ``error``."""

    code: ErrorCode
    detail: str


@dataclass(frozen=True, slots=True)
class TicketSeat:
    """A redirected player's ticket was good: seat them in ``room`` as ``player_id``."""

    room: str
    game: str
    player_id: int
    name: str
    spectate: bool = False
    """A spectator's ticket: watch the room, no seat."""
    matchmade: bool = False
    """Matchmaking created the room (what this worker registers it as, should it reopen it)."""


@dataclass(frozen=True, slots=True)
class TicketRefused:
    """The ticket was forged, expired, used, or not for this worker or user."""

    detail: str


SeatOutcome = SeatHere | SeatElsewhere | SeatRefused | TicketSeat | TicketRefused

DIRECTORY_DOWN = SeatRefused(
    ErrorCode.DIRECTORY_UNAVAILABLE, "the room directory is not answering; try again shortly"
)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_claim(reply: Sequence[Any]) -> SeatHere | SeatElsewhere | SeatRefused:
    """Read ``CLAIM``'s answer."""
    kind, *rest = (_text(v) for v in reply)
    if kind == "here":
        return SeatHere(rest[0], rest[1], rest[2] == "1", rest[3:4] == ["1"])
    if kind == "there":
        return SeatElsewhere(rest[0], rest[1], rest[2])
    if kind == "refused":
        return SeatRefused(ErrorCode(rest[0]), rest[1])
    raise ValueError(f"unexpected CLAIM reply {reply!r}")


def parse_consume(reply: Sequence[Any]) -> TicketSeat | TicketRefused:
    """Read ``CONSUME``'s answer."""
    kind, *rest = (_text(v) for v in reply)
    if kind == "ok":
        return TicketSeat(
            rest[0], rest[1], int(rest[2]), rest[3], rest[4] == "1", rest[5:6] == ["1"]
        )
    if kind == "bad":
        return TicketRefused(rest[0])
    raise ValueError(f"unexpected CONSUME reply {reply!r}")


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:w:{worker_id}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def room(self, name: str) -> str:
        return f"{self.prefix}:r:{name}"

    def ticket(self, ticket: str) -> str:
        return f"{self.prefix}:t:{ticket}"

    @property
    def everything(self) -> str:
        return f"{self.prefix}:*"


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    """The cluster as the heartbeat last saw it (for ``/healthz``)."""

    workers: int = 0
    rooms: int = 0
    players: int = 0
    worker_urls: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "rooms": self.rooms,
            "players": self.players,
            "worker_urls": list(self.worker_urls),
        }


def presence_document(url: str, index: int, host: str, pid: int, rooms: int, players: int) -> str:
    """What a worker's presence key holds."""
    return json.dumps(
        {"url": url, "index": index, "host": host, "pid": pid, "rooms": rooms, "players": players},
        separators=(",", ":"),
    )


def summarise(documents: Sequence[Any]) -> ClusterSummary:
    """Add up the presence documents of live workers (a missing one is skipped)."""
    workers = rooms = players = 0
    urls: list[str] = []
    for raw in documents:
        if raw is None:
            continue
        try:
            doc = json.loads(_text(raw))
            rooms += int(doc["rooms"])
            players += int(doc["players"])
            urls.append(str(doc["url"]))
        except (ValueError, KeyError, TypeError):
            continue
        workers += 1
    return ClusterSummary(workers, rooms, players, tuple(sorted(urls)))


def redacted(url: str) -> str:
    """``url`` without its password, for logs and error lines."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.partition(":")[0]
    return f"{scheme}{sep}{user + ':' if user else ''}***@{host}"
