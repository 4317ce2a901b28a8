"""One client's protocol state machine (sans-I/O).

Rule 1: everything that decides how the server answers a client lives here;
the trio shell only moves bytes and calls these methods with the time.

The I/O contract, in the manner of ``websockets``' protocol objects:

- ``receive_bytes(data, now)`` for each binary frame; ``receive_text(now)``
  for a text frame; ``connection_lost(now)`` when the socket is gone.
- ``on_timer(now)`` at (or after) ``next_timer()``: hello timeout, pings,
  ping timeout.
- After any call, frames to send and a possible close request are in
  ``outbox`` (which wakes the sender itself).

States and what each accepts::

    AWAIT_HELLO --hello--> LOBBY --join--> IN_ROOM --leave--> LOBBY
        any state --close/kick/connection lost--> CLOSED

A connection lost while in a room holds the seat for a resume (``seats.py``)
instead of leaving, unless the client closed with 1000; a ``hello`` with a
resume token takes such a seat back (``resume.py``). A spectator is IN_ROOM
without a seat.

Every refusal is an ``error`` message; the error codes that signal a broken
or hostile client spend a credit from a slowly refilling budget, and a client
out of credit is closed 1008. Rate limiting drops messages before decoding.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    ClientMessage,
    CloseCode,
    Error,
    ErrorCode,
    Event,
    Hello,
    Input,
    Join,
    Leave,
    Left,
    PackedState,
    Ping,
    Pong,
    ProtocolError,
    RoomInfo,
    Welcome,
    decode_client_message,
    encode,
    pack_snapshot_latency,
    splice_snapshot,
)

from .auth import Identity
from .core import ServerCore
from .deltas import AudienceState, DeltaBases
from .game import InvalidInput, Player
from .latency import LatencyEstimator, LatencyReport
from .outbox import Outbox
from .ratelimit import TokenBucket
from .resume import hand_over, hold_seat, resume_seat
from .room import Room
from .rooms import JoinRefused
from .seating import Seating, State, clean_text
from .tick import current_tick

log = logging.getLogger(__name__)

COSTLY_ERRORS = frozenset(
    {
        ErrorCode.BAD_MESSAGE,
        ErrorCode.UNKNOWN_TYPE,
        ErrorCode.ALREADY_HELLO,
        ErrorCode.BAD_INPUT,
        ErrorCode.BAD_CHAT,
        ErrorCode.BAD_TICKET,
    }
)
"""Refusals that only a broken or hostile client earns: each spends a bad-message credit."""

BAD_MESSAGE_REFILL_PER_SECOND = 0.1
"""One bad-message credit comes back every 10 s."""


def _nothing() -> None:
    pass


class Session(Seating):
    """The server side of one connection."""

    def __init__(
        self,
        core: ServerCore,
        outbox: Outbox,
        now: float,
        peer: str = "?",
        identity: Identity | None = None,
    ) -> None:
        settings = core.settings
        self.core = core
        self.settings = settings
        self.outbox = outbox
        self._decode_limits = settings.decode_limits  # read per message: build it once
        self._counters = core.counters
        self.peer = peer
        self.address = peer.partition("#")[0]
        """The client's address (what per-address limits count); ``peer`` gains the id."""
        self.state = State.AWAIT_HELLO
        self.connected_at = now
        # Enough slots that the oldest unanswered ping is still held at ping_timeout.
        self.latency = LatencyEstimator(
            max_outstanding=math.ceil(settings.ping_timeout / settings.ping_interval) + 2
        )
        self.player = Player(core.new_player_id(), "", self.latency_report, identity)
        self.room: Room | None = None
        self.spectating = False
        """In ``room`` as a spectator (no seat)."""
        self.wants_presence = False
        """``hello.presence``: this client gets ``event away``/``back``."""
        self._now = now
        self._rate = TokenBucket(settings.messages_per_second, settings.message_burst, now)
        self._flood = TokenBucket(settings.messages_per_second, settings.flood_close_after, now)
        self._credits = TokenBucket(
            BAD_MESSAGE_REFILL_PER_SECOND, settings.bad_messages_allowed, now
        )
        self._dropping = False
        self._chat_rate = TokenBucket(settings.chat_per_second, settings.chat_burst, now)
        self._next_ping: float | None = None
        self._snapshot_id = 0
        self._latency_packed_for: LatencyReport | None = None
        self._latency_packed = b""
        self.last_acked_snapshot = 0
        self.delta_bases: DeltaBases | None = None
        """Set when the client asked for deltas (``hello.deltas``)."""
        self._seat_pending: str | None = None
        """"hello" or "join" while a cluster's directory is finding the seat."""
        self.timers_changed: Callable[[], None] = _nothing
        """Called when an answer from outside (the directory) may have moved ``next_timer``."""
        self.rooms_created = 0
        """Rooms this connection caused to exist (capped: one client must not fill max_rooms)."""
        self.messages_received = 0
        self.messages_dropped = 0
        self.messages_refused = 0

    def latency_report(self) -> Any:
        return self.latency.report

    @property
    def player_id(self) -> int:
        return self.player.id

    # -- input from the transport -------------------------------------------

    def receive_bytes(self, data: bytes, now: float, arrived_at: float | None = None) -> None:
        """Handle one binary frame from the client.

        ``arrived_at``: when the frame reached this host, if the transport knows
        (a kernel receive stamp); a pong's RTT is measured to it. Everything else,
        what is sent in reply included, uses ``now``.
        """
        self._now = now
        if self.state is State.CLOSED or self.outbox.closing:
            return
        self.messages_received += 1
        counters = self._counters
        if not self._rate.take(now):
            if counters is not None:
                counters.message_in("dropped", len(data))
            self._rate_limited(now)
            return
        self._dropping = False
        try:
            message = decode_client_message(data, self._decode_limits)
        except ProtocolError as exc:
            if counters is not None:
                counters.message_in("undecodable", len(data))
            self._refuse(exc.code, exc.detail, exc.ref)
            return
        if counters is not None:
            counters.message_in(message.TYPE, len(data))
        self._dispatch(message, now, now if arrived_at is None else arrived_at)

    def receive_text(self, now: float) -> None:
        """A text frame: this protocol is binary only."""
        self._now = now
        log.info("%s: text frame, closing 1003", self.peer)
        self.close(CloseCode.UNSUPPORTED_DATA, "binary frames only")

    def connection_lost(self, now: float, clean: bool = False) -> None:
        """The connection is gone: hold the seat for a resume, or leave the room.

        ``clean``: the client closed with 1000, a deliberate goodbye: leave at once.
        """
        self._now = now
        if clean or not hold_seat(self, now):
            self._leave_room(now)
        self.core.seats.release(self)
        self.state = State.CLOSED

    def hand_over(self) -> Room | None:
        """A resume on another connection takes this player (``resume.hand_over``)."""
        return hand_over(self)

    def next_timer(self) -> float:
        """When ``on_timer`` must run next; never (inf) once closing, as it would do nothing."""
        if self.state is State.CLOSED or self.outbox.closing:
            return math.inf
        if self.state is State.AWAIT_HELLO:
            return self.connected_at + self.settings.hello_timeout
        deadlines = [self._next_ping] if self._next_ping is not None else []
        oldest = self.latency.oldest_unanswered()
        if oldest is not None:
            deadlines.append(oldest + self.settings.ping_timeout)
        return min(deadlines, default=self._now + self.settings.ping_interval)

    def on_timer(self, now: float) -> None:
        """Fire whatever timers are due at ``now``."""
        self._now = now
        if self.state is State.CLOSED or self.outbox.closing:
            return
        if self.state is State.AWAIT_HELLO:
            if now >= self.connected_at + self.settings.hello_timeout:
                self.close(CloseCode.HELLO_TIMEOUT, "no hello in time")
            return
        oldest = self.latency.oldest_unanswered()
        if oldest is not None and now - oldest >= self.settings.ping_timeout:
            log.info("%s: ping timeout", self.peer)
            hold_seat(self, now)  # a dead network, not a goodbye: the player may resume
            self.close(CloseCode.PING_TIMEOUT, "no pong in time")
            return
        if self._next_ping is not None and now >= self._next_ping:
            self.outbox.send(encode(Ping(self.latency.ping_sent(now))))
            # A burst first, so RTT and jitter settle within a second (latency.py).
            settings = self.settings
            burst = self.latency.pings_sent < settings.ping_burst
            interval = settings.ping_burst_interval if burst else settings.ping_interval
            # Keep pings on their grid; after a late timer, restart the grid from now
            # rather than sending the missed pings back to back.
            self._next_ping += interval
            if self._next_ping <= now:
                self._next_ping = now + interval

    # -- what the room calls (RoomMember) -------------------------------------

    def deliver(self, frame: bytes) -> None:
        self.outbox.send(frame)

    def deliver_snapshot(
        self, tick: int, ack: int | None, state: PackedState, audience: AudienceState | None = None
    ) -> None:
        self._snapshot_id += 1
        base: int | None = None
        bases = self.delta_bases
        if bases is not None and audience is not None:
            base, state = bases.choose(self._snapshot_id, audience)
        if self._counters is not None:
            self._counters.snapshot_built(base is not None)
        report = self.latency.report
        if report is not self._latency_packed_for:
            # A new report comes with a pong (about once a second): pack it once.
            self._latency_packed_for = report
            self._latency_packed = pack_snapshot_latency(report.rtt_us, report.jitter_us)
        self.outbox.set_snapshot(
            splice_snapshot(self._snapshot_id, tick, ack, self._latency_packed, state, base)
        )

    def kick(self, code: int, reason: str) -> None:
        self.close(code, reason)

    def room_ended(self, room: Room) -> None:
        """The room this spectator watched was disposed: back to the lobby."""
        if self.room is room:
            self._leave_room(self._now)
            self.outbox.send(encode(Left(room.name)))

    # -- closing -------------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        """Leave the room and ask the sender to close with ``code``."""
        self._leave_room(self._now)
        self.outbox.close(code, reason)

    # -- refusals --------------------------------------------------------------

    def _send_error(self, code: ErrorCode, detail: str, ref: str | None = None) -> None:
        if self._counters is not None:
            self._counters.error_sent(code.value)
        self.outbox.send(encode(Error(code.value, detail, ref)))

    def _refuse(self, code: ErrorCode, detail: str, ref: str | None = None) -> None:
        self.messages_refused += 1
        log.info("%s: refused %s (%s)", self.peer, code, detail)
        self._send_error(code, detail, ref)
        if code in COSTLY_ERRORS and not self._credits.take(self._now):
            log.warning("%s: too many bad messages, closing 1008", self.peer)
            self.close(CloseCode.POLICY_VIOLATION, "too many bad messages")

    def _rate_limited(self, now: float) -> None:
        self.messages_dropped += 1
        if not self._flood.take(now):
            log.warning("%s: flooding past the rate limit, closing 1008", self.peer)
            self.close(CloseCode.POLICY_VIOLATION, "message flood")
            return
        if not self._dropping:
            self._dropping = True
            log.info("%s: rate limited", self.peer)
            self._send_error(ErrorCode.RATE_LIMITED, "over the message rate; dropped")

    # -- messages ---------------------------------------------------------------

    def _dispatch(self, message: ClientMessage, now: float, arrived_at: float) -> None:
        if self.state is State.AWAIT_HELLO:
            if not isinstance(message, Hello):
                self._send_error(ErrorCode.HELLO_REQUIRED, "send hello first", message.TYPE)
                self.close(CloseCode.POLICY_VIOLATION, "hello required")
                return
            self._on_hello(message, now)
        elif self._seat_pending == Hello.TYPE:
            # The welcome waits for a cluster's directory: nothing is answered before
            # it, so that the welcome comes first as on a lone server (§5.1, §5.11).
            self.messages_dropped += 1
        elif isinstance(message, Input):
            self._on_input(message)
        elif isinstance(message, Pong):
            rtt = self.latency.pong_received(message.nonce, arrived_at)
            if rtt is not None and self._counters is not None:
                self._counters.pong(rtt, self.latency.report.jitter)
        elif isinstance(message, Ack):
            self._on_ack(message.id)
        elif isinstance(message, Chat):
            self._on_chat(message)
        elif isinstance(message, Join):
            self._on_join(message, now)
        elif isinstance(message, Leave):
            self._on_leave(now)
        else:  # Hello again
            self._refuse(ErrorCode.ALREADY_HELLO, "hello was already received", Hello.TYPE)

    def _on_hello(self, hello: Hello, now: float) -> None:
        if hello.version != PROTOCOL_VERSION:
            self._send_error(
                ErrorCode.UNSUPPORTED_VERSION,
                f"this server speaks protocol version {PROTOCOL_VERSION}",
                Hello.TYPE,
            )
            self.close(CloseCode.UNSUPPORTED_VERSION, "unsupported protocol version")
            return
        identity = self.player.identity
        if identity is not None and identity.name is not None:
            name = identity.name  # authenticated: it replaces hello.name (checked already)
        else:
            name = clean_text(hello.name)
        if not name:
            self._refuse(ErrorCode.BAD_MESSAGE, "hello.name: empty after cleaning", Hello.TYPE)
            return
        self.player.name = name
        self.wants_presence = hello.presence
        if hello.deltas and self.settings.delta_window > 0:
            self.delta_bases = DeltaBases(self.settings.delta_window_ticks)
        self.state = State.LOBBY
        if hello.resume is not None:
            self._next_ping = now  # resume_seat welcomes, then pings at once
            if resume_seat(self, hello.resume, now):
                return
            # Pings start with the welcome, which may still wait for a cluster's directory.
            self._next_ping = None
            self._refuse(ErrorCode.RESUME_FAILED, "no seat is held for that token", Hello.TYPE)
        refusal: JoinRefused | None = None
        info: RoomInfo | None = None
        if self.core.directory is not None and (
            hello.ticket is not None or hello.game is not None or hello.room is not None
        ):
            try:
                if hello.ticket is None:
                    self._check_join(hello.game, hello.room)
            except JoinRefused as exc:
                refusal = exc
            else:
                # The welcome waits for the directory's answer (seat_resolved).
                self._ask_directory(
                    Hello.TYPE, hello.game, hello.room, hello.ticket, hello.spectate
                )
                return
        elif hello.ticket is not None:
            self._ticket_refused("this server runs no cluster: tickets mean nothing here", now)
            return
        elif hello.game is not None or hello.room is not None:
            try:
                if hello.spectate:
                    info = self._watch(hello.game, hello.room)
                else:
                    info = self._seat(hello.game, hello.room, now)
            except JoinRefused as exc:
                refusal = exc
        self._welcome(info, refusal, now)

    def _welcome(self, info: RoomInfo | None, refusal: JoinRefused | None, now: float) -> None:
        """Say welcome (in ``info``'s room, or in the lobby after ``refusal``), start pinging."""
        self._next_ping = now
        self.send_welcome(info, now, None if self.spectating else self.core.seats.issue(self))
        if refusal is not None:
            self._refuse(refusal.code, refusal.detail, Hello.TYPE)
        elif info is not None and self.room is not None and not self.spectating:
            self.room.announce_join(self.player)
        # The first ping goes out now, right behind the welcome.
        self.on_timer(now)

    def send_welcome(
        self, info: RoomInfo | None, now: float, token: str | None, resumed: bool = False
    ) -> None:
        settings = self.settings
        self.outbox.send(
            encode(
                Welcome(
                    version=PROTOCOL_VERSION,
                    player=self.player.id,
                    tick_rate=settings.tick_rate,
                    snapshot_rate=settings.snapshot_rate,
                    tick=current_tick(settings.tick_rate, self.core.epoch, now),
                    limits=settings.client_limits(),
                    games=tuple(self.core.games),
                    room=info,
                    resume=token,
                    resumed=resumed,
                    # A reconnect through a shared port may reach another worker.
                    resume_url=(
                        self.core.directory.url
                        if self.core.directory is not None and token is not None
                        else None
                    ),
                )
            )
        )

    def _on_input(self, message: Input) -> None:
        if message.ack is not None:
            self._on_ack(message.ack)
        room = self.room
        if room is None:
            self._refuse(ErrorCode.NOT_IN_ROOM, "not in a room", Input.TYPE)
            return
        if self.spectating:
            self._refuse(ErrorCode.SPECTATING, "spectators send no input", Input.TYPE)
            return
        try:
            command = room.game.validate_input(self.player, message.data)
        except InvalidInput as exc:
            self._refuse(ErrorCode.BAD_INPUT, str(exc)[:200], Input.TYPE)
            return
        except Exception:
            log.exception("%s: game.validate_input failed", self.peer)
            self.close(CloseCode.INTERNAL_ERROR, "game error on your input")
            return
        error = room.queue_input(self.player.id, message.seq, command, message.tick)
        if error is ErrorCode.INPUT_TOO_EARLY:
            lead = self.settings.max_input_lead
            detail = f"input.tick {message.tick}: more than {lead} ticks past tick {room.tick_no}"
            self._refuse(error, detail, Input.TYPE)
        elif error is not None:
            self._refuse(error, "input dropped", Input.TYPE)

    def _on_ack(self, snapshot_id: int) -> None:
        # An ack for a snapshot never sent is ignored: it cannot be a delta base.
        if self.last_acked_snapshot < snapshot_id <= self._snapshot_id:
            self.last_acked_snapshot = snapshot_id
            if self.delta_bases is not None:
                self.delta_bases.acknowledged(snapshot_id)

    def _on_chat(self, chat: Chat) -> None:
        room = self.room
        if room is None:
            self._refuse(ErrorCode.NOT_IN_ROOM, "not in a room", Chat.TYPE)
            return
        if self.spectating and not self.settings.spectator_chat:
            self._refuse(ErrorCode.SPECTATING, "spectators may not chat here", Chat.TYPE)
            return
        # Each chat line becomes a reliable frame to every member: its own, lower
        # rate keeps one chatter from filling everyone's event queue.
        if not self._chat_rate.take(self._now):
            self._refuse(ErrorCode.RATE_LIMITED, "over the chat rate; dropped", Chat.TYPE)
            return
        text = clean_text(chat.text)
        if not 1 <= len(text) <= self.settings.max_chat_chars:
            self._refuse(
                ErrorCode.BAD_CHAT,
                f"chat must be 1..{self.settings.max_chat_chars} characters",
                Chat.TYPE,
            )
            return
        room.broadcast(Event("chat", self.player.id, self.player.name, text, room.tick_no))
