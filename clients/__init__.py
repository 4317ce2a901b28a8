"""Clients of the game server: the browser page, the Python library, bots and load tester."""
