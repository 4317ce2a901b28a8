"""How a session asks a cluster for a seat, and hears back (sans-I/O contract).

Without a cluster a join is answered at once from the local rooms. With one,
the answer needs the Redis directory, so the session hands a
:class:`SeatRequest` to the :class:`SeatDirectory` and carries on; the
directory (``gameserver/trio/directory.py``) calls ``request.resolve(outcome,
now)`` later, from its own task, with a :data:`~.directory.SeatOutcome`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .directory import SeatOutcome


@dataclass(frozen=True, slots=True)
class SeatRequest:
    """One ``hello``/``join`` that needs the directory."""

    game: str | None
    room: str | None
    ticket: str | None
    """A redirect's ticket to redeem (``game`` and ``room`` are then None)."""
    player_id: int
    name: str
    user: str
    """The authenticated user's id, or "": a ticket is bound to it."""
    may_create: bool
    """This connection may still cause a room to be created (its cap, the worker's)."""
    spectate: bool
    """Watch the room: no seat is taken, and none is created."""
    resolve: Callable[[SeatOutcome, float], None]
    """Called once with the outcome and the time."""


class SeatDirectory(Protocol):
    """What the core needs of a cluster's directory."""

    @property
    def url(self) -> str:
        """Where this worker is reached alone (what ``welcome.resume_url`` says)."""

    def request_seat(self, request: SeatRequest) -> None:
        """Start resolving ``request``; ``request.resolve`` is called later, exactly once."""

    def seat_freed(self, room: str) -> None:
        """A player left ``room`` (on this worker): its seat goes back to the directory."""

    def room_disposed(self, room: str) -> None:
        """This worker disposed of ``room``: the directory forgets it."""

    def new_player_id(self) -> int:
        """A player id unique across the cluster."""
