"""Small fakes shared by tests/core and tests/trio (no I/O, no trio)."""

from __future__ import annotations

from typing import Any

import msgpack

from gameserver.game import Player
from gameserver.latency import LatencyReport
from gameserver.room import Room
from protocol import PackedState, ServerMessage, decode_server_message


class RecordingMember:
    """A RoomMember that records what the room hands it and, like Session, leaves when kicked."""

    def __init__(self, player_id: int, name: str = "p", room: Room | None = None) -> None:
        self.player = Player(player_id, name, LatencyReport)
        self.room = room
        self.now = 0.0
        self.frames: list[bytes] = []
        self.snapshots: list[tuple[int, int | None, PackedState]] = []
        self.kicks: list[tuple[int, str]] = []

    def deliver(self, frame: bytes) -> None:
        self.frames.append(frame)

    def deliver_snapshot(self, tick: int, ack: int | None, state: PackedState) -> None:
        self.snapshots.append((tick, ack, state))

    def kick(self, code: int, reason: str) -> None:
        self.kicks.append((code, reason))
        if self.room is not None:
            self.room.remove(self.player.id, self.now)

    def messages(self) -> list[ServerMessage]:
        """Every reliable frame delivered so far, decoded."""
        return [decode_server_message(frame) for frame in self.frames]


def unpack(state: PackedState) -> Any:
    """Decode a packed game state (as the client sees it inside a snapshot)."""
    return msgpack.unpackb(state, raw=False)
