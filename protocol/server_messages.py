"""Typed messages of protocol v1, server → client (see :mod:`protocol.messages`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ErrorCode, ProtocolError
from .fields import (
    MAX_NAME_CHARS,
    MAX_REF_CHARS,
    MAX_TICKET_CHARS,
    RESUME_TOKEN_MAX_CHARS,
    drop_none,
    flag_field,
    url_field,
)
from .validate import UINT32_MAX, UINT53_MAX, get_int, get_str

# --------------------------------------------------------------------------
# Server → client


@dataclass(frozen=True, slots=True)
class PlayerInfo:
    """A player as listed in a room roster."""

    id: int
    name: str

    def to_wire(self) -> list[Any]:
        return [self.id, self.name]

    @classmethod
    def from_wire(cls, v: Any) -> PlayerInfo:
        if not (isinstance(v, list) and len(v) == 2):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "player entry must be [id, name]")
        return cls(
            id=get_int({"id": v[0]}, "room", "id", 0, UINT32_MAX),
            name=get_str({"name": v[1]}, "room", "name", MAX_NAME_CHARS),
        )


DEFAULT_DELTA_FORMAT = "generic"
"""``room.delta`` when absent: the generic patch format of ``protocol.delta``."""


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """What a client learns on joining: the room, its roster and the game's static data."""

    name: str
    game: str
    max_players: int
    players: tuple[PlayerInfo, ...]
    info: Any = None
    """Game-defined static description (arena: world size, walls, speed)."""
    spectators: int = 0
    """Spectators watching the room (they are not in ``players``)."""
    away: tuple[int, ...] = ()
    """Ids in ``players`` whose connection dropped: their seat is held for a resume."""
    delta: str = DEFAULT_DELTA_FORMAT
    """The format of this room's delta snapshots: the generic one (§5.6) or the game's own."""

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "name": self.name,
            "game": self.game,
            "max_players": self.max_players,
            "players": [p.to_wire() for p in self.players],
            "info": self.info,
        }
        # Written when non-zero/non-empty only: absent means 0 and [] (PROTOCOL.md §4.2).
        if self.spectators:
            wire["spectators"] = self.spectators
        if self.away:
            wire["away"] = list(self.away)
        if self.delta != DEFAULT_DELTA_FORMAT:
            wire["delta"] = self.delta
        return wire

    @classmethod
    def from_wire(cls, d: Any) -> RoomInfo:
        if not isinstance(d, dict):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "room must be a map")
        players = d.get("players")
        if not isinstance(players, list):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "room.players must be an array")
        away = d.get("away")
        if away is None:
            away = []
        if not isinstance(away, list):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "room.away must be an array")
        return cls(
            name=get_str(d, "room", "name", MAX_NAME_CHARS),
            game=get_str(d, "room", "game", MAX_NAME_CHARS),
            max_players=get_int(d, "room", "max_players", 1, UINT32_MAX),
            players=tuple(PlayerInfo.from_wire(p) for p in players),
            info=d.get("info"),
            spectators=get_int(d, "room", "spectators", 0, UINT32_MAX, optional=True) or 0,
            away=tuple(get_int({"id": a}, "room", "id", 0, UINT32_MAX) for a in away),
            delta=get_str(d, "room", "delta", MAX_NAME_CHARS, optional=True, min_len=1)
            or DEFAULT_DELTA_FORMAT,
        )


@dataclass(frozen=True, slots=True)
class Welcome:
    """Answer to ``hello``: who you are, the server's clock and the limits to respect."""

    TYPE: ClassVar[str] = "welcome"
    version: int
    player: int
    tick_rate: int
    snapshot_rate: int
    tick: int
    limits: Mapping[str, int]
    games: tuple[str, ...]
    room: RoomInfo | None = None
    resume: str | None = None
    """The token that takes this player's seat back on a new connection (§5.12)."""
    resumed: bool = False
    """True: this ``hello`` resumed a held seat; ``player`` and ``room`` are the held ones."""
    resume_url: str | None = None
    """In a cluster: where to send ``resume`` (the worker holding the seat, §5.11)."""

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "t": self.TYPE,
            "version": self.version,
            "player": self.player,
            "tick_rate": self.tick_rate,
            "snapshot_rate": self.snapshot_rate,
            "tick": self.tick,
            "limits": dict(self.limits),
            "games": list(self.games),
            "room": None if self.room is None else self.room.to_wire(),
        }
        # Absent when unset: a server with resume off sends what the first v1 text shows.
        if self.resume is not None:
            wire["resume"] = self.resume
        if self.resumed:
            wire["resumed"] = True
        if self.resume_url is not None:
            wire["resume_url"] = self.resume_url
        return wire

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Welcome:
        t = cls.TYPE
        limits = d.get("limits")
        games = d.get("games")
        if not isinstance(limits, dict) or not all(type(v) is int for v in limits.values()):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "welcome.limits: map of integers", ref=t)
        if not isinstance(games, list) or not all(isinstance(g, str) for g in games):
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "welcome.games: array of strings", ref=t)
        room = d.get("room")
        return cls(
            version=get_int(d, t, "version", 0, UINT32_MAX),
            player=get_int(d, t, "player", 0, UINT32_MAX),
            tick_rate=get_int(d, t, "tick_rate", 1, 1000),
            snapshot_rate=get_int(d, t, "snapshot_rate", 1, 1000),
            tick=get_int(d, t, "tick", 0, UINT53_MAX),
            limits=limits,
            games=tuple(games),
            room=None if room is None else RoomInfo.from_wire(room),
            resume=get_str(d, t, "resume", RESUME_TOKEN_MAX_CHARS, optional=True, min_len=1),
            resumed=flag_field(d, t, "resumed"),
            resume_url=url_field(d, t, "resume_url", optional=True),
        )


@dataclass(frozen=True, slots=True)
class Joined:
    """You are now in ``room`` (after a ``join``; a ``hello`` that joins uses ``welcome.room``)."""

    TYPE: ClassVar[str] = "joined"
    room: RoomInfo

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE, "room": self.room.to_wire()}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Joined:
        return cls(room=RoomInfo.from_wire(d.get("room")))


@dataclass(frozen=True, slots=True)
class Left:
    """You left ``room`` (answer to ``leave``); you are back in the lobby."""

    TYPE: ClassVar[str] = "left"
    room: str

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE, "room": self.room}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Left:
        return cls(room=get_str(d, cls.TYPE, "room", MAX_NAME_CHARS))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The room's state as this player sees it at server tick ``tick``.

    ``id`` counts snapshots on this connection (1, 2, …); ``base`` is the
    acknowledged snapshot id a delta is relative to: always nil in v1 (full
    state). ``ack`` is the last input ``seq`` applied for this player (nil
    before the first). ``rtt_us``/``jitter_us`` are the server's measurement of
    this player's round-trip time and jitter in microseconds (0 before the
    first pong).
    """

    TYPE: ClassVar[str] = "snapshot"
    id: int
    tick: int
    ack: int | None
    rtt_us: int
    jitter_us: int
    state: Any
    base: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.TYPE,
            "id": self.id,
            "tick": self.tick,
            "ack": self.ack,
            "rtt_us": self.rtt_us,
            "jitter_us": self.jitter_us,
            "base": self.base,
            "state": self.state,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Snapshot:
        t = cls.TYPE
        return cls(
            id=get_int(d, t, "id", 0, UINT53_MAX),
            tick=get_int(d, t, "tick", 0, UINT53_MAX),
            ack=get_int(d, t, "ack", 0, UINT32_MAX, optional=True),
            rtt_us=get_int(d, t, "rtt_us", 0, UINT53_MAX),
            jitter_us=get_int(d, t, "jitter_us", 0, UINT53_MAX),
            base=get_int(d, t, "base", 0, UINT53_MAX, optional=True),
            state=d.get("state"),
        )


EVENT_KINDS = ("join", "leave", "chat", "away", "back")
"""``away``/``back`` go only to clients that sent ``hello.presence`` (PROTOCOL.md §5.12)."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something happened in the room: a player joined, left, chatted, dropped or came back."""

    TYPE: ClassVar[str] = "event"
    kind: str
    player: int
    name: str
    text: str | None = None
    tick: int = 0

    def to_wire(self) -> dict[str, Any]:
        return drop_none(
            {
                "t": self.TYPE,
                "kind": self.kind,
                "player": self.player,
                "name": self.name,
                "text": self.text,
                "tick": self.tick,
            }
        )

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Event:
        t = cls.TYPE
        kind = get_str(d, t, "kind", 16)
        if kind not in EVENT_KINDS:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"event.kind: unknown {kind!r}", ref=t)
        return cls(
            kind=kind,
            player=get_int(d, t, "player", 0, UINT32_MAX),
            name=get_str(d, t, "name", MAX_NAME_CHARS),
            text=get_str(d, t, "text", 1 << 20, optional=True),
            tick=get_int(d, t, "tick", 0, UINT53_MAX),
        )


@dataclass(frozen=True, slots=True)
class Ping:
    """Latency probe: answer at once with ``pong`` carrying the same nonce."""

    TYPE: ClassVar[str] = "ping"
    nonce: int

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE, "nonce": self.nonce}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Ping:
        return cls(nonce=get_int(d, cls.TYPE, "nonce", 0, UINT53_MAX))


@dataclass(frozen=True, slots=True)
class Error:
    """A request was refused; the connection stays open unless a close follows."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    ref: str | None = field(default=None)
    """The ``t`` of the message that caused it, when known."""

    def to_wire(self) -> dict[str, Any]:
        return drop_none(
            {"t": self.TYPE, "code": self.code, "message": self.message, "ref": self.ref}
        )

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Error:
        t = cls.TYPE
        return cls(
            code=get_str(d, t, "code", 64),
            message=get_str(d, t, "message", 1 << 16),
            ref=get_str(d, t, "ref", MAX_REF_CHARS, optional=True),
        )


@dataclass(frozen=True, slots=True)
class Redirect:
    """The room you asked for lives on another worker: reconnect to ``url`` and say
    ``hello`` with ``ticket`` there. The server closes this connection 4005 after it."""

    TYPE: ClassVar[str] = "redirect"
    url: str
    ticket: str
    room: str
    """The room the ticket holds a seat in."""
    ttl_ms: int
    """How long the ticket stays valid, from when the server sent this message."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.TYPE,
            "url": self.url,
            "ticket": self.ticket,
            "room": self.room,
            "ttl_ms": self.ttl_ms,
        }

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Redirect:
        t = cls.TYPE
        return cls(
            url=url_field(d, t, "url"),
            ticket=get_str(d, t, "ticket", MAX_TICKET_CHARS, min_len=1),
            room=get_str(d, t, "room", MAX_NAME_CHARS, min_len=1),
            ttl_ms=get_int(d, t, "ttl_ms", 0, UINT32_MAX),
        )


ServerMessage = Welcome | Joined | Left | Snapshot | Event | Ping | Error | Redirect
SERVER_MESSAGE_TYPES: dict[str, Any] = {
    cls.TYPE: cls for cls in (Welcome, Joined, Left, Snapshot, Event, Ping, Error, Redirect)
}
