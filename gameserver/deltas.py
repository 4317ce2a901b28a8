"""Delta snapshots on the server: each audience's state per tick, and each client's base.

The room packs each audience's state (``Game.view_key``) once per snapshot tick
into an :class:`AudienceState`. A client that asked for deltas (``hello.deltas``)
has a :class:`DeltaBases`: which state each of its snapshot ids carried, and the
newest one it acknowledged, its *base*. Its next snapshot is the patch from the
base to the audience's new state when the base is at most ``delta_window`` old;
otherwise, or when the patch would be no smaller, the full state.

Encode once still holds: a patch is computed and packed once per (audience,
base) per tick, and every client of that audience with that base shares it.
Clients that acknowledge promptly share one base, so a tick costs about one
diff per audience (``DeltaStats`` counts them; ``bench/bandwidth.py`` reports it).

A delta never refers to a snapshot the client has not acknowledged, so a
client whose unsent snapshots were replaced in its latest-wins slot still ends
with exactly the server's state: it holds every state it acknowledged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol import PackedState, pack_state, unpack_state

Diff = Callable[[Any, Any], Any]
"""``Game.diff``: old and new decoded states → a patch (msgpack data), or None (send it full)."""


@dataclass(slots=True)
class DeltaStats:
    """What deltas cost a room (in ``Room.stats()``, so in ``/healthz``)."""

    audience_states: int = 0
    """States packed: one per audience per snapshot tick."""
    delta_encodes: int = 0
    """Patches computed and packed: one per (audience, base) per tick."""
    snapshot_ticks: int = 0


class AudienceState:
    """One audience's state on one snapshot tick: packed once, decoded and diffed on demand."""

    __slots__ = ("_patches", "_value", "diff", "packed", "stats", "tick")

    def __init__(self, tick: int, packed: PackedState, diff: Diff, stats: DeltaStats) -> None:
        self.tick = tick
        self.packed = packed
        self.diff = diff
        self.stats = stats
        self._value: Any = _UNDECODED
        self._patches: dict[AudienceState, PackedState | None] | None = None

    def value(self) -> Any:
        """The state as a client decodes it (decoded once, when first diffed)."""
        if self._value is _UNDECODED:
            self._value = unpack_state(self.packed)
        return self._value

    def delta_from(self, base: AudienceState) -> PackedState | None:
        """The packed patch from ``base`` to this state; None when the full state is no bigger."""
        patches = self._patches
        if patches is None:
            patches = self._patches = {}
        elif base in patches:
            return patches[base]
        patch = self.diff(base.value(), self.value())
        packed = None if patch is None else pack_state(patch)
        if packed is not None and len(packed) >= len(self.packed):
            packed = None
        patches[base] = packed
        self.stats.delta_encodes += 1
        return packed

    def tick_done(self) -> None:
        """Forget this tick's patches: they hold their bases, which must be let go."""
        self._patches = None


_UNDECODED: Any = object()


class DeltaBases:
    """One connection's snapshots that may still become its base, and its base."""

    __slots__ = ("_sent", "_window_ticks", "base")

    def __init__(self, window_ticks: int) -> None:
        self._window_ticks = window_ticks
        self._sent: deque[tuple[int, AudienceState]] = deque()
        self.base: tuple[int, AudienceState] | None = None
        """The newest acknowledged (snapshot id, state), while it may serve."""

    def choose(self, snapshot_id: int, state: AudienceState) -> tuple[int | None, PackedState]:
        """What snapshot ``snapshot_id`` carries: (base id or None, patch or full state)."""
        sent = self._sent
        sent.append((snapshot_id, state))
        oldest = state.tick - self._window_ticks
        while sent[0][1].tick < oldest:
            sent.popleft()
        base = self.base
        if base is None:
            return None, state.packed
        base_id, base_state = base
        if base_state.tick < oldest:
            self.base = None  # no acknowledgement within the window: full again
            return None, state.packed
        patch = state.delta_from(base_state)
        if patch is None:
            return None, state.packed
        return base_id, patch

    def acknowledged(self, snapshot_id: int) -> None:
        """The client holds snapshot ``snapshot_id`` (acks only ever grow: the session checks)."""
        sent = self._sent
        while sent and sent[0][0] < snapshot_id:
            sent.popleft()
        if sent and sent[0][0] == snapshot_id:
            self.base = sent.popleft()
        else:
            self.base = None  # too old to keep: the next snapshot is full

    def reset(self) -> None:
        """A new room (or none): ticks and states of the old one mean nothing here."""
        self._sent.clear()
        self.base = None
