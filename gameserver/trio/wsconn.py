"""An open WebSocket on a trio stream: websockets' sans-I/O protocol, our own I/O.

Why not ``websockets.trio.ServerConnection``: it spends two task switches and
an assembler per received message (about 34 µs per 30-byte message, against
about 24 for a raw trio socket with a sans-I/O parser, measured with 1,000
clients at 30 Hz on a 2-core VM, 2026-11) and one awaited ``send_all`` per frame.
Here websockets' :class:`~websockets.protocol.Protocol` still does all of the
RFC 6455 work (framing, masking, UTF-8 and close-code validation, size limits,
ping/pong and close replies); :mod:`.admission` decides which frames make
messages (flood bucket, fragments, the fast path); this module moves bytes:

- **Reading**: the server's :class:`~gameserver.trio.poller.ReadPoller` says
  when the socket is readable; :meth:`WsConnection.receive` feeds the bytes to
  the protocol and hands each complete message to a callback, synchronously.
  Without a poller (TLS, memory streams) a task reads with ``receive_some``.
- **Writing**: :meth:`WsConnection.write` is synchronous. When nothing is
  waiting to be written it writes straight to the socket (``os.write`` on the
  non-blocking fd, no task switch: 8 µs a message against 19 for ``send_all``
  per client in the same measurement); whatever the kernel does not take is
  kept and written, in order, by the writer task under ``send_timeout``. While
  such a backlog exists the owner should hold back new data (:attr:`backed_up`),
  which is what lets snapshots stay latest-wins instead of queueing behind a
  slow socket.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Callable, Iterable

import trio
from websockets.frames import Frame, Opcode
from websockets.protocol import CLOSED, OPEN, Protocol

from ..ratelimit import TokenBucket
from .admission import FrameAdmission, take_masked_binary_frames
from .arrival import TIMESTAMP_SPACE, arrival_time, enable_timestamps, stdlib_socket
from .framing import binary_frame_header, parser_between_frames
from .poller import ReadPoller

log = logging.getLogger(__name__)

RECEIVE_SIZE = 16384
"""Bytes asked of the kernel per read. Enough for every honest client's burst; small
enough that parsing one read (up to ~2,700 minimal frames) stays a few milliseconds,
since the protocol parses a whole read synchronously."""


def _ignore_message(message: bytes) -> None:
    pass


def _ignore_text() -> None:
    pass


def _raw_fd(stream: trio.abc.Stream) -> int | None:
    """The socket's fd for direct writes, or None (TLS and test streams use send_all)."""
    if isinstance(stream, trio.SocketStream):
        return stream.socket.fileno()
    return None


class WsConnection:
    """Bytes in and out for one WebSocket whose opening handshake is done.

    Args:
        stream: the transport (TCP or TLS stream, or a memory stream in tests).
        protocol: websockets' sans-I/O protocol, in state OPEN.
        send_timeout: how long one blocked write may wait before the peer is
            declared too slow and the connection is aborted.
        close_timeout: how long the peer has to finish a closing handshake
            (close frame, then end of stream) once it has begun, whichever side
            began it; then the connection is aborted.
        poller: the shared reader of plain TCP sockets; without one (or for
            TLS and test streams) :meth:`run_reader` reads in its own task.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        protocol: Protocol,
        *,
        send_timeout: float,
        close_timeout: float,
        frame_limit: TokenBucket | None = None,
        max_backlog_bytes: int = 1 << 20,
        max_fragments: int = 64,
        poller: ReadPoller | None = None,
    ) -> None:
        self.stream = stream
        self.admission = FrameAdmission(frame_limit, max_fragments)
        """Every received frame (control and continuation frames too) takes a token
        (none left: 1008); fragments are joined, at most ``max_fragments`` (then 1009).
        Data messages are rate-limited again by the session."""
        self.max_backlog_bytes = max_backlog_bytes
        self._backlog_bytes = 0
        self.failed_reason: str | None = None
        self.protocol = protocol
        self.send_timeout = send_timeout
        self.close_timeout = close_timeout
        self._read_scope = trio.CancelScope()
        self._fd = _raw_fd(stream)
        self._pending: deque[bytes] = deque()
        self._eof_pending = False
        self._writing = False
        self._wakeup = trio.Event()
        self.on_drained: Callable[[], None] = lambda: None
        """Called (synchronously) whenever a backlog has been fully written."""
        self.closed = trio.Event()
        """Set when reading has ended: closed cleanly, by EOF, error or abort."""
        self.writer_done = trio.Event()
        """Set when the writer has written the end of stream, or given up."""
        self.aborted = False
        self.timed_out = False
        self.bytes_out = 0
        self.bytes_in = 0
        self.peer = "?"
        """Who is at the other end, for log lines (the link names it)."""
        self.ping_sent_at: float | None = None
        """When our unanswered WebSocket-level keepalive ping went out, if one is pending."""
        self._poller = poller
        self._polling = False
        self._urgent = False
        self._sock = stdlib_socket(stream)
        self._timestamps = enable_timestamps(self._sock)
        self.last_read_at = 0.0
        """When the bytes being handled arrived: the kernel's stamp where there is one
        (a pong's RTT is measured to it, not to when we got round to reading), else
        the read time."""
        self._between_frames = parser_between_frames(protocol)
        """Whether the protocol's parser sits at a frame boundary (updated per parsed read)."""
        self._reading_done = trio.Event()
        self._on_binary: Callable[[bytes], None] = _ignore_message
        self._on_text: Callable[[], None] = _ignore_text

    # -- writing ------------------------------------------------------------

    @property
    def backed_up(self) -> bool:
        """True while earlier bytes still wait for the socket."""
        return bool(self._pending) or self._writing

    @property
    def is_open(self) -> bool:
        return self.protocol.state is OPEN and not self.aborted

    def send_binary(self, payload: bytes) -> None:
        """Frame ``payload`` as one binary message and write (or queue) it now.

        The hot path (every snapshot to every player): the two-to-ten-byte
        header of an unmasked, unfragmented server frame (RFC 6455 §5.2) is
        built here instead of through ``Protocol.send_binary``, which costs
        several times more. That is all it skips: a server data frame carries
        no state the protocol tracks, and control frames still go through it.
        """
        if self.protocol.state is not OPEN or self.aborted:
            return
        self.write(binary_frame_header(len(payload)) + payload)

    def send_binaries(self, payloads: list[bytes]) -> None:
        """Frame each payload as one binary message; write them all in one write."""
        if not payloads or self.protocol.state is not OPEN or self.aborted:
            return
        if len(payloads) == 1:
            payload = payloads[0]
            self.write(binary_frame_header(len(payload)) + payload)
            return
        self.write(b"".join([part for p in payloads for part in (binary_frame_header(len(p)), p)]))

    def send_close(self, code: int, reason: str) -> None:
        """Start the closing handshake (no-op unless OPEN)."""
        if self.protocol.state is OPEN and not self.aborted:
            self.protocol.send_close(code, reason)
            self.flush_protocol()
            self._arm_close_deadline()

    def _arm_close_deadline(self) -> None:
        """A closing handshake has begun: the reader gives the peer close_timeout to end it."""
        if self._read_scope.deadline == math.inf:
            self._read_scope.deadline = trio.current_time() + self.close_timeout

    def send_ping(self, now: float) -> None:
        """Send a keepalive ping; ``ping_sent_at`` stays set until a pong arrives."""
        if self.protocol.state is OPEN and not self.aborted:
            self.protocol.send_ping(b"")
            self.ping_sent_at = now
            self.flush_protocol()

    def flush_protocol(self) -> None:
        """Move what the protocol produced (frames, pongs, close replies, EOF) to the socket."""
        for data in self.protocol.data_to_send():
            if data:
                self.write(data)
            else:
                self._eof_pending = True
                self._wakeup.set()

    def write(self, data: bytes) -> None:
        """Write ``data`` now if the socket takes it, else keep it for the writer task."""
        if self.aborted:
            return
        self.bytes_out += len(data)
        if not self._pending and not self._writing and self._fd is not None:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:
                written = 0
            except OSError:
                # Broken pipe / reset: the reader will see the end; drop the data.
                self._abort_soon()
                return
            if written == len(data):
                return
            data = data[written:]
        self._pending.append(data)
        self._backlog_bytes += len(data)
        if self._backlog_bytes > self.max_backlog_bytes:
            # Control replies (pongs) bypass the outbox's limits: bound them here.
            log.info(
                "%s: send backlog over %d bytes, dropped",
                self.peer,
                self.max_backlog_bytes,
                extra={"peer": self.peer},
            )
            self.failed_reason = "send backlog"
            self.abort()
            return
        self._wakeup.set()

    def _abort_soon(self) -> None:
        self.aborted = True
        self._pending.clear()
        self._backlog_bytes = 0
        self._wakeup.set()
        # The writer closes the socket next: stop polling it first.
        self._finish_reading()

    def abort(self) -> None:
        """Drop the connection without a closing handshake; this also ends the reader."""
        self._abort_soon()
        self._read_scope.cancel()

    async def run_writer(self) -> None:
        """Write the backlog in order; abort the connection when a write blocks too long.

        Returns after the protocol's end-of-stream has been written, or after an
        abort (then the stream is closed, which also ends the reader).
        """
        try:
            await self._write_until_done()
        finally:
            self.writer_done.set()

    async def _write_until_done(self) -> None:
        while not self.aborted:
            if self._pending:
                chunk = b"".join(self._pending)
                self._pending.clear()
                self._backlog_bytes = 0
                self._writing = True
                try:
                    with trio.move_on_after(self.send_timeout) as scope:
                        await self.stream.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    self.aborted = True
                    break
                finally:
                    self._writing = False
                if scope.cancelled_caught:
                    self.timed_out = True
                    self.aborted = True
                    break
                if not self._pending:
                    self.on_drained()
                continue
            if self._eof_pending:
                await self._send_eof()
                return
            await self._wakeup.wait()
            # Safe to re-arm here: no other task runs between wait() and this line.
            self._wakeup = trio.Event()
        # Aborted: reading ends too, and the poller lets go of the fd before it closes.
        self._finish_reading()
        await trio.aclose_forcefully(self.stream)

    async def _send_eof(self) -> None:
        try:
            if isinstance(self.stream, trio.abc.HalfCloseableStream):
                await self.stream.send_eof()
            else:
                await self.stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    # -- reading --------------------------------------------------------------

    async def run_reader(
        self,
        on_binary: Callable[[bytes], None],
        on_text: Callable[[], None],
        early_frames: Iterable[Frame] = (),
    ) -> None:
        """Read until the connection ends, calling ``on_binary``/``on_text`` per message.

        ``early_frames`` were parsed during the handshake and are handled first.
        With a poller (plain TCP) the reads happen in the poller's task and this
        task only waits for the end; otherwise it reads the stream itself.
        """
        self._on_binary, self._on_text = on_binary, on_text
        self.last_read_at = trio.current_time()
        if self.protocol.state is OPEN:
            for frame in early_frames:
                self._on_frame(frame)
        self.flush_protocol()
        try:
            # Cancelled by abort(), or at the deadline armed when a closing
            # handshake begins: a peer that never ends TCP must not hold us.
            with self._read_scope:
                if self.protocol.state is CLOSED or self.aborted:
                    self._finish_reading()
                elif self._start_polling():
                    await self._reading_done.wait()
                else:
                    await self._read_stream()
            if self._read_scope.cancelled_caught and not self.aborted:
                log.info(
                    "%s: closing handshake not finished in %.1f s, dropped",
                    self.peer,
                    self.close_timeout,
                    extra={"peer": self.peer},
                )
                self._abort_soon()
        finally:
            self._stop_polling()
            self.closed.set()

    async def _read_stream(self) -> None:
        while not self._reading_done.is_set():
            try:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            self.last_read_at = trio.current_time()
            self.receive(data)

    def _start_polling(self) -> bool:
        if self._poller is None or self._fd is None:
            return False
        self._polling = self._poller.register(self._fd, self._on_readable)
        if self._polling and self._urgent:  # asked for before reading began (early frames)
            self._poller.set_urgent(self._fd, self._on_readable, True)
        return self._polling

    def read_urgently(self, urgent: bool) -> None:
        """Have the poller read this socket the moment it is readable, even when it batches
        reads (a pong is due: its arrival stamp must be its own). No-op without a poller."""
        self._urgent = urgent
        if self._polling and self._poller is not None and self._fd is not None:
            self._poller.set_urgent(self._fd, self._on_readable, urgent)

    def _stop_polling(self) -> None:
        """Leave the poller (before the socket is closed: its number may be reused)."""
        if self._polling and self._poller is not None and self._fd is not None:
            self._polling = False
            self._poller.unregister(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        """The poller says the socket has data (or EOF): one read, handled now."""
        assert self._fd is not None
        try:
            if self._timestamps:
                assert self._sock is not None
                data, ancillary, _, _ = self._sock.recvmsg(RECEIVE_SIZE, TIMESTAMP_SPACE)
                self.last_read_at = arrival_time(ancillary, trio.current_time())
            else:
                data = os.read(self._fd, RECEIVE_SIZE)
                self.last_read_at = trio.current_time()
        except BlockingIOError:
            return
        except OSError:
            data = b""
            self.last_read_at = trio.current_time()
        try:
            self.receive(data)
        except Exception:
            # With a reader task this would end the task; here it must end only
            # this connection, not the poller every client shares.
            log.exception("connection failed while handling received data")
            self.abort()

    def receive(self, data: bytes | bytearray) -> None:
        """Feed bytes read from the peer (``b""``: end of stream) and handle what they complete."""
        protocol = self.protocol
        payloads, rest = take_masked_binary_frames(data, protocol, self._between_frames)
        if payloads:
            self.bytes_in += len(data) - len(rest)
            for payload in payloads:
                self._on_message_frame(Opcode.BINARY, payload)
            if not rest:
                self._after_read(data)
                return
            data = rest  # what follows the run of plain frames goes to the parser
        # Frames parsed from this read before a protocol error or a close frame are
        # still delivered; nothing is once the connection was closing before it.
        accepting = protocol.state is OPEN
        if data:
            self.bytes_in += len(data)
            protocol.receive_data(data)
        else:
            protocol.receive_eof()
        self._between_frames = parser_between_frames(protocol)
        for event in protocol.events_received():
            if accepting and isinstance(event, Frame):
                self._on_frame(event)
        self.flush_protocol()
        self._after_read(data)

    def _after_read(self, data: bytes | bytearray) -> None:
        """End reading, or start the close deadline, as what was just read requires."""
        protocol = self.protocol
        if not data or protocol.state is CLOSED or self.aborted:
            self._finish_reading()
        elif protocol.state is not OPEN and protocol.close_expected():
            self._arm_close_deadline()

    def _finish_reading(self) -> None:
        # Level-triggered readiness stays on after EOF: leave the poller now.
        self._stop_polling()
        self._reading_done.set()

    def _fail(self, code: int, reason: str) -> None:
        """Close the connection for a transport-level abuse (the protocol sends the frame)."""
        log.info("%s: closing %d: %s", self.peer, code, reason, extra={"peer": self.peer})
        self.failed_reason = reason
        self.protocol.fail(code, reason)
        self.flush_protocol()

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.TEXT or opcode is Opcode.CONT:
            self._on_message_frame(opcode, frame.data, frame.fin)
            return
        if self.failed_reason is not None or self.aborted:
            return
        if not self.admission.admit(trio.current_time()):
            self._fail_if_refused()
            return
        if opcode is Opcode.PONG:
            self.ping_sent_at = None
        # ping/close: the protocol already answered

    def _on_message_frame(
        self, opcode: Opcode, data: bytes | bytearray | memoryview, fin: bool = True
    ) -> None:
        """A data frame (binary, text or continuation): deliver the message it completes."""
        message = self.admission.message_frame(opcode, data, fin, trio.current_time())
        if message is None:
            self._fail_if_refused()
        elif message[0] is Opcode.TEXT:
            self._on_text()
        else:
            self._on_binary(message[1])

    def _fail_if_refused(self) -> None:
        failure = self.admission.failure
        if failure is not None and self.failed_reason is None and not self.aborted:
            self._fail(*failure)
