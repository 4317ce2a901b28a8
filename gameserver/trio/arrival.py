"""When received bytes reached this host: the kernel's receive stamps (Linux ``SO_TIMESTAMPNS``).

A pong's RTT must end when the pong arrived, not when the server got round to
reading it (a tick in progress, a batch of reads). The kernel stamps each
received segment; ``recvmsg`` returns the stamp of the last segment it read,
and :func:`arrival_time` turns it into trio's clock. Where stamps are not
available (other systems, TLS, test streams) the read time stands in.
"""

from __future__ import annotations

import platform
import socket
import struct
import sys
import time

import trio

_GENERIC_SOCKET_ABI = {"x86_64", "i686", "i386", "aarch64", "arm64", "armv7l", "armv6l",
                       "riscv64", "ppc64le", "ppc64", "s390x"}  # fmt: skip
SO_TIMESTAMPNS: int | None = getattr(
    socket,
    "SO_TIMESTAMPNS",
    35 if sys.platform == "linux" and platform.machine() in _GENERIC_SOCKET_ABI else None,
)
"""Linux: the kernel stamps each received segment; ``recvmsg`` returns the stamp. Python
3.11 does not name it: 35 is its value in the generic socket ABI (not alpha, mips,
parisc or sparc, which are left without stamps)."""
TIMESTAMP_SPACE = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0
MAX_READ_AGE = 1.0
"""A kernel stamp older than this (or in the future) is not believed: a clock step."""


def stdlib_socket(stream: trio.abc.Stream) -> socket.socket | None:
    """The plain socket under a trio SocketStream, for ``recvmsg`` without a task switch."""
    if isinstance(stream, trio.SocketStream):
        sock = getattr(stream.socket, "_sock", None)  # trio keeps the stdlib socket here
        if isinstance(sock, socket.socket):
            return sock
    return None


def enable_timestamps(sock: socket.socket | None) -> bool:
    if sock is None or SO_TIMESTAMPNS is None or not TIMESTAMP_SPACE:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def arrival_time(ancillary: list[tuple[int, int, bytes]], now: float) -> float:
    """When the data just read reached this host, on trio's clock (``now`` if unknown)."""
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
            seconds, nanoseconds = struct.unpack_from("qq", payload)
            age = time.time() - (int(seconds) + int(nanoseconds) * 1e-9)
            if 0.0 <= age <= MAX_READ_AGE:
                return now - age
    return now
