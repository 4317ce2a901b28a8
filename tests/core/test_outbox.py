"""Outbox: reliable FIFO, latest-wins snapshot slot, close requests, wake-ups."""

from __future__ import annotations

from gameserver.outbox import CloseRequest, Outbox
from protocol import CloseCode


def test_reliable_frames_keep_fifo_order() -> None:
    """Reliable frames come out in the order they were queued."""
    box = Outbox(max_reliable=8)
    for frame in (b"a", b"b", b"c"):
        box.send(frame)
    assert len(box) == 3
    assert box.take() == [b"a", b"b", b"c"]
    assert box.take() == []
    assert len(box) == 0


def test_snapshot_latest_wins() -> None:
    """A newer snapshot replaces an unsent one, and the replacement is counted."""
    box = Outbox(max_reliable=8)
    box.set_snapshot(b"s1")
    box.set_snapshot(b"s2")
    box.set_snapshot(b"s3")
    assert box.snapshots_replaced == 2
    assert len(box) == 1
    assert box.take() == [b"s3"]
    box.set_snapshot(b"s4")
    assert box.snapshots_replaced == 2  # the slot was empty
    assert box.take() == [b"s4"]


def test_take_returns_reliable_then_snapshot() -> None:
    """take() gives the reliable frames first, then the snapshot, whatever the queue order."""
    box = Outbox(max_reliable=8)
    box.set_snapshot(b"snap")
    box.send(b"e1")
    box.send(b"e2")
    assert box.take() == [b"e1", b"e2", b"snap"]


def test_frames_queued_counts_every_frame() -> None:
    """frames_queued counts reliable frames and snapshots, replaced ones included."""
    box = Outbox(max_reliable=8)
    box.send(b"a")
    box.set_snapshot(b"s1")
    box.set_snapshot(b"s2")
    assert box.frames_queued == 3


def test_overflow_requests_close_4001() -> None:
    """Queuing past max_reliable asks for close 4001; the overflowing frame is not queued."""
    box = Outbox(max_reliable=2)
    box.send(b"a")
    box.send(b"b")
    assert not box.closing
    box.send(b"c")
    assert box.closing
    assert box.close_request is not None
    assert box.close_request.code == CloseCode.TOO_SLOW == 4001
    assert not box.close_request.abort
    assert box.take() == [b"a", b"b"]


def test_after_close_new_frames_are_discarded_but_queued_ones_taken() -> None:
    """After close(), earlier frames are still flushed; later ones are dropped."""
    box = Outbox(max_reliable=8)
    box.send(b"before")
    box.set_snapshot(b"snap-before")
    box.close(1008, "bye")
    box.send(b"after")
    box.set_snapshot(b"snap-after")
    assert box.take() == [b"before", b"snap-before"]
    assert box.close_request == CloseRequest(1008, "bye", False)


def test_first_close_request_wins() -> None:
    """A second close() does not replace the first request."""
    box = Outbox(max_reliable=8)
    box.close(4002, "no pong")
    box.close(1011, "later")
    assert box.close_request == CloseRequest(4002, "no pong", False)


def test_abort_clears_queued_frames() -> None:
    """close(abort=True) drops everything queued: nothing could reach the peer."""
    box = Outbox(max_reliable=8)
    box.send(b"a")
    box.set_snapshot(b"s")
    box.close(4001, "stuck", abort=True)
    assert box.close_request == CloseRequest(4001, "stuck", True)
    assert box.take() == []
    assert len(box) == 0


def test_close_code_is_a_plain_int() -> None:
    """A CloseCode passed to close() is stored as a plain int."""
    box = Outbox(max_reliable=8)
    box.close(CloseCode.PING_TIMEOUT, "x")
    assert box.close_request is not None
    assert type(box.close_request.code) is int


def test_wake_called_on_every_change() -> None:
    """send, set_snapshot and close wake the sender; discarded frames do not."""
    wakes: list[int] = []
    box = Outbox(max_reliable=8, wake=lambda: wakes.append(1))
    box.send(b"a")
    assert len(wakes) == 1
    box.set_snapshot(b"s")
    assert len(wakes) == 2
    box.close(1000, "")
    assert len(wakes) == 3
    box.send(b"late")
    box.set_snapshot(b"late")
    box.close(1001, "again")
    assert len(wakes) == 3
