"""ClientLink: a real Session and ServerCore over a WsConnection on trio.testing streams.

Everything runs under the autojump clock, so every time asserted is exact.
The client end is a websockets client Protocol driven by hand (``WsPeer``).
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from websockets.frames import Close, Opcode
from websockets.protocol import CLOSED, Protocol, Side

from gameserver.core import ServerCore
from gameserver.games import default_games
from gameserver.session import State
from gameserver.settings import Settings
from gameserver.trio.link import ClientLink
from gameserver.trio.wsconn import WsConnection
from protocol import (
    PROTOCOL_VERSION,
    CloseCode,
    Event,
    Hello,
    Ping,
    Pong,
    Snapshot,
    Welcome,
    encode,
    pack_state,
)
from tests.helpers import WsPeer

GUARD = 60.0
"""Virtual seconds any link may live in these tests."""


def make_core(**settings: Any) -> ServerCore:
    settings.setdefault("log_level", "WARNING")
    # One ping after the welcome, then every ping_interval: these tests count on that grid
    # (the burst after a welcome is tested in tests/core/test_session.py).
    settings.setdefault("ping_burst", 1)
    return ServerCore(Settings(**settings), default_games(), epoch=0.0)


class Client:
    """A ClientLink on one end of a stream pair, the hand-driven WsPeer on the other."""

    def __init__(self, core: ServerCore, *, lockstep: bool = False, answer: bool = True) -> None:
        make_pair = (
            trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
        )
        server_stream, client_stream = make_pair()
        protocol = Protocol(Side.SERVER, max_size=core.settings.max_message_bytes)
        self.ws = WsConnection(
            server_stream,
            protocol,
            send_timeout=core.settings.send_timeout,
            close_timeout=core.settings.close_timeout,
        )
        self.link = ClientLink(core, self.ws, "test")
        self.session = self.link.session
        self.outbox = self.link.outbox
        self.peer = WsPeer(client_stream, answer=answer)
        self.ended_at: float | None = None
        self.done = trio.Event()
        self.timer_calls = 0
        self._on_timer = self.session.on_timer
        self.session.on_timer = self._counted_on_timer  # type: ignore[method-assign]

    def _counted_on_timer(self, now: float) -> None:
        # A timer that keeps firing without time passing would spin forever under the
        # autojump clock (the clock only jumps when every task is blocked): fail instead.
        self.timer_calls += 1
        assert self.timer_calls < 1000, "session timer busy loop"
        self._on_timer(now)

    async def run(self) -> None:
        # Under the autojump clock a deadlock jumps right to this deadline: a failure, not a hang.
        with trio.fail_after(GUARD):
            await self.link.run()
        self.ended_at = trio.current_time()
        self.done.set()

    async def hello(self, **kwargs: Any) -> Welcome:
        """Send hello; return the welcome (after checking the first ping follows it)."""
        await self.peer.send_binary(encode(Hello(PROTOCOL_VERSION, "ann", **kwargs)))
        welcome = await self.peer.next_message()
        assert isinstance(welcome, Welcome)
        messages = [await self.peer.next_message()]
        while not isinstance(messages[-1], Ping):
            messages.append(await self.peer.next_message())
        return welcome

    async def next_close(self) -> Close:
        """Skip binary frames up to the server's close frame; return its code and reason."""
        while True:
            frame = await self.peer.next_frame()
            assert frame is not None, "EOF before a close frame"
            if frame.opcode is Opcode.CLOSE:
                return Close.parse(frame.data)


def start(nursery: trio.Nursery, core: ServerCore, **kwargs: bool) -> Client:
    client = Client(core, **kwargs)
    nursery.start_soon(client.run)
    return client


async def test_hello_gets_welcome_then_first_ping(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """hello → welcome with this player's id, then the first ping right behind it."""
    client = start(nursery, make_core())
    await client.peer.send_binary(encode(Hello(PROTOCOL_VERSION, "ann")))
    welcome = await client.peer.next_message()
    assert isinstance(welcome, Welcome)
    assert welcome.player == client.session.player_id
    assert isinstance(await client.peer.next_message(), Ping)
    assert client.session.state is State.LOBBY
    assert trio.current_time() == 0.0


async def test_pings_every_interval_after_hello(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """After a hello at 0.25, pings arrive at 0.25, 1.25, 2.25 …, not after hello_timeout."""
    client = start(nursery, make_core(ping_interval=1.0, hello_timeout=5.0))
    await trio.sleep(0.25)
    await client.peer.send_binary(encode(Hello(PROTOCOL_VERSION, "ann")))
    assert isinstance(await client.peer.next_message(), Welcome)
    arrivals = []
    for _ in range(7):
        ping = await client.peer.next_message()
        assert isinstance(ping, Ping)
        arrivals.append(trio.current_time())
        await client.peer.send_binary(encode(Pong(ping.nonce)))
    assert arrivals == [0.25 + n for n in range(7)]
    assert client.ended_at is None


async def test_socket_is_read_urgently_while_a_pong_is_due(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """From each ping until its pong the link asks for urgent reads (so the pong's arrival
    stamp is its own under batched reading), and for batched reads again after."""
    client = start(nursery, make_core(ping_interval=1.0))
    asked: list[tuple[float, bool]] = []
    client.ws.read_urgently = lambda urgent: asked.append((trio.current_time(), urgent))  # type: ignore[method-assign]
    await client.peer.send_binary(encode(Hello(PROTOCOL_VERSION, "ann")))
    assert isinstance(await client.peer.next_message(), Welcome)
    for _ in range(2):
        ping = await client.peer.next_message()
        assert isinstance(ping, Ping)
        await trio.sleep(0.1)
        await client.peer.send_binary(encode(Pong(ping.nonce)))
    await trio.testing.wait_all_tasks_blocked()
    assert asked == [(0.0, True), (0.1, False), (1.0, True), (1.1, False)]


async def test_snapshots_are_latest_wins_while_backed_up(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """While the socket is backed up, newer snapshots replace older ones in the outbox."""
    client = start(nursery, make_core(send_timeout=1.0), lockstep=True)
    await client.hello()
    state = pack_state({"n": 0})
    client.session.deliver_snapshot(1, None, state)  # written at once: the writer blocks on it
    await trio.testing.wait_all_tasks_blocked()
    assert client.ws.backed_up and len(client.outbox) == 0
    for tick in (2, 3, 4):
        client.session.deliver_snapshot(tick, None, state)
    assert client.outbox.snapshots_replaced == 2
    assert len(client.outbox) == 1
    await trio.sleep(0.5)  # the peer starts reading, within send_timeout
    first, second = await client.peer.next_message(), await client.peer.next_message()
    assert isinstance(first, Snapshot) and isinstance(second, Snapshot)
    assert [(first.id, first.tick), (second.id, second.tick)] == [(1, 1), (4, 4)]
    await trio.testing.wait_all_tasks_blocked()
    assert not client.ws.backed_up and len(client.outbox) == 0
    assert client.ended_at is None


async def test_slow_peer_reading_every_quarter_second_at_30_hz(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer reading every 0.25 s gets 6 of 30 snapshots set at 30 Hz; 24 are replaced."""
    client = start(nursery, make_core(send_timeout=1.0, ping_interval=100.0), lockstep=True)
    await client.hello()
    state = pack_state(0)

    async def ticker() -> None:
        # Snapshot n at n/30 + 1/120: never at the same instant as a read (k/4).
        for n in range(30):
            await trio.sleep_until(n / 30 + 1 / 120)
            client.session.deliver_snapshot(n, None, state)

    nursery.start_soon(ticker)
    received: list[tuple[float, int]] = []
    for k in range(6):
        await trio.sleep_until(k / 4)
        message = await client.peer.next_message()
        assert isinstance(message, Snapshot)
        received.append((trio.current_time(), message.tick))
    # Each read frees the socket; the newest snapshot in the slot goes out at once
    # and blocks until the next read, while later ones replace each other.
    assert received == [(1 / 120, 0), (0.25, 1), (0.5, 7), (0.75, 14), (1.0, 22), (1.25, 29)]
    assert client.outbox.snapshots_replaced == 24
    assert client.ended_at is None


async def test_text_frame_closes_1003(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A text frame → close frame 1003 on the wire; the handshake completes and the link ends."""
    client = start(nursery, make_core())
    await client.hello()
    client.peer.protocol.send_text(b"hi")
    await client.peer.flush()
    assert await client.next_close() == Close(CloseCode.UNSUPPORTED_DATA, "binary frames only")
    assert await client.peer.rest() == []  # the peer answers; the server sends EOF
    await client.done.wait()
    assert client.ended_at == 0.0
    assert client.ws.protocol.state is CLOSED and not client.ws.aborted
    assert client.session.state is State.CLOSED


async def test_unanswered_close_is_aborted_close_timeout_later(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A close frame the peer never answers: the connection is dropped close_timeout later."""
    client = start(nursery, make_core(close_timeout=2.0), answer=False)
    await trio.sleep(0.5)
    client.peer.protocol.send_text(b"hi")
    await client.peer.flush()
    assert (await client.next_close()).code == CloseCode.UNSUPPORTED_DATA
    assert await client.peer.rest() == []  # EOF, no further frame
    assert trio.current_time() == 2.5
    await client.done.wait()
    assert client.ended_at == 2.5
    assert client.ws.aborted
    assert client.session.state is State.CLOSED


async def test_hello_timeout_to_a_silent_peer(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """No hello: close 4000 at hello_timeout, and the silent peer is dropped close_timeout later."""
    client = start(nursery, make_core(hello_timeout=5.0, close_timeout=2.0), answer=False)
    close = await client.next_close()
    assert close.code == CloseCode.HELLO_TIMEOUT
    assert trio.current_time() == 5.0
    await client.done.wait()
    assert client.ended_at == 7.0
    assert client.ws.aborted


async def test_ping_timeout_to_a_silent_peer(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Pings never answered: close 4002 at ping_timeout, dropped close_timeout later."""
    core = make_core(ping_interval=1.0, ping_timeout=10.0, close_timeout=2.0)
    client = start(nursery, core, answer=False)
    await client.hello()
    assert (await client.next_close()).code == CloseCode.PING_TIMEOUT
    assert trio.current_time() == 10.0
    await client.done.wait()
    assert client.ended_at == 12.0


async def test_abort_close_drops_without_a_close_frame(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """outbox.close(abort=True) drops the connection at once: EOF, no close frame."""
    client = start(nursery, make_core())
    await client.hello()
    client.outbox.close(CloseCode.TOO_SLOW, "too slow", abort=True)
    assert await client.peer.rest() == []
    assert client.peer.protocol.close_rcvd is None
    await client.done.wait()
    assert client.ended_at == 0.0
    assert client.ws.aborted and not client.ws.timed_out
    assert client.session.state is State.CLOSED


async def test_abort_close_drops_frames_held_in_the_outbox(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Behind a backed-up socket, an abort drops what the outbox held; the peer gets EOF."""
    client = start(nursery, make_core(ping_interval=100.0), lockstep=True)
    await client.hello()
    client.session.deliver_snapshot(1, None, pack_state(0))  # the writer blocks on it
    await trio.testing.wait_all_tasks_blocked()
    client.outbox.send(b"held")
    client.session.deliver_snapshot(2, None, pack_state(0))
    client.outbox.close(CloseCode.TOO_SLOW, "too slow", abort=True)
    assert len(client.outbox) == 0
    await trio.sleep(0.5)
    snapshot = await client.peer.next_message()
    assert isinstance(snapshot, Snapshot) and snapshot.tick == 1
    assert await client.peer.rest() == []
    assert client.peer.protocol.close_rcvd is None
    await client.done.wait()
    assert client.ended_at == 0.5


async def test_connection_end_leaves_the_room(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """With resume off, when one client's connection ends the session leaves and the other
    member sees it (with resume on the seat is held: tests/trio/test_held_seats.py)."""
    core = make_core(reconnect_grace=0)
    ann, bob = start(nursery, core), start(nursery, core)
    await ann.hello(game="arena", room="r1")
    await bob.hello(game="arena", room="r1")
    joined = await ann.peer.next_message()
    assert isinstance(joined, Event) and (joined.kind, joined.player) == (
        "join",
        bob.session.player_id,
    )
    await trio.sleep(0.5)
    await bob.peer.stream.aclose()  # TCP gone, no close frame
    left = await ann.peer.next_message()
    assert isinstance(left, Event)
    assert (left.kind, left.player) == ("leave", bob.session.player_id)
    await bob.done.wait()
    assert bob.ended_at == 0.5
    assert bob.session.state is State.CLOSED
    room = ann.session.room
    assert room is not None and list(room.seats) == [ann.session.player_id]


async def test_stuck_peer_is_evicted_and_leaves(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that stops reading is dropped send_timeout after the stuck write, then leaves
    (resume off; with it on, its seat would be held)."""
    core = make_core(send_timeout=1.0, ping_interval=100.0, reconnect_grace=0)
    client = start(nursery, core, lockstep=True)
    await client.hello(game="arena", room="r1")
    await trio.sleep(2.0)
    client.session.deliver_snapshot(1, None, pack_state(0))
    await client.done.wait()
    assert client.ended_at == 3.0
    assert client.ws.timed_out
    assert client.session.state is State.CLOSED
    assert core.rooms.player_count == 0


async def test_peer_that_closes_but_keeps_tcp_open_is_dropped(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that sends a close frame but never ends TCP is dropped close_timeout later."""
    core = make_core(close_timeout=2.0, ping_interval=1.0, ping_timeout=10.0)
    client = start(nursery, core, answer=False)
    await client.hello(game="arena", room="r1")
    await trio.sleep(0.5)
    client.peer.protocol.send_close(1000, "bye")
    await client.peer.flush()
    assert await client.next_close() == Close(1000, "bye")  # the echo, then the server's EOF
    assert await client.peer.rest() == []
    await client.done.wait()
    assert client.ended_at == 2.5
    assert client.session.state is State.CLOSED
    assert core.rooms.player_count == 0


async def test_peer_that_answers_close_but_keeps_tcp_open_is_dropped(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that answers the server's close frame but never ends TCP is dropped in time."""
    client = start(nursery, make_core(close_timeout=2.0), answer=False)
    await client.hello()
    client.session.close(CloseCode.PING_TIMEOUT, "no pong in time")
    assert (await client.next_close()).code == CloseCode.PING_TIMEOUT
    await client.peer.flush()  # the held close reply; its EOF will never be sent
    assert await client.peer.rest() == []  # the server's EOF
    await client.done.wait()
    assert client.ended_at == 2.0
