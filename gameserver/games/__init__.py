"""Games shipped with the server, and the registry the CLI starts with."""

from __future__ import annotations

import importlib

from ..game import Game, GameRegistry
from .arena import Arena
from .arena_wide import ArenaWide


def default_games() -> GameRegistry:
    """A registry holding the reference games."""
    registry = GameRegistry()
    registry.register(Arena)
    registry.register(ArenaWide)
    return registry


def load_game(spec: str) -> type[Game]:
    """Import a Game subclass from ``"package.module:ClassName"``."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"game spec must look like module:Class, got {spec!r}")
    game = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(game, type) and issubclass(game, Game)):
        raise TypeError(f"{spec} is not a Game subclass")
    return game


__all__ = ["Arena", "ArenaWide", "default_games", "load_game"]
