"""The bots' lean connection reads server frames exactly as websockets' own parser does.

Random server frame sequences (small, 16-bit and 64-bit length binary frames,
fragmented messages, text, pings), cut into random reads, go through
``LeanConnection``'s plain-frame fast path and its protocol; the same bytes go
through a plain websockets client ``Protocol`` in one piece. Both must yield
the same messages in the same order.
"""

from __future__ import annotations

import itertools

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.protocol import OPEN, Protocol, Side
from websockets.uri import parse_uri

from clients.loadtest.metrics import Metrics
from clients.loadtest.transport import BotClient, parse_snapshot_envelope, read_snapshot_head
from clients.loadtest.wsclient import LeanConnection
from gameserver.trio.admission import take_plain_binary_frames
from protocol import Ping, Snapshot, encode, encode_snapshot, pack_state
from tests.helpers import queue_frames, whole_messages

frame_specs = st.one_of(
    st.tuples(st.just("binary"), st.binary(max_size=300)),
    st.tuples(st.just("binary"), st.integers(min_value=65536, max_value=70000)),
    st.tuples(st.just("fragmented"), st.lists(st.binary(max_size=40), min_size=2, max_size=3)),
    st.tuples(st.just("text"), st.text(max_size=20)),
    st.tuples(st.just("ping"), st.binary(max_size=10)),
)


def server_wire(specs: list[tuple[str, object]]) -> bytes:
    server = Protocol(Side.SERVER, state=OPEN, max_size=None)
    for kind, data in specs:
        known = queue_frames(server, kind, bytes(data) if isinstance(data, int) else data)
        assert known, kind
    return b"".join(server.data_to_send())


def reference(wire: bytes) -> list[bytes | str]:
    client = Protocol(Side.CLIENT, state=OPEN, max_size=None)
    client.receive_data(wire)
    return whole_messages(client.events_received())


def lean(wire: bytes, cuts: list[int]) -> tuple[list[bytes | str], bytes]:
    """Messages and the bytes the connection wrote back (pongs), read in the given cuts."""
    stream, _ = trio.testing.memory_stream_pair()
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), max_size=None, state=OPEN)
    connection = LeanConnection(stream, protocol)
    bounds = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    messages: list[bytes | str] = []
    for start, end in itertools.pairwise(bounds):
        connection._feed(wire[start:end])
        while connection._messages:
            messages.append(connection._messages.popleft())
    return messages, bytes(connection._backlog)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frame_specs, max_size=6), st.lists(st.integers(min_value=0), max_size=6))
def test_lean_reads_what_websockets_reads(specs: list[tuple[str, object]], cuts: list[int]) -> None:
    wire = server_wire(specs)
    messages, replies = lean(wire, cuts)
    assert messages == reference(wire)
    pings = sum(kind == "ping" for kind, _ in specs)
    assert replies.count(b"\x8a") >= pings  # every ping got its pong (masked, so \x8a + …)


def test_several_snapshots_in_one_read_take_the_fast_path() -> None:
    frames = [b"a" * 10, b"b" * 300, b""]
    wire = server_wire([("binary", f) for f in frames])
    taken: list[bytes] = []
    assert take_plain_binary_frames(wire, taken.append) == b""
    assert taken == frames
    # A ping after them is left to the protocol, from its first byte.
    ping = server_wire([("ping", b"p")])
    assert take_plain_binary_frames(wire + ping, taken.append) == ping


def test_snapshot_envelope_fast_and_general_paths_agree() -> None:
    state = pack_state({"players": [[1, 2.5, "state"], [2, 0.5, "\xa5state"]]})
    for ack, base in [(None, None), (7, None), (7, 3)]:
        frame = encode_snapshot(
            snapshot_id=9, tick=40, ack=ack, rtt_us=1500, jitter_us=20, state=state, base=base
        )
        assert parse_snapshot_envelope(frame) == Snapshot(9, 40, ack, 1500, 20, None, base)
    assert parse_snapshot_envelope(b"\x88\xa1t\xa8snapshot\xa5state\xc0") is None


def test_a_payload_that_looks_like_a_frame_is_not_taken_for_one() -> None:
    """Header in one read, payload in the next: the payload must not be read as frames."""
    lookalike = b"\x82\x02hi"  # an unmasked server frame carrying b"hi"
    server = Protocol(Side.SERVER, state=OPEN, max_size=None)
    server.send_binary(lookalike)
    server.send_binary(b"next")
    wire = b"".join(server.data_to_send())
    assert reference(wire) == [lookalike, b"next"]
    assert lean(wire, [2, 6])[0] == [lookalike, b"next"]


@given(
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.none() | st.integers(min_value=0, max_value=2**64 - 1),
)
def test_lean_head_reads_what_the_full_envelope_reads(
    snapshot_id: int, tick: int, ack: int | None
) -> None:
    state = pack_state({"players": [[1, 2.5, "\xa4tick\xa3ack"]]})
    frame = encode_snapshot(
        snapshot_id=snapshot_id, tick=tick, ack=ack, rtt_us=1500, jitter_us=20, state=state
    )
    assert read_snapshot_head(frame) == Snapshot(snapshot_id, tick, ack, 0, 0, None, None)
    envelope = parse_snapshot_envelope(frame)
    assert envelope is not None
    assert (envelope.id, envelope.tick, envelope.ack) == (snapshot_id, tick, ack)
    # Cut anywhere inside the head: not read as a snapshot (the caller decodes it instead).
    head_end = frame.index(b"\xa6rtt_us")
    for cut in range(head_end):
        assert read_snapshot_head(frame[:cut]) is None


def test_lean_head_refuses_other_layouts() -> None:
    """Another field order or a non-integer is left to the full decoder, which reports it."""
    other_order = b"\x88\xa1t\xa8snapshot\xa4tick\x05\xa2id\x01\xa3ack\xc0"
    assert read_snapshot_head(other_order) is None
    negative_id = b"\x88\xa1t\xa8snapshot\xa2id\xff\xa4tick\x05\xa3ack\xc0"
    assert read_snapshot_head(negative_id) is None
    assert read_snapshot_head(encode(Ping(7))) is None


def test_lean_bot_client_reads_heads_and_still_decodes_the_rest() -> None:
    stream, _ = trio.testing.memory_stream_pair()
    protocol = ClientProtocol(parse_uri("ws://127.0.0.1/"), max_size=None, state=OPEN)
    metrics = Metrics()
    metrics.recording = True
    client = BotClient(LeanConnection(stream, protocol), metrics, lean=True)
    state = pack_state({"players": []})
    frame = encode_snapshot(snapshot_id=3, tick=90, ack=None, rtt_us=800, jitter_us=5, state=state)
    assert client._decode(frame) == Snapshot(3, 90, None, 0, 0, None, None)
    assert metrics.counters["bytes_in"] == len(frame)
    ping = encode(Ping(7))
    assert client._decode(ping) == Ping(7)  # anything else is decoded as usual
