"""A worker's link to the cluster's room directory in Redis (the I/O half).

:class:`RedisDirectory` is the :class:`~gameserver.cluster.seating.SeatDirectory`
of a clustered worker. Its tasks, all under :meth:`RedisDirectory.serve`:

- one short task per seat request (``CLAIM`` or ``CONSUME``), bounded by
  ``redis_timeout``; the answer goes to the session through ``request.resolve``;
- the heartbeat, on a fixed grid of ``heartbeat_interval``: one ``REFRESH``
  renews this worker's presence and its rooms' records, sets their seat counts
  from the local ones, raises the counters; rooms whose record was lost (Redis
  restarted, or a stall let them expire) are registered again; then, apart
  from that liveness check, player ids are refilled and the cluster summary read;
- the flusher: seats given back and rooms disposed of, batched.

Redis lost: rooms keep ticking (nothing here is on their path); seat requests
get ``directory_unavailable`` at once while the heartbeat fails; the heartbeat
keeps trying, backing off up to :data:`MAX_RETRY_INTERVAL`, and when Redis
answers again every local room is registered again with its local count. The
Redis client is ``coredis``, which runs natively on trio (through anyio) and
reconnects by itself; its connection pool lives in :meth:`serve`'s context.
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
    DIRECTORY_DOWN,
    LEAVE,
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
    redacted,
    summarise,
)
from ..cluster.ids import PlayerIdBlocks
from ..cluster.seating import SeatRequest
from ..cluster.worker import WorkerInfo
from ..config import ConfigError
from ..core import ServerCore
from ..settings import Settings

log = logging.getLogger(__name__)

TICKET_BYTES = 16
"""128 random bits per seat ticket (``secrets.token_urlsafe``: 22 characters)."""

RECORD_HEARTBEATS = 3
"""A worker's presence and room records outlive its last heartbeat by this many
intervals: a dead worker's rooms leave the directory within three heartbeats. (Beats
are on a fixed grid, so one slow beat does not push the next ones later.)"""

MAX_RETRY_INTERVAL = 5.0
"""Longest wait between two tries while Redis is away (the heartbeat backs off to it)."""

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
            why = str(exc) or type(exc).__name__
            return f"Redis at {redacted(settings.redis)} did not answer: {why}"
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
        self._leave = self.client.register_script(LEAVE)
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
        self._in_flight = 0
        """Seat requests sent and not yet answered: a heartbeat then leaves counts alone."""
        self._warned_taken_over: set[str] = set()
        self._host = socket.gethostname()
        self._serving = False
        self._beat_scope = trio.CancelScope()
        self._left = trio.Event()

    def _args(self, *args: Any) -> list[Any]:
        """A script's arguments: every script starts with the prefix and the records' TTL."""
        return [self.keys.prefix, self._ttl_ms, *args]

    # -- SeatDirectory ----------------------------------------------------------

    @property
    def url(self) -> str:
        return self.worker.url

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
        """Reach Redis, take player ids, announce this worker, then beat until
        :meth:`aclose` (which leaves the directory) or cancellation (which does not).

        Raises :class:`DirectoryUnreachable` (before ``started``) if Redis does not answer.
        """
        async with self.client:
            try:
                with trio.fail_after(self._timeout):
                    await self.client.ping()
                    await self._take_id_block()
                    await self._heartbeat()
                    self.summary = await self._read_summary()  # /healthz from the start
            except REDIS_ERRORS as exc:
                url = redacted(self.core.settings.redis or "")
                failure = f"Redis at {url} did not answer: {exc or type(exc).__name__}"
            else:
                failure = ""
            if failure:
                raise DirectoryUnreachable(failure)
            self.available = True
            log.info("worker %s in the directory as %s", self.worker.id, self.worker.url)
            task_status.started()
            self._serving = True
            try:
                with self._beat_scope:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._beat_forever)
                        nursery.start_soon(self._flush_forever)
                await self._leave_directory()  # aclose stopped the beat: still connected here
            finally:
                self._serving = False
                self._left.set()

    async def aclose(self) -> None:
        """Stop beating and leave the directory: this worker's rooms and presence go."""
        if not self._serving:
            return
        self._beat_scope.cancel()
        with trio.move_on_after(self._timeout + 1):
            await self._left.wait()

    async def _leave_directory(self) -> None:
        self.available = False
        rooms = [room.name for room in self.core.rooms]
        with trio.move_on_after(self._timeout):
            try:
                await self._leave(args=self._args(self.worker.id, *rooms))
                await self.client.delete([self.keys.worker(self.worker.id)])
                await self.client.zrem(self.keys.workers, [self.worker.id])
            except REDIS_ERRORS as exc:
                log.warning("could not leave the directory cleanly: %s", exc)

    # -- seat requests -------------------------------------------------------------

    async def _resolve(self, request: SeatRequest) -> None:
        outcome: SeatOutcome = DIRECTORY_DOWN
        if self.available:
            self._in_flight += 1
            try:
                with trio.fail_after(self._timeout):
                    outcome = await self._ask(request)
            except REDIS_ERRORS as exc:
                self._lost(exc)
            except Exception:
                # A reply this code cannot read: that request fails, the worker goes on.
                log.exception("directory request for player %d failed", request.player_id)
            finally:
                self._in_flight -= 1
        try:
            request.resolve(outcome, trio.current_time())
        except Exception:
            # The session's own bug: it must cost that client, never the worker.
            log.exception("seat answer for player %d failed", request.player_id)

    async def _ask(self, request: SeatRequest) -> SeatOutcome:
        worker = self.worker
        reply: Any
        if request.ticket is not None:
            reply = await self._consume(
                args=self._args(
                    request.ticket, worker.id, request.user, worker.url, request.room or ""
                )
            )
            return parse_consume(reply)
        game = request.game or ""
        seats = self.core.games.seats(game, self.core.settings.max_players_per_room) if game else 0
        reply = await self._claim(
            args=self._args(
                game,
                request.room or "",
                worker.id,
                worker.url,
                seats,
                "1" if request.may_create else "0",
                secrets.token_urlsafe(TICKET_BYTES),
                self._ticket_ttl_ms,
                request.player_id,
                request.name,
                request.user,
                "1" if request.spectate else "0",
            )
        )
        return parse_claim(reply)

    # -- heartbeat -----------------------------------------------------------------

    def _lost(self, exc: BaseException) -> None:
        if self.available:
            log.warning(
                "room directory lost (%s): rooms play on, joins wait for it",
                exc or type(exc).__name__,
            )
        self.available = False

    async def _beat_forever(self) -> None:
        failures = 0
        next_beat = trio.current_time()
        while True:
            # A fixed grid: a slow beat does not push the next ones later.
            delay = self._interval if not failures else self._retry_delay(failures)
            next_beat = max(next_beat + delay, trio.current_time())
            await trio.sleep_until(next_beat)
            was_available = self.available
            try:
                with trio.fail_after(self._timeout):
                    if not was_available:
                        await self._register_rooms()
                    await self._heartbeat()
            except REDIS_ERRORS as exc:
                self._lost(exc)
                failures += 1
                continue
            failures = 0
            if not was_available:
                log.info("room directory back: %d rooms registered again", len(self.core.rooms))
                self._flush_wanted.set()  # rooms disposed of meanwhile
            self.available = True
            await self._housekeeping()

    def _retry_delay(self, failures: int) -> float:
        backoff = self._interval * float(2 ** min(failures, 10))
        return min(backoff, max(MAX_RETRY_INTERVAL, self._interval))

    async def _heartbeat(self) -> None:
        """Presence and rooms renewed, seat counts set from ours: the liveness check."""
        rooms = list(self.core.rooms)
        players = sum(len(room.seats) for room in rooms)
        document = presence_document(
            self.worker.url, self.worker.index, self._host, os.getpid(), len(rooms), players
        )
        counts = [v for room in rooms for v in (room.name, len(room.seats))]
        reconcile = "1" if self._in_flight == 0 else "0"
        if reconcile == "1":
            self._freed.clear()  # the counts sent here include those leaves
        lost: Any = await self._refresh(
            args=self._args(self.worker.id, document, self.ids.highest, reconcile, *counts)
        )
        if lost:
            await self._register_rooms({str(name) for name in lost})

    async def _housekeeping(self) -> None:
        """Ids and the cluster summary: needed, but not what says this worker is alive."""
        with trio.move_on_after(self._timeout):
            try:
                if self.ids.wants_block:
                    await self._take_id_block()
                self.summary = await self._read_summary()
            except REDIS_ERRORS as exc:
                log.info("cluster summary not read: %s", exc or type(exc).__name__)

    async def _register_rooms(self, names: set[str] | None = None) -> None:
        """Write local rooms' records from local counts (after Redis lost them or us)."""
        rooms = [r for r in self.core.rooms if names is None or r.name in names]
        if not rooms:
            return
        args = self._args(self.worker.id, self.worker.url)
        for room in rooms:
            matchmade = "1" if self.core.rooms.matchmade(room) else "0"
            args += [room.name, room.game_name, room.max_players, len(room.seats), matchmade]
            self._freed.pop(room.name, None)  # the count below includes those leaves
        taken_over: Any = await self._register(args=args)
        for name in taken_over or ():
            if name in self._warned_taken_over:
                continue
            self._warned_taken_over.add(name)
            log.warning(
                "room %s: another worker opened a room of that name while the directory "
                "was away; this one plays on but takes no new players",
                name,
            )

    async def _take_id_block(self) -> None:
        last: Any = await self._take_ids(args=self._args(PLAYER_ID_BLOCK, self.ids.highest))
        self.ids.add_block(int(last))

    async def _read_summary(self) -> ClusterSummary:
        # Workers whose presence expired may still be listed: their MGET is None, skipped.
        ids: Any = await self.client.zrange(self.keys.workers, 0, -1)
        if not ids:
            return ClusterSummary()
        return summarise(await self.client.mget([self.keys.worker(str(w)) for w in ids]))

    # -- flusher ---------------------------------------------------------------------

    async def _flush_forever(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted = trio.Event()
            if not self.available:
                continue  # re-registering when Redis is back supersedes these
            freed, self._freed = self._freed, collections.Counter()
            # A name disposed of and opened again here since: not to be dropped.
            dropped = {name for name in self._dropped if self.core.rooms.get(name) is None}
            self._dropped = set()
            try:
                with trio.fail_after(self._timeout):
                    if freed:
                        pairs = [v for room, n in freed.items() for v in (room, n)]
                        await self._release(args=self._args(self.worker.id, *pairs))
                    if dropped:
                        await self._leave(args=self._args(self.worker.id, *dropped))
                    if self.ids.wants_block:
                        await self._take_id_block()
            except REDIS_ERRORS as exc:
                self._lost(exc)
                self._dropped |= dropped  # a lost room record expires anyway; try again
