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
    single_masked_binary_frame,
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


@given(st.binary(max_size=200))
def test_the_fast_path_reads_what_websockets_reads(payload: bytes) -> None:
    client = Protocol(Side.CLIENT, state=OPEN)
    client.send_binary(payload)
    (wire,) = client.data_to_send()
    server = Protocol(Side.SERVER, state=OPEN)
    fast = single_masked_binary_frame(wire, server, between_frames=True)
    if len(payload) >= 126:
        assert fast is None  # longer headers go through the parser
        return
    server.receive_data(wire)
    (frame,) = server.events_received()
    assert isinstance(frame, Frame) and fast == frame.data


def test_the_fast_path_never_runs_mid_frame() -> None:
    client = Protocol(Side.CLIENT, state=OPEN)
    client.send_binary(b"input")
    (wire,) = client.data_to_send()
    server = Protocol(Side.SERVER, state=OPEN)
    assert single_masked_binary_frame(wire, server, between_frames=False) is None
    assert single_masked_binary_frame(wire[:-1], server, between_frames=True) is None
