"""Opening connections: :func:`connect` (a :class:`GameClient` over websockets) and
:func:`websockets_opener`, which opens each connection a redirect leads to the
way the first one was opened (headers, TLS context, origin).
"""

from __future__ import annotations

import ssl as ssl_module
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import trio
from websockets.trio.client import connect as ws_connect

from .game_client import MAX_REDIRECTS, GameClient
from .ws import Opener, WebSocketConnection

CLOSE_GRACE = 2.0
"""Seconds a connection left on an exception gets to close politely (1000)."""


@asynccontextmanager
async def connect(
    url: str,
    name: str | None = None,
    *,
    game: str | None = None,
    room: str | None = None,
    ssl: ssl_module.SSLContext | None = None,
    origin: str | None = None,
    headers: Mapping[str, str] | None = None,
    open_timeout: float = 10.0,
    max_redirects: int = MAX_REDIRECTS,
    resume: str | None = None,
    spectate: bool = False,
    presence: bool = False,
    deltas: bool = True,
    apply_patch: Callable[[Any, Any], Any] | None = None,
) -> AsyncIterator[GameClient]:
    """Open a connection; with ``name``, also say hello (and join ``game``/``room``).

    ``resume``: a ``resume_token`` of an earlier connection: take that player's held
    seat back (see :mod:`clients.python.client`). ``spectate``: watch ``room`` instead of
    playing. ``presence``: receive ``event away``/``back`` for others' drops.
    ``deltas``: ask for delta snapshots (applied here; ``False`` refuses them);
    ``apply_patch``: the game's own ``apply`` when its rooms use a format of their own.

    ``headers`` go with the upgrade request, e.g. ``{"Authorization": "Bearer …"}``
    for a server with an authenticate hook (which may refuse: websockets'
    ``InvalidStatus``, its ``response`` the 401, 503 or 500). They, ``ssl`` and
    ``origin`` go with every connection a redirect leads to as well. Closes the
    connection (1000) on exit.
    """
    kwargs: dict[str, Any] = {
        "compression": None,
        "open_timeout": open_timeout,
        "max_size": None,
        "proxy": None,
    }
    if ssl is not None:
        kwargs["ssl"] = ssl
    if origin is not None:
        kwargs["origin"] = origin
    if headers:
        kwargs["additional_headers"] = dict(headers)
    async with websockets_opener(kwargs) as opener:
        client = GameClient(
            await opener(url),
            opener=opener,
            url=url,
            max_redirects=max_redirects,
            deltas=deltas,
            apply_patch=apply_patch,
        )
        try:
            if name is not None:
                with trio.fail_after(open_timeout):
                    await client.hello(
                        name, game, room, resume=resume, spectate=spectate, presence=presence
                    )
            yield client
            await client.close()
        except BaseException:
            with trio.move_on_after(CLOSE_GRACE, shield=True):
                await client.ws.aclose()
            raise


@asynccontextmanager
async def websockets_opener(
    kwargs: Mapping[str, Any],
    open_stream: Callable[[str], Awaitable[trio.abc.Stream]] | None = None,
) -> AsyncIterator[Opener]:
    """An :data:`Opener` of websockets connections with ``kwargs`` (those of its ``connect``),
    each over a stream from ``open_stream(url)`` when given.

    The connections' tasks run in a nursery of this context, which ends them on
    exit (close the connections before). An exception from the body comes out
    as itself, not in an exception group (as from websockets' own ``connect``).
    """
    try:
        async with trio.open_nursery() as nursery:

            async def opener(url: str) -> WebSocketConnection:
                options = dict(kwargs)
                if open_stream is not None:
                    options["stream"] = await open_stream(url)
                ws: WebSocketConnection = await ws_connect(url, **options).connect(nursery)
                return ws

            try:
                yield opener
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
