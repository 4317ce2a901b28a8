"""Every message type: round trips, required fields, ranges and types of each field."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from protocol import (
    MAX_NAME_CHARS,
    PROTOCOL_VERSION,
    Ack,
    Chat,
    ClientMessage,
    Error,
    ErrorCode,
    Event,
    Hello,
    Input,
    Join,
    Joined,
    Leave,
    Left,
    Ping,
    PlayerInfo,
    Pong,
    ProtocolError,
    Redirect,
    RoomInfo,
    ServerMessage,
    Snapshot,
    Welcome,
    decode_client_message,
    decode_server_message,
    encode,
)
from protocol.messages import CLIENT_MESSAGE_TYPES, SERVER_MESSAGE_TYPES

UINT32_MAX = 2**32 - 1
UINT53_MAX = 2**53 - 1

ARENA_INFO = {"width": 1000, "height": 600, "walls": [[300, 150, 40, 300]]}
ROOM = RoomInfo("arena-1", "arena", 50, (PlayerInfo(3, "bob"), PlayerInfo(7, "ada")), ARENA_INFO)
LIMITS = {"max_message_bytes": 4096, "messages_per_second": 60}

CLIENT_EXAMPLES: list[ClientMessage] = [
    Hello(PROTOCOL_VERSION, "ada"),
    Hello(PROTOCOL_VERSION, "ada", game="arena"),
    Hello(PROTOCOL_VERSION, "ada", room="lobby-7"),
    Hello(PROTOCOL_VERSION, "ada", game="arena", room="arena-1"),
    Hello(PROTOCOL_VERSION, "ada", ticket="Xk2v9Qp0aZ7sLm4RtY8wEq"),
    Hello(UINT32_MAX, "x" * MAX_NAME_CHARS),
    Hello(0, "\N{SNOWMAN}" * MAX_NAME_CHARS),
    Join(game="arena"),
    Join(room="arena-1"),
    Join(game="arena", room="arena-1"),
    Leave(),
    Input(0, {"dx": 1.0, "dy": -0.5}),
    Input(UINT32_MAX, {"dx": 1, "dy": 0}, ack=UINT53_MAX),
    Input(7, None, ack=0),
    Input(8, [1, "two", 3.5, None, True, b"\x00\xff", {"k": [[]]}]),
    Chat("hello"),
    Chat(""),
    Chat("日本語 ✓ \N{PILE OF POO}"),
    Pong(0),
    Pong(UINT53_MAX),
    Ack(0),
    Ack(UINT53_MAX),
]

SERVER_EXAMPLES: list[ServerMessage] = [
    Welcome(1, 7, 30, 30, 1234, LIMITS, ("arena",)),
    Welcome(1, 0, 1000, 1, UINT53_MAX, {}, (), ROOM),
    Welcome(1, UINT32_MAX, 1, 1, 0, LIMITS, ("arena", "pong"), ROOM),
    Joined(ROOM),
    Joined(RoomInfo("r", "g", 1, (), None)),
    Joined(RoomInfo("r", "g", UINT32_MAX, (PlayerInfo(UINT32_MAX, ""),), [1, {"a": b"x"}])),
    Left("arena-1"),
    Snapshot(id=1, tick=0, ack=None, rtt_us=0, jitter_us=0, state=None),
    Snapshot(id=UINT53_MAX, tick=UINT53_MAX, ack=UINT32_MAX, rtt_us=1, jitter_us=2, state={}),
    Snapshot(
        id=5,
        tick=1300,
        ack=42,
        rtt_us=48210,
        jitter_us=2113,
        state={"players": [[3, 4125, 3000, 2]], "gems": [[1, 2500, 1500]]},
        base=4,
    ),
    Event("join", 7, "ada", tick=1234),
    Event("leave", 7, "ada", tick=1235),
    Event("chat", 3, "bob", "hi ada", tick=1240),
    Ping(0),
    Ping(UINT53_MAX),
    Error(ErrorCode.ROOM_FULL, "room 'arena-1' is full", ref="join"),
    Error("some_future_code", ""),
    Redirect("ws://127.0.0.1:9002/", "Xk2v9Qp0aZ7sLm4RtY8wEq", "arena-7", 10_000),
    Redirect("wss://game.example/w1/", "t", "r", UINT32_MAX),
]


def pack(d: Any) -> bytes:
    data: bytes = msgpack.packb(d, use_bin_type=True)
    return data


def client_error(d: Any) -> ProtocolError:
    """Decode ``d`` (a value to pack, or bytes) as a client message and return the error."""
    data = d if isinstance(d, bytes) else pack(d)
    with pytest.raises(ProtocolError) as info:
        decode_client_message(data)
    return info.value


def server_error(d: Any) -> ProtocolError:
    data = d if isinstance(d, bytes) else pack(d)
    with pytest.raises(ProtocolError) as info:
        decode_server_message(data)
    return info.value


# -- round trips --------------------------------------------------------------


@pytest.mark.parametrize("msg", CLIENT_EXAMPLES, ids=repr)
def test_client_round_trip(msg: ClientMessage) -> None:
    assert decode_client_message(encode(msg)) == msg


@pytest.mark.parametrize("msg", SERVER_EXAMPLES, ids=repr)
def test_server_round_trip(msg: ServerMessage) -> None:
    assert decode_server_message(encode(msg)) == msg


def test_examples_cover_every_type() -> None:
    assert {m.TYPE for m in CLIENT_EXAMPLES} == set(CLIENT_MESSAGE_TYPES)
    assert {m.TYPE for m in SERVER_EXAMPLES} == set(SERVER_MESSAGE_TYPES)


def test_directions_are_disjoint() -> None:
    assert not set(CLIENT_MESSAGE_TYPES) & set(SERVER_MESSAGE_TYPES)
    for t in CLIENT_MESSAGE_TYPES:
        assert server_error({"t": t}).code is ErrorCode.UNKNOWN_TYPE
    for t in SERVER_MESSAGE_TYPES:
        assert client_error({"t": t}).code is ErrorCode.UNKNOWN_TYPE


def test_optional_fields_are_omitted_on_the_wire() -> None:
    assert Hello(1, "ada").to_wire() == {"t": "hello", "version": 1, "name": "ada"}
    assert Join(game="arena").to_wire() == {"t": "join", "game": "arena"}
    assert Input(1, None).to_wire() == {"t": "input", "seq": 1, "data": None}
    assert "text" not in Event("join", 1, "a", tick=1).to_wire()
    assert "ref" not in Error("x", "y").to_wire()


def test_snapshot_and_welcome_always_carry_their_nil_fields() -> None:
    snap = Snapshot(id=1, tick=1, ack=None, rtt_us=0, jitter_us=0, state=None).to_wire()
    assert list(snap) == ["t", "id", "tick", "ack", "rtt_us", "jitter_us", "base", "state"]
    assert snap["ack"] is None and snap["base"] is None
    assert Welcome(1, 1, 30, 30, 0, {}, ()).to_wire()["room"] is None


def test_absent_and_nil_optional_fields_are_equivalent() -> None:
    base = {"t": "hello", "version": 1, "name": "ada"}
    nils = {**base, "game": None, "room": None}
    assert decode_client_message(pack(base)) == decode_client_message(pack(nils))
    with_ack = {"t": "input", "seq": 1, "data": 0, "ack": None}
    assert decode_client_message(pack(with_ack)) == Input(1, 0)
    err = {"t": "error", "code": "x", "message": "y", "ref": None}
    assert decode_server_message(pack(err)) == Error("x", "y")


def test_unknown_fields_are_ignored() -> None:
    extra = {"t": "pong", "nonce": 5, "future": [1, 2], "x": {"y": None}}
    assert decode_client_message(pack(extra)) == Pong(5)
    room = {**ROOM.to_wire(), "future": 1}
    welcome = {**Welcome(1, 7, 30, 30, 9, LIMITS, ("arena",)).to_wire(), "room": room, "z": 0}
    assert decode_server_message(pack(welcome)).room == ROOM  # type: ignore[union-attr]


def test_input_data_is_passed_through_unchanged() -> None:
    data = {"dx": 0.25, "keys": ["w", "a"], "blob": b"\x01\x02", "n": None, "b": False}
    msg = decode_client_message(pack({"t": "input", "seq": 3, "data": data}))
    assert isinstance(msg, Input)
    assert msg.data == data
    assert type(msg.data["b"]) is bool


# -- required fields ------------------------------------------------------------

CLIENT_REQUIRED: list[tuple[dict[str, Any], str]] = [
    ({"t": "hello", "version": 1, "name": "ada"}, "version"),
    ({"t": "hello", "version": 1, "name": "ada"}, "name"),
    ({"t": "input", "seq": 1, "data": {}}, "seq"),
    ({"t": "input", "seq": 1, "data": {}}, "data"),
    ({"t": "chat", "text": "hi"}, "text"),
    ({"t": "pong", "nonce": 1}, "nonce"),
    ({"t": "ack", "id": 1}, "id"),
]

SERVER_REQUIRED: list[tuple[dict[str, Any], str]] = [
    *(
        (Welcome(1, 7, 30, 30, 1234, LIMITS, ("arena",)).to_wire(), key)
        for key in ("version", "player", "tick_rate", "snapshot_rate", "tick", "limits", "games")
    ),
    ({"t": "joined", "room": ROOM.to_wire()}, "room"),
    ({"t": "left", "room": "r"}, "room"),
    *(
        (Snapshot(id=1, tick=2, ack=3, rtt_us=4, jitter_us=5, state=[]).to_wire(), key)
        for key in ("id", "tick", "rtt_us", "jitter_us")
    ),
    *(
        (Event("chat", 1, "a", "hi", tick=3).to_wire(), key)
        for key in ("kind", "player", "name", "tick")
    ),
    ({"t": "ping", "nonce": 1}, "nonce"),
    ({"t": "error", "code": "x", "message": "y"}, "code"),
    ({"t": "error", "code": "x", "message": "y"}, "message"),
    *(
        ({"t": "joined", "room": ROOM.to_wire()}, f"room.{key}")
        for key in ("name", "game", "max_players", "players")
    ),
]


def _without(d: dict[str, Any], key: str, replacement: Any = ...) -> dict[str, Any]:
    """``d`` with ``key`` (``a.b`` reaches into a nested map) removed or replaced."""
    d = dict(d)
    head, _, rest = key.partition(".")
    if rest:
        d[head] = _without(d[head], rest, replacement)
    elif replacement is ...:
        del d[head]
    else:
        d[head] = replacement
    return d


@pytest.mark.parametrize(("wire", "key"), CLIENT_REQUIRED, ids=lambda v: str(v)[:24])
def test_client_required_field_missing(wire: dict[str, Any], key: str) -> None:
    decode_client_message(pack(wire))  # valid as given
    err = client_error(_without(wire, key))
    assert err.code is ErrorCode.BAD_MESSAGE
    assert err.ref == wire["t"]


@pytest.mark.parametrize(("wire", "key"), [r for r in CLIENT_REQUIRED if r[1] != "data"])
def test_client_required_field_nil(wire: dict[str, Any], key: str) -> None:
    assert client_error(_without(wire, key, None)).code is ErrorCode.BAD_MESSAGE


def test_input_data_nil_is_accepted_but_absent_is_not() -> None:
    # data is required yet may be nil: the game then refuses it (bad_input) if it must.
    assert decode_client_message(pack({"t": "input", "seq": 1, "data": None})) == Input(1, None)
    assert client_error({"t": "input", "seq": 1}).code is ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize(("wire", "key"), SERVER_REQUIRED, ids=lambda v: str(v)[:24])
def test_server_required_field_missing(wire: dict[str, Any], key: str) -> None:
    decode_server_message(pack(wire))
    assert server_error(_without(wire, key)).code is ErrorCode.BAD_MESSAGE
    assert server_error(_without(wire, key, None)).code is ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize("wire", [{"t": "join"}, {"t": "join", "game": None, "room": None}])
def test_join_needs_game_or_room(wire: dict[str, Any]) -> None:
    err = client_error(wire)
    assert err.code is ErrorCode.BAD_MESSAGE
    assert err.ref == "join"


# -- integers ---------------------------------------------------------------------

INT_FIELDS: list[tuple[dict[str, Any], str, int, int]] = [
    ({"t": "hello", "version": 1, "name": "a"}, "version", 0, UINT32_MAX),
    ({"t": "input", "seq": 1, "data": 0}, "seq", 0, UINT32_MAX),
    ({"t": "input", "seq": 1, "data": 0}, "ack", 0, UINT53_MAX),
    ({"t": "pong", "nonce": 1}, "nonce", 0, UINT53_MAX),
    ({"t": "ack", "id": 1}, "id", 0, UINT53_MAX),
]


@pytest.mark.parametrize(("wire", "key", "lo", "hi"), INT_FIELDS)
def test_client_int_bounds(wire: dict[str, Any], key: str, lo: int, hi: int) -> None:
    for ok in (lo, hi):
        msg = decode_client_message(pack({**wire, key: ok}))
        assert getattr(msg, key) == ok
    for bad in (lo - 1, hi + 1, -(2**63), 2**64 - 1):
        assert client_error({**wire, key: bad}).code is ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize(("wire", "key", "lo", "hi"), INT_FIELDS)
@pytest.mark.parametrize("bad", [True, False, 1.0, 0.0, "1", b"\x01", [1], {"v": 1}])
def test_client_int_fields_refuse_other_types(
    wire: dict[str, Any], key: str, lo: int, hi: int, bad: Any
) -> None:
    err = client_error({**wire, key: bad})
    assert err.code is ErrorCode.BAD_MESSAGE
    assert key in err.detail


def test_seq_limits_named_in_the_brief() -> None:
    assert client_error({"t": "input", "seq": -1, "data": 0}).code is ErrorCode.BAD_MESSAGE
    assert client_error({"t": "input", "seq": 2**32, "data": 0}).code is ErrorCode.BAD_MESSAGE


def test_version_must_be_an_int() -> None:
    for bad in ("1", 1.0, True, None, [1]):
        assert client_error({"t": "hello", "version": bad, "name": "a"}).code is (
            ErrorCode.BAD_MESSAGE
        )


SERVER_INT_FIELDS: list[tuple[dict[str, Any], str, int, int]] = [
    *(
        (Welcome(1, 7, 30, 30, 1234, LIMITS, ("arena",)).to_wire(), key, lo, hi)
        for key, lo, hi in (
            ("version", 0, UINT32_MAX),
            ("player", 0, UINT32_MAX),
            ("tick_rate", 1, 1000),
            ("snapshot_rate", 1, 1000),
            ("tick", 0, UINT53_MAX),
        )
    ),
    *(
        (Snapshot(id=1, tick=2, ack=3, rtt_us=4, jitter_us=5, state=[]).to_wire(), key, lo, hi)
        for key, lo, hi in (
            ("id", 0, UINT53_MAX),
            ("tick", 0, UINT53_MAX),
            ("ack", 0, UINT32_MAX),
            ("rtt_us", 0, UINT53_MAX),
            ("jitter_us", 0, UINT53_MAX),
            ("base", 0, UINT53_MAX),
        )
    ),
    ({"t": "event", "kind": "join", "player": 1, "name": "a", "tick": 1}, "player", 0, UINT32_MAX),
    ({"t": "event", "kind": "join", "player": 1, "name": "a", "tick": 1}, "tick", 0, UINT53_MAX),
    ({"t": "ping", "nonce": 1}, "nonce", 0, UINT53_MAX),
]


@pytest.mark.parametrize(("wire", "key", "lo", "hi"), SERVER_INT_FIELDS)
def test_server_int_bounds(wire: dict[str, Any], key: str, lo: int, hi: int) -> None:
    for ok in (lo, hi):
        decode_server_message(pack({**wire, key: ok}))
    for bad in (lo - 1, hi + 1, True, 1.5, "1"):
        assert server_error({**wire, key: bad}).code is ErrorCode.BAD_MESSAGE


# -- strings and names --------------------------------------------------------------

NAME_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"t": "hello", "version": 1, "name": "ada"}, "name"),
    ({"t": "hello", "version": 1, "name": "ada"}, "game"),
    ({"t": "hello", "version": 1, "name": "ada"}, "room"),
    ({"t": "join", "game": "arena"}, "room"),
    ({"t": "join", "room": "arena-1"}, "game"),
]


@pytest.mark.parametrize(("wire", "key"), NAME_FIELDS)
def test_names_are_1_to_32_chars(wire: dict[str, Any], key: str) -> None:
    for ok in ("a", "x" * MAX_NAME_CHARS, "é" * MAX_NAME_CHARS, "\N{PILE OF POO}" * 32):
        assert getattr(decode_client_message(pack({**wire, key: ok})), key) == ok
    for bad in ("", "x" * (MAX_NAME_CHARS + 1), "\N{PILE OF POO}" * 33):
        err = client_error({**wire, key: bad})
        assert err.code is ErrorCode.BAD_MESSAGE
        assert key in err.detail


@pytest.mark.parametrize(("wire", "key"), [*NAME_FIELDS, ({"t": "chat", "text": "hi"}, "text")])
@pytest.mark.parametrize("bad", [b"ada", 1, True, 1.5, ["a"], {"a": "b"}])
def test_string_fields_refuse_other_types(wire: dict[str, Any], key: str, bad: Any) -> None:
    assert client_error({**wire, key: bad}).code is ErrorCode.BAD_MESSAGE


def test_chat_length_is_left_to_the_server() -> None:
    # The codec checks only the type; the byte cap still applies (max_str_len).
    assert decode_client_message(pack({"t": "chat", "text": "é" * 512})) == Chat("é" * 512)
    assert client_error({"t": "chat", "text": "é" * 513}).code is ErrorCode.BAD_MESSAGE


def test_server_string_caps() -> None:
    left = {"t": "left", "room": "x" * 33}
    assert server_error(left).code is ErrorCode.BAD_MESSAGE
    event = {"t": "event", "kind": "join", "player": 1, "name": "x" * 33, "tick": 1}
    assert server_error(event).code is ErrorCode.BAD_MESSAGE
    assert server_error({"t": "error", "code": "c" * 65, "message": ""}).code is (
        ErrorCode.BAD_MESSAGE
    )
    assert server_error({"t": "error", "code": "c", "message": "", "ref": "r" * 65}).code is (
        ErrorCode.BAD_MESSAGE
    )


# -- welcome, event, rooms -------------------------------------------------------------


@pytest.mark.parametrize(
    "limits",
    [
        {"a": "1"},
        {"a": 1.0},
        {"a": True},
        {"a": None},
        {"a": [1]},
        [1, 2],
        "limits",
        None,
    ],
)
def test_welcome_limits_must_be_a_map_of_ints(limits: Any) -> None:
    wire = {**Welcome(1, 7, 30, 30, 1234, LIMITS, ()).to_wire(), "limits": limits}
    err = server_error(wire)
    assert err.code is ErrorCode.BAD_MESSAGE
    assert err.ref == "welcome"


@pytest.mark.parametrize("games", [None, "arena", ["arena", 1], [b"arena"], {"arena": 1}])
def test_welcome_games_must_be_strings(games: Any) -> None:
    wire = {**Welcome(1, 7, 30, 30, 1234, LIMITS, ()).to_wire(), "games": games}
    assert server_error(wire).code is ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize("kind", ["", "JOIN", "kick", "x" * 17, "chat "])
def test_event_kind_unknown(kind: str) -> None:
    wire = {"t": "event", "kind": kind, "player": 1, "name": "a", "tick": 1}
    err = server_error(wire)
    assert err.code is ErrorCode.BAD_MESSAGE
    assert err.ref == "event"


@pytest.mark.parametrize(
    "entry",
    [
        None,
        7,
        "ada",
        [],
        [7],
        [7, "ada", 1],
        {"id": 7, "name": "ada"},
        [-1, "ada"],
        [2**32, "ada"],
        [True, "ada"],
        [7.0, "ada"],
        ["7", "ada"],
        [7, None],
        [7, 7],
        [7, b"ada"],
        [7, "x" * 33],
    ],
)
def test_player_info_malformed(entry: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        PlayerInfo.from_wire(entry)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    room = {**ROOM.to_wire(), "players": [[1, "ok"], entry]}
    assert server_error({"t": "joined", "room": room}).code is ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize(
    "room",
    [
        None,
        [],
        "arena-1",
        {**ROOM.to_wire(), "players": None},
        {**ROOM.to_wire(), "players": {"3": "bob"}},
        {**ROOM.to_wire(), "max_players": 0},
        {**ROOM.to_wire(), "name": 1},
        {**ROOM.to_wire(), "game": None},
    ],
)
def test_room_info_malformed(room: Any) -> None:
    assert server_error({"t": "joined", "room": room}).code is ErrorCode.BAD_MESSAGE
    welcome = {**Welcome(1, 7, 30, 30, 1234, LIMITS, ()).to_wire(), "room": room}
    if room is not None:  # a nil welcome.room is valid: no room joined
        assert server_error(welcome).code is ErrorCode.BAD_MESSAGE


def test_room_info_info_is_optional() -> None:
    room = ROOM.to_wire()
    del room["info"]
    joined = decode_server_message(pack({"t": "joined", "room": room}))
    assert isinstance(joined, Joined)
    assert joined.room.info is None
