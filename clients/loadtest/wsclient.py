"""A lean WebSocket client connection for bots: websockets' sans-I/O protocol, no tasks.

``websockets.trio.ClientConnection`` runs a reader task per connection and
hands each message over through an assembler: two task switches and about
30 µs of CPU per received message (measured on a 2-core VM, 2026-11). A load
tester runs hundreds of bots per process on the same cores as the server it
measures, so here the caller's own task reads: :meth:`LeanConnection.recv`
reads the socket only when no message is buffered, feeds websockets'
:class:`~websockets.client.ClientProtocol` (which still does all of RFC 6455:
handshake, unmasking, ping/pong and close replies, size checks) and returns
messages in order. Fragments and the fast path for plain binary frames are
:mod:`gameserver.trio.admission`'s, shared with the server.

It offers the part of ``ClientConnection`` that :class:`~clients.python.client.
GameClient` uses (``recv``, ``send``, ``aclose``, ``close_code``) with the
same exceptions (``ConnectionClosed`` and subclasses, ``InvalidStatus``).
Plain ``ws://`` only; ``wss://`` bots use websockets' own connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections import deque
from collections.abc import Callable, Sequence

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidURI
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import CLOSED, OPEN
from websockets.uri import parse_uri

from gameserver.trio.admission import MessageAssembler, take_plain_binary_frames
from gameserver.trio.framing import parser_between_frames
from gameserver.trio.poller import ReadPoller

RECEIVE_SIZE = 65536


MessageHandler = Callable[[bytes | str], None]
EndHandler = Callable[[BaseException], None]


class LeanConnection:
    """An open client WebSocket; build it with :func:`open_lean_connection`.

    Two ways to read: ``await recv()`` in the caller's task, or
    :meth:`start_polling`, after which a shared
    :class:`~gameserver.trio.poller.ReadPoller` reads the socket and calls
    ``on_message`` for every message, synchronously (no task wake-up per
    message: what lets one process drive hundreds of bots). Writes go straight
    to the socket when it takes them; the rest waits in a backlog that
    ``send`` (and ``recv``) flush; while polled, that is the bot's next input.
    """

    def __init__(
        self, stream: trio.abc.Stream, protocol: ClientProtocol, close_timeout: float = 2.0
    ) -> None:
        self.stream = stream
        self.protocol = protocol
        self.close_timeout = close_timeout
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else None
        self._messages: deque[bytes | str] = deque()
        self._assembler = MessageAssembler()  # a server's fragments are not capped here
        self._backlog = bytearray()
        self._eof_pending = False
        self._flushing = False
        self._send_lock = trio.Lock()
        self._ended = False
        self._broken = False
        self._cut = False
        self._poller: ReadPoller | None = None
        self._on_message: MessageHandler | None = None
        self._on_end: EndHandler | None = None

    @property
    def close_code(self) -> int | None:
        """The close code received from the server, once the connection is closed."""
        if self.protocol.state is not CLOSED:
            return None
        return self.protocol.close_code

    # -- reading ------------------------------------------------------------------

    def take_frames(self, events: Sequence[object]) -> None:
        """Turn the protocol's frames into whole messages (fragments are joined)."""
        for event in events:
            if not isinstance(event, Frame):
                continue
            opcode = event.opcode
            if opcode is Opcode.BINARY or opcode is Opcode.TEXT or opcode is Opcode.CONT:
                message = self._assembler.add(opcode, event.data, event.fin)
                if message is not None:
                    kind, data = message
                    self._messages.append(data.decode() if kind is Opcode.TEXT else data)

    def _feed(self, data: bytes | bytearray) -> None:
        """Bytes from the server (``b""``: its end of stream) into messages and replies."""
        protocol = self.protocol
        if not data:
            protocol.receive_eof()
        else:
            rest = data
            if (
                protocol.state is OPEN
                and protocol.current_size is None
                and parser_between_frames(protocol)
            ):
                rest = take_plain_binary_frames(data, self._messages.append)
            if rest:
                protocol.receive_data(rest)
        self.take_frames(protocol.events_received())
        self._write_now()  # pongs, the close reply, our end of stream
        if not data or protocol.state is CLOSED:
            self._ended = True

    async def recv(self) -> bytes | str:
        """The next message; raises ``ConnectionClosed`` once the connection has ended."""
        while not self._messages:
            if self._ended:
                raise self._closed()
            try:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            self._feed(data)
            await self._flush()
        return self._messages.popleft()

    def start_polling(
        self, poller: ReadPoller, on_message: MessageHandler, on_end: EndHandler
    ) -> bool:
        """Hand reading to ``poller``: ``on_message`` per message, then ``on_end`` once.

        ``on_end`` gets the ``ConnectionClosed`` that ended the connection, or the
        exception ``on_message`` raised. False (nothing started) without a socket.
        """
        if self._fd is None or self._ended or self._poller is not None:
            return False
        if not poller.register(self._fd, self._on_readable):
            return False
        self._poller, self._on_message, self._on_end = poller, on_message, on_end
        self._deliver()  # messages that arrived while the caller was still reading
        return True

    def stop_polling(self) -> None:
        """Back to ``await recv()``; call before the socket is closed."""
        poller, self._poller = self._poller, None
        if poller is not None and self._fd is not None:
            poller.unregister(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            data = os.read(self._fd, RECEIVE_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        try:
            self._feed(data)
        except Exception as exc:  # e.g. a text message that is not UTF-8
            self._fail_polling(exc)
            return
        self._deliver()

    def _fail_polling(self, exc: BaseException) -> None:
        assert self._on_end is not None
        self.stop_polling()
        self._on_end(exc)

    def _deliver(self) -> None:
        assert self._on_message is not None and self._on_end is not None
        try:
            while self._messages and self._poller is not None:
                self._on_message(self._messages.popleft())
        except Exception as exc:
            self._fail_polling(exc)
            return
        if self._ended and self._poller is not None:
            self.stop_polling()
            self._on_end(self._closed())

    # -- writing ------------------------------------------------------------------

    async def send(self, message: bytes) -> None:
        """Send one binary message; raises ``ConnectionClosed`` if the connection is closing."""
        self.send_nowait(message)
        await self._flush()

    def send_nowait(self, message: bytes) -> None:
        """Send one binary message without waiting (what the socket does not take is kept)."""
        if self.protocol.state is not OPEN:
            raise self._closed()
        self.protocol.send_binary(message)
        self._write_now()

    def _write_now(self) -> None:
        if self._broken:
            self.protocol.data_to_send()  # dropped: the stream is unusable
            self._backlog.clear()
            return
        for data in self.protocol.data_to_send():
            if data:
                self._backlog += data
            else:
                self._eof_pending = True
        if self._flushing or self._fd is None:
            return  # a flush in progress writes it, in order
        if self._backlog:
            try:
                written = os.write(self._fd, self._backlog)
            except BlockingIOError:
                written = 0
            except OSError:
                self._backlog.clear()  # the peer is gone: reading will see the end
                return
            del self._backlog[:written]
        if self._eof_pending and not self._backlog:
            self._eof_pending = False
            assert isinstance(self.stream, trio.SocketStream)
            with contextlib.suppress(OSError):
                self.stream.socket.shutdown(socket.SHUT_WR)

    async def _flush(self) -> None:
        """Write the backlog (and a pending end of stream), waiting for the socket if need be."""
        self._write_now()
        if not self._backlog and not self._eof_pending:
            return
        async with self._send_lock:
            while self._backlog:
                chunk = bytes(self._backlog)
                self._backlog.clear()
                self._flushing = True
                try:
                    await self.stream.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._backlog.clear()
                    return
                except BaseException:
                    # Cancelled part-way: how much of the chunk went out is unknown,
                    # so nothing more may follow it on this stream.
                    self._broken = True
                    raise
                finally:
                    self._flushing = False
            if self._eof_pending:
                self._eof_pending = False
                if isinstance(self.stream, trio.abc.HalfCloseableStream):
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await self.stream.send_eof()

    @property
    def backlogged(self) -> bool:
        """True while bytes wait for the socket (or for an end of stream to follow them)."""
        return bool(self._backlog) or self._eof_pending

    async def flush(self) -> None:
        """Wait until everything written so far has gone to the socket."""
        await self._flush()

    def _closed(self) -> ConnectionClosed:
        protocol = self.protocol
        if protocol.state is CLOSED:
            return protocol.close_exc
        # Still closing (or given up on): what has been exchanged so far.
        return ConnectionClosedError(protocol.close_rcvd, protocol.close_sent)

    def cut(self) -> None:
        """Drop the TCP connection with a reset and no close frame (a network failure)."""
        self.stop_polling()
        self._broken = self._ended = self._cut = True
        sock = self.stream.socket if isinstance(self.stream, trio.SocketStream) else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame, then wait (at most ``close_timeout``) for the server's end."""
        if self._cut:
            await trio.aclose_forcefully(self.stream)
            return
        self.stop_polling()
        with trio.move_on_after(self.close_timeout), contextlib.suppress(ConnectionClosed):
            if self.protocol.state is OPEN and not self._broken:
                self.protocol.send_close(code, reason)
                await self._flush()  # may block on a server that stopped reading
            while True:
                await self.recv()
        self._ended = True
        await trio.aclose_forcefully(self.stream)


async def open_lean_connection(url: str, stream: trio.abc.Stream | None = None) -> LeanConnection:
    """TCP (unless ``stream`` is given) and the opening handshake; raise as websockets would."""
    uri = parse_uri(url)
    if uri.secure:
        raise InvalidURI(url, "the lean connection speaks ws:// only")
    if stream is None:
        stream = await trio.open_tcp_stream(uri.host, uri.port)
    try:
        protocol = ClientProtocol(uri, max_size=None)
        protocol.send_request(protocol.connect())
        for request in protocol.data_to_send():
            await stream.send_all(request)
        events: list[object] = []
        while not any(isinstance(event, Response) for event in events):
            received = await stream.receive_some(RECEIVE_SIZE)
            if received:
                protocol.receive_data(received)
            else:
                protocol.receive_eof()
            events.extend(protocol.events_received())
            if not received:
                break
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        if protocol.state is not OPEN:
            raise ConnectionError("connection closed during the opening handshake")
        connection = LeanConnection(stream, protocol)
        connection.take_frames(events)  # frames that came in the same read as the 101
        return connection
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
