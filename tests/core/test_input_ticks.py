"""Tick-targeted inputs (``input.tick``, PROTOCOL.md §5.3): when the room applies them.

Driven through Room and Session objects with tick numbers for time: applied exactly
at the target tick, seq order kept (an input waits behind one that waits), a target
already passed is the next tick, one past ``max_input_lead`` is refused, a held seat
drops what waits and a resumed one targets afresh.
"""

from __future__ import annotations

import pytest

from protocol import Error, ErrorCode, Input, ProtocolError, Snapshot, decode_client_message, encode
from tests.core.test_room import make_room, seat
from tests.core.test_seats import arena, player_in, resume
from tests.core.test_session import in_room, make_core, recorder, room_named


def test_applied_exactly_at_the_target_tick() -> None:
    """An input for tick 5 waits through ticks 1-4 and is applied at 5, acked from then."""
    room, game = make_room()
    (member,) = seat(room, 1)
    room.tick(0, 1 / 30)
    assert room.queue_input(1, 1, "at5", tick=5) is None
    for n in range(1, 5):
        room.tick(n, 1 / 30)
        assert game.inputs == [], n
        assert room.seats[1].applied_seq is None
    room.tick(5, 1 / 30)
    assert game.inputs == [(1, "at5")]
    assert member.snapshots[-1][:2] == (5, 1)


def test_seq_order_kept_an_input_waits_behind_a_waiting_one() -> None:
    """Inputs go in seq order: one without a tick (or with an earlier one) waits behind."""
    room, game = make_room()
    seat(room, 1)
    room.tick(0, 1 / 30)
    room.queue_input(1, 1, "a", tick=3)
    room.queue_input(1, 2, "b")  # no tick: would be the next tick, but a waits
    room.queue_input(1, 3, "c", tick=2)  # earlier than a's: still after a
    room.queue_input(1, 4, "d", tick=5)
    room.tick(1, 1 / 30)
    room.tick(2, 1 / 30)
    assert game.inputs == []
    room.tick(3, 1 / 30)
    assert game.inputs == [(1, "a"), (1, "b"), (1, "c")]
    assert room.seats[1].applied_seq == 3
    room.tick(4, 1 / 30)
    assert len(game.inputs) == 3
    room.tick(5, 1 / 30)
    assert game.inputs[-1] == (1, "d")


def test_a_passed_target_is_the_next_tick() -> None:
    """A tick already run (or the current one) is no reason to wait: applied at the next."""
    room, game = make_room()
    seat(room, 1)
    for n in range(8):
        room.tick(n, 1 / 30)
    room.queue_input(1, 1, "late", tick=2)
    room.queue_input(1, 2, "now", tick=7)
    room.tick(8, 1 / 30)
    assert game.inputs == [(1, "late"), (1, "now")]


def test_too_far_ahead_is_refused_and_takes_no_seq() -> None:
    """More than max_input_lead ticks past the current tick: input_too_early, not queued."""
    room, game = make_room(max_input_lead=4)
    seat(room, 1)
    room.tick(10, 1 / 30)
    assert room.queue_input(1, 1, "far", tick=15) == ErrorCode.INPUT_TOO_EARLY
    assert not room.seats[1].inputs and room.seats[1].last_seq is None
    assert room.queue_input(1, 1, "edge", tick=14) is None  # exactly max_input_lead
    for n in range(11, 15):
        room.tick(n, 1 / 30)
    assert game.inputs == [(1, "edge")]
    assert room.seats[1].applied_seq == 1


def test_waiting_inputs_count_against_the_queue() -> None:
    """Inputs waiting for their tick fill input_queue_depth like any queued input."""
    room, _ = make_room(input_queue_depth=2)
    seat(room, 1)
    room.tick(0, 1 / 30)
    assert room.queue_input(1, 1, "a", tick=5) is None
    assert room.queue_input(1, 2, "b", tick=6) is None
    assert room.queue_input(1, 3, "c", tick=7) == ErrorCode.INPUT_QUEUE_FULL


def test_session_passes_the_tick_and_explains_a_refusal() -> None:
    """Over the wire: the tick reaches the room; too far is input_too_early with the numbers."""
    core = make_core(max_input_lead=3)
    client = in_room(core, "rec")
    game = recorder(client)
    room = client.session.room
    assert room is not None
    room.tick(20, 1 / 30)
    client.take()
    client.send(Input(1, "far", tick=24))
    [error] = [m for m in client.take() if isinstance(m, Error)]
    assert (error.code, error.ref) == ("input_too_early", "input")
    assert "24" in error.message and "3 ticks" in error.message and "20" in error.message
    client.send(Input(1, "a", ack=None, tick=23))
    acks = []
    for n in (21, 22, 23):
        room.tick(n, 1 / 30)  # the snapshot slot keeps the newest: read each tick's
        acks += [(m.tick, m.ack) for m in client.take() if isinstance(m, Snapshot)]
    assert acks == [(21, None), (22, None), (23, 1)]
    assert [cmd for _, cmd in game.applied] == ["a"]


def test_wire_field_round_trips_and_is_validated() -> None:
    """input.tick is optional, an int 0..2^53-1; absent when None."""
    assert "tick" not in Input(1, None).to_wire()
    message = decode_client_message(encode(Input(1, {"dx": 1}, ack=2, tick=99)))
    assert message == Input(1, {"dx": 1}, ack=2, tick=99)
    for bad in (-1, 2**53, "5", 1.5, True):
        with pytest.raises(ProtocolError) as info:
            Input.from_wire({"t": "input", "seq": 1, "data": None, "tick": bad})
        assert info.value.code == ErrorCode.BAD_MESSAGE


def test_a_held_seat_drops_waiting_inputs_and_a_resume_targets_afresh() -> None:
    """Inputs waiting for their tick when the connection drops are never applied; after a
    resume, the seq carries on from snapshot.ack and new targets are kept."""
    core = make_core()
    a, token = player_in(core, "ada")
    room = room_named(core, "arena-1")
    avatar = arena(a).avatars[a.pid]
    room.tick(1, 1 / 30)
    a.send(Input(1, {"dx": 1, "dy": 0}))
    a.send(Input(2, {"dx": 0, "dy": 1}, tick=9))
    room.tick(2, 1 / 30)
    assert room.seats[a.pid].applied_seq == 1
    a.session.connection_lost(2.1)
    assert not room.seats[a.pid].inputs  # the tick-9 input is gone with the connection
    for n in range(3, 11):
        room.tick(n, 1 / 30)
    assert room.seats[a.pid].applied_seq == 1
    assert (avatar.dx, avatar.dy) == (0.0, 0.0)  # arena stops a player while away

    new, _ = resume(core, token, 3.0)
    new.send(Input(2, {"dx": -1, "dy": 0}, tick=13))
    room.tick(11, 1 / 30)
    room.tick(12, 1 / 30)
    assert room.seats[a.pid].applied_seq == 1
    room.tick(13, 1 / 30)
    assert room.seats[a.pid].applied_seq == 2
    assert (avatar.dx, avatar.dy) == (-1.0, 0.0)
