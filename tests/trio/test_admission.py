"""Frame admission, sans-I/O: the flood bucket, fragment assembly and its cap, and the
server's fast path agreeing with websockets' parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side

from gameserver.ratelimit import TokenBucket
from gameserver.trio.admission import (
    FrameAdmission,
    MessageAssembler,
    TooManyFragments,
    take_masked_binary_frames,
)
from protocol import CloseCode


def test_fragments_are_joined_into_one_message() -> None:
    assembler = MessageAssembler()
    assert assembler.add(Opcode.TEXT, b"he", fin=False) is None
    assert assembler.add(Opcode.CONT, b"", fin=False) is None
    assert assembler.add(Opcode.CONT, b"llo", fin=True) == (Opcode.TEXT, b"hello")
    assert assembler.add(Opcode.BINARY, b"\x01", fin=True) == (Opcode.BINARY, b"\x01")


def test_the_fragment_cap_counts_empty_fragments() -> None:
    assembler = MessageAssembler(max_fragments=3)  # fragments in all, the first included
    assembler.add(Opcode.BINARY, b"", fin=False)
    for _ in range(2):
        assert assembler.add(Opcode.CONT, b"", fin=False) is None
    with pytest.raises(TooManyFragments):
        assembler.add(Opcode.CONT, b"", fin=False)


def test_a_frame_flood_is_refused_1008_and_stays_refused() -> None:
    admission = FrameAdmission(TokenBucket(rate=10, burst=3, now=0.0), max_fragments=64)
    assert [admission.admit(0.0) for _ in range(4)] == [True, True, True, False]
    assert admission.failure == (CloseCode.POLICY_VIOLATION, "frame flood")
    assert not admission.admit(100.0)  # refilled, but the connection is failing


def test_too_many_fragments_is_refused_1009() -> None:
    admission = FrameAdmission(None, max_fragments=1)
    assert admission.message_frame(Opcode.BINARY, b"a", False, 0.0) is None
    assert admission.message_frame(Opcode.CONT, b"b", False, 0.0) is None
    assert admission.message_frame(Opcode.CONT, b"c", True, 0.0) is None
    assert admission.failure == (CloseCode.MESSAGE_TOO_BIG, "too many fragments")


def client_frames(specs: list[tuple[str, bytes]]) -> bytes:
    """What a client sends for ``specs``: binary messages, pings, text, fragments."""
    client = Protocol(Side.CLIENT, state=OPEN)
    for kind, payload in specs:
        if kind == "binary":
            client.send_binary(payload)
        elif kind == "ping":
            client.send_ping(payload[:125])
        elif kind == "text":
            client.send_text(payload.hex().encode())
        else:  # a message in two fragments
            client.send_binary(payload[:1], fin=False)
            client.send_continuation(payload[1:], fin=True)
    return b"".join(client.data_to_send())


def messages_through(server: Protocol, data: bytes) -> list[tuple[Opcode, bytes]]:
    server.receive_data(data)
    assembler = MessageAssembler()
    out = []
    for event in server.events_received():
        if isinstance(event, Frame) and event.opcode in (Opcode.BINARY, Opcode.TEXT, Opcode.CONT):
            message = assembler.add(event.opcode, event.data, event.fin)
            if message is not None:
                out.append(message)
    return out


frame_specs = st.lists(
    st.tuples(
        st.sampled_from(["binary", "binary", "binary", "ping", "text", "fragments"]),
        st.binary(max_size=200),
    ),
    max_size=8,
)


@given(frame_specs)
def test_the_fast_path_reads_what_websockets_reads(specs: list[tuple[str, bytes]]) -> None:
    wire = client_frames(specs)
    reference = messages_through(Protocol(Side.SERVER, state=OPEN), wire)
    server = Protocol(Side.SERVER, state=OPEN)
    payloads, rest = take_masked_binary_frames(wire, server, between_frames=True)
    fast = [(Opcode.BINARY, p) for p in payloads] + messages_through(server, bytes(rest))
    assert fast == reference


def test_the_fast_path_takes_a_run_of_inputs_and_leaves_the_rest() -> None:
    wire = client_frames([("binary", b"a"), ("binary", b"bb"), ("ping", b"p"), ("binary", b"c")])
    server = Protocol(Side.SERVER, state=OPEN)
    payloads, rest = take_masked_binary_frames(wire, server, between_frames=True)
    assert payloads == [b"a", b"bb"]
    assert rest == wire[len(client_frames([("binary", b"a"), ("binary", b"bb")])) :]


def test_the_fast_path_never_runs_mid_frame() -> None:
    wire = client_frames([("binary", b"input")])
    server = Protocol(Side.SERVER, state=OPEN)
    assert take_masked_binary_frames(wire, server, between_frames=False) == ([], wire)
    # A frame cut by the read is left whole to the parser.
    assert take_masked_binary_frames(wire[:-1], server, between_frames=True) == ([], wire[:-1])
