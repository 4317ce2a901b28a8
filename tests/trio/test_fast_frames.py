"""WsConnection's fast path for small binary frames agrees with websockets' own parser.

Random client frame sequences (small and long binary frames, fragmented
messages, pings, text, and the odd frame the protocol must refuse), cut into
random reads, go through ``WsConnection.receive``; the same bytes go through a
plain websockets server ``Protocol`` in one piece. Both must deliver the same
messages and end in the same state with the same close code.
"""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side

from gameserver.trio.wsconn import WsConnection
from tests.helpers import queue_frames, whole_messages

MAX_SIZE = 200

payloads = st.binary(max_size=MAX_SIZE + 20)
frame_specs = st.one_of(
    st.tuples(st.just("binary"), payloads),
    st.tuples(st.just("fragmented"), st.lists(st.binary(max_size=60), min_size=2, max_size=4)),
    st.tuples(st.just("ping"), st.binary(max_size=20)),
    st.tuples(st.just("text"), st.text(max_size=20).map(str.encode)),
    st.tuples(st.just("unmasked"), st.binary(max_size=20)),
    st.tuples(st.just("rsv1"), st.binary(max_size=20)),
)


def client_wire(specs: list[tuple[str, object]]) -> bytes:
    """What a client would send for ``specs`` (masked), plus deliberately bad frames."""
    client = Protocol(Side.CLIENT, state=OPEN, max_size=None)
    wire = b""
    for kind, data in specs:
        if not queue_frames(client, kind, data):  # a deliberately bad frame, built by hand
            assert isinstance(data, bytes)
            wire += b"".join(client.data_to_send())
            raw = bytearray(
                Frame(Opcode.BINARY, data).serialize(mask=kind != "unmasked", extensions=[])
            )
            if kind == "rsv1":
                raw[0] |= 0x40  # a reserved bit no extension was negotiated for
            wire += raw
            continue
        wire += b"".join(client.data_to_send())
    return wire


def reference(wire: bytes) -> tuple[list[bytes], int, object, int | None]:
    """websockets alone: binary messages, text count, final state, close code sent."""
    server = Protocol(Side.SERVER, max_size=MAX_SIZE)
    server.receive_data(wire)
    messages = whole_messages(server.events_received())
    binary = [m for m in messages if isinstance(m, bytes)]
    code = server.close_sent.code if server.close_sent is not None else None
    return binary, len(messages) - len(binary), server.state, code


def ours(wire: bytes, cuts: list[int]) -> tuple[list[bytes], int, object, int | None]:
    """The same bytes through WsConnection.receive, in the reads ``cuts`` make."""
    result: list[tuple[list[bytes], int, object, int | None]] = []

    async def run() -> None:
        stream, _ = trio.testing.memory_stream_pair()
        ws = WsConnection(
            stream,
            Protocol(Side.SERVER, max_size=MAX_SIZE),
            send_timeout=1.0,
            close_timeout=1.0,
        )
        messages: list[bytes] = []
        texts = [0]

        def on_text() -> None:
            texts[0] += 1

        ws._on_binary, ws._on_text = messages.append, on_text
        bounds = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
        for start, end in itertools.pairwise(bounds):
            ws.receive(wire[start:end])
        protocol = ws.protocol
        code = protocol.close_sent.code if protocol.close_sent is not None else None
        result.append((messages, texts[0], protocol.state, code))

    trio.run(run)
    return result[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frame_specs, max_size=8), st.lists(st.integers(min_value=0), max_size=8))
def test_fast_path_delivers_what_websockets_would(
    specs: list[tuple[str, object]], cuts: list[int]
) -> None:
    wire = client_wire(specs)
    assert ours(wire, cuts) == reference(wire)


def test_every_frame_in_its_own_read_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The case the fast path exists for: one small frame per read never reaches the parser."""
    wire = client_wire([("binary", b"a"), ("binary", b""), ("binary", b"x" * 125)])

    def no_parsing(self: Protocol, data: bytes) -> None:
        raise AssertionError("went through websockets' parser")

    monkeypatch.setattr(Protocol, "receive_data", no_parsing)
    sizes = [7, 6, 131]
    cuts = [sum(sizes[:1]), sum(sizes[:2])]
    assert ours(wire, cuts) == ([b"a", b"", b"x" * 125], 0, OPEN, None)


def test_a_payload_that_looks_like_a_frame_is_not_taken_for_one() -> None:
    """A frame's header and mask in one read, its payload in the next: the parser is
    mid-frame with nothing buffered, and the payload (which happens to look like a whole
    small frame) must be that frame's payload, not a frame of its own."""
    lookalike = b"\x82\x86\x00\x00\x00\x00hello!"  # a masked frame carrying b"hello!"
    # Masked with a zero key, so the payload is the same on the wire.
    outer = bytes((0x82, 0x80 | len(lookalike))) + b"\x00" * 4 + lookalike
    follow_up = Frame(Opcode.BINARY, b"next").serialize(mask=True, extensions=[])
    wire = outer + follow_up
    header = 6  # first byte, length byte, 4-byte mask key
    expected = ([lookalike, b"next"], 0, OPEN, None)
    assert reference(wire) == expected
    assert ours(wire, [header, len(outer)]) == expected
