"""Authoritative multiplayer game server: sans-I/O core plus a thin trio shell.

The core (this package's top-level modules) imports neither trio nor
websockets; ``gameserver.trio`` runs it over WebSocket. For game developers the
public API is :class:`Game`, :class:`Player`, :class:`RoomContext`,
:class:`InvalidInput`, :class:`GameRegistry` and :class:`Settings`, and for an
authentication hook :class:`AuthRequest`, :class:`Identity` and
:class:`AuthRefused`; for interest management :class:`UniformGrid`; see the
README's quickstart.
"""

from .auth import AuthRefused, AuthRequest, Identity
from .game import Game, GameRegistry, InvalidInput, Player, RoomContext
from .latency import LatencyReport
from .settings import Settings
from .spatial import UniformGrid

__all__ = [
    "AuthRefused",
    "AuthRequest",
    "Game",
    "GameRegistry",
    "Identity",
    "InvalidInput",
    "LatencyReport",
    "Player",
    "RoomContext",
    "Settings",
    "UniformGrid",
]
