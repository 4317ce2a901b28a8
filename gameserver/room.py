"""One room: its seats, their input queues, and one tick of game + snapshots.

Sans-I/O: ``tick(n, now)`` is a plain call the trio ticker makes on schedule;
it never waits on a client. Snapshots go into each member's latest-wins slot,
events into their reliable queue. The game state is encoded once per audience
(``Game.view_key``) and spliced into each member's snapshot envelope.

A seat may outlive its connection: ``hold`` puts a stand-in member in it (the
keeper in ``seats.py`` decides when, and when the hold ends); ``resume`` puts
the player's new connection there. Spectators watch without a seat.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

from protocol import (
    CloseCode,
    ErrorCode,
    Event,
    Joined,
    PackedState,
    PlayerInfo,
    RoomInfo,
    encode,
    pack_state,
)

from .deltas import BASE_GRID_TICKS, AudienceState, DeltaStats
from .game import Game, Player
from .settings import Settings
from .tick import TickStats

log = logging.getLogger(__name__)


class RoomMember(Protocol):
    """What a room needs from a connected player (implemented by ``Session``)."""

    @property
    def player(self) -> Player: ...

    def deliver(self, frame: bytes) -> None:
        """Queue a reliable frame to this player."""

    def deliver_snapshot(
        self, tick: int, ack: int | None, state: PackedState, audience: AudienceState | None = None
    ) -> None:
        """Wrap ``state`` in this player's snapshot envelope and put it in the slot.

        ``audience``: the same state as an :class:`AudienceState`, for a member that
        may send a delta from its base instead.
        """

    def kick(self, code: int, reason: str) -> None:
        """Close this player's connection (the session then leaves the room)."""


class Watcher(RoomMember, Protocol):
    """A spectator: a member without a seat, told when the room goes away."""

    def room_ended(self, room: Room) -> None:
        """The room was disposed while watched: back to the lobby."""


@dataclass(slots=True)
class Seat:
    """A member's place in the room and their pending inputs."""

    member: RoomMember
    inputs: deque[tuple[int, Any, int | None]] = field(default_factory=deque)
    """(seq, command, tick): waiting, in seq order, for the next tick or for ``tick``."""
    last_seq: int | None = None
    """Newest ``seq`` accepted into the queue."""
    applied_seq: int | None = None
    """Newest ``seq`` applied by the game: the ``ack`` in this player's snapshots."""
    ignored_inputs: int = 0


class Room:
    """A named room running one game instance."""

    def __init__(
        self,
        name: str,
        game_name: str,
        game: Game,
        *,
        max_players: int,
        settings: Settings,
        now: float,
    ) -> None:
        self.name = name
        self.game_name = game_name
        self.game = game
        self.max_players = max_players
        self._settings = settings
        self.seats: dict[int, Seat] = {}
        self.spectators: dict[int, Watcher] = {}
        self.tick_no = 0
        self.tick_phase = 0.0
        """When in the tick period this room ticks: a fraction of a tick, set by the registry."""
        self.closed = False
        self.empty_since: float | None = now
        self._created_at = now
        self._snapshot_rate = settings.snapshot_rate
        self._tick_rate = settings.tick_rate
        self.inputs_ignored = 0
        """Inputs whose seq went backwards or jumped too far, over the room's life."""
        self.tick_stats: TickStats | None = None
        """Set by the ticker that runs this room."""
        self.delta_stats = DeltaStats()
        self._acks_spread = False

    # -- membership -------------------------------------------------------

    @property
    def full(self) -> bool:
        return len(self.seats) >= self.max_players

    def room_info(self) -> RoomInfo:
        return RoomInfo(
            name=self.name,
            game=self.game_name,
            max_players=self.max_players,
            players=tuple(
                PlayerInfo(s.member.player.id, s.member.player.name) for s in self.seats.values()
            ),
            info=self.game.info(),
            spectators=len(self.spectators),
            away=tuple(pid for pid, s in self.seats.items() if not s.member.player.connected),
            delta=self.game.delta_format,
        )

    def add(self, member: RoomMember) -> RoomInfo:
        """Seat ``member``; return the RoomInfo to send them. Game errors propagate."""
        player = member.player
        self.game.on_join(player)
        self.seats[player.id] = Seat(member)
        try:
            info = self.room_info()
            encode(Joined(info))  # a game's info() that msgpack cannot hold fails here
        except Exception:
            # Undo the seat: the caller closes this player 1011 and nothing may linger.
            del self.seats[player.id]
            try:
                self.game.on_leave(player)
            finally:
                if not self.seats and self.empty_since is None:
                    self.empty_since = self._created_at
            raise
        self.empty_since = None
        return info

    def announce_join(self, player: Player) -> None:
        """Tell everyone, the newcomer included, that ``player`` joined."""
        self.broadcast(Event("join", player.id, player.name, tick=self.tick_no))

    def remove(self, player_id: int, now: float) -> None:
        """Free a seat and tell the others. Safe to call for a player not seated."""
        seat = self.seats.pop(player_id, None)
        if seat is None:
            return
        player = seat.member.player
        if not self.seats:
            self.empty_since = now
        if self.closed:
            return
        try:
            self.game.on_leave(player)
        except Exception:
            # The player is gone either way; a broken on_leave is the room's bug.
            log.exception("room %s: game.on_leave failed", self.name)
            self.fail("game error in on_leave")
            return
        self.broadcast(Event("leave", player.id, player.name, tick=self.tick_no))

    def broadcast(self, event: Event, *, presence: bool = False) -> None:
        """Encode ``event`` once and queue it to every member and spectator.

        ``presence``: an ``away``/``back`` event, only for those who asked for them
        (``hello.presence``): a client of the first v1 text knows no such kinds.
        """
        frame = encode(event)
        for member in [s.member for s in self.seats.values()] + list(self.spectators.values()):
            if not presence or getattr(member, "wants_presence", False):
                member.deliver(frame)

    # -- held seats and spectators ------------------------------------------------

    def hold(self, player_id: int, stand_in: RoomMember) -> bool:
        """The player's connection dropped: ``stand_in`` keeps the seat; others learn it.

        False if there is no such seat or the game failed in ``on_disconnect`` (the
        room is then failed, as for ``on_leave``).
        """
        seat = self.seats.get(player_id)
        if seat is None or self.closed:
            return False
        player = seat.member.player
        seat.member = stand_in
        seat.inputs.clear()  # sent before the drop: none is applied while away
        seat.last_seq = seat.applied_seq  # so a resumed client may go on from snapshot.ack + 1
        player.connected = False
        try:
            self.game.on_disconnect(player)
        except Exception:
            log.exception("room %s: game.on_disconnect failed", self.name)
            self.fail("game error in on_disconnect")
            return False
        self.broadcast(Event("away", player.id, player.name, tick=self.tick_no), presence=True)
        return True

    def resume(self, player_id: int, member: RoomMember) -> RoomInfo | None:
        """Put ``member`` (the player's new connection) in their seat; the RoomInfo to send.

        None if the seat is gone. A seat still held by a live member (a half-open
        connection being replaced) just changes hands. Call ``announce_back`` after
        the welcome. Game errors in ``on_resume`` propagate (the caller closes 1011).
        """
        seat = self.seats.get(player_id)
        if seat is None or self.closed:
            return None
        seat.member = member
        player = member.player
        if not player.connected:
            player.connected = True
            self.game.on_resume(player)
        return self.room_info()

    def announce_back(self, player: Player) -> None:
        """Tell those who follow presence that ``player`` is back."""
        self.broadcast(Event("back", player.id, player.name, tick=self.tick_no), presence=True)

    def add_spectator(self, member: Watcher) -> RoomInfo:
        """Let ``member`` watch (the caller checks the cap); the RoomInfo to send them."""
        member.player.spectator = True
        self.spectators[member.player.id] = member
        return self.room_info()

    def remove_spectator(self, player_id: int) -> None:
        member = self.spectators.pop(player_id, None)
        if member is not None:
            member.player.spectator = False

    def end_watching(self) -> None:
        """The room is being disposed: every spectator goes back to the lobby."""
        for member in list(self.spectators.values()):
            self.remove_spectator(member.player.id)
            member.room_ended(self)

    # -- inputs -------------------------------------------------------------

    def queue_input(
        self, player_id: int, seq: int, command: Any, tick: int | None = None
    ) -> ErrorCode | None:
        """Hold a validated input for the next tick (or ``tick``); an error code if refused.

        A ``seq`` that does not increase, or jumps too far, is ignored and
        counted without an error (it is a stale or forged duplicate). A ``tick``
        more than ``max_input_lead`` past the current one is refused.
        """
        seat = self.seats.get(player_id)
        if seat is None:
            return ErrorCode.NOT_IN_ROOM
        last = seat.last_seq
        if last is not None and not last < seq <= last + self._settings.max_input_seq_gap:
            seat.ignored_inputs += 1
            self.inputs_ignored += 1
            return None
        if tick is not None and tick > self.tick_no + self._settings.max_input_lead:
            return ErrorCode.INPUT_TOO_EARLY
        if len(seat.inputs) >= self._settings.input_queue_depth:
            return ErrorCode.INPUT_QUEUE_FULL
        seat.last_seq = seq
        seat.inputs.append((seq, command, tick))
        return None

    # -- the tick -------------------------------------------------------------

    def snapshot_due(self, tick: int) -> bool:
        """True on the ticks where a snapshot goes out (``snapshot_rate`` of them a second)."""
        sr, tr = self._snapshot_rate, self._tick_rate
        return tick * sr // tr != (tick - 1) * sr // tr

    def tick(self, tick: int, dt: float) -> None:
        """Apply queued inputs that are due, step the game, and send snapshots if due.

        An input with a ``tick`` waits until that tick; those after it wait behind it
        (seq order). One whose tick has passed is applied now, as one without.
        Exceptions from ``step``/``snapshot`` propagate: the caller fails the room.
        """
        self.tick_no = tick
        game = self.game
        for seat in list(self.seats.values()):
            player = seat.member.player
            while seat.inputs and not self.closed:
                seq, command, at = seat.inputs[0]
                if at is not None and at > tick:
                    break
                seat.inputs.popleft()
                try:
                    game.on_input(player, command)
                except Exception:
                    log.exception("room %s: game.on_input failed for %r", self.name, player)
                    seat.member.kick(CloseCode.INTERNAL_ERROR, "game error on your input")
                    break
                seat.applied_seq = seq
        game.step(dt)
        if (self.seats or self.spectators) and self.snapshot_due(tick):
            self.send_snapshots(tick)

    def send_snapshots(self, tick: int) -> None:
        """Encode the state once per audience and hand it to each member."""
        audiences: dict[Hashable, AudienceState] = {}
        encodes_before = self.delta_stats.delta_encodes
        try:
            for seat in list(self.seats.values()):
                state = self._audience(seat.member.player, tick, audiences)
                seat.member.deliver_snapshot(tick, seat.applied_seq, state.packed, state)
            for member in list(self.spectators.values()):
                state = self._audience(member.player, tick, audiences)
                member.deliver_snapshot(tick, None, state.packed, state)
        finally:
            for state in audiences.values():
                state.tick_done()
        self.delta_stats.snapshot_ticks += 1
        # Acks spread over several ticks (mixed RTTs): put bases on a grid next tick.
        self._acks_spread = self.delta_stats.delta_encodes - encodes_before > len(audiences)

    def _audience(
        self, viewer: Player, tick: int, audiences: dict[Hashable, AudienceState]
    ) -> AudienceState:
        game = self.game
        key = game.view_key(viewer)
        state = audiences.get(key)
        if state is None:
            packed = pack_state(game.snapshot(viewer))
            grid = BASE_GRID_TICKS if self._acks_spread else 1
            stats = self.delta_stats
            state = audiences[key] = AudienceState(
                tick, packed, game.diff, stats, grid, stats.snapshot_ticks
            )
            self.delta_stats.audience_states += 1
        return state

    def fail(self, reason: str) -> None:
        """End the room after a game crash: every member is closed 1011."""
        if self.closed:
            return
        self.closed = True
        log.error("room %s closed: %s", self.name, reason)
        members = [s.member for s in self.seats.values()] + list(self.spectators.values())
        for member in members:
            member.kick(CloseCode.INTERNAL_ERROR, "room closed after a server error")
        self.seats.clear()
        self.spectators.clear()

    def disposable(self, now: float, grace: float) -> bool:
        """True when the room has been empty for ``grace`` seconds (or has failed)."""
        if self.closed:
            return True
        return self.empty_since is not None and now - self.empty_since >= grace

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "game": self.game_name,
            "players": len(self.seats),
            "away": sum(not s.member.player.connected for s in self.seats.values()),
            "spectators": len(self.spectators),
            "max_players": self.max_players,
            "tick": self.tick_no,
            "tick_phase": self.tick_phase,
            "inputs_ignored": self.inputs_ignored,
            "audience_states": self.delta_stats.audience_states,
            "delta_encodes": self.delta_stats.delta_encodes,
            "snapshot_ticks": self.delta_stats.snapshot_ticks,
            "tick_stats": self.tick_stats.as_dict() if self.tick_stats else None,
        }
