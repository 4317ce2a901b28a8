"""The trio shell: sockets, tasks and timeouts around the sans-I/O core.

Only this subpackage (and ``clients/``) imports trio or websockets.
"""

from .server import RunningServer, serve_game

__all__ = ["RunningServer", "serve_game"]
