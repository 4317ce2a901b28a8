"""WsConnection: websockets' sans-I/O protocol on trio streams, with our own reads and writes.

Most tests run on trio.testing stream pairs under the autojump clock (their
streams have no fd, so every write goes through the backlog and the writer
task); the fast-path tests use a real socketpair and the real clock.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio
import trio.testing
from websockets.frames import Close, CloseCode, Opcode
from websockets.protocol import CLOSED, CLOSING, Protocol, Side

from gameserver.trio.wsconn import WsConnection
from tests.helpers import WsPeer

SEND_TIMEOUT = 0.5
CLOSE_TIMEOUT = 2.0
GUARD = 60.0
"""Virtual seconds any reader may live in these tests."""


class Server:
    """A WsConnection with its reader and writer tasks; records messages and end times."""

    def __init__(self, stream: trio.abc.Stream, *, max_size: int | None = 1 << 20) -> None:
        self.ws = WsConnection(
            stream,
            Protocol(Side.SERVER, max_size=max_size),
            send_timeout=SEND_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
        )
        self.binary: list[bytes] = []
        self.texts = 0
        self.reader_ended_at: float | None = None
        self.writer_ended_at: float | None = None

    def on_text(self) -> None:
        self.texts += 1

    async def run_reader(self) -> None:
        # Under the autojump clock a deadlock jumps right to this deadline: a failure, not a hang.
        with trio.fail_after(GUARD):
            await self.ws.run_reader(self.binary.append, self.on_text)
        self.reader_ended_at = trio.current_time()

    async def run_writer(self) -> None:
        await self.ws.run_writer()
        self.writer_ended_at = trio.current_time()

    def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self.run_reader)
        nursery.start_soon(self.run_writer)


def memory_pair(nursery: trio.Nursery, **kwargs: int | None) -> tuple[Server, WsPeer]:
    """A running server end and a polite client over an unbounded in-memory stream."""
    server_stream, client_stream = trio.testing.memory_stream_pair()
    server = Server(server_stream, **kwargs)
    server.start(nursery)
    return server, WsPeer(client_stream)


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


# -- reading ------------------------------------------------------------------


async def test_binary_messages_reach_on_binary_in_order(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Binary messages from the client reach on_binary one by one, in order, at once."""
    server, peer = memory_pair(nursery)
    for n in range(50):
        peer.protocol.send_binary(b"m%d" % n)
    await peer.flush()  # all 50 frames in one write: one read on the server side
    await settle()
    assert server.binary == [b"m%d" % n for n in range(50)]
    assert server.texts == 0
    assert server.ws.bytes_in == sum(2 + 4 + len(b"m%d" % n) for n in range(50))
    assert trio.current_time() == 0.0
    assert server.reader_ended_at is None


async def test_message_split_across_reads_is_parsed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A frame arriving one byte per read is delivered once, when its last byte arrives."""
    server, peer = memory_pair(nursery)
    peer.protocol.send_binary(b"hello")
    (wire,) = peer.protocol.data_to_send()
    for byte in wire[:-1]:
        await peer.stream.send_all(bytes([byte]))
        await settle()
    assert server.binary == []
    await peer.stream.send_all(wire[-1:])
    await settle()
    assert server.binary == [b"hello"]


async def test_fragmented_message_is_reassembled(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A binary message in three fragments reaches on_binary once, whole, after its last one."""
    server, peer = memory_pair(nursery)
    peer.protocol.send_binary(b"ab", fin=False)
    peer.protocol.send_continuation(b"cd", fin=False)
    await peer.flush()
    await settle()
    assert server.binary == []
    peer.protocol.send_continuation(b"ef", fin=True)
    peer.protocol.send_binary(b"next")
    await peer.flush()
    await settle()
    assert server.binary == [b"abcdef", b"next"]


async def test_text_message_calls_on_text(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A text message, whole or fragmented, calls on_text once and never on_binary."""
    server, peer = memory_pair(nursery)
    peer.protocol.send_text(b"hi")
    peer.protocol.send_text(b"h", fin=False)
    peer.protocol.send_continuation(b"i", fin=True)
    await peer.flush()
    await settle()
    assert server.texts == 2
    assert server.binary == []


async def test_client_ping_gets_a_pong(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A ping from the client is answered with a pong carrying the same data."""
    server, peer = memory_pair(nursery)
    peer.protocol.send_ping(b"1234")
    await peer.flush()
    frame = await peer.next_frame()
    assert frame is not None
    assert (frame.opcode, bytes(frame.data)) == (Opcode.PONG, b"1234")
    assert server.binary == [] and server.texts == 0


async def test_client_close_gets_a_reply_and_the_server_ends(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A client close is echoed, the server half-closes, and both tasks end at once."""
    server, peer = memory_pair(nursery)
    peer.protocol.send_close(CloseCode.NORMAL_CLOSURE, "bye")
    await peer.flush()
    frames = await peer.rest()  # the polite peer half-closes after the server's EOF
    assert [f.opcode for f in frames] == [Opcode.CLOSE]
    assert Close.parse(frames[0].data) == Close(1000, "bye")
    await settle()
    assert server.reader_ended_at == 0.0
    assert server.writer_ended_at == 0.0
    assert server.ws.closed.is_set() and server.ws.writer_done.is_set()
    assert server.ws.protocol.state is CLOSED
    assert not server.ws.aborted


async def test_oversize_frame_is_closed_1009(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A frame over max_size is never delivered: the server closes 1009 and the reader ends."""
    server, peer = memory_pair(nursery, max_size=256)
    await peer.send_binary(b"x" * 257)
    frames = await peer.rest()
    assert [f.opcode for f in frames] == [Opcode.CLOSE]
    assert Close.parse(frames[0].data).code == CloseCode.MESSAGE_TOO_BIG
    await settle()
    assert server.binary == []
    assert server.reader_ended_at == 0.0
    assert server.ws.writer_done.is_set()


async def test_eof_from_the_peer_ends_the_reader(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """The client's EOF without a close frame ends the reader (and the writer) at once."""
    server, peer = memory_pair(nursery)
    await trio.sleep(1.5)
    await peer.send_binary(b"last")
    await peer.stream.send_eof()  # type: ignore[attr-defined]
    await settle()
    assert server.binary == [b"last"]
    assert server.reader_ended_at == 1.5
    assert server.writer_ended_at == 1.5
    assert server.ws.protocol.state is CLOSED
    assert await peer.rest() == []


async def test_peer_that_never_ends_tcp_after_closing_is_dropped(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that sends a close frame but never its EOF is dropped close_timeout later."""
    server_stream, client_stream = trio.testing.memory_stream_pair()
    server = Server(server_stream)
    server.start(nursery)
    peer = WsPeer(client_stream, answer=False)
    await trio.sleep(0.5)
    peer.protocol.send_close(CloseCode.GOING_AWAY, "")
    await peer.flush()
    frames = await peer.rest()  # the echo, then the server's EOF; the peer's EOF never comes
    assert [f.opcode for f in frames] == [Opcode.CLOSE]
    await settle()
    assert server.writer_ended_at == 0.5
    assert server.reader_ended_at is None
    await server.ws.closed.wait()
    assert server.reader_ended_at == 0.5 + CLOSE_TIMEOUT
    assert server.ws.aborted and not server.ws.timed_out


async def test_oversize_frame_to_a_peer_that_holds_tcp(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """After a 1009 the peer has close_timeout to end TCP; then the reader gives up."""
    server_stream, client_stream = trio.testing.memory_stream_pair()
    server = Server(server_stream, max_size=256)
    server.start(nursery)
    peer = WsPeer(client_stream, answer=False)
    await peer.send_binary(b"x" * 1000)
    frames = await peer.rest()
    assert Close.parse(frames[0].data).code == CloseCode.MESSAGE_TOO_BIG
    await server.ws.closed.wait()
    assert server.reader_ended_at == CLOSE_TIMEOUT
    assert server.binary == []


async def test_abort_ends_the_reader_after_the_writer_has_finished(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """abort() ends a reader still waiting for the peer even when the writer is already done."""
    server_stream, client_stream = trio.testing.memory_stream_pair()
    server = Server(server_stream)
    server.start(nursery)
    peer = WsPeer(client_stream, answer=False)
    server.ws.send_close(1000, "")
    peer.protocol.send_close(1000, "")  # crosses the server's close: no echo needed
    await peer.flush()
    await settle()
    assert server.ws.writer_done.is_set() and server.reader_ended_at is None
    await trio.sleep(1.0)
    server.ws.abort()
    await settle()
    assert server.reader_ended_at == 1.0


async def test_broken_stream_ends_the_reader(autojump_clock: trio.testing.MockClock) -> None:
    """A stream closed under the reader ends it quietly, as an EOF would."""
    server_stream, _client_stream = trio.testing.memory_stream_pair()
    server = Server(server_stream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.run_reader)
        await settle()
        await server_stream.aclose()
    assert server.reader_ended_at == 0.0
    assert server.ws.closed.is_set()


# -- writing through the backlog (stream pairs: no fd) ---------------------------


async def test_frames_arrive_in_order(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Frames written before and after the writer starts arrive whole and in order."""
    server_stream, client_stream = trio.testing.memory_stream_pair()
    server = Server(server_stream)
    peer = WsPeer(client_stream)
    for n in range(10):
        server.ws.send_binary(b"early%d" % n)
    assert server.ws.backed_up  # no fd: the writer task must write them
    server.start(nursery)
    for n in range(10):
        server.ws.send_binary(b"late%d" % n)
    received = [await peer.next_binary() for _ in range(20)]
    assert received == [b"early%d" % n for n in range(10)] + [b"late%d" % n for n in range(10)]
    await settle()
    assert not server.ws.backed_up
    assert trio.current_time() == 0.0
    assert server.writer_ended_at is None  # idle, waiting for more


async def test_on_drained_once_the_backlog_is_written(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """on_drained runs once per backlog written, when the peer has taken the last byte."""
    server_stream, client_stream = trio.testing.lockstep_stream_pair()
    server = Server(server_stream)
    drained_at: list[float] = []
    server.ws.on_drained = lambda: drained_at.append(trio.current_time())
    nursery.start_soon(server.run_writer)
    for n in range(3):
        server.ws.send_binary(b"f%d" % n)
    await settle()
    assert server.ws.backed_up and drained_at == []
    await trio.sleep(0.25)
    peer = WsPeer(client_stream)
    assert [await peer.next_binary() for _ in range(3)] == [b"f0", b"f1", b"f2"]
    await settle()
    assert drained_at == [0.25]  # the three frames went out as one chunk
    assert not server.ws.backed_up


async def test_stuck_peer_is_aborted_send_timeout_after_the_stuck_send(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that never reads: the backlog stays, and send_timeout after send_all began, abort."""
    server_stream, _peer_stream = trio.testing.lockstep_stream_pair()
    server = Server(server_stream)
    nursery.start_soon(server.run_writer)
    await trio.sleep(3.0)  # idle time does not count
    server.ws.write(b"x" * 100)
    assert server.ws.backed_up
    await trio.sleep(SEND_TIMEOUT - 0.01)
    assert server.writer_ended_at is None
    assert server.ws.backed_up and not server.ws.aborted
    await server.ws.writer_done.wait()
    assert server.writer_ended_at == 3.0 + SEND_TIMEOUT
    assert server.ws.timed_out and server.ws.aborted
    assert not server.ws.is_open
    with pytest.raises(trio.ClosedResourceError):
        await server_stream.send_all(b"more")
    out = server.ws.bytes_out
    server.ws.send_binary(b"after")  # dropped quietly
    server.ws.write(b"after")
    assert server.ws.bytes_out == out


async def test_abort_closes_the_stream(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """abort() drops the backlog, no close frame is sent, and the peer sees EOF at once."""
    server, peer = memory_pair(nursery)
    server.ws.send_binary(b"sent")
    assert await peer.next_binary() == b"sent"
    server.ws.send_binary(b"dropped")
    server.ws.abort()
    assert await peer.rest() == []
    await settle()
    assert server.writer_ended_at == 0.0
    assert server.reader_ended_at == 0.0
    assert not server.ws.timed_out


async def test_server_close_handshake(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """send_close writes a close frame; the client's reply makes the server half-close and end."""
    server, peer = memory_pair(nursery)
    server.ws.send_close(4002, "no pong in time")
    assert server.ws.protocol.state is CLOSING and not server.ws.is_open
    server.ws.send_binary(b"too late")  # not OPEN any more: dropped
    frames = await peer.rest()
    assert [f.opcode for f in frames] == [Opcode.CLOSE]
    assert Close.parse(frames[0].data) == Close(4002, "no pong in time")
    await settle()
    assert server.reader_ended_at == 0.0 and server.writer_ended_at == 0.0
    assert server.ws.protocol.state is CLOSED


# -- the fast path: a real socket, direct os.write --------------------------------


def socket_pair() -> tuple[trio.SocketStream, trio.socket.SocketType]:
    """Our end as a SocketStream (it has an fd), the peer as a bare non-blocking socket."""
    ours, theirs = trio.socket.socketpair()
    return trio.SocketStream(ours), theirs


def read_now(sock: trio.socket.SocketType) -> bytes:
    """Whatever the kernel holds for ``sock`` right now, without waiting or yielding."""
    try:
        return os.read(sock.fileno(), 1 << 20)
    except BlockingIOError:
        return b""


async def test_small_write_goes_out_synchronously() -> None:
    """On a socket, write() hands a small frame to the kernel at once: no writer task needed."""
    with trio.fail_after(5):
        stream, theirs = socket_pair()
        with theirs:
            ws = WsConnection(
                stream,
                Protocol(Side.SERVER),
                send_timeout=SEND_TIMEOUT,
                close_timeout=CLOSE_TIMEOUT,
            )
            ws.send_binary(b"hi")
            assert not ws.backed_up
            assert read_now(theirs) == b"\x82\x02hi"  # run_writer was never started
            ws.write(b"raw")
            assert read_now(theirs) == b"raw"
            assert ws.bytes_out == 7
            await stream.aclose()


async def test_full_kernel_buffer_keeps_the_rest_in_order() -> None:
    """Writing megabytes to a peer that does not read backs up; the peer later gets every byte."""
    with trio.fail_after(5):
        stream, theirs = socket_pair()
        with theirs:
            ws = WsConnection(
                stream,
                Protocol(Side.SERVER),
                send_timeout=5.0,
                close_timeout=CLOSE_TIMEOUT,
                max_backlog_bytes=8 << 20,
            )
            drained = trio.Event()
            ws.on_drained = drained.set
            chunks = [bytes([n]) * 65536 for n in range(64)] + [b"END"]
            for chunk in chunks[:-1]:
                ws.write(chunk)
            assert ws.backed_up  # 4 MiB do not fit in a socket buffer
            ws.write(chunks[-1])  # must queue behind the backlog, not jump it
            expected = b"".join(chunks)
            received = bytearray()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ws.run_writer)
                while len(received) < len(expected):
                    received += await theirs.recv(1 << 20)
                await drained.wait()
                assert not ws.backed_up
                ws.send_binary(b"fast again")
                assert read_now(theirs) == b"\x82\x0afast again"
                ws.abort()
            assert bytes(received) == expected
            assert ws.bytes_out == len(expected) + 12
            assert not ws.timed_out


async def test_write_to_a_vanished_peer_aborts_quietly() -> None:
    """os.write failing (the peer closed its socket) marks the connection aborted, no raise."""
    with trio.fail_after(5):
        stream, theirs = socket_pair()
        theirs.close()
        ws = WsConnection(
            stream, Protocol(Side.SERVER), send_timeout=SEND_TIMEOUT, close_timeout=CLOSE_TIMEOUT
        )
        ws.send_binary(b"anyone?")
        assert ws.aborted and not ws.backed_up
        await ws.run_writer()  # returns at once and closes our end
        assert ws.writer_done.is_set()
        with pytest.raises(trio.ClosedResourceError):
            await stream.send_all(b"x")


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_binary_frame_header_matches_websockets(length: int) -> None:
    """The hand-built data frame header is byte for byte what websockets would write."""
    from websockets.frames import Frame, Opcode

    from gameserver.trio.framing import binary_frame_header

    payload = b"x" * length
    expected = Frame(Opcode.BINARY, payload).serialize(mask=False)
    assert binary_frame_header(length) + payload == expected


async def test_backlog_over_its_cap_drops_the_connection() -> None:
    """Bytes queued for a socket that never drains are capped: past the cap, the peer is dropped."""
    stream, theirs = socket_pair()
    with theirs:
        ws = WsConnection(
            stream,
            Protocol(Side.SERVER),
            send_timeout=5.0,
            close_timeout=CLOSE_TIMEOUT,
            max_backlog_bytes=256 * 1024,
        )
        for _ in range(64):  # 4 MiB, far more than kernel buffers + the cap
            ws.write(b"x" * 65536)
        assert ws.aborted
        assert ws.failed_reason == "send backlog"


def unread_connection(**options: Any) -> tuple[WsConnection, trio.abc.Stream]:
    """A WsConnection (nothing running yet) on a memory stream, and the client's end."""
    server_stream, client_stream = trio.testing.memory_stream_pair()
    max_size = options.pop("max_size", 1 << 20)
    ws = WsConnection(
        server_stream,
        Protocol(Side.SERVER, max_size=max_size),
        send_timeout=5.0,
        close_timeout=CLOSE_TIMEOUT,
        **options,
    )
    return ws, client_stream


async def test_frame_flood_is_closed_1008(autojump_clock: trio.abc.Clock) -> None:
    """Every frame takes a token (pings too): a ping flood past the burst gets close 1008."""
    from gameserver.ratelimit import TokenBucket

    ws, client_stream = unread_connection(frame_limit=TokenBucket(10.0, 20, trio.current_time()))
    client = Protocol(Side.CLIENT)
    for _ in range(50):
        client.send_ping(b"")
    await client_stream.send_all(b"".join(client.data_to_send()))
    await client_stream.send_eof()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ws.run_writer)
        await ws.run_reader(lambda message: None, lambda: None)
        nursery.cancel_scope.cancel()
    assert ws.failed_reason == "frame flood"
    assert ws.protocol.close_sent is not None
    assert ws.protocol.close_sent.code == 1008


async def test_flood_of_small_frames_then_silence_is_dropped_at_the_close_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Small binary frames one per read (the fast path) past the limit: 1008, and a peer
    that then holds TCP open is dropped close_timeout later."""
    from gameserver.ratelimit import TokenBucket

    ws, client_stream = unread_connection(frame_limit=TokenBucket(1.0, 3, trio.current_time()))
    client = Protocol(Side.CLIENT)
    received: list[bytes] = []
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ws.run_writer)
            nursery.start_soon(ws.run_reader, received.append, lambda: None)
            for n in range(4):  # the 4th is one too many, and the last thing the peer sends
                client.send_binary(bytes([n]))
                await client_stream.send_all(b"".join(client.data_to_send()))
                await settle()  # each frame is a read of its own
            failed_at = trio.current_time()
            await ws.closed.wait()  # the peer never answers the close, never ends TCP
            ended_at = trio.current_time()
            nursery.cancel_scope.cancel()
    assert received == [b"\x00", b"\x01", b"\x02"]
    assert ws.failed_reason == "frame flood"
    assert ws.aborted
    assert ended_at - failed_at == pytest.approx(CLOSE_TIMEOUT)


async def test_endless_empty_fragments_are_closed_1009(autojump_clock: trio.abc.Clock) -> None:
    """Empty continuation frames add no bytes, so their number is capped: close 1009."""
    ws, client_stream = unread_connection(max_size=4096, max_fragments=8)
    client = Protocol(Side.CLIENT)
    client.send_binary(b"start", fin=False)
    for _ in range(20):
        client.send_continuation(b"", fin=False)
    await client_stream.send_all(b"".join(client.data_to_send()))
    await client_stream.send_eof()
    messages: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ws.run_writer)
        await ws.run_reader(messages.append, lambda: None)
        nursery.cancel_scope.cancel()
    assert messages == []
    assert ws.failed_reason == "too many fragments"
    assert ws.protocol.close_sent is not None
    assert ws.protocol.close_sent.code == 1009
