"""ReadPoller, and WsConnection reading through it on real sockets (socketpairs).

These use the real clock (epoll on real fds); every wait is on an event or a
socket, bounded by ``fail_after``. The memory-stream tests in test_wsconn.py
cover the same reader without a poller.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
from collections.abc import Iterator

import pytest
import trio
import trio.testing
from websockets.frames import Close, CloseCode, Opcode
from websockets.protocol import Protocol, Side

from gameserver.trio.arrival import SO_TIMESTAMPNS, arrival_time
from gameserver.trio.poller import ReadPoller, available
from gameserver.trio.wsconn import WsConnection
from tests.helpers import WsPeer

pytestmark = pytest.mark.skipif(not available(), reason="epoll is Linux only")

LIMIT = 5.0
"""Real seconds any test here may take; they finish in milliseconds."""


class Ready:
    """A handler that drains its socket and counts what it read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""
        self.calls = 0
        self.event = trio.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.data += self.sock.recv(4096)
        self.event.set()


def nonblocking_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def test_handlers_run_for_ready_sockets_only() -> None:
    poller = ReadPoller()
    (a, a_peer), (b, b_peer) = nonblocking_pair(), nonblocking_pair()
    with a, a_peer, b, b_peer:
        on_a, on_b = Ready(a), Ready(b)
        poller.register(a.fileno(), on_a)
        poller.register(b.fileno(), on_b)
        assert poller.handle_ready() == 0
        a_peer.send(b"hello")
        assert poller.handle_ready() == 1
        assert (on_a.data, on_b.calls) == (b"hello", 0)
        assert poller.handle_ready() == 0  # drained: level-triggered, nothing left


def test_unregister_only_removes_its_own_registration() -> None:
    """A late unregister for a closed socket must not drop a new socket that reused its fd."""
    poller = ReadPoller()
    a, a_peer = nonblocking_pair()
    with a, a_peer:
        old, new = Ready(a), Ready(a)
        poller.register(a.fileno(), new)
        poller.unregister(a.fileno(), old)
        assert len(poller) == 1
        a_peer.send(b"x")
        poller.handle_ready()
        assert new.calls == 1
        poller.unregister(a.fileno(), new)
        assert len(poller) == 0
        a_peer.send(b"y")
        assert poller.handle_ready() == 0


def test_a_failing_handler_is_dropped_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    poller = ReadPoller()
    (a, a_peer), (b, b_peer) = nonblocking_pair(), nonblocking_pair()
    with a, a_peer, b, b_peer:

        def broken() -> None:
            raise RuntimeError("bug")

        on_b = Ready(b)
        poller.register(a.fileno(), broken)
        poller.register(b.fileno(), on_b)
        a_peer.send(b"x")
        b_peer.send(b"y")
        with caplog.at_level(logging.ERROR):
            assert poller.handle_ready() == 2
        assert on_b.data == b"y"
        assert "no longer watched" in caplog.text
        assert len(poller) == 1
        assert poller.handle_ready() == 0  # a's data is still there, but a is not watched


@contextlib.contextmanager
def ready_sockets(poller: ReadPoller, count: int) -> Iterator[list[Ready]]:
    """``count`` registered sockets, each with a byte waiting; closed afterwards."""
    pairs = [nonblocking_pair() for _ in range(count)]
    try:
        handlers = [Ready(ours) for ours, _ in pairs]
        for (ours, peer), handler in zip(pairs, handlers, strict=True):
            poller.register(ours.fileno(), handler)
            peer.send(b"x")
        yield handlers
    finally:
        poller.close()
        for ours, peer in pairs:
            ours.close()
            peer.close()


def test_one_round_handles_at_most_max_events() -> None:
    poller = ReadPoller(max_events=2)
    with ready_sockets(poller, 3) as handlers:
        assert poller.handle_ready() == 2
        assert poller.handle_ready() == 1
        assert all(h.calls == 1 for h in handlers)


async def test_run_serves_readiness_until_cancelled() -> None:
    with trio.fail_after(LIMIT):
        poller = ReadPoller()
        a, a_peer = nonblocking_pair()
        with a, a_peer:
            handler = Ready(a)
            poller.register(a.fileno(), handler)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(poller.run)
                a_peer.send(b"ping")
                await handler.event.wait()
                nursery.cancel_scope.cancel()
            assert handler.data == b"ping"
            assert not poller.register(a.fileno(), handler)  # stopped: refuses


async def test_reads_are_batched_until_a_drain(nursery: trio.Nursery) -> None:
    """With an interval, what arrives after a round waits for the next one, or for a drain
    (what a room does right before its tick)."""
    with trio.fail_after(LIMIT):
        poller = ReadPoller(interval=3600.0)  # the next round would be an hour away
        a, a_peer = nonblocking_pair()
        with a, a_peer:
            handler = Ready(a)
            poller.register(a.fileno(), handler)
            nursery.start_soon(poller.run)
            a_peer.send(b"first")
            await handler.event.wait()
            a_peer.send(b"second")
            await trio.testing.wait_all_tasks_blocked()
            assert (handler.calls, handler.data) == (1, b"first")
            poller.drain()
            assert (handler.calls, handler.data) == (2, b"firstsecond")


async def test_urgent_sockets_are_read_at_once_while_the_rounds_wait(
    nursery: trio.Nursery,
) -> None:
    """An urgent socket (its client owes a pong) is read the moment data arrives, though
    the batched rounds are an hour apart; back to normal, it waits for the rounds again."""
    with trio.fail_after(LIMIT):
        poller = ReadPoller(interval=3600.0)
        (a, a_peer), (b, b_peer) = nonblocking_pair(), nonblocking_pair()
        with a, a_peer, b, b_peer:
            on_a, on_b = Ready(a), Ready(b)
            poller.register(a.fileno(), on_a)
            poller.register(b.fileno(), on_b)
            nursery.start_soon(poller.run)
            a_peer.send(b"1")
            await on_a.event.wait()  # the first round; the next is an hour away
            poller.set_urgent(b.fileno(), on_b, True)
            a_peer.send(b"2")
            b_peer.send(b"pong")
            await on_b.event.wait()
            assert (on_a.data, on_b.data) == (b"1", b"pong")
            poller.set_urgent(b.fileno(), on_b, False)
            b_peer.send(b"input")
            await trio.testing.wait_all_tasks_blocked()
            assert (on_a.data, on_b.data) == (b"1", b"pong")
            poller.drain()  # a drain reads both sets
            assert (on_a.data, on_b.data) == (b"12", b"ponginput")


def test_urgent_registration_follows_its_handler() -> None:
    """set_urgent and unregister act only for the handler registered now (fd reuse);
    unregister takes an urgent fd out of the urgent set; a reused fd starts out normal."""
    poller = ReadPoller(interval=0.01)
    a, a_peer = nonblocking_pair()
    with a, a_peer:
        fd = a.fileno()
        old, new = Ready(a), Ready(a)
        poller.register(fd, new)
        poller.set_urgent(fd, old, True)  # a stale handler: ignored
        assert fd not in poller._urgent_fds
        poller.set_urgent(fd, new, True)
        poller.set_urgent(fd, new, True)  # twice: still one registration
        assert fd in poller._urgent_fds
        a_peer.send(b"x")
        assert poller._handle(poller._urgent) == 1  # the urgent set reports it
        assert poller._handle(poller._epoll) == 0  # the rounds' set does not
        poller.unregister(fd, new)
        a_peer.send(b"y")
        assert (poller.handle_ready(), len(poller), new.data) == (0, 0, b"x")
        assert fd not in poller._urgent_fds
        poller.register(fd, old)
        assert fd not in poller._urgent_fds
        poller.close()
        poller.set_urgent(fd, old, True)  # after close: no error, nothing changes
        assert fd not in poller._urgent_fds


def test_without_an_interval_nothing_is_urgent() -> None:
    """Rounds that are immediate need no urgent set: set_urgent does nothing."""
    poller = ReadPoller()
    a, a_peer = nonblocking_pair()
    with a, a_peer:
        handler = Ready(a)
        poller.register(a.fileno(), handler)
        poller.set_urgent(a.fileno(), handler, True)
        assert not poller._urgent_fds
        a_peer.send(b"x")
        assert poller._handle(poller._epoll) == 1
        poller.close()


def test_drain_goes_on_past_max_events() -> None:
    poller = ReadPoller(max_events=2)
    with ready_sockets(poller, 5) as handlers:
        poller.drain()
        assert [h.calls for h in handlers] == [1] * 5


# -- WsConnection through the poller ---------------------------------------------------


def tcp_pair() -> tuple[trio.socket.SocketType, trio.socket.SocketType]:
    """A connected TCP pair on 127.0.0.1 (socketpair() is AF_UNIX: no arrival stamps)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        theirs = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
    ours.setblocking(False)
    theirs.setblocking(False)
    return trio.socket.from_stdlib_socket(ours), trio.socket.from_stdlib_socket(theirs)


class PolledServer:
    """A WsConnection reading through ``poller``, its peer a WsPeer on the other socket."""

    def __init__(self, poller: ReadPoller, *, tcp: bool = False, **kwargs: int) -> None:
        ours, theirs = tcp_pair() if tcp else trio.socket.socketpair()
        self.stream = trio.SocketStream(ours)
        self.peer = WsPeer(trio.SocketStream(theirs))
        self.ws = WsConnection(
            self.stream,
            Protocol(Side.SERVER, max_size=kwargs.pop("max_size", 1 << 20)),
            send_timeout=1.0,
            close_timeout=1.0,
            poller=poller,
            **kwargs,
        )
        self.binary: list[bytes] = []
        self.got = trio.Event()
        self.fail_on: bytes | None = None

    def on_binary(self, message: bytes) -> None:
        if message == self.fail_on:
            raise RuntimeError("bug in the message handler")
        self.binary.append(message)
        self.got.set()

    async def expect(self, count: int) -> None:
        while len(self.binary) < count:
            self.got = trio.Event()
            await self.got.wait()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.ws.run_writer)
            await self.ws.run_reader(self.on_binary, lambda: None)
            await self.ws.writer_done.wait()
        await trio.aclose_forcefully(self.stream)


async def test_messages_split_fragmented_and_batched_arrive_in_order(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(LIMIT):
        poller = ReadPoller()
        nursery.start_soon(poller.run)
        server = PolledServer(poller)
        nursery.start_soon(server.run)
        await server.peer.send_binary(b"one")  # the fast path: one small frame per read
        await server.expect(1)
        # Several frames in one write, a long frame, then a frame split over two writes.
        server.peer.protocol.send_binary(b"two")
        server.peer.protocol.send_binary(b"x" * 300)
        await server.peer.flush()
        server.peer.protocol.send_binary(b"three", fin=False)
        server.peer.protocol.send_continuation(b"!", fin=True)
        wire = b"".join(server.peer.protocol.data_to_send())
        await server.peer.stream.send_all(wire[:3])
        await trio.testing.wait_all_tasks_blocked()
        await server.peer.stream.send_all(wire[3:])
        await server.expect(4)
        assert server.binary == [b"one", b"two", b"x" * 300, b"three!"]
        assert server.ws.bytes_in > 0


async def test_a_connection_reading_urgently_skips_the_wait_for_a_round(
    nursery: trio.Nursery,
) -> None:
    """WsConnection.read_urgently puts its socket in the poller's urgent set and back."""
    with trio.fail_after(LIMIT):
        poller = ReadPoller(interval=3600.0)
        nursery.start_soon(poller.run)
        server = PolledServer(poller)
        nursery.start_soon(server.run)
        await server.peer.send_binary(b"first")  # the first round; the next is an hour away
        await server.expect(1)
        server.ws.read_urgently(True)
        await server.peer.send_binary(b"pong")
        await server.expect(2)
        server.ws.read_urgently(False)
        await server.peer.send_binary(b"later")
        await trio.testing.wait_all_tasks_blocked()
        assert server.binary == [b"first", b"pong"]
        poller.drain()
        assert server.binary == [b"first", b"pong", b"later"]
        server.ws.abort()


async def test_urgency_asked_before_reading_begins_applies_once_it_does(
    nursery: trio.Nursery,
) -> None:
    """A hello among the handshake's early frames sends the first ping before the socket
    is polled: the urgency asked for then applies when polling starts."""
    with trio.fail_after(LIMIT):
        poller = ReadPoller(interval=3600.0)
        server = PolledServer(poller)
        server.ws.read_urgently(True)
        nursery.start_soon(server.run)
        await trio.testing.wait_all_tasks_blocked()
        assert server.stream.socket.fileno() in poller._urgent_fds
        server.ws.abort()


async def test_ping_close_and_end_leave_the_poller(nursery: trio.Nursery) -> None:
    with trio.fail_after(LIMIT):
        poller = ReadPoller()
        nursery.start_soon(poller.run)
        server = PolledServer(poller)
        done = trio.Event()

        async def run_server() -> None:
            await server.run()
            done.set()

        nursery.start_soon(run_server)
        server.peer.protocol.send_ping(b"hb")
        await server.peer.flush()
        frame = await server.peer.next_frame()
        assert frame is not None and frame.opcode is Opcode.PONG and frame.data == b"hb"
        assert len(poller) == 1
        server.peer.protocol.send_close(CloseCode.NORMAL_CLOSURE, "bye")
        await server.peer.flush()
        frame = await server.peer.next_frame()
        assert frame is not None and Close.parse(frame.data).code == CloseCode.NORMAL_CLOSURE
        assert await server.peer.next_frame() is None  # the server's EOF; the peer ends too
        await done.wait()
        assert not server.ws.aborted  # a clean closing handshake, not the close deadline
        assert server.ws.closed.is_set()
        assert len(poller) == 0


async def test_a_handler_bug_drops_that_connection_only(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(LIMIT):
        poller = ReadPoller()
        nursery.start_soon(poller.run)
        buggy, healthy = PolledServer(poller), PolledServer(poller)
        buggy.fail_on = b"boom"
        nursery.start_soon(buggy.run)
        nursery.start_soon(healthy.run)
        await buggy.peer.send_binary(b"boom")
        with caplog.at_level(logging.ERROR):
            await buggy.ws.closed.wait()
        assert buggy.ws.aborted
        assert "connection failed" in caplog.text
        await healthy.peer.send_binary(b"still here")
        await healthy.expect(1)
        assert healthy.binary == [b"still here"]
        assert len(poller) == 1


async def test_eof_and_abort_both_unregister(nursery: trio.Nursery) -> None:
    with trio.fail_after(LIMIT):
        poller = ReadPoller()
        nursery.start_soon(poller.run)
        ended_by_eof, aborted = PolledServer(poller), PolledServer(poller)
        async with trio.open_nursery() as servers:
            servers.start_soon(ended_by_eof.run)
            servers.start_soon(aborted.run)
            await trio.testing.wait_all_tasks_blocked()
            assert len(poller) == 2
            await ended_by_eof.peer.stream.send_eof()
            await ended_by_eof.ws.closed.wait()
            aborted.ws.abort()
        assert len(poller) == 0
        assert ended_by_eof.ws.closed.is_set() and aborted.ws.closed.is_set()


async def test_a_small_frame_over_max_size_is_still_refused_1009(nursery: trio.Nursery) -> None:
    """The fast path defers to the protocol when a frame is over the limit."""
    with trio.fail_after(LIMIT):
        poller = ReadPoller()
        nursery.start_soon(poller.run)
        server = PolledServer(poller, max_size=4)
        nursery.start_soon(server.run)
        await server.peer.send_binary(b"too long")
        frame = await server.peer.next_frame()
        assert frame is not None and frame.opcode is Opcode.CLOSE
        assert Close.parse(frame.data).code == CloseCode.MESSAGE_TOO_BIG
        assert server.binary == []


# -- arrival times: reads may be late, the kernel's stamp is not ------------------------


def test_arrival_time_comes_from_the_kernel_stamp() -> None:
    now = 100.0
    stamp = time.time() - 0.25
    seconds, fraction = divmod(stamp, 1.0)
    payload = struct.pack("qq", int(seconds), int(fraction * 1e9))
    assert SO_TIMESTAMPNS is not None
    ancillary = [(socket.SOL_SOCKET, SO_TIMESTAMPNS, payload)]
    assert arrival_time(ancillary, now) == pytest.approx(now - 0.25, abs=0.01)
    assert arrival_time([], now) == now  # no stamp: the read time
    future = struct.pack("qq", int(time.time()) + 60, 0)
    assert arrival_time([(socket.SOL_SOCKET, SO_TIMESTAMPNS, future)], now) == now
    ancient = struct.pack("qq", int(time.time()) - 60, 0)
    assert arrival_time([(socket.SOL_SOCKET, SO_TIMESTAMPNS, ancient)], now) == now


async def test_a_message_read_late_keeps_its_arrival_time(nursery: trio.Nursery) -> None:
    """Sent, then read 0.2 s later by a drain: the connection reports when it arrived.

    The kernel turns stamping on shortly after a socket first asks for it, so the
    first message may come without a stamp: up to five tries.
    """
    poller = ReadPoller()  # not running: only drain() reads
    server = PolledServer(poller, tcp=True)
    if not server.ws._timestamps:
        pytest.skip("no SO_TIMESTAMPNS here")
    nursery.start_soon(server.run)
    with trio.fail_after(LIMIT):
        await trio.testing.wait_all_tasks_blocked()
        offsets = []
        for attempt in range(5):
            await server.peer.send_binary(b"%d" % attempt)
            sent_at = trio.current_time()
            await trio.sleep(0.2)  # the delay under test, not a synchronisation
            poller.drain()
            assert len(server.binary) == attempt + 1
            offsets.append(server.ws.last_read_at - sent_at)
            if abs(offsets[-1]) < 0.05:
                break
        assert abs(offsets[-1]) < 0.05, offsets  # the read time would be >= 0.2 s later
        server.ws.abort()
