"""Per-client outbound buffer: reliable FIFO, latest-wins snapshot slot, close request.

The tick loop and the session write here synchronously and never wait; the
client's link (``gameserver/trio/link.py``) drains it into the socket. Rules:

- Reliable frames (welcome, events, errors, pings) are kept in order and never
  dropped. More than ``max_reliable`` unsent closes the client 4001: a client
  that far behind is not playing any more, and memory per client stays bounded.
- The snapshot slot holds one frame; a newer snapshot replaces an unsent one.
- ``take()`` returns the reliable frames, then the snapshot, so a snapshot never
  overtakes a reliable frame queued before it.
- After ``close()``, frames already queued are still flushed, then the close is
  performed; later frames are discarded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from protocol import CloseCode


@dataclass(frozen=True, slots=True)
class CloseRequest:
    """How the sender must end the connection."""

    code: int
    reason: str
    abort: bool = False
    """Drop TCP without a close handshake (the peer is not reading, so it could not arrive)."""


def _nothing() -> None:
    pass


class Outbox:
    """What is waiting to be sent to one client."""

    def __init__(self, max_reliable: int, wake: Callable[[], None] = _nothing) -> None:
        self._reliable: deque[bytes] = deque()
        self._snapshot: bytes | None = None
        self._max_reliable = max_reliable
        self._wake = wake
        self.close_request: CloseRequest | None = None
        self.snapshots_replaced = 0
        self.frames_queued = 0

    @property
    def closing(self) -> bool:
        return self.close_request is not None

    def send(self, frame: bytes) -> None:
        """Queue a reliable frame."""
        if self.close_request is not None:
            return
        if len(self._reliable) >= self._max_reliable:
            self.close(CloseCode.TOO_SLOW, "event queue overflow")
            return
        self._reliable.append(frame)
        self.frames_queued += 1
        self._wake()

    def set_snapshot(self, frame: bytes) -> None:
        """Put the newest snapshot in the slot, replacing an unsent older one."""
        if self.close_request is not None:
            return
        if self._snapshot is not None:
            self.snapshots_replaced += 1
        self._snapshot = frame
        self.frames_queued += 1
        self._wake()

    def discard_snapshot(self) -> None:
        """Drop an unsent snapshot (the player left the room it showed)."""
        self._snapshot = None

    def close(self, code: int, reason: str, *, abort: bool = False) -> None:
        """Ask the sender to close the connection (the first request wins)."""
        if self.close_request is None:
            self.close_request = CloseRequest(int(code), reason, abort)
            if abort:
                self._reliable.clear()
                self._snapshot = None
            self._wake()

    def take(self) -> list[bytes]:
        """Remove and return everything to send now, in send order."""
        if not self._reliable:
            # The common case, once per tick per player: just the snapshot.
            snapshot = self._snapshot
            if snapshot is None:
                return []
            self._snapshot = None
            return [snapshot]
        frames = list(self._reliable)
        self._reliable.clear()
        if self._snapshot is not None:
            frames.append(self._snapshot)
            self._snapshot = None
        return frames

    def __len__(self) -> int:
        return len(self._reliable) + (self._snapshot is not None)
