"""The close frame must not be lost when the first frame after the upgrade ends the connection.

websockets' trio ``serve()`` can close the socket right after ``handshake()``
returns while the close reply is still being written (websocket-libraries
notes, "Pitfalls"); our own shell (gameserver/trio/wsconn.py) must not have
that race. The client runs in a worker thread with a blocking socket so that
its frame races the end of the server's handshake for real (an in-process trio
client is scheduled too predictably to hit the window); with the websockets.trio
server, about half of the rounds ended in a bare TCP close.
"""

from __future__ import annotations

import socket
import struct

import pytest
import trio

from protocol import CloseCode

from .conftest import StartServer, frame, parse_frame, upgrade_request

pytestmark = pytest.mark.network

ROUNDS = 30


def upgrade_then_send(port: int, first: bytes) -> int | None:
    """Upgrade, send ``first`` as soon as the 101 is in; return the server's close code or None."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(upgrade_request(port))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the 101"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        sock.sendall(first)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            rest += chunk
    parsed = parse_frame(rest)
    if parsed is None:
        return None
    opcode, payload, _ = parsed
    assert opcode == 0x8, f"expected a close frame, got opcode {opcode}"
    return int(struct.unpack("!H", payload[:2])[0])


async def rounds(port: int, first: bytes) -> list[int | None]:
    return [
        await trio.to_thread.run_sync(upgrade_then_send, port, first, abandon_on_cancel=True)
        for _ in range(ROUNDS)
    ]


async def test_close_right_after_upgrade_is_echoed(start_server: StartServer) -> None:
    """A close frame sent right after the 101 always gets the server's close 1000 back."""
    server = await start_server()
    with trio.fail_after(10):
        codes = await rounds(server.port, frame(0x8, struct.pack("!H", 1000)))
    assert codes == [CloseCode.NORMAL] * ROUNDS


async def test_unmasked_frame_right_after_upgrade_gets_1002(start_server: StartServer) -> None:
    """An unmasked client frame right after the 101 always gets close 1002, not a bare FIN."""
    server = await start_server()
    with trio.fail_after(10):
        codes = await rounds(server.port, frame(0x2, b"\x80", mask=False))
    assert codes == [CloseCode.PROTOCOL_ERROR] * ROUNDS
