"""The README's synchronous ``websocket-client`` snippet, run in a worker thread."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
import trio
from websocket import ABNF, create_connection

from protocol import CloseCode

from .conftest import StartServer

pytestmark = pytest.mark.network


def tutorial_hello(port: int) -> Any:
    ws = create_connection(f"ws://127.0.0.1:{port}/", timeout=5)
    try:
        ws.send_binary(msgpack.packb({"t": "hello", "version": 1, "name": "ada", "game": "arena"}))
        return msgpack.unpackb(ws.recv())
    finally:
        ws.close()


def tutorial_text(port: int) -> tuple[int, bytes]:
    ws = create_connection(f"ws://127.0.0.1:{port}/", timeout=5)
    try:
        ws.send("Hello, world!")
        opcode, data = ws.recv_data(control_frame=True)
        return opcode, data
    finally:
        ws.close()  # a no-op once the server's close was answered: the socket stays open
        ws.shutdown()  # type: ignore[no-untyped-call]


async def test_websocket_client_snippet_gets_a_msgpack_welcome(start_server: StartServer) -> None:
    """create_connection + send_binary(msgpack hello) + recv() yields the msgpack welcome."""
    server = await start_server()
    with trio.fail_after(8):
        welcome = await trio.to_thread.run_sync(tutorial_hello, server.port, abandon_on_cancel=True)
    assert welcome["t"] == "welcome"
    assert welcome["version"] == 1
    assert welcome["room"]["game"] == "arena"
    assert welcome["player"] >= 1


async def test_websocket_client_text_message_is_closed_1003(start_server: StartServer) -> None:
    """The tutorial's ws.send("Hello, world!") text frame is answered with close 1003."""
    server = await start_server()
    with trio.fail_after(8):
        opcode, data = await trio.to_thread.run_sync(
            tutorial_text, server.port, abandon_on_cancel=True
        )
    assert opcode == ABNF.OPCODE_CLOSE
    assert struct.unpack("!H", data[:2])[0] == CloseCode.UNSUPPORTED_DATA
