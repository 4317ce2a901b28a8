"""A trio client for the game server: connect, hello, join, inputs, snapshots, chat.

Usage::

    async with connect("ws://127.0.0.1:9001/", name="ada", game="arena") as client:
        await client.send_input({"dx": 1, "dy": 0})
        while True:
            message = await client.recv()      # pings are answered inside recv()
            if isinstance(message, Snapshot):
                ...

Resume after a dropped connection (PROTOCOL.md §5.12): keep ``client.resume_token``
(the newest ``welcome.resume``) and ``client.resume_url``, and when the connection
drops open a new one with ``connect(client.resume_url or url, name, resume=token)``
(on a cluster the URL names the worker holding the seat; a lone server gives none):
``client.resumed`` tells whether the seat came
back (same ``player_id``, room and score; continue ``next_seq``) or the server
answered ``resume_failed`` and made a fresh player (who joined ``game``/``room``)::

    token, where = client.resume_token, client.resume_url or url   # before the drop
    async with connect(where, "ada", game="arena", resume=token) as client:
        ...   # next_seq follows the seat's numbering from the first snapshot's ack

Built on the same ``protocol`` codec as the server and ``websockets.trio``.
``recv()`` answers every ``ping`` at once with a ``pong`` (that is what the
server's latency measurement needs), and every ``send_input`` carries the id of
the newest snapshot received as its ``ack``.

Delta snapshots (PROTOCOL.md §5.6) are asked for (``deltas=False`` to refuse),
applied and acknowledged by the client; a game with a format of its own passes
its ``apply_patch`` (see :mod:`clients.python.snapshots`). Redirects of a
cluster (PROTOCOL.md §5.11) are followed inside ``hello`` and ``join`` (see
:mod:`clients.python.game_client`).

This module gathers the client's public names; they live in:

- :mod:`clients.python.game_client`: :class:`GameClient`, one connection, and
  ``redirect_url``;
- :mod:`clients.python.snapshots`: applying delta snapshots and when to acknowledge;
- :mod:`clients.python.connect`: :func:`connect` and :func:`websockets_opener`;
- :mod:`clients.python.ws`: what the client needs of a WebSocket (``Opener``);
- :mod:`clients.python.errors`: :class:`ServerRefused`, :class:`TooManyRedirects`.
"""

from __future__ import annotations

from .connect import CLOSE_GRACE, connect, websockets_opener
from .errors import ServerRefused, TooManyRedirects
from .game_client import MAX_REDIRECTS, GameClient, redirect_url
from .snapshots import IDLE_ACK_AFTER, SnapshotReceiver
from .ws import Opener, WebSocketConnection

__all__ = [
    "CLOSE_GRACE",
    "IDLE_ACK_AFTER",
    "MAX_REDIRECTS",
    "GameClient",
    "Opener",
    "ServerRefused",
    "SnapshotReceiver",
    "TooManyRedirects",
    "WebSocketConnection",
    "connect",
    "redirect_url",
    "websockets_opener",
]
