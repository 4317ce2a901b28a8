"""A TCP proxy on 127.0.0.1 that a test can cut, and that can add latency.

The browser tests load the page through it, so the page's WebSocket goes through it
too; ``cut()`` then drops those connections the way a network does (a TCP reset
both ways: no close frame for the page or the server) while the proxy keeps
accepting new ones. Plain threads and sockets: sync Playwright owns the test's thread.

Latency (``delay`` and ``jitter``, seconds, each way): every chunk read is passed on
``delay`` plus a uniform draw in [-jitter, jitter] after it was read, but never
before the chunk read ahead of it (TCP keeps byte order, so a late chunk holds up
the ones behind it, as on a real path).
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import struct
import threading
import time
from types import TracebackType


def _wake(sock: socket.socket) -> None:
    """Wake a thread blocked reading ``sock`` (closing it from here would not)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a TCP reset."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.cut = threading.Event()
        self.pumps: list[threading.Thread] = []


class CuttableProxy:
    """``with CuttableProxy(port) as proxy:`` forwards 127.0.0.1:proxy.port to ``port``."""

    def __init__(
        self, target_port: int, delay: float = 0.0, jitter: float = 0.0, seed: int = 0
    ) -> None:
        assert 0 <= jitter <= delay, "a jitter larger than the delay would send before reading"
        self.target_port = target_port
        self.delay = delay
        self.jitter = jitter
        self._rng = random.Random(seed)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttableProxy:
        self._acceptor.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._acceptor.join(5)
        self._listener.close()
        self.cut()
        assert not self._acceptor.is_alive(), "proxy thread did not stop"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was shut down
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            for sock in (client, upstream):  # a delayed chunk must not wait for Nagle too
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                if self.delay > 0:
                    chunks: queue.SimpleQueue[tuple[float, bytes | None]] = queue.SimpleQueue()
                    pair.pumps.append(
                        threading.Thread(
                            target=self._read_late, args=(pair, source, chunks), daemon=True
                        )
                    )
                    pair.pumps.append(
                        threading.Thread(
                            target=self._send_late, args=(pair, sink, chunks), daemon=True
                        )
                    )
                    continue
                pump = threading.Thread(target=self._pump, args=(pair, source, sink), daemon=True)
                pair.pumps.append(pump)
            with self._lock:
                self._pairs.append(pair)
            for pump in pair.pumps:
                pump.start()

    @staticmethod
    def _pump(pair: _Pair, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            if not pair.cut.is_set():
                sink.shutdown(socket.SHUT_WR)  # a real end of stream: pass it on
        except OSError:
            pass  # the other side went away

    def _due(self, last: float) -> float:
        """When a chunk read now goes out: its delay and jitter, never before ``last``."""
        with self._lock:
            spread = self._rng.uniform(-self.jitter, self.jitter)
        return max(last, time.monotonic() + self.delay + spread)

    def _read_late(
        self,
        pair: _Pair,
        source: socket.socket,
        chunks: queue.SimpleQueue[tuple[float, bytes | None]],
    ) -> None:
        """Read ``source``, stamping each chunk with its due time; None marks the end."""
        due = 0.0
        try:
            while data := source.recv(65536):
                due = self._due(due)
                chunks.put((due, data))
        except OSError:
            pass
        finally:
            chunks.put((self._due(due), None))

    @staticmethod
    def _send_late(
        pair: _Pair, sink: socket.socket, chunks: queue.SimpleQueue[tuple[float, bytes | None]]
    ) -> None:
        """Write each chunk to ``sink`` at its due time (in order), until the end or a cut."""
        try:
            while True:
                due, data = chunks.get()
                if pair.cut.wait(max(0.0, due - time.monotonic())):
                    return
                if data is None:
                    sink.shutdown(socket.SHUT_WR)  # a real end of stream: pass it on
                    return
                sink.sendall(data)
        except OSError:
            pass  # the other side went away

    def cut(self) -> int:
        """Reset every connection open through the proxy; how many there were."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.cut.set()
            _wake(pair.client)
            _wake(pair.upstream)
            for pump in pair.pumps:
                pump.join(5)
            assert not any(p.is_alive() for p in pair.pumps), "proxy pump did not stop"
            _reset(pair.client)
            _reset(pair.upstream)
        return len(pairs)
