"""One task reads every client socket: readiness from our own epoll, handled in batches.

With a reader task per client, each received message costs trio a task
wake-up, an ``epoll_ctl`` to re-arm the socket and a second ``recv`` that
only says "nothing more" (profiled on this machine class: about half of the
server's Python time at 10 Hz inputs). Here every client socket is registered
once, level-triggered, in an epoll set of our own; trio waits on that set's
single fd (``wait_readable``), and one wake-up reads all the sockets that are
ready and feeds each to its connection synchronously.

Each ready socket gets one handler call per round (one read of at most
``RECEIVE_SIZE``), and a round handles at most ``max_events`` sockets before
going back through trio's scheduler, so neither a flooding client nor a burst
of many clients holds the tick loop for long. Rooms :meth:`~ReadPoller.drain`
the poller right before each tick, so an input that has arrived is applied by
that tick (the Quake/Source way: read the network at the start of the frame).
Rounds can also be batched (at most one per ``read_interval``): fewer
wake-ups. A socket can be marked *urgent* (:meth:`~ReadPoller.set_urgent`:
its client owes us a pong) and is then read the moment it is readable, by a
second task, whatever the interval: connections take the arrival time of what
they read from the kernel (``SO_TIMESTAMPNS``), and TCP gives a read the stamp
of its last segment, so a pong read together with later data would look late.

Linux only (epoll); :func:`available` says whether it can be used, and a
connection without a poller (TLS, tests with memory streams, other systems)
reads with a task of its own instead.
"""

from __future__ import annotations

import contextlib
import logging
import select
from collections.abc import Callable

import trio

log = logging.getLogger(__name__)

ReadyHandler = Callable[[], None]


def available() -> bool:
    return hasattr(select, "epoll")


class ReadPoller:
    """Calls a handler, synchronously, whenever its socket has data (or EOF) to read."""

    def __init__(
        self,
        max_events: int = 256,
        interval: float = 0.0,
        after_round: Callable[[], None] | None = None,
    ) -> None:
        self.max_events = max_events
        self.after_round = after_round
        """Called after a round that read anything (the server flushes the replies)."""
        self.interval = interval
        """Seconds between two rounds (``read_interval``); 0: a round as soon as anything is
        ready, and no socket needs to be urgent."""
        self._epoll = select.epoll()
        """Sockets read in (possibly batched) rounds."""
        self._urgent = select.epoll()
        """Sockets read as soon as they are readable."""
        self._handlers: dict[int, ReadyHandler] = {}
        self._urgent_fds: set[int] = set()

    def __len__(self) -> int:
        return len(self._handlers)

    def register(self, fd: int, on_ready: ReadyHandler) -> bool:
        """Call ``on_ready()`` whenever ``fd`` is readable, until :meth:`unregister`.

        Returns False, registering nothing, once the poller has stopped. The
        handler must deal with its own errors: one that raises is logged and
        unregistered, and its owner is not told.
        """
        if self._epoll.closed:
            return False
        self._epoll.register(fd, select.EPOLLIN)
        self._handlers[fd] = on_ready
        self._urgent_fds.discard(fd)  # a reused number starts out normal
        return True

    def unregister(self, fd: int, on_ready: ReadyHandler) -> None:
        """Stop watching ``fd`` for ``on_ready``. Call it before the fd is closed.

        Only the registration made for this handler is removed: once a socket is
        closed its number can be reused by a new connection, whose registration
        must survive a late unregister of the old one.
        """
        if self._handlers.get(fd) != on_ready:
            return
        del self._handlers[fd]
        epoll = self._urgent if fd in self._urgent_fds else self._epoll
        self._urgent_fds.discard(fd)
        # Already closed: the kernel has dropped it from the set.
        with contextlib.suppress(OSError, ValueError):
            epoll.unregister(fd)

    def set_urgent(self, fd: int, on_ready: ReadyHandler, urgent: bool) -> None:
        """Read ``fd`` the moment it is readable (``urgent``), or in the rounds again.

        Only with an ``interval``: without one every round is already immediate.
        """
        if (
            self.interval <= 0
            or self._handlers.get(fd) != on_ready
            or (fd in self._urgent_fds) == urgent
        ):
            return
        source, target = (self._epoll, self._urgent) if urgent else (self._urgent, self._epoll)
        try:
            # Into the new set first (an fd may sit in two): a failure leaves it watched.
            target.register(fd, select.EPOLLIN)
        except (OSError, ValueError):
            return  # stopped, or out of epoll watches: it stays where it is
        with contextlib.suppress(OSError, ValueError):
            source.unregister(fd)
        if urgent:
            self._urgent_fds.add(fd)
        else:
            self._urgent_fds.discard(fd)

    def handle_ready(self) -> int:
        """Call the handler of every ready fd (at most ``max_events`` of each set)."""
        if not self._urgent_fds:
            return self._handle(self._epoll)
        return self._handle(self._urgent) + self._handle(self._epoll)

    def _handle(self, epoll: select.epoll) -> int:
        events = epoll.poll(0, self.max_events)
        handlers = self._handlers
        for fd, _ in events:
            on_ready = handlers.get(fd)
            if on_ready is None:
                continue  # unregistered by an earlier handler in this round
            try:
                on_ready()
            except Exception:
                # Handlers deal with their own connection's errors; one that escapes
                # is a bug, and must not stop everyone else's reads.
                log.exception("read handler for fd %d failed; no longer watched", fd)
                self.unregister(fd, on_ready)
        if events and self.after_round is not None:
            self.after_round()  # the replies of the round leave together
        return len(events)

    def drain(self, max_rounds: int = 4) -> None:
        """Read the sockets that are ready now (the rooms call this just before a tick).

        At most ``max_rounds`` rounds: a burst larger than that waits for the
        poller's own rounds, so a tick is never held for long.
        """
        if self._epoll.closed:
            return
        for _ in range(max_rounds):
            if self.handle_ready() < self.max_events:
                return

    async def run(self) -> None:
        """Serve readiness until cancelled; the epoll sets are closed on the way out.

        After a round it waits ``interval`` seconds before the next, so that what
        arrives meanwhile is read in one batch: a wake-up of this task and of
        trio's scheduler costs more than reading a message. Urgent sockets are
        read meanwhile, by a task of their own.
        """
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._serve, self._epoll, self.interval, name="poller")
                if self.interval > 0:
                    nursery.start_soon(self._serve, self._urgent, 0.0, name="poller:urgent")
        finally:
            for epoll in (self._epoll, self._urgent):
                if not epoll.closed:
                    trio.lowlevel.notify_closing(epoll.fileno())
            self.close()

    async def _serve(self, epoll: select.epoll, interval: float) -> None:
        while True:
            # Every round goes through trio's scheduler here (even if more is
            # ready), so ticks and timers run between rounds.
            await trio.lowlevel.wait_readable(epoll.fileno())
            self._handle(epoll)
            if interval > 0:
                await trio.sleep(interval)

    def close(self) -> None:
        """Forget every handler and close the epoll sets (``run`` does this when it ends)."""
        self._handlers.clear()
        self._urgent_fds.clear()
        self._epoll.close()
        self._urgent.close()
