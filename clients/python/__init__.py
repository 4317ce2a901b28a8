"""Python client library (trio) for the game server; used by tests, bots and the load tester."""

from .client import GameClient, ServerRefused, TooManyRedirects, connect

__all__ = ["GameClient", "ServerRefused", "TooManyRedirects", "connect"]
