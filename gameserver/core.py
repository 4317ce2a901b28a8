"""The server's shared, sans-I/O state: settings, games, rooms, the tick epoch.

One :class:`ServerCore` per server process. Sessions and rooms reach each
other only through it; the trio shell builds it and hands it down.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from .cluster.seating import SeatDirectory
from .counters import Counters
from .game import GameRegistry
from .ratelimit import BucketsByKey
from .room import Room
from .rooms import RoomRegistry
from .seats import SeatKeeper
from .settings import Settings


class ServerCore:
    """Everything a session needs that outlives one connection."""

    def __init__(
        self,
        settings: Settings,
        games: GameRegistry,
        *,
        epoch: float,
        on_room_created: Callable[[Room], None] | None = None,
        seed: int | None = None,
    ) -> None:
        self.settings = settings
        self.games = games
        self.epoch = epoch
        """Time of tick 0 for every room: tick numbers are server-wide."""
        self.rooms = RoomRegistry(settings, games, on_room_created, seed, epoch)
        self.seats = SeatKeeper(settings.reconnect_grace)
        """Resume tokens and the seats held for dropped players."""
        self._player_ids = itertools.count(1)
        self.counters: Counters | None = Counters() if settings.metrics else None
        """Traffic totals for /metrics; None when ``settings.metrics`` is off."""
        self.directory: SeatDirectory | None = None
        self.directory_joins: BucketsByKey | None = None
        """Each IP address's budget of joins through the directory (with a directory)."""
        """The cluster's room directory; None on a lone server (rooms are all local)."""

    def attach_directory(self, directory: SeatDirectory) -> None:
        """Find rooms, seats and player ids through a cluster's directory from now on."""
        self.directory = directory
        self.directory_joins = BucketsByKey(
            self.settings.directory_joins_per_ip, self.settings.directory_join_burst
        )
        self.rooms.on_disposed = directory.room_disposed
        self.seats.on_seat_freed = directory.seat_freed

    def new_player_id(self) -> int:
        if self.directory is not None:
            return self.directory.new_player_id()
        return next(self._player_ids)
