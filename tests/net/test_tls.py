"""wss:// with a certificate made in the test by ``trustme``."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
import trio
import trustme
from websockets.exceptions import InvalidHandshake, InvalidMessage

from clients.python.client import connect
from protocol import Snapshot

from .conftest import StartServer, get_request, raw_ws, read_response, read_to_eof

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert_files(ca: trustme.CA, tmp_path: Path) -> tuple[str, str]:
    """A server certificate for 127.0.0.1 signed by ``ca``, as PEM files."""
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def test_wss_hello_welcome_and_snapshots(
    start_server: StartServer, ca: trustme.CA, cert_files: tuple[str, str]
) -> None:
    """A client trusting the test CA says hello over wss:// and gets welcome and snapshots."""
    certfile, keyfile = cert_files
    server = await start_server(certfile=certfile, keyfile=keyfile)
    assert server.url == f"wss://127.0.0.1:{server.port}/"
    with trio.fail_after(5):
        async with connect(server.url, "secure", game="arena", ssl=trusting(ca)) as client:
            assert client.welcome is not None and client.room is not None
            assert client.room.game == "arena"
            snapshot = await client.next_snapshot()
            assert isinstance(snapshot, Snapshot)
        # https on the same port serves the health document.
        tcp = await trio.open_tcp_stream("127.0.0.1", server.port)
        stream = trio.SSLStream(tcp, trusting(ca), server_hostname="127.0.0.1")
        async with stream:
            await stream.send_all(get_request(server.port, "/healthz"))
            health = await read_response(stream)
        assert health.status == 200
        assert json.loads(health.body)["status"] == "ok"


async def test_wss_refuses_plaintext_and_garbage_but_keeps_serving(
    start_server: StartServer, ca: trustme.CA, cert_files: tuple[str, str]
) -> None:
    """Plain ws:// and TLS garbage on the wss port are dropped; a TLS client still gets in."""
    certfile, keyfile = cert_files
    server = await start_server(certfile=certfile, keyfile=keyfile)
    with trio.fail_after(5):
        with pytest.raises((InvalidHandshake, InvalidMessage, OSError, EOFError)):
            async with raw_ws(f"ws://127.0.0.1:{server.port}/"):
                pass
        garbage = await trio.open_tcp_stream("127.0.0.1", server.port)
        async with garbage:
            await garbage.send_all(b"\x16\x03\x01\x00\x05hello, not a ClientHello" * 4)
            reply = await read_to_eof(garbage)
        assert b"welcome" not in reply
        async with connect(server.url, "after", ssl=trusting(ca)) as client:
            assert client.welcome is not None
