"""The only task that writes a client's WebSocket: drains its :class:`Outbox`.

Each send is bounded by ``send_timeout``; a client whose socket stays full
that long is evicted by dropping TCP (a close frame could not get through a
full buffer anyway). Because the tick loop only fills the outbox and this task
is the one that waits, a client that stops reading delays nobody else.
"""

from __future__ import annotations

import logging

import trio
from websockets.exceptions import ConnectionClosed
from websockets.trio.connection import Connection

from ..outbox import Outbox

log = logging.getLogger(__name__)


class Wakeup:
    """A re-armable event: ``set()`` from sync code, ``await wait()`` in the sender."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        # Safe: nothing else runs between wait() returning and this line.
        self._event = trio.Event()


async def run_sender(
    ws: Connection, outbox: Outbox, wakeup: Wakeup, *, send_timeout: float, peer: str = "?"
) -> None:
    """Send what the outbox holds until it asks for a close; then perform it."""
    while True:
        frames = outbox.take()
        for frame in frames:
            with trio.move_on_after(send_timeout) as scope:
                try:
                    await ws.send(frame)
                except ConnectionClosed:
                    return
            if scope.cancelled_caught:
                log.warning("%s: send blocked for %.1f s, evicting (4001)", peer, send_timeout)
                await trio.aclose_forcefully(ws.stream)
                return
        request = outbox.close_request
        if request is not None and not len(outbox):
            if request.abort:
                await trio.aclose_forcefully(ws.stream)
            else:  # bounded: the close frame's own send can block like any other send
                with trio.move_on_after(send_timeout + (ws.close_timeout or 0.0)):
                    await ws.aclose(request.code, request.reason)
            return
        if not frames:
            await wakeup.wait()
