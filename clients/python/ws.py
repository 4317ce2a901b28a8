"""The WebSocket as :class:`~clients.python.game_client.GameClient` sees it.

:class:`WebSocketConnection` is what the client needs of a connection, and an
:data:`Opener` opens more of them (a redirect's). websockets' ``ClientConnection``
fits (:func:`~clients.python.connect.websockets_opener`), and so does the load
tester's lean connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

Opener = Callable[[str], Awaitable["WebSocketConnection"]]
"""Opens a connection to a URL, as the first one was opened (headers, TLS); it owns closing it
only if the client does not: the client closes every connection it leaves."""


class WebSocketConnection(Protocol):
    """What :class:`GameClient` needs of a WebSocket: websockets' ``ClientConnection``
    has it, and so has the load tester's lean connection."""

    @property
    def close_code(self) -> int | None: ...

    async def recv(self) -> str | bytes: ...

    async def send(self, message: bytes) -> None: ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None: ...
