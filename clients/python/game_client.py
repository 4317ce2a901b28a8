"""One connection to the game server: :class:`GameClient` (hello, join, inputs, snapshots, chat).

Open one with :func:`~clients.python.connect.connect` (the module
:mod:`clients.python.client` tells how to use it). ``recv()`` answers every
``ping`` at once with a ``pong`` (that is what the server's latency measurement
needs), and hands out snapshots with their full state: deltas are applied and
acknowledged by its :class:`~clients.python.snapshots.SnapshotReceiver`.

Clusters (PROTOCOL.md §5.11): when ``hello`` or ``join`` is answered with a
``redirect``, the client opens a connection to its ``url`` (with the same
headers, TLS context and origin), says ``hello`` there with the ticket and
swaps connections, so the caller keeps one :class:`GameClient`: ``hello``
returns the new ``welcome``, ``join`` the room it seated us in. At most
``max_redirects`` hops per request; a ticket refused (``bad_ticket``) makes it
start over once, without a ticket, at the URL first connected to.

Subclasses (the load tester's ``BotClient``) may override ``_decode``,
``track`` and ``_ack_if_idle``, and the byte counters ``_count_sent`` and
``_count_received``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio
from websockets.exceptions import ConnectionClosed

from protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    ClientMessage,
    Error,
    ErrorCode,
    Hello,
    Input,
    Join,
    Joined,
    Leave,
    Left,
    Ping,
    Pong,
    Redirect,
    RoomInfo,
    ServerMessage,
    Snapshot,
    Welcome,
    decode_server_message,
    encode,
)

from .errors import ServerRefused, TooManyRedirects
from .snapshots import SnapshotReceiver
from .ws import Opener, WebSocketConnection

MAX_REDIRECTS = 3
"""Redirects followed for one ``hello`` or ``join`` before giving up (a loop between workers)."""


class GameClient:
    """One connection to the game server. Create it with :func:`~clients.python.connect.connect`."""

    def __init__(
        self,
        ws: WebSocketConnection,
        *,
        opener: Opener | None = None,
        url: str | None = None,
        max_redirects: int = MAX_REDIRECTS,
        deltas: bool = True,
        apply_patch: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        self.ws = ws
        self.opener = opener
        """Opens the connection a redirect leads to; None: redirects are not followed."""
        self.url = url
        """Where the first connection went: a refused ticket starts over there."""
        self.max_redirects = max_redirects if opener is not None else 0
        self.redirects = 0
        """Redirects followed over this client's life."""
        self.name: str | None = None
        self._hello_flags = (False, False)
        """``spectate`` and ``presence`` of the last hello or join (a redirect repeats them)."""
        self.welcome: Welcome | None = None
        self.room: RoomInfo | None = None
        self.latest_snapshot: Snapshot | None = None
        self.next_seq = 1
        self.bytes_in = 0
        self.bytes_out = 0
        self.pings_answered = 0
        self.resume_token: str | None = None
        """The newest ``welcome.resume``: what a new connection needs to take the seat back."""
        self.resume_url: str | None = None
        """In a cluster, the worker that holds this seat: connect there to resume it."""
        self.resumed = False
        """The last ``hello`` took a held seat back (``welcome.resumed``)."""
        self.resume_refused = False
        """The last ``hello``'s resume token was refused (``resume_failed``)."""
        self._receiving = False
        """A task is inside ``ws.recv()`` (websockets allows one at a time)."""
        self._close_drain: trio.Event | None = None
        """Set while close() reads what still arrives; done when it has finished."""
        self.deltas = deltas
        """Ask for delta snapshots in ``hello`` (PROTOCOL.md §5.6)."""
        self.receiver = SnapshotReceiver(apply_patch)
        """Applies delta snapshots and tells what to acknowledge (``apply_patch``: the game's
        ``apply``, for rooms whose ``RoomInfo.delta`` is not the generic format)."""

    @property
    def player_id(self) -> int:
        assert self.welcome is not None, "not welcomed yet"
        return self.welcome.player

    @property
    def deltas_applied(self) -> int:
        """Delta snapshots received and applied."""
        return self.receiver.deltas_applied

    @property
    def close_code(self) -> int | None:
        """The close code received from the server, once the connection is closed."""
        return self.ws.close_code

    async def send(self, message: ClientMessage) -> None:
        """Encode and send any client message."""
        await self.send_raw(encode(message))

    async def send_raw(self, frame: bytes) -> None:
        """Send already encoded bytes as one binary frame (for tests of hostile input)."""
        self._count_sent(frame)
        await self.ws.send(frame)

    def _count_sent(self, frame: bytes) -> None:
        self.bytes_out += len(frame)

    def _count_received(self, frame: bytes) -> None:
        self.bytes_in += len(frame)

    def _decode(self, frame: bytes | str) -> ServerMessage:
        """One received WebSocket message, counted and decoded."""
        if isinstance(frame, str):
            raise RuntimeError("server sent a text frame")
        self._count_received(frame)
        return decode_server_message(frame)

    async def recv(self) -> ServerMessage:
        """The next message from the server; pings are answered here and not returned.

        A snapshot comes with its full state, deltas applied. Raises
        ``websockets.exceptions.ConnectionClosed`` when the server closes.
        """
        while True:
            message = await self.absorb(self._decode(await self._recv_frame()))
            if message is not None:
                return message

    async def _recv_frame(self) -> str | bytes:
        if self._close_drain is not None:
            # close() is reading to the end: after it, recv() gives what websockets
            # still holds, then ConnectionClosed.
            await self._close_drain.wait()
        self._receiving = True
        try:
            return await self.ws.recv()
        finally:
            self._receiving = False

    async def absorb(self, message: ServerMessage) -> ServerMessage | None:
        """Answer a ping and track room and snapshot state: the message to hand out, or
        None (a ping, or a delta that could not be applied)."""
        if isinstance(message, Ping):
            await self.send(Pong(message.nonce))
            self.pings_answered += 1
            return None
        tracked = self.track(message)
        if isinstance(tracked, Snapshot):
            await self._ack_if_idle(tracked.id)
        return tracked

    def track(self, message: ServerMessage) -> ServerMessage | None:
        """Keep ``latest_snapshot`` and ``room`` up to date with a received message.

        Returns the message as callers should see it: a delta snapshot with its full
        state; None for a delta whose base is not held (acks stop until a full one).
        """
        if isinstance(message, Snapshot):
            received = self.receiver.receive(message, self.room)
            if received is None:
                return None
            self.latest_snapshot = message = received
            if message.ack is not None and message.ack >= self.next_seq:
                self.next_seq = message.ack + 1  # after a resume: the seat's numbering
        elif isinstance(message, Joined):
            self._entered(message.room)
        elif isinstance(message, Welcome):
            if message.room is not None:
                self._entered(message.room)
        elif isinstance(message, Left):
            self.room = None
            self.receiver.left()
        return message

    def _entered(self, room: RoomInfo) -> None:
        self.room = room
        self.receiver.entered(room)

    async def _ack_if_idle(self, snapshot_id: int) -> None:
        """Acknowledge a snapshot with an ``ack`` message when no input will soon carry it,
        at most every other message the server's rate allows (pongs and inputs have the rest)."""
        if not self.deltas:
            return
        limits = self.welcome.limits if self.welcome is not None else {}
        if self.receiver.idle_ack_due(snapshot_id, trio.current_time(), limits):
            await self.send(Ack(snapshot_id))

    async def hello(
        self,
        name: str,
        game: str | None = None,
        room: str | None = None,
        *,
        resume: str | None = None,
        spectate: bool = False,
        presence: bool = False,
    ) -> Welcome:
        """Send ``hello`` and wait for ``welcome``.

        If a room was asked for and the server could not seat us, the ``error``
        that follows the welcome is raised as :class:`ServerRefused`. With
        ``resume`` (a token), a ``resume_failed`` is not raised: ``resume_refused``
        is set and the hello goes on as a fresh one (PROTOCOL.md §5.12).
        """
        self.name = name
        self._hello_flags = (spectate, presence)
        answer = await self._hello(
            Hello(PROTOCOL_VERSION, name, game, room, None, resume, spectate, presence, self.deltas)
        )
        return await self._follow(answer, game, room)

    async def _hello(self, hello: Hello) -> Welcome | Redirect:
        """Send ``hello``; the ``welcome`` (with the join's error raised), or a ``redirect``."""
        await self.send(hello)
        wants_room = hello.game is not None or hello.room is not None or hello.ticket is not None
        welcome: Welcome | None = None
        self.resumed = self.resume_refused = False
        while True:
            message = await self.recv()
            if isinstance(message, Error) and message.code == "resume_failed" and welcome is None:
                self.resume_refused = True
                continue
            if isinstance(message, Error):
                raise ServerRefused(message)
            if isinstance(message, Redirect) and welcome is None:
                return message
            if isinstance(message, Welcome):
                self.welcome = welcome = message
                self.room = message.room
                self.resume_token = message.resume
                # With the first URL's query (?token=...), as a redirect's URL gets it.
                self.resume_url = (
                    None
                    if message.resume_url is None
                    else redirect_url(message.resume_url, self.url)
                )
                self.resumed = message.resumed
                if message.room is not None or not wants_room:
                    return message
            elif welcome is not None:
                # The server sends the join's error right after the welcome.
                return welcome

    async def _follow(
        self, answer: Welcome | Redirect, game: str | None, room: str | None
    ) -> Welcome:
        """Follow ``answer`` while it is a redirect: the ``welcome`` that ends the hops.

        A refused ticket (``bad_ticket``) starts over once at ``self.url`` with a
        plain ``hello`` for ``game``/``room`` (matchmaking again); a second refusal
        is raised.
        """
        assert self.name is not None, "hello first"
        hops = 0
        started_over = False
        while isinstance(answer, Redirect):
            if hops >= self.max_redirects:
                raise TooManyRedirects(answer, hops)
            hops += 1
            await self._move(redirect_url(answer.url, self.url))
            self.redirects += 1
            try:
                spectate, presence = self._hello_flags
                answer = await self._hello(
                    Hello(
                        PROTOCOL_VERSION,
                        self.name,
                        None,
                        None,
                        answer.ticket,
                        None,
                        spectate,
                        presence,
                        self.deltas,
                    )
                )
            except ServerRefused as exc:
                if exc.code != ErrorCode.BAD_TICKET or started_over or self.url is None:
                    raise
                started_over, hops = True, 0
                await self._move(self.url)
                spectate, presence = self._hello_flags
                answer = await self._hello(
                    Hello(
                        PROTOCOL_VERSION,
                        self.name,
                        game,
                        room,
                        None,
                        None,
                        spectate,
                        presence,
                        self.deltas,
                    )
                )
        return answer

    async def _move(self, url: str) -> None:
        """Close this connection (1000) and go on over a new one to ``url``."""
        assert self.opener is not None
        # After a redirect only the server's close follows: nothing to drain (and a
        # lean connection reads while it closes, so close() must not read beside it).
        await self.ws.aclose()
        self.ws = await self.opener(url)
        self.welcome = None
        self.room = None
        self.latest_snapshot = None
        self.next_seq = 1  # seq restarts with each room membership (§5.3)
        self.receiver.moved()

    async def join(
        self, game: str | None = None, room: str | None = None, *, spectate: bool = False
    ) -> RoomInfo:
        """Join (or with ``spectate``, watch) a room and wait for ``joined``; raises
        :class:`ServerRefused` on an error.

        A ``redirect`` (the room is on another worker, §5.11) is followed: the room
        of the new connection's ``welcome`` is returned as if ``joined`` had come.
        """
        self._hello_flags = (spectate, self._hello_flags[1])
        await self.send(Join(game, room, spectate))
        while True:
            message = await self.recv()
            if isinstance(message, Error) and message.ref == Join.TYPE:
                raise ServerRefused(message)
            if isinstance(message, Joined):
                return message.room
            if isinstance(message, Redirect):
                return await self.follow_join(message, game, room)

    async def follow_join(
        self, redirect: Redirect, game: str | None = None, room: str | None = None
    ) -> RoomInfo:
        """Follow a ``redirect`` that answered ``join{game, room}``: the room it seated us in."""
        welcome = await self._follow(redirect, game, room)
        if welcome.room is None:  # a welcome without a room and no error after it
            raise ServerRefused(Error("no_room", "welcomed without a room", Join.TYPE))
        return welcome.room

    async def leave(self) -> None:
        """Leave the room and wait for ``left``."""
        await self.send(Leave())
        while not isinstance(await self.recv(), Left):
            pass

    def next_input(self, data: Any, tick: int | None = None) -> Input:
        """An input carrying ``data`` with the next sequence number, acking the newest snapshot.

        ``tick``: apply it at that server tick, not before (PROTOCOL.md §5.3); None: the next.
        """
        seq = self.next_seq
        self.next_seq += 1
        ack = self.receiver.ack_newest(self.latest_snapshot)
        self.receiver.input_sent(trio.current_time())
        return Input(seq, data, ack, tick)

    async def send_input(self, data: Any, tick: int | None = None) -> int:
        """Send one input with the next sequence number (at server tick ``tick``); its number."""
        message = self.next_input(data, tick)
        await self.send(message)
        return message.seq

    async def ack(self) -> None:
        """Acknowledge the newest snapshot explicitly (``send_input`` does it implicitly)."""
        snapshot_id = self.receiver.ack_newest(self.latest_snapshot)
        if snapshot_id is not None:
            await self.send(Ack(snapshot_id))

    async def chat(self, text: str) -> None:
        await self.send(Chat(text))

    async def next_snapshot(self) -> Snapshot:
        """Skip other messages until the next snapshot."""
        while True:
            message = await self.recv()
            if isinstance(message, Snapshot):
                return message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection, reading (and dropping) whatever still arrives meanwhile.

        websockets stops reading the socket while its queue of unread messages is
        full (16 frames: half a second of snapshots), and the server's close frame
        would wait behind them until websockets' close timeout (10 s).
        """
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._drop_until_closed)
            await self.ws.aclose(code, reason)
            nursery.cancel_scope.cancel()

    async def _drop_until_closed(self) -> None:
        if self._receiving or self._close_drain is not None:
            return  # another task is reading: it keeps the queue moving
        self._close_drain = trio.Event()
        try:
            while True:
                await self.ws.recv()
        except ConnectionClosed:
            return
        finally:
            self._close_drain.set()
            self._close_drain = None

    async def __aiter__(self) -> AsyncIterator[ServerMessage]:
        """Messages until the server closes the connection normally."""
        try:
            while True:
                yield await self.recv()
        except ConnectionClosed:
            return


def redirect_url(url: str, first: str | None) -> str:
    """``url`` from a redirect, with the query of the first URL when it has none.

    Credentials in the query (``?token=...``, PROTOCOL.md §1) then go along, as
    headers do.
    """
    if first is None:
        return url
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlsplit(first).query
    if parts.query or not query:
        return url
    return urllib.parse.urlunsplit(parts._replace(query=query))
