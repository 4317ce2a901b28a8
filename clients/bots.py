"""Headless bots that play the arena like people do, and measure what they see.

A :class:`Bot` connects (TCP + WebSocket), says hello and takes a seat in one
step (``hello`` with ``game``, and ``room`` when rooms are assigned), then sends
an input at ``input_rate`` Hz with increasing sequence numbers (a direction that
changes every second or two), chats now and then, and answers pings. A few bots
leave and rejoin once during the run (``churn``): half with ``leave`` + ``join``
on the same connection, half by reconnecting. A *slow* bot plays normally until
its ``slow_at`` time, then stops reading and sending altogether (a frozen
client) and at the end finds out whether the server dropped it. A bot with
``drops`` cuts its TCP connection at those times and resumes its seat with its
token at once (``clients/loadtest/drops.py``).

A worker process runs hundreds of bots, on the same cores as the server it
measures, so bots own no tasks while they play: the worker's
:class:`~gameserver.trio.poller.ReadPoller` reads every bot's socket and calls
the bot per message, and one pacer (a :class:`~gameserver.trio.timers.TimerWheel`)
fires every bot's inputs. Without them (``wss://``) a bot reads and writes in
tasks of its own.

What each bot measures (connect and join times, snapshot lateness, jitter and
RTTs, counters, per-bot traffic) goes into the worker's shared
:class:`~clients.loadtest.metrics.Metrics`: see :mod:`clients.loadtest.measures`.
Its settings, plan and the run's timeline are :mod:`clients.loadtest.plan`'s.

Delta snapshots (PROTOCOL.md §5.6, ``deltas``, on by default): hello asks for them
and a bot acknowledges every snapshot it gets, as a client that applies them
must: the input due within a snapshot interval carries it as ``input.ack``, else
an ``ack`` goes at once (``ack_every_snapshot=False``: inputs' acks only). Acks
are what make the server send deltas, so lean bots ack too. Bots apply deltas only
where they decode states at all (``fast_decode=False``, through
:class:`~clients.python.client.GameClient`); the fast and lean paths skip the
state, delta or full, as before.

Snapshots are decoded on a fast path by default: the envelope fields are read
and the game state is skipped, not decoded (the full decode of a 50-player state
with validation costs ~60 µs, the fast path ~3 µs, and the bots share the
machine with the server). ``fast_decode=False`` decodes and validates it all.
*Lean* bots (``lean=True``) read only a snapshot's id, tick and ack from its
first bytes, and record no per-snapshot histogram: they count snapshots
received, expected and on time (lateness is still computed, not recorded),
record ``rtt_bot`` (per input, not per snapshot), and skip ``lateness``,
``interarrival``, ``jitter`` and ``rtt_server``.
"""

from __future__ import annotations

import math
import random

import trio
from websockets.exceptions import ConnectionClosed, InvalidStatus

from clients.inputs import InputSchedule
from clients.loadtest.drops import ResumeState
from clients.loadtest.measures import BotMeasures
from clients.loadtest.metrics import Metrics
from clients.loadtest.plan import STOP_MARGIN, BotPlan, BotSettings, Timeline
from clients.loadtest.transport import (
    SNAPSHOT_PREFIX,
    BotClient,
    close_code,
    failure_kind,
    open_bot_client,
    parse_snapshot_envelope,
)
from clients.python.errors import ServerRefused
from gameserver.trio.poller import ReadPoller
from gameserver.trio.timers import TimerWheel
from protocol import (
    Ack,
    Chat,
    Error,
    Event,
    Join,
    Joined,
    Leave,
    Left,
    Redirect,
    ServerMessage,
    Snapshot,
    Welcome,
)

__all__ = [
    "SNAPSHOT_PREFIX",
    "STOP_MARGIN",
    "Bot",
    "BotClient",
    "BotPlan",
    "BotSettings",
    "Timeline",
    "open_bot_client",
    "parse_snapshot_envelope",
]


class Bot:
    """One simulated player. ``await bot.run()`` plays until the timeline's stop."""

    def __init__(
        self,
        plan: BotPlan,
        settings: BotSettings,
        timeline: Timeline,
        metrics: Metrics,
        rng: random.Random,
        poller: ReadPoller | None = None,
        pacer: TimerWheel | None = None,
    ) -> None:
        self.plan = plan
        self.poller = poller
        """Reads every bot's socket of this process from one task (else a reader task each)."""
        self.pacer = pacer
        """Fires every polled bot's inputs from one task (else an input task each)."""
        self.timer_due = math.inf
        self._paced: BotClient | None = None
        self._paced_nursery: trio.Nursery | None = None
        self._flushing = False
        self._inputs = InputSchedule(rng, settings.input_rate, settings.chat_interval, plan.name)
        self.settings = settings
        self.timeline = timeline
        self.metrics = metrics
        self.rng = rng
        self.connected = False
        self.in_room = False
        self.joined_once = False
        self.measures = BotMeasures(
            metrics, timeline, frozen=plan.slow_at is not None, lean=settings.lean
        )
        self._outcome = "done"
        self._churned = False
        self._froze = False
        self._left = trio.Event()
        self._joined = trio.Event()
        self._redirect: Redirect | None = None
        """A redirect that answered a rejoin's ``join``, until followed."""
        self._join_sent_at = 0.0
        self._resume = ResumeState()

    # -- the bot's life ------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            self.measures.record_traffic()

    async def _run(self) -> None:
        await trio.sleep_until(self.plan.start_at)
        failures = 0
        while trio.current_time() < self.timeline.window_end:  # no new connection after it
            try:
                outcome = await self._connection()
            except Exception as exc:  # a bot's bug must not stop the others
                self.metrics.error("exceptions", type(exc).__name__)
                outcome = "failed"
            if outcome == "done":
                return
            if outcome == "failed":
                failures += 1
                if failures >= self.settings.max_attempts:
                    self.metrics.count("bots_gave_up")
                    return
                await trio.sleep(min(5.0, 0.5 * 2**failures) * self.rng.uniform(0.5, 1.0))
            elif outcome == "resume":  # cut on purpose: straight back, token in hand
                failures = 0
            else:  # "reconnect": churn or dropped by the server
                failures = 0
                await trio.sleep(self.rng.uniform(0.5, 1.5))

    async def _connection(self) -> str:
        """One connection: open, hello + seat, play. Returns done / failed / reconnect."""
        m, s = self.metrics, self.settings
        m.count("connect_attempts")
        started = trio.current_time()
        rcvbuf = s.slow_rcvbuf if self.plan.slow_at is not None else 0
        stage = "connect"
        try:
            # A resume goes to the worker holding the seat (in a cluster, maybe not s.url).
            url = (self._resume.url if self._resume.token else None) or s.url
            async with open_bot_client(
                url,
                m,
                open_timeout=s.open_timeout,
                fast_decode=s.fast_decode,
                rcvbuf=rcvbuf,
                lean=s.lean,
                traffic=self.measures.traffic,
                deltas=s.deltas,
            ) as client:
                opened = trio.current_time()
                m.record("connect", opened - started)
                self.connected = True
                stage = "join"
                hops = client.redirects
                token = self._resume.take_token()
                with trio.fail_after(s.open_timeout):
                    welcome = await client.hello(
                        self.plan.name, s.game, self.plan.room, resume=token
                    )
                    self._resume.after_welcome(welcome, token, m)
                    if welcome.room is None:
                        return await self._join_refused(client)
                self.measures.joined(trio.current_time() - opened, client.redirects - hops)
                if not self.joined_once:
                    self.joined_once = True
                    m.count("bots_joined")
                stage = "play"
                outcome = await self._play(client, welcome)
                while outcome == "redirected":  # a rejoin's join went to another worker
                    redirect, self._redirect = self._redirect, None
                    assert redirect is not None
                    stage, hops = "join", client.redirects
                    with trio.fail_after(s.open_timeout):
                        await client.follow_join(redirect, s.game, self.plan.room)
                    assert client.welcome is not None
                    self.measures.joined(
                        trio.current_time() - self._join_sent_at, client.redirects - hops
                    )
                    stage = "play"
                    outcome = await self._play(client, client.welcome)
                return outcome
        except (ConnectionClosed, OSError, InvalidStatus, TimeoutError, trio.TooSlowError) as exc:
            if stage == "play":
                # Closed while the bot was closing or rejoining: not a connect failure.
                if isinstance(exc, ConnectionClosed):
                    m.error("close_codes", str(close_code(exc)))
                else:
                    m.error("exceptions", type(exc).__name__)
                return "reconnect"
            m.count("connect_failures")
            m.error("connect_failures", failure_kind(exc))
            if stage == "connect" and url != s.url:
                # The worker holding the seat is gone: resume through the bots' URL
                # (at worst resume_failed and a fresh seat); the token is still held.
                self._resume.url = None
            return "failed"
        except ServerRefused as exc:
            m.count("connect_failures")
            m.error("connect_failures", failure_kind(exc))
            return "failed"
        finally:
            self.connected = False
            self._leave_room()

    async def _join_refused(self, client: BotClient) -> str:
        """Welcome came without a room: the error that follows says why."""
        kind = "join_refused"
        with trio.move_on_after(2.0):
            while True:
                message = await client.recv()
                if isinstance(message, Error):
                    kind = f"refused_{message.code}"
                    break
        self.metrics.count("connect_failures")
        self.metrics.error("connect_failures", kind)
        return "failed"

    async def _play(self, client: BotClient, welcome: Welcome) -> str:
        measures = self.measures
        measures.tick_rate, measures.snapshot_rate = welcome.tick_rate, welcome.snapshot_rate
        self._outcome = "done"
        self._enter_room()
        plan = self.plan
        with trio.move_on_at(plan.slow_at if plan.slow_at is not None else self.timeline.stop_at):
            try:
                async with trio.open_nursery() as nursery:
                    scope = nursery.cancel_scope

                    def on_end(exc: BaseException) -> None:
                        self._connection_ended(exc, scope)

                    def on_message(message: ServerMessage) -> None:
                        ack = self._on_message(message, client)
                        if ack is not None:
                            client.send_nowait(ack)

                    polled = self.poller is not None and client.start_reading(
                        self.poller, on_message, on_end
                    )
                    if not polled:
                        nursery.start_soon(self._reader, client, scope)
                    if polled and self.pacer is not None:
                        self._start_pacing(client, nursery)
                    else:
                        nursery.start_soon(self._writer, client)
                    if plan.churn_at is not None and plan.slow_at is None and not self._churned:
                        nursery.start_soon(self._churn, client, plan.churn_at, scope)
                    if self._resume.next_drop < len(plan.drops) and client.can_cut:
                        nursery.start_soon(self._cut, client, scope)
                    try:
                        await trio.sleep_forever()  # until the connection ends, a churn or the stop
                    finally:
                        self._stop_pacing()  # while the nursery still takes a flush task
            finally:
                self._stop_pacing()
                client.stop_reading()
        self._leave_room()
        if plan.slow_at is not None and self._outcome == "done":
            await self._frozen(client)
        return self._outcome

    async def _frozen(self, client: BotClient) -> None:
        """Read nothing, send nothing until the stop; then see whether the server dropped us."""
        if not self._froze:
            self._froze = True
            self.metrics.count("slow_bots")
        await trio.sleep_until(self.timeline.stop_at)
        with trio.move_on_after(2.0):
            try:
                while True:
                    await client.ws.recv()
            except ConnectionClosed as exc:
                self.metrics.count("slow_bots_dropped")
                self.metrics.error("close_codes", f"slow_{close_code(exc)}")

    async def _churn(self, client: BotClient, at: float, scope: trio.CancelScope) -> None:
        await trio.sleep_until(at)
        self._churned = True
        self.metrics.count("rejoins")
        if self.plan.churn_reconnect:
            self._outcome = "reconnect"
            scope.cancel()
            return
        try:
            if await self._leave_and_join(client):
                self._outcome = "redirected"  # _connection follows it
                scope.cancel()
        except (ConnectionClosed, trio.TooSlowError) as exc:
            self.metrics.error("exceptions", f"rejoin_{type(exc).__name__}")
            self._outcome = "reconnect"
            scope.cancel()

    async def _cut(self, client: BotClient, scope: trio.CancelScope) -> None:
        """At the next drop time, cut the connection; run() then resumes at once."""
        state = self._resume
        await trio.sleep_until(self.plan.drops[state.next_drop])
        state.next_drop += 1
        state.token, state.dropped_at = client.resume_token, trio.current_time()
        state.url = client.resume_url
        if self.metrics.recording:
            self.metrics.count("drops")
        self._outcome = "resume"
        self._stop_pacing()
        client.cut()
        scope.cancel()

    async def _leave_and_join(self, client: BotClient) -> bool:
        """Leave, wait, join again: True when the join was answered with a redirect."""
        self._leave_room()
        self._left = trio.Event()
        await client.send(Leave())
        with trio.fail_after(self.settings.open_timeout):
            await self._left.wait()
        await trio.sleep(self.rng.uniform(0.5, 1.5))
        self._joined = trio.Event()
        self._join_sent_at = sent = trio.current_time()
        await client.send(Join(self.settings.game, self.plan.room))
        with trio.fail_after(self.settings.open_timeout):
            await self._joined.wait()
        if self._redirect is not None:
            return True
        self.measures.joined(trio.current_time() - sent, 0)
        self._enter_room()
        return False

    # -- the two loops -------------------------------------------------------

    async def _reader(self, client: BotClient, scope: trio.CancelScope) -> None:
        """Read in a task of its own (when there is no poller, or for ``wss://``)."""
        try:
            while self._redirect is None:  # after a redirect, only its close 4005 follows
                ack = self._on_message(await client.recv(), client)
                if ack is not None:
                    await client.send(ack)
        except Exception as exc:
            self._connection_ended(exc, scope)

    def _on_message(self, message: ServerMessage, client: BotClient) -> Ack | None:
        """Handle a message; the ``ack`` to send for it, if one is due."""
        m = self.metrics
        if isinstance(message, Snapshot):
            if self.in_room:
                now = trio.current_time()
                self.measures.snapshot(message, client.pings_answered, now)
                interval = 1.0 / self.measures.snapshot_rate
                ack = (
                    client.ack_due(message.id, self._inputs.next_at - now, interval)
                    if self.settings.ack_every_snapshot
                    else None
                )
                if ack is not None and m.recording:
                    m.count("acks_sent")
                return ack
        elif isinstance(message, Event):
            if message.kind == "chat" and m.recording:
                m.count("chats_received")
        elif isinstance(message, Error):
            m.error("server_errors", message.code)
        elif isinstance(message, Left):
            self._left.set()
        elif isinstance(message, Joined):
            self._joined.set()
        elif isinstance(message, Redirect):
            # The rejoin's room is on another worker: stop reading this connection
            # (its close 4005 is no drop) and let the rejoin follow the redirect.
            self._redirect = message
            client.stop_reading()
            self._joined.set()
        return None

    def _connection_ended(self, exc: BaseException, scope: trio.CancelScope) -> None:
        """Reading ended: closed by the server, or a bug while handling a message."""
        m = self.metrics
        if isinstance(exc, ConnectionClosed):
            m.error("close_codes", str(close_code(exc)))
            m.count("dropped")
        else:
            m.error("exceptions", type(exc).__name__)
        self._outcome = "reconnect"
        self._stop_pacing()
        scope.cancel()

    def _due(self, client: BotClient, now: float) -> tuple[dict[str, float] | None, str | None]:
        """The input (and chat line) due at ``now``, if seated, counted in the metrics."""
        data, chat, missed = self._inputs.due(now, self.in_room)
        self.measures.inputs_due(client.next_seq, now, data is not None, chat is not None, missed)
        return data, chat

    async def _writer(self, client: BotClient) -> None:
        """Inputs from a task of this bot's own (when there is no shared pacer)."""
        self._inputs.start(trio.current_time())
        try:
            while True:
                await trio.sleep_until(self._inputs.next_at)
                data, chat = self._due(client, trio.current_time())
                if data is not None:
                    await client.send_input(data)
                if chat is not None:
                    await client.chat(chat)
        except ConnectionClosed:
            return  # the reader sees the close and ends the connection

    def _start_pacing(self, client: BotClient, nursery: trio.Nursery) -> None:
        assert self.pacer is not None
        self._inputs.start(trio.current_time())
        self._paced, self._paced_nursery = client, nursery
        self.pacer.schedule(self, self._inputs.next_at)

    def _stop_pacing(self) -> None:
        if self._paced is not None and self.pacer is not None:
            self._paced = self._paced_nursery = None
            self.pacer.schedule(self, math.inf)
        self._flushing = False

    def on_timer_due(self, now: float) -> None:
        """The shared pacer says an input is due: send it now, without a task of our own."""
        client = self._paced
        if client is None or self.pacer is None:
            return
        data, chat = self._due(client, now)
        try:
            if data is not None:
                client.send_input_nowait(data)
            if chat is not None:
                client.send_nowait(Chat(chat))
        except ConnectionClosed:
            self._paced = None  # the reader sees the close and ends the connection
            return
        if client.backlogged and not self._flushing and self._paced_nursery is not None:
            # The kernel did not take it all (a server that stopped reading): a task
            # of this connection's writes the rest, in order.
            self._paced_nursery.start_soon(self._flush, client)
            self._flushing = True
        self.pacer.schedule(self, self._inputs.next_at)

    async def _flush(self, client: BotClient) -> None:
        try:
            await client.flush()
        finally:
            self._flushing = False

    # -- bookkeeping -------------------------------------------------------------

    def _enter_room(self) -> None:
        self.in_room = True
        self.measures.entered(trio.current_time())

    def _leave_room(self) -> None:
        if self.in_room:
            self.in_room = False
            self.measures.left(trio.current_time())
