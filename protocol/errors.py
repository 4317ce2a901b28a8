"""Errors and codes of the wire protocol.

One exception type, :class:`ProtocolError`, is raised by every decode and
validation step; it carries the :class:`ErrorCode` the server answers with.
:class:`CloseCode` lists every WebSocket close code the server uses. Both
tables are mirrored in ``PROTOCOL.md``; ``tests/protocol/test_spec.py`` keeps
them in step.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Codes carried by ``error`` messages (server → client)."""

    BAD_MESSAGE = "bad_message"
    """Not one valid msgpack message, or a field has the wrong type or range."""
    UNKNOWN_TYPE = "unknown_type"
    """The ``t`` field names no message this direction knows."""
    HELLO_REQUIRED = "hello_required"
    """A message other than ``hello`` arrived first (the connection is then closed 1008)."""
    ALREADY_HELLO = "already_hello"
    """A second ``hello`` on the same connection."""
    UNSUPPORTED_VERSION = "unsupported_version"
    """The ``hello`` asked for a protocol version this server does not speak."""
    UNKNOWN_GAME = "unknown_game"
    """No game of that name is registered."""
    ROOM_FULL = "room_full"
    """The named room already holds ``max_players``."""
    ROOM_GAME_MISMATCH = "room_game_mismatch"
    """The named room exists but runs another game."""
    NO_SUCH_ROOM = "no_such_room"
    """``join`` named a room that does not exist and gave no game to create it with."""
    TOO_MANY_ROOMS = "too_many_rooms"
    """Creating the room would pass the server's room limit."""
    NOT_IN_ROOM = "not_in_room"
    """``input``, ``chat`` or ``leave`` sent while not in a room."""
    ALREADY_IN_ROOM = "already_in_room"
    """``join`` sent while in a room: ``leave`` first."""
    BAD_INPUT = "bad_input"
    """The game's input validation refused the input's ``data``."""
    INPUT_QUEUE_FULL = "input_queue_full"
    """More inputs wait (for the next tick or their ``input.tick``) than the input queue holds."""
    INPUT_TOO_EARLY = "input_too_early"
    """``input.tick`` is more than ``max_input_lead`` ticks past the room's current tick."""
    BAD_CHAT = "bad_chat"
    """Chat text empty after cleaning, or longer than ``max_chat_chars``."""
    RATE_LIMITED = "rate_limited"
    """Over the message rate: the message was dropped."""
    BAD_TICKET = "bad_ticket"
    """``hello.ticket`` is unknown, expired, already used, or for another worker or player."""
    DIRECTORY_UNAVAILABLE = "directory_unavailable"
    """The cluster's room directory (Redis) did not answer: retry the request in a moment."""
    RESUME_FAILED = "resume_failed"
    """``hello.resume`` named no held seat (used, expired, forged, another server's); the
    ``hello`` goes on as a fresh one."""
    SPECTATING = "spectating"
    """``input`` (or ``chat``, where spectators may not chat) from a spectator."""
    SPECTATORS_FULL = "spectators_full"
    """The room already has ``max_spectators_per_room`` spectators."""


class CloseCode(enum.IntEnum):
    """WebSocket close codes the server sends (RFC 6455 §7.4 plus 4000-4999)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    """The server is shutting down."""
    PROTOCOL_ERROR = 1002
    """WebSocket framing error (unmasked frame, bad opcode, …)."""
    UNSUPPORTED_DATA = 1003
    """A text frame: this protocol is binary only."""
    INVALID_DATA = 1007
    """Invalid UTF-8 in a close reason or text frame."""
    POLICY_VIOLATION = 1008
    """First message not ``hello``, too many bad messages, or a flood past the rate limit."""
    MESSAGE_TOO_BIG = 1009
    """A message over ``max_message_bytes``."""
    INTERNAL_ERROR = 1011
    """The game crashed on this player's input, or the room crashed."""
    HELLO_TIMEOUT = 4000
    """No ``hello`` within ``hello_timeout``."""
    TOO_SLOW = 4001
    """The client did not read fast enough (send timeout or event queue overflow)."""
    PING_TIMEOUT = 4002
    """No ``pong`` within ``ping_timeout`` of a ``ping``."""
    UNSUPPORTED_VERSION = 4003
    """The ``hello`` asked for a protocol version this server does not speak."""
    REDIRECTED = 4005
    """Sent right after a ``redirect``: the room is on another worker; reconnect there."""
    REPLACED = 4006
    """Another connection resumed this player's seat (this one looked dead to the client)."""


class ProtocolError(Exception):
    """A message could not be decoded or validated.

    Args:
        code: What to answer with in the ``error`` message.
        detail: A short human-readable explanation (safe to send to the peer).
        ref: The ``t`` of the offending message, when it was known.
    """

    def __init__(self, code: ErrorCode, detail: str, ref: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.ref = ref
