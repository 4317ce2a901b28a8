"""A scripted stand-in for a cluster (PROTOCOL.md §5.11), for testing clients' redirects.

Two WebSocket servers on 127.0.0.1 (port 0) in front of one real game server
(``upstream``), both plain proxies except where the script says otherwise:

- the **front** answers a ``hello`` that asks for a room (``redirect_hello``), or
  a ``join`` in the lobby (``redirect_join``), with ``redirect {url: worker,
  ticket, room, ttl_ms}`` and close 4005, instead of passing it on. Anything
  else goes to the upstream and back unchanged.
- the **worker** takes a ``hello`` with a ticket it issued: it passes on
  ``hello {version, name, game, room}`` of the reserved seat (the upstream
  knows nothing of tickets), then proxies. An unknown or used ticket, or one of
  the first ``refuse_tickets``, gets ``error bad_ticket`` and the connection
  waits for another ``hello`` (as §5.11 says). With ``loop`` it redirects every
  ticket to itself again, forever.

Matchmaking (``hello``/``join`` with a game and no room) is sent to the room
``far_room``. With ``later_fields``, every server message passed down gains
those fields, and ``welcome.limits`` gains ``later_limits``: what a later
server may add (§2 unknown fields, §4.2 limits), which a client must ignore.
Plain HTTP requests to the front are proxied to the upstream too, so a browser
page can be loaded from the front and its WebSocket goes there.
What both saw is recorded (``front_hellos``, ``worker_hellos``, ``redirects``).

Run ``python -m tests.fake_cluster --upstream ws://HOST:PORT/ --port 0`` for a
process of its own (the browser and load tests do): it prints the front's URL.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.trio.client import connect as ws_connect
from websockets.trio.server import ServerConnection, serve

from protocol import PROTOCOL_VERSION, CloseCode, Error, ErrorCode, Redirect, encode

TICKET_TTL_MS = 10_000


@dataclass
class FakeCluster:
    """The script and what happened; ``front_url`` and ``worker_url`` once started."""

    upstream: str
    redirect_hello: bool = True
    redirect_every: int = 1
    """Redirect only every n-th hello that asks for a room (the 1st, n+1-th, …)."""
    redirect_join: bool = True
    refuse_tickets: int = 0
    loop: bool = False
    far_room: str = "far-1"
    later_fields: dict[str, Any] = field(default_factory=dict)
    later_limits: dict[str, int] = field(default_factory=dict)
    front_url: str = ""
    worker_url: str = ""
    front_hellos: list[dict[str, Any]] = field(default_factory=list)
    worker_hellos: list[dict[str, Any]] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)
    worker_requests: list[tuple[str, Headers]] = field(default_factory=list)
    """Path (with query) and headers of every upgrade request the worker took."""
    tickets: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)
    """ticket → (room, game, name) of the seat it holds, until used."""
    _room_hellos: int = 0

    # -- the two endpoints ------------------------------------------------------

    async def front(self, ws: ServerConnection) -> None:
        first = await self._recv_map(ws)
        if first is None:
            return
        if first.get("t") == "hello":
            self.front_hellos.append(first)
            wants_room = first.get("game") is not None or first.get("room") is not None
            if wants_room:
                self._room_hellos += 1
            chosen = (self._room_hellos - 1) % self.redirect_every == 0
            if wants_room and self.redirect_hello and chosen:
                await self._redirect(ws, first, first.get("game"), first.get("room"))
                return
        await self._proxy(ws, first, redirect_join=self.redirect_join)

    async def worker(self, ws: ServerConnection) -> None:
        if ws.request is not None:
            self.worker_requests.append((ws.request.path, ws.request.headers))
        while True:
            hello = await self._recv_map(ws)
            if hello is None:
                return
            if hello.get("t") != "hello" or hello.get("ticket") is None:
                await self._proxy(ws, hello, redirect_join=False)
                return
            self.worker_hellos.append(hello)
            ticket = str(hello["ticket"])
            seat = self.tickets.pop(ticket, None)
            if seat is not None and self.refuse_tickets > 0:
                self.refuse_tickets -= 1
                seat = None
            if seat is None:
                refusal = Error(ErrorCode.BAD_TICKET, "unknown or used ticket", "hello")
                await ws.send(encode(refusal))
                continue  # §5.11: the connection waits for another hello
            room, game, _ = seat
            if self.loop:
                await self._redirect(ws, hello, game, room)
                return
            upstream_hello = {
                "t": "hello",
                "version": hello.get("version", PROTOCOL_VERSION),
                "name": hello.get("name"),
                "game": game,
                "room": room,
            }
            await self._proxy(ws, upstream_hello, redirect_join=False)
            return

    # -- helpers ------------------------------------------------------------------

    async def _recv_map(self, ws: ServerConnection) -> dict[str, Any] | None:
        try:
            frame = await ws.recv()
        except ConnectionClosed:
            return None
        message = msgpack.unpackb(frame, raw=False) if isinstance(frame, bytes) else None
        return message if isinstance(message, dict) else {}

    async def _redirect(
        self, ws: ServerConnection, asked: dict[str, Any], game: Any, room: Any
    ) -> None:
        ticket = secrets.token_urlsafe(16)
        room_name = str(room) if room is not None else self.far_room
        self.tickets[ticket] = (room_name, game, str(asked.get("name")))
        redirect = Redirect(self.worker_url, ticket, room_name, TICKET_TTL_MS)
        self.redirects.append(redirect)
        await ws.send(encode(redirect))
        await ws.aclose(CloseCode.REDIRECTED, f"room {room_name} is on another worker")

    async def _proxy(
        self, ws: ServerConnection, first: dict[str, Any], *, redirect_join: bool
    ) -> None:
        """Pass ``first`` and everything after it to the upstream, and its answers back."""
        async with ws_connect(
            self.upstream, compression=None, max_size=None, proxy=None, open_timeout=5
        ) as up:
            await up.send(msgpack.packb(first))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._downstream, up, ws, nursery.cancel_scope)
                try:
                    async for frame in ws:
                        message = msgpack.unpackb(frame, raw=False)
                        if (
                            redirect_join
                            and isinstance(message, dict)
                            and message.get("t") == "join"
                        ):
                            await self._redirect(
                                ws, message, message.get("game"), message.get("room")
                            )
                            break
                        await up.send(frame)
                except ConnectionClosed:
                    pass
                nursery.cancel_scope.cancel()
            await up.aclose()

    def _later(self, frame: Any) -> Any:
        """``frame`` as a later server might send it (unchanged without ``later_*``)."""
        if not (self.later_fields or self.later_limits) or not isinstance(frame, bytes):
            return frame
        message = msgpack.unpackb(frame, raw=False, strict_map_key=False)
        if message.get("t") == "welcome":
            message["limits"] = {**message["limits"], **self.later_limits}
        return msgpack.packb({**message, **self.later_fields})

    async def _downstream(self, up: Any, ws: ServerConnection, scope: trio.CancelScope) -> None:
        try:
            async for frame in up:
                await ws.send(self._later(frame))
            code, reason = up.close_code or 1000, up.close_reason or ""
        except ConnectionClosed:
            code, reason = up.close_code or 1011, up.close_reason or ""
        await ws.aclose(code, reason)
        scope.cancel()

    async def http(self, ws: ServerConnection, request: Request) -> Response | None:
        """A plain HTTP request (no upgrade): fetched from the upstream, as it answers."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        host, port = self.upstream.removeprefix("ws://").rstrip("/").rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(
                f"GET {request.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = Headers()
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() not in ("connection", "content-length", "transfer-encoding"):
                headers[name] = value.strip()
        headers["Content-Length"] = str(len(body))
        headers["Connection"] = "close"
        return Response(status, lines[0].split(" ", 2)[-1], headers, body)


async def _serve(
    cluster: FakeCluster, handler: Any, port: int, nursery: trio.Nursery, http: bool
) -> str:
    server = await nursery.start(
        lambda task_status: serve(
            handler,
            port,
            host="127.0.0.1",
            compression=None,
            max_size=None,
            ping_interval=None,
            close_timeout=2,
            process_request=cluster.http if http else None,
            task_status=task_status,
        )
    )
    bound = server.listeners[0].socket.getsockname()[1]
    return f"ws://127.0.0.1:{bound}/"


@asynccontextmanager
async def fake_cluster(upstream: str, port: int = 0, **script: Any) -> AsyncIterator[FakeCluster]:
    """Start the front and the worker in front of ``upstream``; stop them on exit."""
    cluster = FakeCluster(upstream, **script)
    async with trio.open_nursery() as nursery:
        cluster.worker_url = await _serve(cluster, cluster.worker, 0, nursery, http=False)
        cluster.front_url = await _serve(cluster, cluster.front, port, nursery, http=True)
        try:
            yield cluster
        finally:
            nursery.cancel_scope.cancel()


async def _main(args: argparse.Namespace) -> None:
    async with fake_cluster(
        args.upstream,
        args.port,
        refuse_tickets=args.refuse_tickets,
        loop=args.loop,
        redirect_every=args.redirect_every,
        redirect_hello=not args.no_redirect_hello,
    ) as cluster:
        print(
            f"fake cluster front at {cluster.front_url} (worker {cluster.worker_url})", flush=True
        )
        await trio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="ws:// URL of a real game server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--refuse-tickets", type=int, default=0)
    parser.add_argument("--loop", action="store_true")
    parser.add_argument("--redirect-every", type=int, default=1)
    parser.add_argument("--no-redirect-hello", action="store_true", help="redirect joins only")
    try:
        trio.run(_main, parser.parse_args())
    except KeyboardInterrupt:
        sys.exit(0)
