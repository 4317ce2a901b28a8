"""Seats that outlive connections: resume tokens and held seats (sans-I/O).

A player welcomed on a server with ``reconnect_grace`` > 0 gets a resume token
(``welcome.resume``). When their connection drops while they are in a room,
:meth:`SeatKeeper.hold` keeps the seat for ``reconnect_grace`` seconds with a
stand-in member; a ``hello`` carrying the token within that time claims the
seat back (:meth:`SeatKeeper.claim`) and gets a fresh token. A token is
single-use: claiming it removes it, whatever the outcome. A token whose player
is still connected (a half-open connection the client gave up on) may be
claimed too: the session then hands the player over and closes the old
connection 4006.

Held seats expire when the room's ticker calls :meth:`SeatKeeper.expire` with
the time (every tick), so the player's ``on_leave`` runs even in a room where
nothing else happens. Only a digest of each token is kept, and tokens never
reach a log.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from protocol import PackedState

from .auth import Identity
from .game import Player
from .room import Room

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
"""256 random bits per token (the issue asks for at least 128); 43 URL-safe characters."""


class Holder(Protocol):
    """What the keeper needs of the connection a player is on (``Session``)."""

    @property
    def player(self) -> Player: ...

    def hand_over(self) -> Room | None:
        """Close this connection 4006; return the room whose seat the resumer takes."""


class AwayMember:
    """Stands in a held seat: the player's connection is gone, so nothing is delivered."""

    __slots__ = ("player",)

    def __init__(self, player: Player) -> None:
        self.player = player

    def deliver(self, frame: bytes) -> None:
        pass

    def deliver_snapshot(
        self, tick: int, ack: int | None, state: PackedState, audience: object = None
    ) -> None:
        pass

    def kick(self, code: int, reason: str) -> None:
        pass  # no connection to close; the room fails or the hold expires


@dataclass(slots=True, eq=False)
class _Entry:
    key: bytes
    player: Player
    holder: Holder | None
    """The live connection; None while the seat is held."""
    room: Room | None = None
    """The room holding the seat (set by ``hold``)."""
    deadline: float = 0.0


@dataclass(frozen=True, slots=True)
class Claim:
    """A token claimed: the player, and where they are now."""

    player: Player
    holder: Holder | None
    """The player's old connection, still open (to be replaced), or None."""
    room: Room | None
    """The room holding their seat when ``holder`` is None."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _same_user(a: Identity | None, b: Identity | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.user_id == b.user_id


@dataclass(slots=True)
class SeatKeeper:
    """Resume tokens by digest, and the seats held in each room."""

    grace: float
    """``reconnect_grace``: seconds a seat is held; 0 turns the feature off."""
    _by_key: dict[bytes, _Entry] = field(default_factory=dict)
    _by_player: dict[int, _Entry] = field(default_factory=dict)
    _held: dict[Room, dict[int, _Entry]] = field(default_factory=dict)
    resumed: int = 0
    failed: int = 0
    expired: int = 0
    on_seat_freed: Callable[[str], None] | None = None
    """Called with the room's name when a hold expires (a cluster's directory counts seats)."""

    @property
    def enabled(self) -> bool:
        return self.grace > 0

    def issue(self, holder: Holder) -> str | None:
        """A fresh token for ``holder``'s player (replacing any older one); None if off."""
        if not self.enabled:
            return None
        player = holder.player
        self._forget(player.id)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        entry = _Entry(_digest(token), player, holder)
        self._by_key[entry.key] = entry
        self._by_player[player.id] = entry
        return token

    def claim(self, token: str, identity: Identity | None, now: float) -> Claim | None:
        """Take the seat ``token`` names, or None (used, expired, forged, another user's).

        A token is consumed by a successful claim only: one presented by another
        authenticated user is refused without spoiling it for its owner.
        """
        entry = self._by_key.get(_digest(token))
        if entry is None or not _same_user(entry.player.identity, identity):
            self.failed += 1
            return None
        room = entry.room
        if entry.holder is None and (
            now >= entry.deadline
            or room is None
            or room.closed
            or entry.player.id not in room.seats
        ):
            self._forget(entry.player.id)
            self.failed += 1
            return None
        self._forget(entry.player.id)
        self.resumed += 1
        return Claim(entry.player, entry.holder, room)

    def hold(self, holder: Holder, room: Room, now: float) -> bool:
        """Keep ``holder``'s seat in ``room`` after their connection dropped.

        False (the caller leaves the room as before) when resume is off, the player
        has no token, or the room could not hold the seat.
        """
        entry = self._by_player.get(holder.player.id)
        if entry is None or entry.holder is not holder:
            return False
        if not room.hold(holder.player.id, AwayMember(holder.player)):
            self._forget(holder.player.id)
            return False
        # The last measurement stays readable; the dead session is not kept alive by it.
        last = holder.player.latency
        holder.player.rebind_latency(lambda: last)
        entry.holder = None
        entry.room = room
        entry.deadline = now + self.grace
        self._held.setdefault(room, {})[holder.player.id] = entry
        return True

    def release(self, holder: Holder) -> None:
        """``holder``'s connection ended without a hold: its token dies with it."""
        entry = self._by_player.get(holder.player.id)
        if entry is not None and entry.holder is holder:
            self._forget(holder.player.id)

    def expire(self, room: Room, now: float) -> None:
        """End the holds in ``room`` that are past their deadline: those players leave."""
        held = self._held.get(room)
        if not held:
            return
        for player_id, entry in list(held.items()):
            if now >= entry.deadline:
                self._forget(player_id)
                self.expired += 1
                room.remove(player_id, now)
                peer = f"#{player_id}"
                log.info(
                    "%s: left (not back within the grace)",
                    peer,
                    extra={"peer": peer, "event": "left", "room": room.name, "held": True},
                )
                if self.on_seat_freed is not None:
                    self.on_seat_freed(room.name)

    def forget_room(self, room: Room) -> None:
        """The room is gone: its held seats can never be resumed."""
        for player_id in list(self._held.get(room, ())):
            self._forget(player_id)
        self._held.pop(room, None)

    def held_count(self) -> int:
        return sum(len(h) for h in self._held.values())

    def __len__(self) -> int:
        return len(self._by_player)

    def _forget(self, player_id: int) -> None:
        entry = self._by_player.pop(player_id, None)
        if entry is None:
            return
        self._by_key.pop(entry.key, None)
        if entry.room is not None:
            held = self._held.get(entry.room)
            if held is not None:
                held.pop(player_id, None)
                if not held:
                    del self._held[entry.room]
