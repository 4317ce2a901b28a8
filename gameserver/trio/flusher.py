"""The output path, pulled: outboxes that changed are written once per round.

The core never writes to a socket. A session or a room puts frames in a
client's :class:`~gameserver.outbox.Outbox`, which marks that client here; the
shell then flushes every marked client once, at the end of the round that
changed it: after a room's tick (its events and snapshot leave in one write),
after a read round of the poller, after a round of timers. Whatever changed
outside those rounds (a directory's answer, a shutdown) is flushed by this
object's own task as soon as the task that changed it yields. One write per
client per round, the shape of websockets' and h11's ``data_to_send()``.
"""

from __future__ import annotations

from typing import Protocol

import trio


class Flushable(Protocol):
    """A client whose outbox can be written out (``ClientLink``)."""

    flush_marked: bool
    """True while waiting in a :class:`Flusher`'s list (so it is listed once)."""

    def pump(self) -> None:
        """Write what its outbox holds, in one write."""


class Flusher:
    """The clients with something new to send, and the flush that sends it."""

    def __init__(self) -> None:
        self._marked: list[Flushable] = []
        self._wanted = trio.Event()
        self.rounds = 0
        """Flushes that wrote something (for tests and /healthz)."""

    def mark(self, client: Flushable) -> None:
        """``client``'s outbox changed: write it at the end of this round."""
        if not client.flush_marked:
            client.flush_marked = True
            self._marked.append(client)
            if len(self._marked) == 1:
                self._wanted.set()

    def flush(self) -> None:
        """Write every marked client once (synchronous: the end of a round)."""
        marked, self._marked = self._marked, []
        if not marked:
            return
        self.rounds += 1
        for client in marked:
            client.flush_marked = False
            client.pump()

    async def run(self) -> None:
        """Flush what no round ended with, once the task that marked it yields."""
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            self.flush()
