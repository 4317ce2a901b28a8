"""SnapshotReceiver (the Python client's delta snapshots and ack policy), without a socket.

Times are plain numbers handed in: the receiver reads no clock.
"""

from __future__ import annotations

from clients.python.snapshots import IDLE_ACK_AFTER, SnapshotReceiver
from protocol import RoomInfo, Snapshot
from protocol.delta import diff
from protocol.server_messages import DEFAULT_DELTA_FORMAT

ROOM = RoomInfo("r1", "arena", 8, ())
OWN_FORMAT_ROOM = RoomInfo("r2", "chess", 2, (), delta="chess-moves")
LIMITS = {"messages_per_second": 20}  # spacing of idle acks: 2 / 20 = 0.1 s


def full(snapshot_id: int, state: object) -> Snapshot:
    return Snapshot(snapshot_id, snapshot_id, None, 0, 0, state, None)


def delta(snapshot_id: int, base: int, old: object, new: object) -> Snapshot:
    return Snapshot(snapshot_id, snapshot_id, None, 0, 0, diff(old, new), base)


def test_a_delta_comes_out_with_its_full_state_and_is_counted() -> None:
    receiver = SnapshotReceiver()
    receiver.entered(ROOM)
    assert receiver.receive(full(1, {"x": 1, "y": 2}), ROOM) == full(1, {"x": 1, "y": 2})
    applied = receiver.receive(delta(2, 1, {"x": 1, "y": 2}, {"x": 5, "y": 2}), ROOM)
    assert applied is not None and applied.state == {"x": 5, "y": 2} and applied.base == 1
    assert receiver.deltas_applied == 1 and receiver.acking


def test_a_lost_base_stops_acks_until_a_full_snapshot() -> None:
    receiver = SnapshotReceiver()
    receiver.entered(ROOM)
    assert receiver.receive(delta(5, 4, {"x": 1}, {"x": 2}), ROOM) is None
    assert not receiver.acking
    assert receiver.ack_newest(full(5, {"x": 2})) is None
    assert receiver.receive(full(6, {"x": 3}), ROOM) is not None
    assert receiver.acking and receiver.ack_newest(full(6, {"x": 3})) == 6


def test_a_room_of_its_own_format_is_acked_only_with_the_games_apply() -> None:
    without = SnapshotReceiver()
    without.entered(OWN_FORMAT_ROOM)
    assert not without.acking
    assert without.receive(Snapshot(2, 2, None, 0, 0, "e2e4", 1), OWN_FORMAT_ROOM) is None

    with_apply = SnapshotReceiver(lambda old, patch: [*old, patch])
    with_apply.entered(OWN_FORMAT_ROOM)
    assert with_apply.acking
    assert with_apply.receive(full(1, []), OWN_FORMAT_ROOM) is not None
    applied = with_apply.receive(Snapshot(2, 2, None, 0, 0, "e2e4", 1), OWN_FORMAT_ROOM)
    assert applied is not None and applied.state == ["e2e4"]
    assert ROOM.delta == DEFAULT_DELTA_FORMAT != OWN_FORMAT_ROOM.delta


def test_idle_acks_wait_for_quiet_inputs_and_the_message_rate() -> None:
    receiver = SnapshotReceiver()
    receiver.entered(ROOM)
    receiver.input_sent(10.0)
    quiet = 10.0 + IDLE_ACK_AFTER * 1.5
    assert not receiver.idle_ack_due(1, 10.0 + IDLE_ACK_AFTER / 2, LIMITS)  # an input comes
    assert receiver.idle_ack_due(1, quiet, LIMITS)
    assert not receiver.idle_ack_due(1, 11.0, LIMITS)  # at most one per snapshot
    assert not receiver.idle_ack_due(2, quiet + 0.05, LIMITS)  # 0.1 s apart at 20 messages/s
    assert receiver.idle_ack_due(2, quiet + 0.15, LIMITS)
    assert receiver.acked_id == 2


def test_a_new_connection_forgets_what_was_acked() -> None:
    receiver = SnapshotReceiver()
    receiver.entered(ROOM)
    assert receiver.ack_newest(full(7, {})) == 7 and receiver.acked_id == 7
    receiver.moved()
    assert receiver.acked_id == 0
    assert receiver.receive(delta(8, 7, {}, {"x": 1}), ROOM) is None  # its base is gone
