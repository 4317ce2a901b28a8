"""The interface game developers implement, and the registry of games by name.

A :class:`Game` instance owns the state of one room. The server calls it from
the room's tick loop only, one call at a time, so game code needs no locks and
must never block or await. Call order per tick: ``on_input`` for each queued
input (in each player's ``seq`` order), then ``step(dt)``, then, on snapshot
ticks, ``snapshot(viewer)`` once per distinct ``view_key`` (spectators included).
A dropped player's seat is held: ``on_disconnect``, then ``on_resume`` if they come
back in time, else ``on_leave``.

Failure rules: ``InvalidInput`` from ``validate_input`` refuses that one input
(the client gets ``bad_input``); any other exception from ``validate_input``,
``on_join`` or ``on_input`` closes that player's connection 1011; an exception
from ``step``, ``snapshot`` or ``diff`` ends the room (its players get 1011) and nothing
else.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from protocol import delta
from protocol.server_messages import DEFAULT_DELTA_FORMAT

from .auth import Identity
from .latency import LatencyReport

MAX_GAME_NAME_CHARS = 24
"""Leaves room for the "-<n>" of matchmade room names within the 32-character name cap."""


class InvalidInput(ValueError):
    """Raise from :meth:`Game.validate_input` to refuse an input; the text goes to the client."""


@dataclass(frozen=True, slots=True)
class RoomContext:
    """What a game knows about the room it runs in."""

    room_name: str
    tick_rate: int
    max_players: int
    rng: random.Random
    """Seeded per room: use it (not ``random``) so a room can be replayed."""

    @property
    def dt(self) -> float:
        return 1.0 / self.tick_rate


class Player:
    """A connected player, as game code sees it. Identity comes from the connection.

    ``id`` is the server's number for this connection; ``name`` the display name
    (the authenticated one when ``identity`` has a name, else ``hello.name``);
    ``identity`` what the server's ``authenticate`` hook said about the user, or
    None when the server has no hook (see ``gameserver.auth``). ``connected`` is
    False while the player's connection is down and their seat is held for a resume
    (``Game.on_disconnect``); ``spectator`` is True for a viewer without a seat
    (``Game.snapshot`` may get one as ``viewer``; no other hook does).
    """

    __slots__ = ("_latency", "connected", "id", "identity", "name", "spectator")

    def __init__(
        self,
        player_id: int,
        name: str,
        latency: Callable[[], LatencyReport],
        identity: Identity | None = None,
    ) -> None:
        self.id = player_id
        self.name = name
        self.identity = identity
        self._latency = latency
        self.connected = True
        self.spectator = False

    def rebind_latency(self, latency: Callable[[], LatencyReport]) -> None:
        """Measure this player on a new connection (a resume takes the player over)."""
        self._latency = latency

    @property
    def latency(self) -> LatencyReport:
        """This player's round-trip time and jitter as the server measures them now."""
        return self._latency()

    def __repr__(self) -> str:
        return f"Player({self.id}, {self.name!r})"


class Game:
    """Base class for a game. Subclass it, set ``name``, and register it.

    Only ``step`` and ``snapshot`` must be overridden; the rest have defaults.
    """

    name: ClassVar[str] = ""
    """The name clients ask for in ``join``/``hello``."""
    max_players: ClassVar[int | None] = None
    """Seats per room; None uses the server's ``max_players_per_room``."""

    def __init__(self, ctx: RoomContext) -> None:
        self.ctx = ctx

    def info(self) -> Any:
        """Static data for joining clients (map, sizes, speeds): sent once in ``joined``."""
        return None

    def on_join(self, player: Player) -> None:
        """A player took a seat."""

    def on_leave(self, player: Player) -> None:
        """A player left, or stayed disconnected past ``reconnect_grace``; forget their state."""

    def on_disconnect(self, player: Player) -> None:
        """The player's connection dropped; their seat is held for ``reconnect_grace``.

        ``player.connected`` is False from now on and no input arrives for them. The
        default keeps their state as it is; override to e.g. stop a moving entity.
        """

    def on_resume(self, player: Player) -> None:
        """The player came back within the grace (``player.connected`` is True again)."""

    def validate_input(self, player: Player, data: Any) -> Any:
        """Check a raw ``input.data`` when it arrives; return what ``on_input`` gets.

        Raise :class:`InvalidInput` to refuse it. The default accepts anything.
        """
        return data

    def on_input(self, player: Player, command: Any) -> None:
        """Apply one validated input (called at the next tick, or at its ``input.tick``, in
        ``seq`` order)."""

    def step(self, dt: float) -> None:
        """Advance the simulation by ``dt`` seconds (always ``1 / tick_rate``)."""
        raise NotImplementedError

    def view_key(self, viewer: Player) -> Hashable:
        """Viewers with equal keys see the same snapshot, encoded once for all of them.

        Default: everyone sees the same state. Return e.g. a team or a grid
        cell for interest management.
        """
        return None

    def snapshot(self, viewer: Player) -> Any:
        """The state ``viewer`` sees: plain msgpack-able data (dict/list/int/float/str/bytes).

        Clients that ask for deltas get the change since a state they hold, in the
        generic format (``protocol.delta``): shape the state for it. Entities as
        arrays of rows, each ``[id, field, ...]`` in a stable order (new ones at the
        end), with integer fields (positions in fixed point), cost a few bytes per
        changed field; maps cost their changed keys.
        """
        raise NotImplementedError

    delta_format: ClassVar[str] = DEFAULT_DELTA_FORMAT
    """Names the format ``diff`` produces (``joined.room.delta``); set it when you override both."""

    def diff(self, old: Any, new: Any) -> Any:
        """A patch from state ``old`` to ``new`` (both as clients decode them), or None for full.

        Called once per audience and base per snapshot tick, for clients that asked for
        deltas. Override together with ``apply`` and ``delta_format`` for a format of
        your own (your clients then need the same ``apply``).
        """
        return delta.diff(old, new)

    @staticmethod
    def apply(old: Any, patch: Any) -> Any:
        """The inverse of ``diff``: the state ``patch`` makes of ``old`` (clients use it)."""
        return delta.apply(old, patch)


GameFactory = Callable[[RoomContext], Game]


class GameRegistry(Mapping[str, GameFactory]):
    """Games the server offers, by name."""

    def __init__(self) -> None:
        self._games: dict[str, type[Game]] = {}

    def register(self, game: type[Game]) -> type[Game]:
        """Register a Game subclass under its ``name`` (usable as a class decorator)."""
        # 24, not 32: matchmade rooms are named "<game>-<n>" and room names are capped at 32.
        if not game.name or len(game.name) > MAX_GAME_NAME_CHARS:
            raise ValueError(f"a game needs a name of 1..{MAX_GAME_NAME_CHARS} characters")
        if game.name in self._games:
            raise ValueError(f"game {game.name!r} is registered already")
        self._games[game.name] = game
        return game

    def seats(self, name: str, default: int) -> int:
        return self._games[name].max_players or default

    def __getitem__(self, name: str) -> GameFactory:
        return self._games[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._games)

    def __len__(self) -> int:
        return len(self._games)
