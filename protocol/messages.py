"""Typed messages of protocol v1, one frozen dataclass per message type.

Every message is a msgpack map whose ``t`` field names its type; the other
fields are listed on each class under the same names they have on the wire.
``to_wire()`` gives the map to encode; ``from_wire()`` validates a decoded map
and raises :class:`~protocol.errors.ProtocolError` on anything out of spec.
Unknown extra fields are ignored, so a later minor version may add fields.
``PROTOCOL.md`` is the normative description; keep the two in step.

This module holds the client → server messages and the unions over both
directions; the server → client ones are in :mod:`protocol.server_messages`
(re-exported here), what both share in :mod:`protocol.fields`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import ErrorCode, ProtocolError
from .fields import (
    MAX_NAME_CHARS,
    MAX_TICKET_CHARS,
    MAX_URL_CHARS,
    PROTOCOL_VERSION,
    RESUME_TOKEN_MAX_CHARS,
    drop_none,
    flag_field,
    name_field,
)
from .server_messages import (
    EVENT_KINDS,
    SERVER_MESSAGE_TYPES,
    Error,
    Event,
    Joined,
    Left,
    Ping,
    PlayerInfo,
    Redirect,
    RoomInfo,
    ServerMessage,
    Snapshot,
    Welcome,
)
from .validate import UINT32_MAX, UINT53_MAX, get_int, get_str

__all__ = [
    "CLIENT_MESSAGE_TYPES",
    "EVENT_KINDS",
    "MAX_NAME_CHARS",
    "MAX_TICKET_CHARS",
    "MAX_URL_CHARS",
    "PROTOCOL_VERSION",
    "RESUME_TOKEN_MAX_CHARS",
    "SERVER_MESSAGE_TYPES",
    "Ack",
    "Chat",
    "ClientMessage",
    "Error",
    "Event",
    "Hello",
    "Input",
    "Join",
    "Joined",
    "Leave",
    "Left",
    "Message",
    "Ping",
    "PlayerInfo",
    "Pong",
    "Redirect",
    "RoomInfo",
    "ServerMessage",
    "Snapshot",
    "Welcome",
]


# --------------------------------------------------------------------------
# Client → server


@dataclass(frozen=True, slots=True)
class Hello:
    """First message of every connection. May ask to join a room at once."""

    TYPE: ClassVar[str] = "hello"
    version: int
    name: str
    game: str | None = None
    room: str | None = None
    ticket: str | None = None
    """A seat ticket from a ``redirect``: take the seat it reserved (game and room are ignored)."""
    resume: str | None = None
    """A ``welcome.resume`` token: take back that player's held seat (PROTOCOL.md §5.12)."""
    spectate: bool = False
    """Watch the room asked for by ``game``/``room`` instead of playing (§5.13)."""
    presence: bool = False
    """Send me ``event away``/``back`` when a player's connection drops and returns."""
    deltas: bool = False
    """I apply delta snapshots (PROTOCOL.md §5.6); without it every snapshot is full."""

    def to_wire(self) -> dict[str, Any]:
        # The flags go on the wire only when set, as a client of the first v1 text sends them.
        return drop_none(
            {
                "t": self.TYPE,
                "version": self.version,
                "name": self.name,
                "game": self.game,
                "room": self.room,
                "ticket": self.ticket,
                "resume": self.resume,
                "spectate": self.spectate or None,
                "presence": self.presence or None,
                "deltas": self.deltas or None,
            }
        )

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Hello:
        t = cls.TYPE
        if d.get("resume") is not None and d.get("ticket") is not None:
            raise ProtocolError(
                ErrorCode.BAD_MESSAGE, "hello: resume and ticket do not go together", ref=t
            )
        return cls(
            version=get_int(d, t, "version", 0, UINT32_MAX),
            name=name_field(d, t, "name"),
            game=name_field(d, t, "game", optional=True),
            room=name_field(d, t, "room", optional=True),
            ticket=get_str(d, t, "ticket", MAX_TICKET_CHARS, optional=True, min_len=1),
            resume=get_str(d, t, "resume", RESUME_TOKEN_MAX_CHARS, optional=True, min_len=1),
            spectate=flag_field(d, t, "spectate"),
            presence=flag_field(d, t, "presence"),
            deltas=flag_field(d, t, "deltas"),
        )


@dataclass(frozen=True, slots=True)
class Join:
    """Join a room: by name, by game (join-or-create matchmaking), or both."""

    TYPE: ClassVar[str] = "join"
    game: str | None = None
    room: str | None = None
    spectate: bool = False
    """Watch the room instead of taking a seat (§5.13)."""

    def to_wire(self) -> dict[str, Any]:
        return drop_none(
            {
                "t": self.TYPE,
                "game": self.game,
                "room": self.room,
                "spectate": self.spectate or None,
            }
        )

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Join:
        t = cls.TYPE
        msg = cls(
            game=name_field(d, t, "game", optional=True),
            room=name_field(d, t, "room", optional=True),
            spectate=flag_field(d, t, "spectate"),
        )
        if msg.game is None and msg.room is None:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "join needs game or room", ref=t)
        return msg


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave the current room and return to the lobby (the connection stays open)."""

    TYPE: ClassVar[str] = "leave"

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Leave:
        return cls()


@dataclass(frozen=True, slots=True)
class Input:
    """One player input. ``data`` is game-defined; ``seq`` must increase."""

    TYPE: ClassVar[str] = "input"
    seq: int
    data: Any
    ack: int | None = None
    """Optional: the newest snapshot id received (same as sending ``ack``)."""
    tick: int | None = None
    """Optional: apply at the first server tick >= this one, never earlier (PROTOCOL.md §5.3)."""

    def to_wire(self) -> dict[str, Any]:
        # data is required on the wire even when nil: only ack and tick are dropped when None.
        wire = {"t": self.TYPE, "seq": self.seq, "data": self.data}
        return wire | drop_none({"ack": self.ack, "tick": self.tick})

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Input:
        t = cls.TYPE
        if "data" not in d:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "input.data: required", ref=t)
        return cls(
            seq=get_int(d, t, "seq", 0, UINT32_MAX),
            data=d["data"],
            ack=get_int(d, t, "ack", 0, UINT53_MAX, optional=True),
            tick=get_int(d, t, "tick", 0, UINT53_MAX, optional=True),
        )


@dataclass(frozen=True, slots=True)
class Chat:
    """A chat line for everyone in the room."""

    TYPE: ClassVar[str] = "chat"
    text: str

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE, "text": self.text}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Chat:
        # The character cap is the server's setting; here only the type is checked.
        return cls(text=get_str(d, cls.TYPE, "text", 1 << 20))


@dataclass(frozen=True, slots=True)
class Pong:
    """Answer to a server ``ping``: echo its nonce, nothing else."""

    TYPE: ClassVar[str] = "pong"
    nonce: int

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE, "nonce": self.nonce}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Pong:
        return cls(nonce=get_int(d, cls.TYPE, "nonce", 0, UINT53_MAX))


@dataclass(frozen=True, slots=True)
class Ack:
    """The newest snapshot id this client holds (the base for future deltas)."""

    TYPE: ClassVar[str] = "ack"
    id: int

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE, "id": self.id}

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Ack:
        return cls(id=get_int(d, cls.TYPE, "id", 0, UINT53_MAX))


ClientMessage = Hello | Join | Leave | Input | Chat | Pong | Ack
CLIENT_MESSAGE_TYPES: dict[str, Any] = {
    cls.TYPE: cls for cls in (Hello, Join, Leave, Input, Chat, Pong, Ack)
}


Message = ClientMessage | ServerMessage
