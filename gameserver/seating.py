"""Where a session sits: the lobby or a room, found locally or through a cluster.

The half of :class:`~gameserver.session.Session` that seats a player (PROTOCOL.md
§5.2 join and leave, §5.11 redirects and tickets), kept apart so that the session
module holds the transport contract, timers and message dispatch. Sans-I/O: with
a cluster, a join is handed to the core's :class:`~.cluster.seating.SeatDirectory`
and finished in :meth:`Seating.seat_resolved` when the directory answers.
"""

from __future__ import annotations

import enum
import logging
import unicodedata
from collections.abc import Callable
from typing import cast

from protocol import (
    CloseCode,
    ErrorCode,
    Hello,
    Join,
    Joined,
    Leave,
    Left,
    Redirect,
    RoomInfo,
    encode,
)

from .cluster.directory import (
    SeatElsewhere,
    SeatHere,
    SeatOutcome,
    SeatRefused,
    TicketRefused,
    TicketSeat,
)
from .cluster.seating import SeatRequest
from .core import ServerCore
from .deltas import DeltaBases
from .game import Player
from .outbox import Outbox
from .room import Room, RoomMember, Watcher
from .rooms import JoinRefused
from .settings import Settings

log = logging.getLogger("gameserver.session")


class State(enum.Enum):
    AWAIT_HELLO = "await_hello"
    LOBBY = "lobby"
    IN_ROOM = "in_room"
    CLOSED = "closed"


def clean_text(text: str) -> str:
    """Remove control and format characters (Unicode category C*) and trim."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()


class Seating:
    """Join, leave and the directory's answers; mixed into :class:`Session`."""

    # Provided by Session.
    core: ServerCore
    settings: Settings
    outbox: Outbox
    player: Player
    peer: str
    address: str
    state: State
    connected_at: float
    room: Room | None
    rooms_created: int
    _now: float
    _seat_pending: str | None
    _seat_spectate: bool = False
    spectating: bool
    delta_bases: DeltaBases | None
    timers_changed: Callable[[], None]

    def _refuse(self, code: ErrorCode, detail: str, ref: str | None = None) -> None:
        raise NotImplementedError

    def _welcome(self, info: RoomInfo | None, refusal: JoinRefused | None, now: float) -> None:
        raise NotImplementedError

    def close(self, code: int, reason: str) -> None:
        raise NotImplementedError

    def _leave_room(self, now: float) -> None:
        room, self.room = self.room, None
        if room is not None:
            if self.spectating:
                room.remove_spectator(self.player.id)
                self.spectating = False
            else:
                room.remove(self.player.id, now)
                if self.core.directory is not None:
                    self.core.directory.seat_freed(room.name)
            log.info(
                "%s: left",
                self.peer,
                extra={"peer": self.peer, "event": "left", "room": room.name},
            )
            # Nothing of that room may follow the ``left`` reply, nor be a delta's base.
            self.outbox.discard_snapshot()
            if self.delta_bases is not None:
                self.delta_bases.reset()
        if self.state is State.IN_ROOM:
            self.state = State.LOBBY

    def _check_join(self, game: str | None, room: str | None) -> None:
        """The checks a join passes before any room is looked at (§5.2's first two)."""
        if room is not None and clean_text(room) != room:
            # Room names reach logs and /healthz: printable characters only, no padding.
            raise JoinRefused(ErrorCode.BAD_MESSAGE, "room names must be printable, untrimmed")
        if game is not None and game not in self.core.games:
            raise JoinRefused(ErrorCode.UNKNOWN_GAME, f"no game named {game!r}")

    def _seat(
        self,
        game: str | None,
        room: str | None,
        now: float,
        *,
        granted: bool = False,
        matchmade: bool = False,
    ) -> RoomInfo | None:
        """Join a room; None if the game failed in on_join (then the client is closed).

        ``granted``: a cluster's directory already gave this seat (and said whether
        the room may be created here), so this connection's room cap was checked;
        ``matchmade``: the directory's matchmaking created that room.
        """
        self._check_join(game, room)
        rooms = self.core.rooms
        before = len(rooms)
        may_create = granted or self.rooms_created < self.settings.rooms_created_per_connection
        try:
            self.room, info = rooms.join(
                cast(RoomMember, self), game, room, now, may_create, matchmade
            )
        except JoinRefused:
            raise
        except Exception:
            log.exception("%s: game.on_join failed", self.peer)
            self.close(CloseCode.INTERNAL_ERROR, "game error on join")
            return None
        if len(rooms) > before:
            self.rooms_created += 1
        self.state = State.IN_ROOM
        if self.room is not None:
            log.info(
                "%s: joined",
                self.peer,
                extra={
                    "peer": self.peer,
                    "event": "joined",
                    "room": self.room.name,
                    "game": self.room.game_name,
                },
            )
        return info

    def _watch(self, game: str | None, room: str | None) -> RoomInfo:
        """Spectate a room (raises JoinRefused)."""
        self._check_join(game, room)
        self.room, info = self.core.rooms.watch(cast(Watcher, self), game, room)
        self.spectating = True
        self.state = State.IN_ROOM
        return info

    def _on_join(self, join: Join, now: float) -> None:
        if self.room is not None:
            self._refuse(ErrorCode.ALREADY_IN_ROOM, f"leave {self.room.name!r} first", Join.TYPE)
            return
        if self._seat_pending is not None:
            self._refuse(ErrorCode.ALREADY_IN_ROOM, "a join is already on its way", Join.TYPE)
            return
        if self.core.directory is not None:
            try:
                self._check_join(join.game, join.room)
            except JoinRefused as exc:
                self._refuse(exc.code, exc.detail, Join.TYPE)
                return
            self._ask_directory(Join.TYPE, join.game, join.room, None, join.spectate)
            return
        try:
            if join.spectate:
                info: RoomInfo | None = self._watch(join.game, join.room)
            else:
                info = self._seat(join.game, join.room, now)
        except JoinRefused as exc:
            self._refuse(exc.code, exc.detail, Join.TYPE)
            return
        self._joined(info)

    def _joined(self, info: RoomInfo | None) -> None:
        """``joined`` to the joiner, ``event join`` to the room (not for a spectator)."""
        if info is not None and self.room is not None:
            self.outbox.send(encode(Joined(info)))
            if not self.spectating:
                self.room.announce_join(self.player)

    def _on_leave(self, now: float) -> None:
        room = self.room
        if room is None:
            self._refuse(ErrorCode.NOT_IN_ROOM, "not in a room", Leave.TYPE)
            return
        self._leave_room(now)
        self.outbox.send(encode(Left(room.name)))

    # -- a cluster's directory -------------------------------------------------

    def _ask_directory(
        self,
        ref: str,
        game: str | None,
        room: str | None,
        ticket: str | None,
        spectate: bool = False,
    ) -> None:
        directory = self.core.directory
        budget = self.core.directory_joins
        assert directory is not None and budget is not None
        if ticket is None and not budget.take(self.address, self._now):
            # Every such join may hold a seat for ticket_ttl: one address must not
            # squat a room or flood Redis. A redirect's ticket is not counted again.
            refusal = JoinRefused(ErrorCode.RATE_LIMITED, "too many joins from your address")
            if ref == Hello.TYPE:
                self._welcome(None, refusal, self._now)  # welcome, then the error (§5.1)
            else:
                self._refuse(refusal.code, refusal.detail, ref)
            return
        self._seat_pending = ref
        self._seat_spectate = spectate
        identity = self.player.identity
        cap = self.settings.rooms_created_per_connection
        directory.request_seat(
            SeatRequest(
                game=game,
                room=room,
                ticket=ticket,
                player_id=self.player.id,
                name=self.player.name,
                user=identity.user_id if identity is not None else "",
                may_create=self.rooms_created < cap
                and len(self.core.rooms) < self.settings.max_rooms,
                spectate=spectate,
                resolve=self.seat_resolved,
            )
        )

    def seat_resolved(self, outcome: SeatOutcome, now: float) -> None:
        """The directory answered the pending ``hello`` or ``join`` (PROTOCOL.md §5.11)."""
        self._now = now
        pending, self._seat_pending = self._seat_pending, None
        directory = self.core.directory
        assert directory is not None
        if pending is None or self.state is State.CLOSED or self.outbox.closing:
            # Gone meanwhile: a seat granted here goes back at once (a spectator had none).
            if isinstance(outcome, TicketSeat | SeatHere) and not self._spectator_outcome(outcome):
                directory.seat_freed(outcome.room)
            return
        if isinstance(outcome, TicketRefused):
            self._ticket_refused(outcome.detail, now)
        elif isinstance(outcome, SeatElsewhere):
            ttl_ms = int(self.settings.ticket_ttl * 1000)
            self.outbox.send(encode(Redirect(outcome.url, outcome.ticket, outcome.room, ttl_ms)))
            self.close(CloseCode.REDIRECTED, f"room {outcome.room} is on another worker")
        else:
            info, refusal = self._take_granted_seat(outcome, now)
            if pending == Hello.TYPE:
                if not self.outbox.closing:  # the game failing on join closed it: no welcome
                    self._welcome(info, refusal, now)
            elif refusal is not None:
                self._refuse(refusal.code, refusal.detail, Join.TYPE)
            else:
                self._joined(info)
        self.timers_changed()

    def _spectator_outcome(self, outcome: SeatHere | TicketSeat) -> bool:
        return outcome.spectate if isinstance(outcome, TicketSeat) else self._seat_spectate

    def _take_granted_seat(
        self, outcome: SeatHere | TicketSeat | SeatRefused, now: float
    ) -> tuple[RoomInfo | None, JoinRefused | None]:
        if isinstance(outcome, SeatRefused):
            return None, JoinRefused(outcome.code, outcome.detail)
        if isinstance(outcome, TicketSeat):
            # The player the first worker welcomed or seated: same id, same name.
            self.player.id = outcome.player_id
            identity = self.player.identity
            if identity is None or identity.name is None:
                self.player.name = outcome.name
            self.peer = f"{self.peer.partition('#')[0]}#{outcome.player_id}"
        if self._spectator_outcome(outcome):
            try:
                return self._watch(outcome.game, outcome.room), None
            except JoinRefused as exc:
                return None, exc
        try:
            info = self._seat(
                outcome.game, outcome.room, now, granted=True, matchmade=outcome.matchmade
            )
        except JoinRefused as exc:
            self.core.directory.seat_freed(outcome.room)  # type: ignore[union-attr]
            return None, exc
        if info is None:  # the game failed in on_join; the client is being closed
            self.core.directory.seat_freed(outcome.room)  # type: ignore[union-attr]
        return info, None

    def _ticket_refused(self, detail: str, now: float) -> None:
        """``bad_ticket``, and nothing else: the connection waits for a new ``hello``."""
        self.state = State.AWAIT_HELLO
        self.connected_at = now  # a fresh hello_timeout
        self._refuse(ErrorCode.BAD_TICKET, detail, Hello.TYPE)
