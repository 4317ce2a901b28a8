"""Decode limits: what a single incoming message may contain.

The server builds one :class:`DecodeLimits` from its settings
(``gameserver.settings.Settings``); clients use the defaults or what the
server's ``welcome`` announces. Each default has its reason beside it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds applied while decoding one message, before any field is read."""

    max_message_bytes: int = 4096
    """Whole message. Nakama and Colyseus both cap client messages at 4 KiB; inputs are ~30 B."""
    max_str_len: int = 1024
    """Longest string. Chat is capped lower (by characters) by the server's settings."""
    max_bin_len: int = 1024
    """Longest bin blob, for games that send opaque input bytes."""
    max_array_len: int = 256
    """Longest array: enough for any input, small enough to walk cheaply."""
    max_map_len: int = 64
    """Most keys in one map."""
    max_depth: int = 8
    """Deepest nesting of arrays/maps. msgpack's C decoder alone stops only near 1,000."""
    int_map_keys: bool = False
    """Accept integer map keys besides strings. Off for client messages; on for server
    messages, whose game state is naturally keyed by player or entity id."""


SERVER_DECODE_LIMITS = DecodeLimits(
    max_message_bytes=1 << 20,
    max_str_len=1 << 20,
    max_bin_len=1 << 20,
    max_array_len=1 << 16,
    max_map_len=1 << 16,
    max_depth=32,
    int_map_keys=True,
)
"""What a client accepts from a server: snapshots of big games are larger than inputs."""
