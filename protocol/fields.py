"""What the message classes share: protocol constants and field readers.

Used by :mod:`protocol.messages` (client → server) and
:mod:`protocol.server_messages` (server → client).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ErrorCode, ProtocolError
from .validate import get_str

PROTOCOL_VERSION = 1
"""Bumped on any change an existing client could not ignore."""

MAX_NAME_CHARS = 32
"""Longest player, room or game name on the wire."""

MAX_TICKET_CHARS = 64
"""Longest seat ticket (``redirect.ticket``, ``hello.ticket``); the server's are 22-32."""

MAX_URL_CHARS = 512
"""Longest URL in a ``redirect`` or ``welcome.resume_url``."""

MAX_REF_CHARS = 64
"""Longest ``error.ref`` a client accepts (the server only ever echoes its own type names)."""

RESUME_TOKEN_MAX_CHARS = 64
"""Longest ``hello.resume`` accepted (the server's tokens are 43 chars)."""


def name_field(d: Mapping[str, Any], t: str, key: str, optional: bool = False) -> Any:
    """A player, room or game name: 1..MAX_NAME_CHARS characters."""
    return get_str(d, t, key, MAX_NAME_CHARS, optional=optional, min_len=1)


def drop_none(wire: dict[str, Any]) -> dict[str, Any]:
    """The wire map without its nil fields (optional fields are left out, not sent nil)."""
    return {k: v for k, v in wire.items() if v is not None}


def flag_field(d: Mapping[str, Any], t: str, key: str) -> bool:
    """An optional bool: absent or nil is False; anything but a bool is refused."""
    value = d.get(key)
    if value is None:
        return False
    if type(value) is not bool:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{t}.{key}: must be a bool", ref=t)
    return value


def url_field(d: Mapping[str, Any], t: str, key: str, optional: bool = False) -> Any:
    """A ws:// or wss:// URL of 1..MAX_URL_CHARS characters."""
    url = get_str(d, t, key, MAX_URL_CHARS, optional=optional, min_len=1)
    if url is not None and not url.startswith(("ws://", "wss://")):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{t}.{key}: not a ws:// URL", ref=t)
    return url
