"""A worker's link to the cluster's room directory in Redis (the I/O half).

:class:`RedisDirectory` is the :class:`~gameserver.cluster.seating.SeatDirectory`
of a clustered worker. Its tasks, all in the server's nursery:

- one short task per seat request (``CLAIM`` or ``CONSUME``), bounded by
  ``redis_timeout``; the answer goes to the session through ``request.resolve``;
- the heartbeat: every ``heartbeat_interval`` it renews this worker's presence
  and its rooms' records, re-registers rooms whose record was lost (Redis
  restarted or expired them), refills player ids and reads the cluster summary;
- the flusher: seats given back and rooms disposed of, batched.

Redis lost: rooms keep ticking (nothing here is on their path); seat requests
get ``directory_unavailable`` at once while the heartbeat fails; the heartbeat
keeps trying, and when Redis answers again every local room is registered
again with its local player count. The Redis client is ``coredis``, which runs
natively on trio (through anyio) and reconnects by itself.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import socket
from typing import Any

import coredis
import coredis.exceptions
import trio

from ..cluster.directory import (
    CLAIM,
    CONSUME,
    COUNTER_TTL_MS,
    DIRECTORY_DOWN,
    DROP,
    PLAYER_ID_BLOCK,
    REFRESH,
    REGISTER,
    RELEASE,
    TAKE_IDS,
    ClusterSummary,
    Keys,
    SeatOutcome,
    parse_claim,
    parse_consume,
    presence_document,
    summarise,
)
from ..cluster.ids import PlayerIdBlocks
from ..cluster.restarts import ConfigError
from ..cluster.seating import SeatRequest
from ..cluster.worker import WorkerInfo
from ..core import ServerCore
from ..settings import Settings

log = logging.getLogger(__name__)

TICKET_BYTES = 16
"""128 random bits per seat ticket (``secrets.token_urlsafe``: 22 characters)."""

RECORD_HEARTBEATS = 3
"""A worker's presence and room records outlive its last heartbeat by this many intervals."""

REDIS_ERRORS = (coredis.exceptions.RedisError, OSError, trio.TooSlowError)
"""What a lost, slow or restarting Redis raises here."""


class DirectoryUnreachable(ConfigError):
    """Redis did not answer when the worker started (the CLI exits 2 with this, and a
    supervisor stops instead of restarting into the same failure)."""


async def check_redis(settings: Settings) -> str | None:
    """Whether ``settings.redis`` answers a PING within ``redis_timeout``: None, or why not."""
    assert settings.redis is not None
    client: coredis.Redis[str] = coredis.Redis.from_url(
        settings.redis, decode_responses=True, connect_timeout=settings.redis_timeout
    )
    async with client:
        # Caught inside: leaving the client's context turns errors into exception groups.
        try:
            with trio.fail_after(settings.redis_timeout):
                await client.ping()
        except REDIS_ERRORS as exc:
            return f"Redis at {settings.redis} did not answer: {exc or type(exc).__name__}"
    return None


class RedisDirectory:
    """Seats, rooms and player ids through Redis, for one worker."""

    def __init__(self, core: ServerCore, worker: WorkerInfo, nursery: trio.Nursery) -> None:
        settings = core.settings
        assert settings.redis is not None
        self.core = core
        self.worker = worker
        self.keys = Keys(settings.redis_prefix)
        self._nursery = nursery
        self._timeout = settings.redis_timeout
        self._interval = settings.heartbeat_interval
        self._ttl_ms = int(settings.heartbeat_interval * RECORD_HEARTBEATS * 1000)
        self._ticket_ttl_ms = int(settings.ticket_ttl * 1000)
        self.client: coredis.Redis[str] = coredis.Redis.from_url(
            settings.redis,
            decode_responses=True,
            connect_timeout=settings.redis_timeout,
            stream_timeout=settings.redis_timeout,
        )
        self._claim = self.client.register_script(CLAIM)
        self._consume = self.client.register_script(CONSUME)
        self._release = self.client.register_script(RELEASE)
        self._drop = self.client.register_script(DROP)
        self._refresh = self.client.register_script(REFRESH)
        self._register = self.client.register_script(REGISTER)
        self._take_ids = self.client.register_script(TAKE_IDS)
        self.ids = PlayerIdBlocks(PLAYER_ID_BLOCK)
        self.available = False
        """The last exchange with Redis worked; while False, seat requests fail at once."""
        self.summary = ClusterSummary()
        """The cluster as of the last heartbeat."""
        self._freed: collections.Counter[str] = collections.Counter()
        self._dropped: set[str] = set()
        self._flush_wanted = trio.Event()
        self._host = socket.gethostname()
        self._serving = False

    # -- SeatDirectory ----------------------------------------------------------

    def new_player_id(self) -> int:
        if self.ids.wants_block:
            self._flush_wanted.set()  # the flusher fetches a block
        return self.ids.take()

    def request_seat(self, request: SeatRequest) -> None:
        self._nursery.start_soon(self._resolve, request)

    def seat_freed(self, room: str) -> None:
        self._freed[room] += 1
        self._flush_wanted.set()

    def room_disposed(self, room: str) -> None:
        self._freed.pop(room, None)
        self._dropped.add(room)
        self._flush_wanted.set()

    # -- lifecycle ---------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reach Redis, take player ids, announce this worker, then beat until cancelled.

        Raises :class:`DirectoryUnreachable` (before ``started``) if Redis does not answer.
        The client's connection pool lives in this task's context: requests from other
        tasks are valid while it runs.
        """
        async with self.client:
            try:
                with trio.fail_after(self._timeout):
                    await self.client.ping()
                    await self._take_id_block()
                    await self._heartbeat()
            except REDIS_ERRORS as exc:
                failure = f"Redis at {self.core.settings.redis} did not answer: {exc}"
            else:
                failure = ""
            if failure:
                raise DirectoryUnreachable(failure)
            self.available = True
            log.info("worker %s in the directory as %s", self.worker.id, self.worker.url)
            task_status.started()
            self._serving = True
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._beat_forever)
                    nursery.start_soon(self._flush_forever)
            finally:
                self._serving = False

    async def aclose(self) -> None:
        """Leave the directory: drop this worker's rooms and presence (best effort).

        Only while ``serve`` runs (the client's pool lives there); once only.
        """
        if not self._serving:
            return
        self._serving = False
        self.available = False
        rooms = [room.name for room in self.core.rooms]
        with trio.move_on_after(self._timeout):
            try:
                for name in rooms:
                    await self._drop(args=[self.keys.prefix, self.worker.id, name])
                await self.client.delete([self.keys.worker(self.worker.id)])
            except REDIS_ERRORS as exc:
                log.warning("could not leave the directory cleanly: %s", exc)

    # -- seat requests -------------------------------------------------------------

    async def _resolve(self, request: SeatRequest) -> None:
        outcome: SeatOutcome = DIRECTORY_DOWN
        if self.available:
            try:
                with trio.fail_after(self._timeout):
                    outcome = await self._ask(request)
            except REDIS_ERRORS as exc:
                self._lost(exc)
        try:
            request.resolve(outcome, trio.current_time())
        except Exception:
            # The session's own bug: it must cost that client, never the worker.
            log.exception("seat answer for player %d failed", request.player_id)

    async def _ask(self, request: SeatRequest) -> SeatOutcome:
        prefix, worker = self.keys.prefix, self.worker
        reply: Any
        if request.ticket is not None:
            reply = await self._consume(
                args=[prefix, request.ticket, worker.id, request.user, worker.url, self._ttl_ms]
            )
            return parse_consume(reply)
        game = request.game or ""
        seats = self.core.games.seats(game, self.core.settings.max_players_per_room) if game else 0
        reply = await self._claim(
            args=[
                prefix,
                game,
                request.room or "",
                worker.id,
                worker.url,
                seats,
                "1" if request.may_create else "0",
                self._ttl_ms,
                secrets.token_urlsafe(TICKET_BYTES),
                self._ticket_ttl_ms,
                request.player_id,
                request.name,
                request.user,
                COUNTER_TTL_MS,
            ]
        )
        return parse_claim(reply)

    # -- heartbeat -----------------------------------------------------------------

    def _lost(self, exc: BaseException) -> None:
        if self.available:
            log.warning("room directory lost (%s): rooms play on, joins wait for it", exc)
        self.available = False

    async def _beat_forever(self) -> None:
        while True:
            await trio.sleep(self._interval)
            was_available = self.available
            try:
                with trio.fail_after(self._timeout):
                    if not was_available:
                        await self._register_all()
                    await self._heartbeat()
            except REDIS_ERRORS as exc:
                self._lost(exc)
                continue
            if not was_available:
                log.info("room directory back: %d rooms registered again", len(self.core.rooms))
                self._flush_wanted.set()  # rooms disposed of meanwhile
            self.available = True

    async def _heartbeat(self) -> None:
        rooms = list(self.core.rooms)
        players = sum(len(room.seats) for room in rooms)
        document = presence_document(
            self.worker.url, self.worker.index, self._host, os.getpid(), len(rooms), players
        )
        await self.client.set(self.keys.worker(self.worker.id), document, px=self._ttl_ms)
        if rooms:
            lost: Any = await self._refresh(
                args=[self.keys.prefix, self.worker.id, self._ttl_ms, *(r.name for r in rooms)]
            )
            if lost:
                await self._register_all([str(name) for name in lost])
        if self.ids.wants_block:
            await self._take_id_block()
        self.summary = await self._read_summary()

    async def _register_all(self, names: list[str] | None = None) -> None:
        """Write local rooms' records from local counts (after Redis lost them or us)."""
        rooms = [r for r in self.core.rooms if names is None or r.name in names]
        if not rooms:
            return
        args: list[Any] = [self.keys.prefix, self.worker.id, self.worker.url, self._ttl_ms]
        for room in rooms:
            args += [room.name, room.game_name, room.max_players, len(room.seats)]
            self._freed.pop(room.name, None)  # the count below includes those leaves
        taken_over: Any = await self._register(args=args)
        for name in taken_over or ():
            log.warning(
                "room %s: another worker opened a room of that name while the directory "
                "was away; this one plays on but takes no new players",
                name,
            )

    async def _take_id_block(self) -> None:
        last: Any = await self._take_ids(args=[self.keys.prefix, PLAYER_ID_BLOCK, COUNTER_TTL_MS])
        self.ids.add_block(int(last))

    async def _read_summary(self) -> ClusterSummary:
        keys = [key async for key in self.client.scan_iter(match=self.keys.worker_pattern)]
        if not keys:
            return ClusterSummary()
        return summarise(await self.client.mget(keys))

    # -- flusher ---------------------------------------------------------------------

    async def _flush_forever(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted = trio.Event()
            if not self.available:
                continue  # re-registering when Redis is back supersedes these
            freed, self._freed = self._freed, collections.Counter()
            dropped, self._dropped = self._dropped, set()
            try:
                with trio.fail_after(self._timeout):
                    if freed:
                        pairs = [v for room, n in freed.items() for v in (room, n)]
                        await self._release(args=[self.keys.prefix, self.worker.id, *pairs])
                    for name in dropped:
                        await self._drop(args=[self.keys.prefix, self.worker.id, name])
                    if self.ids.wants_block:
                        await self._take_id_block()
            except REDIS_ERRORS as exc:
                self._lost(exc)
                self._dropped |= dropped  # a lost room record expires anyway; try again
