"""Delta snapshots on the server: each audience's state per tick, and each client's base.

The room packs each audience's state (``Game.view_key``) once per snapshot tick
into an :class:`AudienceState`. A client that asked for deltas (``hello.deltas``)
has a :class:`DeltaBases`: which state each of its snapshot ids carried, and the
newest one it acknowledged, its *base*. Its next snapshot is the patch from the
base to the audience's new state when the base is at most ``delta_window`` old;
otherwise, or when the patch would be no smaller, the full state.

Encode once still holds: a patch is computed and packed once per (audience,
base) per tick, and every client of that audience with that base shares it.
Clients that acknowledge alike share one base, so a tick costs one diff per
audience. When RTTs differ, acks trail by different numbers of snapshots; the
room then puts bases on a grid of ``BASE_GRID_TICKS`` snapshots so that clients
meet on a few (``DeltaStats`` counts the diffs; ``bench/delta_spread.py``
measures both cases: at 50 players with RTTs of 20-250 ms, 2.9 diffs a tick
instead of 8, for 10% more bytes).

A delta never refers to a snapshot the client has not acknowledged, nor to one
older than the base of a snapshot it was sent before (the client drops those),
nor to one more than ``protocol.delta.MAX_BASE_AGE`` ids back; so a client whose
unsent snapshots were replaced in its latest-wins slot still ends with exactly
the server's state.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol import PackedState, pack_state, unpack_state
from protocol.delta import MAX_BASE_AGE

log = logging.getLogger(__name__)

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

    __slots__ = ("_patches", "_value", "diff", "grid", "ordinal", "packed", "stats", "tick")

    def __init__(
        self,
        tick: int,
        packed: PackedState,
        diff: Diff,
        stats: DeltaStats,
        grid: int = 1,
        ordinal: int = 0,
    ) -> None:
        self.tick = tick
        self.ordinal = ordinal
        """The room's count of snapshot ticks before this one (the grid counts these)."""
        self.grid = grid
        """Clients' bases go on a grid of this many snapshots (1: each takes its newest ack)."""
        self.packed = packed
        self.diff = diff
        self.stats = stats
        self._value: Any = _UNDECODED
        self._patches: dict[AudienceState, PackedState | None] | None = None

    def value(self) -> Any:
        """The state as a client decodes it (decoded once, when first diffed); ``UNDECODABLE``
        when msgpack cannot give it back (e.g. a map with array keys): those go out full."""
        if self._value is _UNDECODED:
            try:
                self._value = unpack_state(self.packed)
            except (ValueError, TypeError) as exc:  # the game's state, not any client, is at fault
                log.warning(
                    "a snapshot state does not decode (%r): sent full, never as a delta", exc
                )
                self._value = UNDECODABLE
        return self._value

    def delta_from(self, base: AudienceState) -> PackedState | None:
        """The packed patch from ``base`` to this state; None when the full state is no bigger."""
        patches = self._patches
        if patches is None:
            patches = self._patches = {}
        elif base in patches:
            return patches[base]
        old, new = base.value(), self.value()
        if old is UNDECODABLE or new is UNDECODABLE:
            patches[base] = None
            return None
        patch = self.diff(old, new)
        packed = None if patch is None else pack_state(patch)
        if packed is not None and len(packed) >= len(self.packed):
            packed = None
        patches[base] = packed
        self.stats.delta_encodes += 1
        return packed

    def has_patch_from(self, base: AudienceState) -> bool:
        """True when this tick's patch from ``base`` is computed already (no diff to pay)."""
        return self._patches is not None and base in self._patches

    def tick_done(self) -> None:
        """Forget this tick's patches: they hold their bases, which must be let go."""
        self._patches = None


_UNDECODED: Any = object()
UNDECODABLE: Any = object()


class DeltaBases:
    """One connection's snapshots that may still become its base, and those it acknowledged."""

    __slots__ = ("_acked", "_sent", "_window_ticks")

    def __init__(self, window_ticks: int) -> None:
        self._window_ticks = window_ticks
        self._sent: deque[tuple[int, AudienceState]] = deque()
        """Sent and not yet acknowledged, oldest first."""
        self._acked: deque[tuple[int, AudienceState]] = deque()
        """Acknowledged, oldest first, none older than the last base used (the client holds
        every one of them: it drops only states older than the newest base it was sent)."""

    def choose(self, snapshot_id: int, state: AudienceState) -> tuple[int | None, PackedState]:
        """What snapshot ``snapshot_id`` carries: (base id or None, patch or full state)."""
        sent, acked = self._sent, self._acked
        sent.append((snapshot_id, state))
        oldest = state.tick - self._window_ticks
        oldest_id = snapshot_id - MAX_BASE_AGE  # what a client keeps, whatever the window
        while sent[0][1].tick < oldest or sent[0][0] < oldest_id:
            sent.popleft()
        while acked and (acked[0][1].tick < oldest or acked[0][0] < oldest_id):
            acked.popleft()  # no acknowledgement within the window: full again
        if not acked:
            return None, state.packed
        base_id, base_state = acked[-1]
        # Bases on a grid of ticks: clients whose acks trail by different RTTs meet on
        # the same few bases, so a tick costs a few diffs instead of one per RTT class.
        # Only while the room's acks are spread (state.grid > 1): when everyone acks
        # alike, the newest base is shared anyway and a grid would only cost bytes.
        grid = state.grid
        if grid > 1:
            for i in range(len(acked) - 1, -1, -1):
                candidate_id, candidate = acked[i]
                if base_state.ordinal - candidate.ordinal >= grid:
                    break
                if candidate.ordinal % grid == 0 or state.has_patch_from(candidate):
                    base_id, base_state = candidate_id, candidate
                    break
        patch = state.delta_from(base_state)
        if patch is None:
            return None, state.packed
        while acked[0][0] < base_id:
            acked.popleft()  # the client may drop states older than this base now
        return base_id, patch

    def acknowledged(self, snapshot_id: int) -> None:
        """The client holds snapshot ``snapshot_id`` (acks only ever grow: the session checks)."""
        sent = self._sent
        while sent and sent[0][0] < snapshot_id:
            sent.popleft()
        if sent and sent[0][0] == snapshot_id:
            self._acked.append(sent.popleft())

    def reset(self) -> None:
        """A new room (or none): ticks and states of the old one mean nothing here."""
        self._sent.clear()
        self._acked.clear()


BASE_GRID_TICKS = 4
"""While a room's acks are spread (it needed more than one patch per audience on its
last snapshot tick), bases are taken on snapshot ticks whose ordinal is a multiple of
this (or already diffed this tick), at most this many snapshots older than the newest
acknowledged one.

``bench/delta_spread.py`` at 50 players with RTTs spread over 20-250 ms: ~8 diffs a
tick on any base; on the grid, fewer diffs for a few bytes more per snapshot
(figures in bench/README.md)."""
