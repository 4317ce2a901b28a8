"""A ``--game`` module for the supervisor tests that imports in the supervisor and fails
in its workers (``--worker-index`` on their command line): a worker's configuration
error at start, the way a bad setting only a worker checks (an unreachable Redis) is."""

from __future__ import annotations

import sys

from gameserver.games import Arena

if "--worker-index" in sys.argv:
    raise ImportError("worker_hooks refuses to load in a worker")


class Clone(Arena):
    """Arena under another name: what the supervisor loads."""

    name = "clone"
