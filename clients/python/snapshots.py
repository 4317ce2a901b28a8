"""How a client receives snapshots: delta snapshots applied, and when to acknowledge.

Delta snapshots (PROTOCOL.md §5.6): a :class:`SnapshotReceiver` applies each one
to the state it was sent against (``protocol.delta.SnapshotStates``), so callers
always see full states. What was applied is acknowledged: in each input, and with
an ``ack`` message when no input went out for ``IDLE_ACK_AFTER`` seconds (at most
one per snapshot, so within the server's message rate). A room whose game has a
format of its own (``RoomInfo.delta``) needs the game's ``apply_patch``; without
it nothing is acknowledged there, so the server keeps sending full snapshots.
Sending is the client's part (:class:`~clients.python.game_client.GameClient`):
this class only keeps the states and says what to acknowledge.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from protocol import RoomInfo, Snapshot
from protocol.delta import DeltaError, SnapshotStates
from protocol.delta import apply as delta_apply
from protocol.server_messages import DEFAULT_DELTA_FORMAT

IDLE_ACK_AFTER = 0.1
"""Seconds without an input (which carries the ack) before snapshots are acked on their own."""


class SnapshotReceiver:
    """The states one client holds to apply deltas to, and what it acknowledged of them."""

    def __init__(self, apply_patch: Callable[[Any, Any], Any] | None = None) -> None:
        self._own_apply = apply_patch
        """The game's ``apply``, for rooms whose ``RoomInfo.delta`` is not the generic format."""
        self._states = SnapshotStates()
        self.acking = True
        """False where we cannot apply the room's deltas (or lost a base): no acks, so full."""
        self.acked_id = 0
        """The newest snapshot acknowledged (by an input or an ``ack``)."""
        self._acked_at = -math.inf
        self._input_at = -math.inf
        self.deltas_applied = 0
        """Delta snapshots received and applied."""

    def receive(self, snapshot: Snapshot, room: RoomInfo | None) -> Snapshot | None:
        """``snapshot`` with its full state (a delta applied to its base), received in ``room``;
        None for a delta whose base is not held (acks stop until a full one)."""
        try:
            state = self._states.receive(snapshot.id, snapshot.base, snapshot.state)
        except DeltaError:
            self.acking = False  # the server sends a full one within its delta window
            return None
        if snapshot.base is not None:
            self.deltas_applied += 1
            snapshot = dataclasses.replace(snapshot, state=state)
        if room is not None:
            self.acking = self._can_apply(room)  # again, after a lost base
        return snapshot

    def entered(self, room: RoomInfo) -> None:
        """Seated in ``room`` (joined, or welcomed into it): its deltas, none of the last room's."""
        self._states.clear()
        generic = room.delta == DEFAULT_DELTA_FORMAT
        self._states.apply_patch = delta_apply if generic else self._own_apply or _no_apply
        self.acking = self._can_apply(room)

    def left(self) -> None:
        """Out of the room: no states to apply deltas to."""
        self._states.clear()

    def moved(self) -> None:
        """Over a new connection (a redirect): nothing held, nothing acknowledged there."""
        self._states.clear()
        self.acked_id = 0

    def _can_apply(self, room: RoomInfo) -> bool:
        return room.delta == DEFAULT_DELTA_FORMAT or self._own_apply is not None

    def idle_ack_due(self, snapshot_id: int, now: float, limits: Mapping[str, Any]) -> bool:
        """Whether to acknowledge ``snapshot_id`` with an ``ack`` message at ``now`` (if so, it
        counts as sent): no input went out for a while, and at most every other message the
        server's rate (``limits`` of the welcome) allows (pongs and inputs have the rest)."""
        if not self.acking or snapshot_id <= self.acked_id:
            return False
        spacing = 2.0 / max(float(limits.get("messages_per_second", 60)), 1.0)
        if now - self._input_at >= IDLE_ACK_AFTER and now - self._acked_at >= spacing:
            self.acked_id, self._acked_at = snapshot_id, now
            return True
        return False

    def ack_newest(self, latest: Snapshot | None) -> int | None:
        """The id to acknowledge the newest snapshot ``latest`` with (counted as acknowledged),
        or None: none yet, or none we acknowledge."""
        if latest is None or not self.acking:
            return None
        self.acked_id = latest.id
        return latest.id

    def input_sent(self, now: float) -> None:
        """An input (carrying the ack) went out at ``now``: no idle ack for a while."""
        self._input_at = now


def _no_apply(old: Any, patch: Any) -> Any:
    raise DeltaError("a delta in a format this client cannot apply")
