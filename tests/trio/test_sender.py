"""run_sender over websockets connections on trio.testing streams (no sockets, virtual time)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from websockets.exceptions import ConnectionClosed
from websockets.protocol import CLIENT, CLOSED, SERVER, Protocol
from websockets.trio.connection import Connection

from gameserver.outbox import Outbox
from gameserver.trio.sender import Wakeup, run_sender

SEND_TIMEOUT = 0.5
CLOSE_TIMEOUT = 2.0


def server_side(nursery: trio.Nursery, stream: trio.abc.Stream) -> Connection:
    """The server end of a WebSocket already OPEN, built as the websockets test-suite does.

    ``ServerConnection``/``ClientConnection`` cannot be used without a handshake: their
    ``process_event`` asserts that the first event is the HTTP request/response. The shared
    base ``Connection`` (what ``run_sender`` is typed for) has no such step.
    """
    return Connection(
        nursery, stream, Protocol(SERVER), ping_interval=None, close_timeout=CLOSE_TIMEOUT
    )


def client_side(nursery: trio.Nursery, stream: trio.abc.Stream) -> Connection:
    """The client end, already OPEN; it starts reading its stream at once."""
    return Connection(
        nursery, stream, Protocol(CLIENT), ping_interval=None, close_timeout=CLOSE_TIMEOUT
    )


class SlowReader(trio.abc.Stream):
    """Wraps a stream so that every receive_some first waits ``delay`` seconds."""

    def __init__(self, inner: trio.abc.Stream, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await trio.sleep(self.delay)
        return await self.inner.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


class Sender:
    """An Outbox with its sender task; records when run_sender returned."""

    def __init__(self, ws: Connection) -> None:
        self.ws = ws
        self.wakeup = Wakeup()
        self.outbox = Outbox(64, self.wakeup.set)
        self.finished_at: float | None = None
        self.done = trio.Event()

    async def run(self) -> None:
        await run_sender(self.ws, self.outbox, self.wakeup, send_timeout=SEND_TIMEOUT, peer="t")
        self.finished_at = trio.current_time()
        self.done.set()


def memory_pair(nursery: trio.Nursery) -> tuple[Sender, Connection]:
    server_stream, client_stream = trio.testing.memory_stream_pair()
    return Sender(server_side(nursery, server_stream)), client_side(nursery, client_stream)


def stuck_pair(nursery: trio.Nursery) -> tuple[Sender, trio.abc.Stream]:
    """A sender whose peer never reads: a lockstep stream nobody receives from."""
    server_stream, peer_stream = trio.testing.lockstep_stream_pair()
    return Sender(server_side(nursery, server_stream)), peer_stream


async def test_frames_delivered_in_outbox_order(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Reliable frames arrive in order, then the snapshot; later frames follow as queued."""
    sender, client = memory_pair(nursery)
    sender.outbox.send(b"e1")
    sender.outbox.set_snapshot(b"snap")
    sender.outbox.send(b"e2")
    nursery.start_soon(sender.run)
    assert [await client.recv() for _ in range(3)] == [b"e1", b"e2", b"snap"]
    for n in range(20):
        sender.outbox.send(b"m%d" % n)
    assert [await client.recv() for _ in range(20)] == [b"m%d" % n for n in range(20)]
    assert trio.current_time() == 0.0
    await trio.testing.wait_all_tasks_blocked()
    assert sender.finished_at is None  # idle, waiting for more


async def test_stuck_peer_evicted_exactly_send_timeout_after_the_send(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that never reads: send_timeout after the stuck send, the sender drops TCP."""
    sender, peer = stuck_pair(nursery)
    nursery.start_soon(sender.run)
    await trio.sleep(3.0)  # idle time does not count
    sender.outbox.send(b"x" * 100)
    await trio.testing.wait_all_tasks_blocked()
    assert sender.finished_at is None
    with trio.fail_after(60):
        await sender.done.wait()
    assert sender.finished_at == 3.0 + SEND_TIMEOUT
    await trio.testing.wait_all_tasks_blocked()
    assert sender.ws.state is CLOSED
    with pytest.raises(trio.ClosedResourceError):
        await sender.ws.stream.send_all(b"more")
    received = b""
    while chunk := await peer.receive_some():
        received += chunk
    assert received == b"\x82\x64" + b"x" * 100  # the stuck frame, then EOF: no close frame


async def test_stuck_peer_does_not_delay_another_client(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """While one sender is stuck, another client's frames arrive the moment they are queued."""
    stuck, _peer = stuck_pair(nursery)
    healthy, client = memory_pair(nursery)
    nursery.start_soon(stuck.run)
    nursery.start_soon(healthy.run)
    received_at: list[float] = []
    for n in range(10):  # 10 Hz for 1 s, longer than the stuck sender lives
        stuck.outbox.set_snapshot(b"s%d" % n)
        healthy.outbox.set_snapshot(b"s%d" % n)
        assert await client.recv() == b"s%d" % n
        received_at.append(trio.current_time())
        await trio.sleep_until((n + 1) / 10)
    assert received_at == [n / 10 for n in range(10)]
    assert stuck.finished_at == SEND_TIMEOUT
    assert healthy.finished_at is None
    assert healthy.outbox.snapshots_replaced == 0


async def test_close_request_sends_that_close_code(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """outbox.close(4002) → queued frames first, then the peer receives close code 4002."""
    sender, client = memory_pair(nursery)
    nursery.start_soon(sender.run)
    sender.outbox.send(b"last words")
    sender.outbox.close(4002, "no pong in time")
    assert await client.recv() == b"last words"
    with pytest.raises(ConnectionClosed) as raised:
        await client.recv()
    assert raised.value.rcvd is not None
    assert (raised.value.rcvd.code, raised.value.rcvd.reason) == (4002, "no pong in time")
    await trio.testing.wait_all_tasks_blocked()
    assert sender.finished_at == 0.0  # the handshake completed at once
    assert client.close_code == 4002
    assert sender.ws.state is CLOSED


async def test_abort_drops_tcp_without_a_close_frame(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """close(abort=True) drops queued frames and the connection: the peer sees 1006."""
    sender, client = memory_pair(nursery)
    sender.outbox.send(b"dropped")
    sender.outbox.close(4001, "too slow", abort=True)
    nursery.start_soon(sender.run)
    with pytest.raises(ConnectionClosed) as raised:
        await client.recv()
    assert raised.value.rcvd is None
    assert client.close_code == 1006
    await trio.testing.wait_all_tasks_blocked()
    assert sender.finished_at == 0.0


async def test_sender_returns_when_the_peer_has_closed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """After the peer closed, the next send ends the sender quietly."""
    sender, client = memory_pair(nursery)
    nursery.start_soon(sender.run)
    await client.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert sender.finished_at is None  # idle: it only notices on its next send
    sender.outbox.send(b"anyone?")
    await trio.testing.wait_all_tasks_blocked()
    assert sender.finished_at == 0.0


async def test_latest_wins_while_the_peer_is_stuck(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Snapshots set while a send is blocked replace each other; only the newest goes next."""
    server_stream, peer_stream = trio.testing.lockstep_stream_pair()
    sender = Sender(server_side(nursery, server_stream))
    nursery.start_soon(sender.run)
    sender.outbox.set_snapshot(b"s1")
    await trio.testing.wait_all_tasks_blocked()  # the sender is now blocked sending s1
    for frame in (b"s2", b"s3", b"s4"):
        sender.outbox.set_snapshot(frame)
    assert sender.outbox.snapshots_replaced == 2
    client = client_side(nursery, peer_stream)  # the peer starts reading
    assert await client.recv() == b"s1"
    assert await client.recv() == b"s4"
    sender.outbox.close(1000, "done")
    with pytest.raises(ConnectionClosed):
        await client.recv()
    assert client.close_code == 1000


async def test_latest_wins_with_a_slow_peer_at_30_hz(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer reading every 0.25 s gets 3 of 10 snapshots set at 30 Hz; 7 are replaced."""
    server_stream, peer_stream = trio.testing.lockstep_stream_pair()
    sender = Sender(server_side(nursery, server_stream))
    client = client_side(nursery, SlowReader(peer_stream, 0.25))
    nursery.start_soon(sender.run)
    await trio.testing.wait_all_tasks_blocked()

    async def ticker() -> None:
        for n in range(10):  # snapshot n at n/30
            await trio.sleep_until(n / 30)
            sender.outbox.set_snapshot(b"s%d" % n)

    nursery.start_soon(ticker)
    received: list[bytes | str] = []
    times: list[float] = []
    while not received or received[-1] != b"s9":
        received.append(await client.recv())
        times.append(trio.current_time())
    assert received == [b"s0", b"s7", b"s9"]
    assert times == [0.25, 0.5, 0.75]
    assert sender.outbox.snapshots_replaced == 7
    assert sender.finished_at is None


async def test_close_to_a_peer_that_never_reads_is_bounded(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A close request to a peer that reads nothing still ends the sender, in bounded time."""
    sender, _peer = stuck_pair(nursery)
    sender.outbox.close(4002, "no pong in time")
    with trio.fail_after(60):
        await sender.run()
    assert sender.finished_at == SEND_TIMEOUT + CLOSE_TIMEOUT
    await trio.testing.wait_all_tasks_blocked()
    assert sender.ws.state is CLOSED


async def test_wakeup_rearms(autojump_clock: trio.testing.MockClock) -> None:
    """Wakeup.wait returns once per set() and then waits again."""
    wakeup = Wakeup()
    wakeup.set()
    with trio.fail_after(1):
        await wakeup.wait()
    with trio.move_on_after(0.01) as scope:
        await wakeup.wait()
    assert scope.cancelled_caught
