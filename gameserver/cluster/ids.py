"""Player ids unique across a cluster: blocks of ids taken from Redis, used up locally.

Sans-I/O. A new connection needs its id at once, so a worker never asks Redis
per player: it holds up to two blocks of ``PLAYER_ID_BLOCK`` ids and its
directory task fetches another (``INCRBY``) whenever fewer than a block remain.
"""

from __future__ import annotations

from collections import deque

from protocol.validate import UINT32_MAX


class IdsExhausted(RuntimeError):
    """No id is left and Redis has not answered for a new block."""


class PlayerIdBlocks:
    """The ids a worker may hand out: ``take()`` them, ``add_block()`` as Redis grants."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self._ranges: deque[tuple[int, int]] = deque()  # [next, last] inclusive
        self.highest = 0
        """The last id of the newest block: no id above it was ever handed to this worker
        (the directory keeps Redis's counter at least this high)."""

    @property
    def remaining(self) -> int:
        return sum(last - first + 1 for first, last in self._ranges)

    @property
    def wants_block(self) -> bool:
        """True while fewer than one block's worth of ids is left."""
        return self.remaining < self.block_size

    def add_block(self, last: int) -> None:
        """Redis's ``INCRBY`` answered ``last``: ids ``last - block_size + 1 .. last`` are ours."""
        if last > UINT32_MAX:
            # The protocol's ids are 32-bit; a cluster that has seen 4 billion players
            # must let its counter expire (a day idle) or be reset by the operator.
            raise IdsExhausted("the cluster's player id counter passed 2**32-1")
        self._ranges.append((last - self.block_size + 1, last))
        self.highest = max(self.highest, last)

    def take(self) -> int:
        if not self._ranges:
            raise IdsExhausted("no player id left: the room directory has not answered")
        first, last = self._ranges[0]
        if first == last:
            self._ranges.popleft()
        else:
            self._ranges[0] = (first + 1, last)
        return first
