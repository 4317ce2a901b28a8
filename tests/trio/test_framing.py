"""framing.py reads websockets' parser internals: pinned to the release it was checked
against, and checked here, so that an upgrade of websockets fails loudly instead of
silently losing the fast path (or worse, taking it when it must not)."""

from __future__ import annotations

from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Protocol, Side
from websockets.version import version

from gameserver.trio.framing import (
    SHORTCUT_ON,
    TESTED_WEBSOCKETS,
    binary_frame_header,
    parser_between_frames,
)


def masked_frame(payload: bytes) -> bytes:
    client = Protocol(Side.CLIENT, state=OPEN)
    client.send_binary(payload)
    (data,) = client.data_to_send()
    return data


def test_the_installed_websockets_is_the_one_framing_was_checked_against() -> None:
    assert version == TESTED_WEBSOCKETS, (
        f"websockets {version} is installed; framing.parser_between_frames was checked "
        f"against {TESTED_WEBSOCKETS}: run these tests against the new release, check the "
        "parser still yields from StreamReader.at_eof between frames, then update "
        "TESTED_WEBSOCKETS"
    )
    assert SHORTCUT_ON


def test_between_frames_only_at_a_frame_boundary() -> None:
    server = Protocol(Side.SERVER, state=OPEN)
    assert parser_between_frames(server)
    frame = masked_frame(b"hello")
    server.receive_data(frame[:3])  # the header and part of the mask
    assert not parser_between_frames(server)
    server.receive_data(frame[3:])
    (event,) = server.events_received()
    assert isinstance(event, Frame) and event.data == b"hello"
    assert parser_between_frames(server)


def test_the_header_is_what_websockets_writes() -> None:
    for length in (0, 1, 125, 126, 65535, 65536):
        payload = b"x" * length
        expected = Frame(Opcode.BINARY, payload).serialize(mask=False, extensions=[])
        assert binary_frame_header(length) + payload == expected
