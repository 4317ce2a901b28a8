"""The codec: the snapshot fast path, every decode rejection, and fuzzing.

Every rejection test goes through ``pytest.raises(ProtocolError)``, so any
other exception escaping ``decode_*`` fails the test.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    SERVER_DECODE_LIMITS,
    Ack,
    DecodeLimits,
    ErrorCode,
    Input,
    Ping,
    ProtocolError,
    Snapshot,
    decode_client_message,
    decode_server_message,
    encode,
    encode_snapshot,
    pack_state,
    pack_value,
)
from protocol.messages import CLIENT_MESSAGE_TYPES, SERVER_MESSAGE_TYPES

LIMITS = DecodeLimits()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pack(d: Any) -> bytes:
    data: bytes = msgpack.packb(d, use_bin_type=True)
    return data


def client_error(data: bytes, limits: DecodeLimits = LIMITS) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_client_message(data, limits)
    return info.value


def server_error(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_server_message(data)
    return info.value


def bad(data: bytes) -> ProtocolError:
    """Assert ``data`` is refused as a client message with ``bad_message``."""
    err = client_error(data)
    assert err.code is ErrorCode.BAD_MESSAGE, err
    return err


def input_with(data: Any) -> bytes:
    """An input message whose game data is ``data`` (already packed if bytes)."""
    head = b"\x83\xa1t\xa5input\xa3seq\x01\xa4data"
    return head + (data if isinstance(data, bytes) else pack(data))


def nested(depth: int, leaf: bytes = b"\xc0") -> bytes:
    """``depth`` arrays of one element, one inside the other, around ``leaf``."""
    return b"\x91" * depth + leaf


# -- encode_snapshot ---------------------------------------------------------------

SNAPSHOT_CASES: list[dict[str, Any]] = [
    {"id": 1, "tick": 0, "ack": None, "rtt_us": 0, "jitter_us": 0, "state": None},
    {"id": 2, "tick": 1, "ack": 0, "rtt_us": 1, "jitter_us": 1, "state": {}},
    {"id": 3, "tick": 30, "ack": 17, "rtt_us": 48210, "jitter_us": 2113, "state": []},
    {
        "id": 2**53 - 1,
        "tick": 2**53 - 1,
        "ack": 2**32 - 1,
        "rtt_us": 2**64 - 1,
        "jitter_us": 2**63,
        "state": {"big": [2**64 - 1, -(2**63), 2**53 - 1]},
    },
    {
        "id": 5,
        "tick": 1300,
        "ack": 42,
        "rtt_us": 48210,
        "jitter_us": 2113,
        "state": {
            "players": [[3, 4125, 3000, 2], [7, 5000, 3000, 0]],
            "gems": [[1, 2500, 1500]],
            "deep": {"a": [{"b": [1.5, -0.0, None, True, "é", b"\x00"]}]},
        },
    },
    {"id": 6, "tick": 7, "ack": 1, "rtt_us": 2, "jitter_us": 3, "state": "x" * 70000},
    {"id": 7, "tick": 8, "ack": None, "rtt_us": 2, "jitter_us": 3, "state": b"\xff" * 300},
    {"id": 8, "tick": 9, "ack": 5, "rtt_us": 0, "jitter_us": 0, "state": [0] * 60000},
    {"id": 9, "tick": 10, "ack": 5, "rtt_us": 0, "jitter_us": 0, "state": [], "base": 8},
]


@pytest.mark.parametrize("case", SNAPSHOT_CASES, ids=lambda c: f"id{c['id']}")
def test_encode_snapshot_matches_encode(case: dict[str, Any]) -> None:
    fast = encode_snapshot(
        snapshot_id=case["id"],
        tick=case["tick"],
        ack=case["ack"],
        rtt_us=case["rtt_us"],
        jitter_us=case["jitter_us"],
        state=pack_state(case["state"]),
        base=case.get("base"),
    )
    msg = Snapshot(
        id=case["id"],
        tick=case["tick"],
        ack=case["ack"],
        rtt_us=case["rtt_us"],
        jitter_us=case["jitter_us"],
        state=case["state"],
        base=case.get("base"),
    )
    assert fast == encode(msg)
    if case["rtt_us"] < 2**53 and case["jitter_us"] < 2**53:
        assert decode_server_message(fast) == msg


@FUZZ
@given(
    snapshot_id=st.integers(0, 2**53 - 1),
    tick=st.integers(0, 2**53 - 1),
    ack=st.none() | st.integers(0, 2**32 - 1),
    rtt_us=st.integers(0, 2**53 - 1),
    jitter_us=st.integers(0, 2**53 - 1),
    base=st.none() | st.integers(0, 2**53 - 1),
    state=st.recursive(
        st.none() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=20,
    ),
)
def test_encode_snapshot_matches_encode_fuzzed(
    snapshot_id: int,
    tick: int,
    ack: int | None,
    rtt_us: int,
    jitter_us: int,
    base: int | None,
    state: Any,
) -> None:
    fast = encode_snapshot(
        snapshot_id=snapshot_id,
        tick=tick,
        ack=ack,
        rtt_us=rtt_us,
        jitter_us=jitter_us,
        state=pack_state(state),
        base=base,
    )
    msg = Snapshot(snapshot_id, tick, ack, rtt_us, jitter_us, state, base)
    assert fast == encode(msg)
    assert decode_server_message(fast) == msg


def test_pack_state_is_plain_msgpack() -> None:
    state = {"players": [[1, 2, 3, 4]], "f": 0.5, "b": b"\x01"}
    assert pack_state(state) == pack(state) == pack_value(state)


def test_shared_packer_recovers_after_a_failed_pack() -> None:
    with pytest.raises(TypeError):
        pack_value({"ok": 1, "bad": object()})
    with pytest.raises(OverflowError):
        pack_value([1, 2**64])
    assert encode(Ping(1)) == b"\x82\xa1t\xa4ping\xa5nonce\x01"


def test_encoder_does_not_validate() -> None:
    # encode() trusts its caller: a NaN in game state goes out, and every
    # client decoder refuses the snapshot. Games must keep state finite.
    data = encode(Snapshot(1, 1, None, 0, 0, {"x": math.nan}))
    assert server_error(data).code is ErrorCode.BAD_MESSAGE


# -- not a message -------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 0, 1.5, "input", b"input", [], ["t", "input"], True])
def test_not_a_map(value: Any) -> None:
    assert "map" in bad(pack(value)).detail
    assert server_error(pack(value)).code is ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize(
    "value",
    [{}, {"type": "ping"}, {"t": None}, {"t": 1}, {"t": True}, {"t": b"ping"}, {"t": ["ping"]}],
)
def test_t_missing_or_not_a_string(value: Any) -> None:
    err = bad(pack(value))
    assert "field t" in err.detail
    assert err.ref is None


@pytest.mark.parametrize("t", ["", "Hello", "hello ", "welcome", "snapshot", "x" * 1000])
def test_unknown_type(t: str) -> None:
    err = client_error(pack({"t": t}))
    assert err.code is ErrorCode.UNKNOWN_TYPE
    assert err.ref is None
    assert len(err.detail) < 100  # the peer's t is echoed only in part


def test_unknown_type_is_reported_before_content_checks() -> None:
    # A ref is only ever one of our own type names, never a peer-chosen string.
    err = client_error(pack({"t": "x" * 500, "v": math.nan}))
    assert err.code is ErrorCode.UNKNOWN_TYPE
    assert err.ref is None


def test_empty_frame() -> None:
    bad(b"")


def test_trailing_bytes() -> None:
    good = pack({"t": "leave"})
    decode_client_message(good)
    assert "trailing" in bad(good + b"\xc0").detail
    bad(good + good)
    bad(good + b"\x00")


def test_every_truncation_is_refused() -> None:
    full = encode(Input(5, {"dx": 0.5, "dy": -1.0, "name": "é" * 10}, ack=9))
    decode_client_message(full)
    for n in range(len(full)):
        bad(full[:n])


@pytest.mark.parametrize(
    "blob",
    [
        b"\xa2\xff\xfe",  # invalid start bytes
        b"\xa2\xc3\x28",  # invalid continuation
        b"\xa3\xed\xa0\x80",  # UTF-8 encoded surrogate U+D800
        b"\xa2\xc0\xaf",  # overlong '/'
        b"\xa4\xf4\x90\x80\x80",  # above U+10FFFF
        b"\xa1\x80",  # lone continuation byte
    ],
)
def test_invalid_utf8(blob: bytes) -> None:
    as_value = b"\x82\xa1t\xa4chat\xa4text" + blob
    assert "undecodable" in bad(as_value).detail
    as_key = b"\x82\xa1t\xa5leave" + blob + b"\x01"
    bad(as_key)


@pytest.mark.parametrize(
    "ext",
    [
        b"\xd4\x05\x00",  # fixext 1
        b"\xd5\x05\x00\x00",  # fixext 2
        b"\xd8\x05" + bytes(16),  # fixext 16
        b"\xc7\x03\x05abc",  # ext 8
        b"\xc7\x00\x05",  # ext 8 of length 0: passes msgpack's max_ext_len=0
        b"\xc7\x00\x80",  # ext 8 of length 0, negative type
        b"\xc8\x00\x00\x05",  # ext 16 of length 0
        b"\xc9\x00\x00\x00\x00\x05",  # ext 32 of length 0
    ],
)
def test_ext_types_refused(ext: bytes) -> None:
    bad(input_with(ext))
    bad(input_with(b"\x91" + ext))  # nested in an array
    bad(input_with(b"\x81\xa1k" + ext))  # as a map value
    bad(b"\x82\xa1t\xa5leave\xa1x" + ext)  # a top-level extra field


@pytest.mark.parametrize(
    "stamp",
    [
        msgpack.Timestamp(0, 0),
        msgpack.Timestamp(1_700_000_000, 0),  # timestamp 32
        msgpack.Timestamp(1_700_000_000, 5),  # timestamp 64
        msgpack.Timestamp(2**40, 1),  # timestamp 96
        datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    ],
)
def test_timestamps_refused(stamp: Any) -> None:
    raw = msgpack.packb(stamp, datetime=True)
    assert raw[0] in (0xD6, 0xD7, 0xC7)
    bad(input_with(raw))
    bad(b"\x83\xa1t\xa4pong\xa5nonce\x01\xa2at" + raw)


def test_zero_length_timestamp_refused() -> None:
    bad(input_with(b"\xc7\x00\xff"))


@pytest.mark.parametrize(
    "blob",
    [
        b"\x82\xa1t\xa5leave\x01\x02",  # int key at the top level
        b"\x82\xa1t\xa5leave\xc0\x02",  # nil key
        b"\x82\xa1t\xa5leave\xc3\x02",  # bool key
        b"\x82\xa1t\xa5leave\xcb" + struct.pack(">d", 1.0) + b"\x02",  # float key
        b"\x82\xa1t\xa5leave\x91\x01\x02",  # array key
        b"\x82\xa1t\xa5leave\xc4\x01k\x02",  # bin key (passes strict_map_key)
        input_with(b"\x81\x01\x02"),  # int key inside game data
        input_with(b"\x81\xc4\x02dx\x01"),  # bin key inside game data
        input_with(b"\x91\x81\xc4\x01k\x01"),  # bin key, nested
    ],
)
def test_map_keys_must_be_strings(blob: bytes) -> None:
    bad(blob)


# -- size limits -----------------------------------------------------------------------


def message_of_size(size: int) -> bytes:
    """A valid input message of exactly ``size`` bytes (bin blobs as padding)."""
    blobs = [b"x" * 1000 for _ in range(size // 1010)]
    for last in range(1025):
        data = input_with([*blobs, b"x" * last])
        if len(data) == size:
            return data
    raise AssertionError(f"no message of {size} bytes")


def test_message_size_limit() -> None:
    exact = message_of_size(LIMITS.max_message_bytes)
    decode_client_message(exact)
    err = bad(message_of_size(LIMITS.max_message_bytes + 1))
    assert str(LIMITS.max_message_bytes) in err.detail
    small = DecodeLimits(max_message_bytes=256)
    decode_client_message(message_of_size(256), small)
    assert client_error(message_of_size(257), small).code is ErrorCode.BAD_MESSAGE


def test_size_limit_is_checked_before_decoding() -> None:
    # Garbage over the cap is refused for its size, not for its content.
    err = bad(b"\xc1" * (LIMITS.max_message_bytes + 1))
    assert "over" in err.detail


def test_string_length_limit() -> None:
    decode_client_message(pack({"t": "chat", "text": "x" * LIMITS.max_str_len}))
    bad(pack({"t": "chat", "text": "x" * (LIMITS.max_str_len + 1)}))
    bad(input_with({"s": "é" * 513}))  # 1026 bytes: the cap is in bytes
    bad(b"\x82\xa1t\xa5leave" + pack("k" * 1025) + b"\x01")  # a long key


def test_bin_length_limit() -> None:
    decode_client_message(input_with(pack(b"\x00" * LIMITS.max_bin_len)))
    bad(input_with(pack(b"\x00" * (LIMITS.max_bin_len + 1))))


def test_array_length_limit() -> None:
    decode_client_message(input_with([0] * LIMITS.max_array_len))
    bad(input_with([0] * (LIMITS.max_array_len + 1)))
    bad(input_with([[0] * (LIMITS.max_array_len + 1)]))
    # a header announcing 2^32-1 elements is refused before anything is allocated
    bad(input_with(b"\xdd\xff\xff\xff\xff"))


def test_map_length_limit() -> None:
    decode_client_message(input_with({f"k{i}": 0 for i in range(LIMITS.max_map_len)}))
    bad(input_with({f"k{i}": 0 for i in range(LIMITS.max_map_len + 1)}))
    top = {"t": "leave", **{f"k{i}": 0 for i in range(LIMITS.max_map_len - 1)}}
    decode_client_message(pack(top))
    bad(pack({**top, "one_more": 0}))
    bad(input_with(b"\xdf\xff\xff\xff\xff"))


def test_nesting_limit() -> None:
    # The message map is level 1: game data may add up to max_depth - 1 levels.
    decode_client_message(input_with(nested(LIMITS.max_depth - 1)))
    err = bad(input_with(nested(LIMITS.max_depth)))
    assert f"deeper than {LIMITS.max_depth}" in err.detail
    assert err.ref == "input"
    bad(input_with(nested(100)))
    maps = b"\x81\xa1k" * LIMITS.max_depth + b"\x01"
    bad(input_with(maps))
    decode_client_message(input_with(maps[3:]))


def test_nesting_far_too_deep_hits_msgpack_stack_limit() -> None:
    data = input_with(nested(2000))
    assert len(data) <= LIMITS.max_message_bytes
    err = bad(data)
    assert "nested too deeply" in err.detail  # msgpack's StackError, turned into bad_message
    deep = DecodeLimits(max_depth=10_000)
    with pytest.raises(ProtocolError) as info:
        decode_client_message(data, deep)
    assert info.value.code is ErrorCode.BAD_MESSAGE


def test_server_limits_are_larger() -> None:
    big = Snapshot(1, 1, None, 0, 0, {"players": [[i, i, i, i] for i in range(5000)]})
    data = encode(big)
    assert len(data) > LIMITS.max_message_bytes
    assert decode_server_message(data) == big
    deep = Snapshot(1, 1, None, 0, 0, nested_list(30))
    assert decode_server_message(encode(deep)) == deep
    with pytest.raises(ProtocolError):
        decode_server_message(data, LIMITS)
    assert SERVER_DECODE_LIMITS.max_message_bytes == 1 << 20


def nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# -- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"\xcb" + struct.pack(">d", math.nan),
        b"\xcb" + struct.pack(">d", math.inf),
        b"\xcb" + struct.pack(">d", -math.inf),
        b"\xca" + struct.pack(">f", math.nan),
        b"\xca" + struct.pack(">f", math.inf),
        b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x01",  # a signalling NaN
    ],
)
def test_nan_and_infinity_refused_anywhere(raw: bytes) -> None:
    assert "NaN" in bad(input_with(raw)).detail
    bad(input_with(b"\x82\xa2dx" + raw + b"\xa2dy\x00"))  # +inf inside input.data
    bad(input_with(b"\x91\x91" + raw))
    bad(b"\x82\xa1t\xa5leave\xa1x" + raw)  # an ignored extra field is still checked
    bad(b"\x83\xa1t\xa5hello\xa7version" + raw + b"\xa4name\xa1a")
    welcome = pack({"t": "ping", "nonce": 1})
    assert server_error(welcome[:-1] + b"\x01\xa1x" + raw).code is ErrorCode.BAD_MESSAGE


def test_finite_floats_and_ints_pass_in_game_data() -> None:
    for value in (0.0, -0.0, 1e308, -1e-308, 5e-324, 2**64 - 1, -(2**63)):
        msg = decode_client_message(input_with({"v": value}))
        assert isinstance(msg, Input)
        assert msg.data == {"v": value}
    float32 = decode_client_message(input_with(b"\xca" + struct.pack(">f", 0.5)))
    assert isinstance(float32, Input)
    assert float32.data == 0.5


@pytest.mark.parametrize(
    "raw",
    [
        b"\x01",  # positive fixint
        b"\xcc\x01",  # uint 8
        b"\xcd\x00\x01",  # uint 16
        b"\xce\x00\x00\x00\x01",  # uint 32
        b"\xcf" + bytes(7) + b"\x01",  # uint 64
        b"\xd0\x01",  # int 8
        b"\xd1\x00\x01",  # int 16
        b"\xd2\x00\x00\x00\x01",  # int 32
        b"\xd3" + bytes(7) + b"\x01",  # int 64
    ],
)
def test_integer_encodings_are_all_accepted(raw: bytes) -> None:
    msg = decode_client_message(b"\x82\xa1t\xa3ack\xa2id" + raw)
    assert msg == Ack(1)


# -- fuzzing ----------------------------------------------------------------------------

KNOWN_CLIENT_REFS = {None, *CLIENT_MESSAGE_TYPES}
KNOWN_SERVER_REFS = {None, "room", *SERVER_MESSAGE_TYPES}


def _check_error(err: ProtocolError, refs: set[str | None]) -> None:
    assert isinstance(err.code, ErrorCode)
    assert err.ref in refs
    assert len(err.detail) <= 256


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_client_bytes(data: bytes) -> None:
    try:
        msg = decode_client_message(data)
    except ProtocolError as err:
        _check_error(err, KNOWN_CLIENT_REFS)
    else:
        assert msg.TYPE in CLIENT_MESSAGE_TYPES


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_server_bytes(data: bytes) -> None:
    try:
        msg = decode_server_message(data)
    except ProtocolError as err:
        _check_error(err, KNOWN_SERVER_REFS)
    else:
        assert msg.TYPE in SERVER_MESSAGE_TYPES


_FIELD_NAMES = sorted(
    {"t", "x", "room", "players", "max_players", "name", "game", "info"}
    | {
        f.name
        for cls in (*CLIENT_MESSAGE_TYPES.values(), *SERVER_MESSAGE_TYPES.values())
        for f in dataclasses.fields(cls)
    }
)
_KEYS = st.sampled_from(_FIELD_NAMES) | st.text(max_size=4)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**53 - 1, 2**53, -1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.binary(max_size=8)
    | st.sampled_from(["join", "leave", "chat", "arena", "", "x" * 33])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=8,
)


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


_name = st.text(min_size=1, max_size=32)
_u32 = st.integers(0, 2**32 - 1)
_u53 = st.integers(0, 2**53 - 1)
_room = st.fixed_dictionaries(
    {
        "name": _name,
        "game": _name,
        "max_players": st.integers(1, 2**32 - 1),
        "players": st.lists(st.tuples(_u32, st.text(max_size=32)).map(list), max_size=3),
        "info": _values,
    }
)
_VALID_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "hello": {
        "version": _u32,
        "name": _name,
        "game": _opt(_name),
        "room": _opt(_name),
        "ticket": _opt(st.text(min_size=1, max_size=64)),
    },
    "join": {"game": _opt(_name), "room": _opt(_name)},
    "leave": {},
    "input": {"seq": _u32, "data": _values, "ack": _opt(_u53)},
    "chat": {"text": st.text(max_size=50)},
    "pong": {"nonce": _u53},
    "ack": {"id": _u53},
    "welcome": {
        "version": _u32,
        "player": _u32,
        "tick_rate": st.integers(1, 1000),
        "snapshot_rate": st.integers(1, 1000),
        "tick": _u53,
        "limits": st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**64 - 1)),
        "games": st.lists(st.text(max_size=8), max_size=3),
        "room": _opt(_room),
    },
    "joined": {"room": _room},
    "left": {"room": _name},
    "snapshot": {
        "id": _u53,
        "tick": _u53,
        "ack": _opt(_u32),
        "rtt_us": _u53,
        "jitter_us": _u53,
        "base": _opt(_u53),
        "state": _values,
    },
    "event": {
        "kind": st.sampled_from(["join", "leave", "chat"]),
        "player": _u32,
        "name": st.text(max_size=32),
        "text": _opt(st.text(max_size=20)),
        "tick": _u53,
    },
    "ping": {"nonce": _u53},
    "redirect": {
        "url": st.sampled_from(["ws://127.0.0.1:9002/", "wss://game.example/w1/"]),
        "ticket": st.text(min_size=1, max_size=64),
        "room": _name,
        "ttl_ms": _u32,
    },
    "error": {
        "code": st.text(max_size=64),
        "message": st.text(max_size=20),
        "ref": _opt(st.text(max_size=64)),
    },
}


def _messages(types: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Valid messages of ``types``, then 0-2 fields replaced or removed, or an unknown t."""

    def one(t: str) -> st.SearchStrategy[dict[str, Any]]:
        return st.builds(
            lambda fields, changes, drop: {
                **{k: v for k, v in fields.items() if k != drop},
                **dict(changes),
                "t": t,
            },
            st.fixed_dictionaries(_VALID_FIELDS[t]),
            st.lists(st.tuples(_KEYS, _values), max_size=2),
            st.none() | st.sampled_from([*_VALID_FIELDS[t], "x"]),
        )

    return st.one_of(*(one(t) for t in sorted(types))) | st.builds(
        lambda t, rest: {**rest, "t": t}, st.text(max_size=6), st.dictionaries(_KEYS, _values)
    )


@FUZZ
@given(_messages(CLIENT_MESSAGE_TYPES))
def test_fuzz_client_values(value: dict[str, Any]) -> None:
    data = pack(value)
    try:
        msg = decode_client_message(data, SERVER_DECODE_LIMITS)
    except ProtocolError as err:
        _check_error(err, KNOWN_CLIENT_REFS)
        return
    # whatever decodes re-encodes to something that decodes to the same message
    assert decode_client_message(encode(msg), SERVER_DECODE_LIMITS) == msg


@FUZZ
@given(_messages(SERVER_MESSAGE_TYPES))
def test_fuzz_server_values(value: dict[str, Any]) -> None:
    data = pack(value)
    try:
        msg = decode_server_message(data)
    except ProtocolError as err:
        _check_error(err, KNOWN_SERVER_REFS)
        return
    assert decode_server_message(encode(msg)) == msg


@FUZZ
@given(
    st.sampled_from(
        [
            encode(Input(42, {"dx": 1.0, "dy": -0.5}, ack=17)),
            pack({"t": "hello", "version": 1, "name": "ada", "game": "arena"}),
            pack({"t": "chat", "text": "hi there"}),
        ]
    ),
    st.data(),
)
def test_fuzz_mutated_messages(original: bytes, data: st.DataObject) -> None:
    buf = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    try:
        decode_client_message(bytes(buf))
    except ProtocolError as err:
        _check_error(err, KNOWN_CLIENT_REFS)
