"""Frame admission, sans-I/O: the fast path, the flood bucket, fragment assembly.

What happens to a WebSocket frame between websockets' parser and a message:
it must get a token from the frame bucket (a flood closes 1008), fragments are
joined into one message (their number capped: empty ones add no bytes, so size
alone cannot bound them: too many closes 1009), and the common frame, one
short final binary frame, skips websockets' generator-based parser
(:func:`take_masked_binary_frames` on the server, :func:`take_plain_binary_frames`
in the load tester's client). No I/O and no clock of its own: the caller passes
``now``. Used by :mod:`gameserver.trio.wsconn` (the server) and
:mod:`clients.loadtest.wsclient` (the bots).
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.frames import Opcode
from websockets.protocol import OPEN, Protocol

from protocol import CloseCode

from ..ratelimit import TokenBucket

try:
    from websockets.speedups import apply_mask  # C, as websockets itself uses
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

Message = tuple[Opcode, bytes]
"""A whole message: TEXT or BINARY, and its bytes."""


class MessageAssembler:
    """Joins a fragmented message's frames; ``max_fragments`` None: no cap (a client)."""

    def __init__(self, max_fragments: int | None = None) -> None:
        self.max_fragments = max_fragments
        self._fragments: list[bytes] = []
        self._opcode: Opcode | None = None

    def reset(self) -> None:
        self._fragments, self._opcode = [], None

    def add(
        self, opcode: Opcode, data: bytes | bytearray | memoryview, fin: bool
    ) -> Message | None:
        """A data frame (the protocol has checked the order); the message it completes.

        Raises :class:`TooManyFragments` past ``max_fragments``.
        """
        if opcode is Opcode.CONT:
            if self.max_fragments is not None and len(self._fragments) >= self.max_fragments:
                self.reset()
                raise TooManyFragments
            self._fragments.append(bytes(data))
            if not fin:
                return None
            assert self._opcode is not None
            message = (self._opcode, b"".join(self._fragments))
            self.reset()
            return message
        if not fin:
            self._opcode, self._fragments = opcode, [bytes(data)]
            return None
        return opcode, bytes(data)


class TooManyFragments(Exception):
    """A fragmented message past ``max_fragments``."""


class FrameAdmission:
    """The server's gate for a client's frames: a token each, fragments capped.

    After a refusal :attr:`failure` holds the close code and reason, and every
    later frame is refused too.
    """

    def __init__(self, frame_limit: TokenBucket | None, max_fragments: int) -> None:
        self.frame_limit = frame_limit
        """Every received frame (control and continuation frames too) takes a token."""
        self.assembler = MessageAssembler(max_fragments)
        self.failure: tuple[int, str] | None = None

    def admit(self, now: float) -> bool:
        """Whether one more frame may be handled now (none left: 1008)."""
        if self.failure is not None:
            return False
        if self.frame_limit is not None and not self.frame_limit.take(now):
            self._refuse(CloseCode.POLICY_VIOLATION, "frame flood")
            return False
        return True

    def message_frame(
        self, opcode: Opcode, data: bytes | bytearray | memoryview, fin: bool, now: float
    ) -> Message | None:
        """A data frame in; the message it completes out, if admitted."""
        if not self.admit(now):
            return None
        try:
            return self.assembler.add(opcode, data, fin)
        except TooManyFragments:
            self._refuse(CloseCode.MESSAGE_TOO_BIG, "too many fragments")
            return None

    def _refuse(self, code: int, reason: str) -> None:
        self.failure = (int(code), reason)
        self.assembler.reset()


def take_masked_binary_frames(
    data: bytes | bytearray, protocol: Protocol, between_frames: bool
) -> tuple[list[bytes], bytes | bytearray]:
    """The payloads of the complete, short, final, masked binary frames at the start of
    ``data``, and the rest (for the protocol's parser).

    The server's hot path: what a client sends is almost only such frames (inputs,
    pongs), and a read often holds several (an input and a pong, inputs batched by
    ``read_interval``); unmasking them here costs a fraction of websockets' parser.
    Only when the parser waits for a new frame (``between_frames``: not in the
    middle of one whose header it has read), nothing is buffered, no fragmented
    message is open and the state is OPEN: then these frames change no state the
    protocol keeps. From the first frame that is anything else (control frames,
    fragments, long or split frames, RSV bits, an unmasked frame) the rest goes
    to the protocol.
    """
    if (
        not between_frames
        or protocol.state is not OPEN
        or protocol.current_size is not None
        or protocol.reader.buffer
    ):
        return [], data
    limit = min(protocol.max_message_size or 125, protocol.max_fragment_size or 125, 125)
    payloads: list[bytes] = []
    end = len(data)
    pos = 0
    # RFC 6455 §5.2: 0x82 = FIN + binary, no RSV bits; then MASK + a 7-bit length.
    while end - pos >= 6 and data[pos] == 0x82:
        length = data[pos + 1] - 0x80
        if not 0 <= length <= limit or pos + 6 + length > end:
            break
        payloads.append(apply_mask(data[pos + 6 : pos + 6 + length], data[pos + 2 : pos + 6]))
        pos += 6 + length
    return payloads, (data[pos:] if pos else data)


def take_plain_binary_frames(
    data: bytes | bytearray, deliver: Callable[[bytes], None]
) -> bytes | bytearray:
    """Deliver the complete, final, unmasked binary frames at the start of ``data``;
    return the rest.

    A client's hot path: what a server sends is almost only such frames
    (snapshots), several per read; reading their 2- or 4-byte headers here
    costs a fraction of websockets' parser. Call it only with the parser at a
    frame boundary, nothing buffered and no fragmented message open; the rest,
    from the first frame that is anything else (ping, close, fragment, a 64-bit
    length, a frame cut by the read), goes to the protocol.
    """
    end = len(data)
    pos = 0
    while end - pos >= 2 and data[pos] == 0x82:
        length = data[pos + 1]  # MASK bit clear: a server's frames are not masked
        head = pos + 2
        if length == 126:
            if end - pos < 4:
                break
            length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            head = pos + 4
        elif length > 126:
            break  # masked, or a 64-bit length: leave it to the protocol
        if head + length > end:
            break
        deliver(bytes(data[head : head + length]))
        pos = head + length
    return data[pos:] if pos else data
