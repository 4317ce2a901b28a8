"""All rooms of the server: lookup by name, join-or-create matchmaking, disposal.

Matchmaking (a join by game alone) fills only rooms it created itself, named
``<game>-<n>``; a room someone created by name is joined only by its name, so
it is as private as its name is unguessable (PROTOCOL.md §5.2).

Sans-I/O. Creating a room calls ``on_room_created(room)``, through which the
trio shell starts that room's ticker; the ticker calls :meth:`dispose` when
the room is empty past its grace period or has failed.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterator

from protocol import ErrorCode, RoomInfo

from .game import GameRegistry, RoomContext
from .room import Room, RoomMember, Watcher
from .settings import Settings
from .tick import first_tick, spread_phase

log = logging.getLogger(__name__)


class JoinRefused(Exception):
    """A join that cannot be honoured; ``code`` goes back to the client."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class RoomRegistry:
    """Rooms by name."""

    def __init__(
        self,
        settings: Settings,
        games: GameRegistry,
        on_room_created: Callable[[Room], None] | None = None,
        seed: int | None = None,
        epoch: float = 0.0,
    ) -> None:
        self._settings = settings
        self._epoch = epoch
        self._games = games
        self._on_room_created = on_room_created
        self._rooms: dict[str, Room] = {}
        self._matchmade: set[str] = set()
        """Names of the rooms matchmaking created: the only ones it (and watch by game) picks."""
        self._counter = itertools.count(1)
        self._seeds = random.Random(seed)
        self.on_disposed: Callable[[str], None] | None = None
        """Called with a room's name once it is disposed (a cluster's directory forgets it)."""

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def matchmade(self, room: Room) -> bool:
        """Whether matchmaking created ``room`` (so may pick it for a join by game)."""
        return self._rooms.get(room.name) is room and room.name in self._matchmade

    def find_room(
        self,
        game: str | None,
        room: str | None,
        now: float,
        may_create: bool = True,
        matchmade: bool = False,
    ) -> Room:
        """Resolve a join request to a room with a free seat, creating one if allowed.

        ``matchmade``: a room this creates under the name ``room`` counts as
        matchmade (a cluster's directory chose that name by matchmaking).
        """
        if game is not None and game not in self._games:
            raise JoinRefused(ErrorCode.UNKNOWN_GAME, f"no game named {game!r}")
        if room is not None:
            existing = self._rooms.get(room)
            if existing is not None and existing.closed:
                # Failed but not yet reaped by its ticker: the name is free again.
                self.dispose(existing)
                existing = None
            if existing is None:
                if game is None:
                    raise JoinRefused(ErrorCode.NO_SUCH_ROOM, f"no room named {room!r}")
                return self._create(room, game, now, may_create, matchmade)
            if game is not None and existing.game_name != game:
                raise JoinRefused(
                    ErrorCode.ROOM_GAME_MISMATCH, f"room {room!r} runs {existing.game_name!r}"
                )
            if existing.full:
                raise JoinRefused(ErrorCode.ROOM_FULL, f"room {room!r} is full")
            return existing
        assert game is not None  # the codec refuses a join with neither
        for candidate in self._matchmade_rooms(game):
            if not candidate.full:
                return candidate
        while True:
            name = f"{game}-{next(self._counter)}"
            if name not in self._rooms:
                return self._create(name, game, now, may_create, matchmade=True)

    def _matchmade_rooms(self, game: str) -> list[Room]:
        """Running rooms matchmaking created for ``game``, oldest first."""
        return [
            r
            for r in self._rooms.values()
            if r.name in self._matchmade and r.game_name == game and not r.closed
        ]

    def join(
        self,
        member: RoomMember,
        game: str | None,
        room: str | None,
        now: float,
        may_create: bool = True,
        matchmade: bool = False,
    ) -> tuple[Room, RoomInfo]:
        """Seat ``member`` in the room the request resolves to.

        Raises JoinRefused; exceptions from the game's ``on_join`` propagate.
        """
        target = self.find_room(game, room, now, may_create, matchmade)
        info = target.add(member)
        return target, info

    def watch(self, member: Watcher, game: str | None, room: str | None) -> tuple[Room, RoomInfo]:
        """Let ``member`` spectate: the named room, or the oldest matchmade room of ``game``.

        Never creates a room. Raises JoinRefused.
        """
        if game is not None and game not in self._games:
            raise JoinRefused(ErrorCode.UNKNOWN_GAME, f"no game named {game!r}")
        if room is not None:
            target = self._rooms.get(room)
            if target is None or target.closed:
                raise JoinRefused(ErrorCode.NO_SUCH_ROOM, f"no room named {room!r}")
            if game is not None and target.game_name != game:
                raise JoinRefused(
                    ErrorCode.ROOM_GAME_MISMATCH, f"room {room!r} runs {target.game_name!r}"
                )
        else:
            assert game is not None  # the codec refuses a join with neither
            running = self._matchmade_rooms(game)
            if not running:
                raise JoinRefused(ErrorCode.NO_SUCH_ROOM, f"no room runs {game!r}")
            target = running[0]
        if len(target.spectators) >= self._settings.max_spectators_per_room:
            raise JoinRefused(
                ErrorCode.SPECTATORS_FULL, f"room {target.name!r} has its maximum of spectators"
            )
        return target, target.add_spectator(member)

    def _create(
        self, name: str, game: str, now: float, may_create: bool = True, matchmade: bool = False
    ) -> Room:
        if not may_create:
            raise JoinRefused(
                ErrorCode.TOO_MANY_ROOMS, "this connection has created its maximum of rooms"
            )
        if len(self._rooms) >= self._settings.max_rooms:
            raise JoinRefused(ErrorCode.TOO_MANY_ROOMS, "the server runs its maximum of rooms")
        seats = self._games.seats(game, self._settings.max_players_per_room)
        ctx = RoomContext(
            room_name=name,
            tick_rate=self._settings.tick_rate,
            max_players=seats,
            rng=random.Random(self._seeds.getrandbits(64)),
        )
        instance = self._games[game](ctx)
        created = Room(name, game, instance, max_players=seats, settings=self._settings, now=now)
        if self._settings.stagger_room_ticks:
            created.tick_phase = spread_phase([r.tick_phase for r in self._rooms.values()])
        # The tick before its first: events until then carry it, and the first snapshot
        # (a later tick) reflects them (PROTOCOL.md 5.7). The ticker starts after it.
        created.tick_no = max(
            0, first_tick(self._settings.tick_rate, self._epoch, now, created.tick_phase) - 1
        )
        self._rooms[name] = created
        if matchmade:
            self._matchmade.add(name)
        log.info("room %s created (game %s, %d seats)", name, game, seats)
        if self._on_room_created is not None:
            self._on_room_created(created)  # the shell starts the room's ticker
        return created

    def dispose(self, room: Room) -> None:
        """Forget ``room`` (its ticker has stopped or is stopping)."""
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]
            self._matchmade.discard(room.name)
            log.info("room %s disposed", room.name)
            if self.on_disposed is not None:
                self.on_disposed(room.name)
        room.end_watching()

    @property
    def player_count(self) -> int:
        return sum(len(r.seats) for r in self._rooms.values())
