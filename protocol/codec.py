"""Encode and decode protocol messages: the only module that imports msgpack.

Decoding is strict and bounded: the frame size is checked before msgpack sees
it, every container and string length is capped by :class:`DecodeLimits`, map
keys must be strings, ext types (timestamps included) are refused, trailing
bytes are refused, NaN/±inf and deep nesting are refused after decoding. Any
failure raises :class:`ProtocolError`; nothing else escapes ``decode_*``. The
error's ``ref`` is the message's ``t`` whenever that names a message type of
this direction and could be read (PROTOCOL.md §4.2 ``error``), also for a
message that failed to decode after giving its ``t`` (:func:`_readable_type`);
it is never a string of the peer's choosing, so an ``unknown_type`` has none.

The snapshot fast path: :func:`pack_state` encodes a room's state once per
audience and :func:`encode_snapshot` wraps it for each player by writing the
few per-player fields and splicing the shared bytes in, with no re-encode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NewType

import msgpack

from .errors import ErrorCode, ProtocolError
from .limits import SERVER_DECODE_LIMITS, DecodeLimits
from .messages import (
    CLIENT_MESSAGE_TYPES,
    SERVER_MESSAGE_TYPES,
    ClientMessage,
    Message,
    ServerMessage,
    Snapshot,
)
from .validate import check_plain_value

PackedState = NewType("PackedState", bytes)
"""A game state already encoded as one msgpack value."""

_packer = msgpack.Packer(use_bin_type=True, autoreset=True)
_STATE_KEY = msgpack.packb("state")
_SNAPSHOT_HEAD = msgpack.packb("t") + msgpack.packb(Snapshot.TYPE)
_SNAPSHOT_START = b"\x88" + _SNAPSHOT_HEAD + msgpack.packb("id")
_NO_BASE = msgpack.packb("base") + msgpack.packb(None)


def encode(message: Message) -> bytes:
    """Encode one message as one msgpack map (one WebSocket binary frame)."""
    return pack_value(message.to_wire())


def pack_value(value: Any) -> bytes:
    """Encode any msgpack-able value; raises TypeError/ValueError on a value msgpack can't hold."""
    data: bytes = _packer.pack(value)
    return data


def pack_state(state: Any) -> PackedState:
    """Encode a game state once, to be shared by every snapshot of the same audience."""
    return PackedState(_packer.pack(state))


def unpack_state(state: PackedState) -> Any:
    """A packed state decoded as a client decodes it (the form deltas are computed on)."""
    return msgpack.unpackb(state, raw=False, strict_map_key=False, use_list=True)


def encode_snapshot(
    *,
    snapshot_id: int,
    tick: int,
    ack: int | None,
    rtt_us: int,
    jitter_us: int,
    state: PackedState,
    base: int | None = None,
) -> bytes:
    """Encode a ``snapshot`` message around an already packed state.

    Produces exactly the bytes ``encode(Snapshot(...))`` would, but packs only
    the per-player fields: the state bytes are concatenated, not re-encoded.
    """
    return splice_snapshot(
        snapshot_id, tick, ack, pack_snapshot_latency(rtt_us, jitter_us), state, base
    )


def pack_snapshot_latency(rtt_us: int, jitter_us: int) -> bytes:
    """The ``rtt_us`` and ``jitter_us`` entries of a snapshot map, packed.

    They change only when a pong arrives, so a sender can keep this and pass it
    to :func:`splice_snapshot` for every snapshot in between.
    """
    pack = _packer.pack
    return b"".join((b"\xa6rtt_us", pack(rtt_us), b"\xa9jitter_us", pack(jitter_us)))


def splice_snapshot(
    snapshot_id: int,
    tick: int,
    ack: int | None,
    latency: bytes,
    state: PackedState,
    base: int | None = None,
) -> bytes:
    """:func:`encode_snapshot` with the latency entries already packed (the per-player hot path)."""
    pack = _packer.pack
    # fixmap of 8 entries: t, id, tick, ack, rtt_us, jitter_us, base, state
    return b"".join(
        (
            _SNAPSHOT_START,
            pack(snapshot_id),
            b"\xa4tick",
            pack(tick),
            b"\xa3ack",
            pack(ack),
            latency,
            _NO_BASE if base is None else b"\xa4base" + pack(base),
            _STATE_KEY,
            state,
        )
    )


def _unpack(data: bytes, limits: DecodeLimits, types: Mapping[str, Any]) -> Any:
    """Decode one message map and validate it as the type its ``t`` names in ``types``."""
    if len(data) > limits.max_message_bytes:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"message over {limits.max_message_bytes} bytes")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=not limits.int_map_keys,
            use_list=True,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_bin_len,
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
            max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        ref = _ref_of(exc.unpacked, types)
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, "trailing bytes after the message", ref
        ) from None
    except msgpack.StackError:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, "nested too deeply", _readable_type(data, limits, types)
        ) from None
    except (ValueError, TypeError, msgpack.FormatError, msgpack.OutOfData) as exc:
        # ValueError covers the size caps, strict_map_key, ext types, bad UTF-8
        # (UnicodeDecodeError) and truncated input; TypeError an array or map
        # used as a map key when non-string keys are allowed. Its text is msgpack's own
        # and carries no server state, so it is safe to echo.
        why = str(exc) or type(exc).__name__
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE,
            f"undecodable msgpack: {why}",
            _readable_type(data, limits, types),
        ) from None
    if type(value) is not dict:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "a message must be a msgpack map")
    msg_type = value.get("t")
    if type(msg_type) is not str:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "field t (message type) must be a string")
    cls = types.get(msg_type)
    if cls is None:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {msg_type[:32]!r}")
    # The type is known here, so the ref echoed in an error is one of ours.
    check_plain_value(value, limits.max_depth, msg_type, int_keys=limits.int_map_keys)
    return cls.from_wire(value)


def _ref_of(value: Any, types: Mapping[str, Any]) -> str | None:
    """``value``'s ``t`` if it is a map whose ``t`` names one of ``types`` (else None)."""
    if type(value) is not dict:
        return None
    t = value.get("t")
    return t if type(t) is str and t in types else None


def _readable_type(data: bytes, limits: DecodeLimits, types: Mapping[str, Any]) -> str | None:
    """The ``t`` of a message that failed to decode, if it came before the fault.

    Reads the top-level map entry by entry with the same limits, skipping other
    values, up to the first ``t``; gives up (None) on the first fault. So a
    message that writes ``t`` first, as every encoder should (§4), gets its
    ``ref`` whatever is wrong after it.
    """
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=not limits.int_map_keys,
        max_buffer_size=max(len(data), 1),
        max_str_len=limits.max_str_len,
        max_bin_len=limits.max_bin_len,
        max_array_len=limits.max_array_len,
        max_map_len=limits.max_map_len,
        max_ext_len=0,
    )
    unpacker.feed(data)
    try:
        for _ in range(unpacker.read_map_header()):
            if unpacker.unpack() == "t":
                return _ref_of({"t": unpacker.unpack()}, types)
            unpacker.skip()
    except (ValueError, TypeError, msgpack.UnpackException):  # a fault before t: t unknown
        return None
    return None


_DEFAULT_LIMITS = DecodeLimits()


def decode_client_message(data: bytes, limits: DecodeLimits = _DEFAULT_LIMITS) -> ClientMessage:
    """Decode and validate one client → server message."""
    message: ClientMessage = _unpack(data, limits, CLIENT_MESSAGE_TYPES)
    return message


def decode_server_message(
    data: bytes, limits: DecodeLimits = SERVER_DECODE_LIMITS
) -> ServerMessage:
    """Decode and validate one server → client message (used by clients)."""
    message: ServerMessage = _unpack(data, limits, SERVER_MESSAGE_TYPES)
    return message
