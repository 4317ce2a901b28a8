"""A TCP proxy on 127.0.0.1 that a test can cut: every connection through it is reset.

The browser tests load the page through it, so the page's WebSocket goes through it
too; ``cut()`` then drops those connections the way a network does (a TCP reset
both ways: no close frame for the page or the server) while the proxy keeps
accepting new ones. Plain threads and sockets: sync Playwright owns the test's thread.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
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

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
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
            pair = _Pair(client, upstream)
            for source, sink in ((client, upstream), (upstream, client)):
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
