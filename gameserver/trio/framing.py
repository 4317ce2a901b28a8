"""WebSocket framing shortcuts for the hot paths, on top of websockets' sans-I/O protocol.

websockets does all of RFC 6455; its generator-based parser and frame builder
cost several microseconds a frame, which every snapshot sent and every input
received would pay. These helpers build the one frame header the server sends
most (a final, unmasked binary frame) and tell when a read can skip the parser
(it sits exactly between frames). Used by :mod:`gameserver.trio.wsconn` and by
the load tester's client connection.
"""

from __future__ import annotations

from websockets.protocol import Protocol
from websockets.streams import StreamReader
from websockets.version import version as websockets_version

TESTED_WEBSOCKETS = "17.4"
"""The websockets release :func:`parser_between_frames` was checked against (it reads
the parser's generator internals). Another release: the shortcut is off (every read
goes through websockets' parser, slower but right) until tests/trio/test_framing.py
has been run against it and this is updated; that test fails until then."""

SHORTCUT_ON = websockets_version == TESTED_WEBSOCKETS


def binary_frame_header(length: int) -> bytes:
    """Header of a final, unmasked binary frame carrying ``length`` payload bytes."""
    if length < 126:
        return _SMALL_HEADERS[length]
    if length < 65536:
        return b"\x82\x7e" + length.to_bytes(2, "big")
    return b"\x82\x7f" + length.to_bytes(8, "big")


_SMALL_HEADERS = tuple(bytes((0x82, n)) for n in range(126))


_AT_EOF_CODE = StreamReader.at_eof.__code__


def parser_between_frames(protocol: Protocol) -> bool:
    """True when websockets' parser waits for the first byte of a new frame.

    An empty read buffer is not enough: the parser consumes a frame's header
    and mask before its payload arrives. Between frames its innermost
    generator is ``StreamReader.at_eof``. With a websockets release other than
    :data:`TESTED_WEBSOCKETS`, or one that parses differently, this says False,
    and callers just take the slower path.
    """
    if not SHORTCUT_ON:
        return False
    generator = protocol.parser
    while True:
        inner = getattr(generator, "gi_yieldfrom", None)
        if inner is None:
            break
        generator = inner
    return getattr(generator, "gi_code", None) is _AT_EOF_CODE and not protocol.reader.buffer
