"""The plain-int totals behind /metrics: histogram buckets and frame types."""

from __future__ import annotations

from gameserver.counters import Buckets, Counters, frame_type
from protocol import CloseCode, Error, Event, Ping, encode, pack_state, splice_snapshot


def test_buckets_are_inclusive_upper_bounds_and_cumulative() -> None:
    buckets = Buckets((1, 5))
    for value in (0.5, 1, 3, 5, 7):
        buckets.observe(value)
    assert buckets.count == 5 and buckets.sum == 16.5
    assert buckets.cumulative() == [("1.0", 2), ("5.0", 4), ("+Inf", 5)]


def test_frame_type_reads_the_servers_own_frames() -> None:
    assert frame_type(encode(Ping(7))) == "ping"
    assert frame_type(encode(Event("chat", 1, "a", "hi", 3))) == "event"
    assert frame_type(b"\x81\xa1t\xa5hello") == "other"  # not something the server sends
    assert frame_type(b"") == "other"


def test_snapshots_go_to_the_size_histogram_others_by_type() -> None:
    counters = Counters()
    snapshot = splice_snapshot(1, 2, None, b"", pack_state({"x": 1}))
    counters.frame_out(snapshot)
    error = encode(Error("bad_input", "no"))
    counters.frame_out(error)
    assert counters.snapshot_sizes.count == 1
    assert counters.snapshot_sizes.sum == len(snapshot)
    assert counters.messages_out == {"error": 1}
    assert counters.bytes_out == {"error": len(error)}


def test_close_codes_from_clients_are_bounded() -> None:
    counters = Counters()
    counters.closed(CloseCode.NORMAL, "client", evicted=False)
    counters.closed(4999, "client", evicted=False)
    counters.closed(3333, "client", evicted=False)
    counters.closed(CloseCode.TOO_SLOW, "server", evicted=True)
    assert counters.connections_closed == {
        ("1000", "client"): 1,
        ("other", "client"): 2,
        ("4001", "server"): 1,
    }
    assert counters.evicted == 1


def test_unknown_error_codes_are_bounded() -> None:
    counters = Counters()
    counters.error_sent("bad_input")
    counters.error_sent("made_up")
    assert counters.errors_sent == {"bad_input": 1, "other": 1}
