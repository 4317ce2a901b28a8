"""The fields resume and spectating added to protocol v1 (PROTOCOL.md §5.12, §5.13):
round trips, what is refused, and that a message without them encodes as before."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from protocol import (
    PROTOCOL_VERSION,
    ErrorCode,
    Event,
    Hello,
    Join,
    PlayerInfo,
    ProtocolError,
    RoomInfo,
    Welcome,
    decode_client_message,
    decode_server_message,
    encode,
)

TOKEN = "A" * 43
ROOM = RoomInfo("r", "arena", 2, (PlayerInfo(3, "bob"), PlayerInfo(7, "ada")), None, 4, (7,))


@pytest.mark.parametrize(
    "msg",
    [
        Hello(PROTOCOL_VERSION, "ada", resume=TOKEN, presence=True),
        Hello(PROTOCOL_VERSION, "ada", room="r", spectate=True),
        Join(room="r", spectate=True),
    ],
    ids=repr,
)
def test_client_round_trip(msg: Any) -> None:
    assert decode_client_message(encode(msg)) == msg


@pytest.mark.parametrize(
    "msg",
    [
        Welcome(1, 7, 30, 30, 5, {}, ("arena",), ROOM, resume=TOKEN, resumed=True),
        Event("away", 7, "ada", tick=9),
        Event("back", 7, "ada", tick=10),
    ],
    ids=repr,
)
def test_server_round_trip(msg: Any) -> None:
    assert decode_server_message(encode(msg)) == msg


def test_unset_fields_stay_off_the_wire() -> None:
    """A client or server of the first v1 text sees exactly the messages it knew."""
    assert msgpack.unpackb(encode(Hello(PROTOCOL_VERSION, "ada"))) == {
        "t": "hello",
        "version": 1,
        "name": "ada",
    }
    assert msgpack.unpackb(encode(Join(game="arena"))) == {"t": "join", "game": "arena"}
    wire = msgpack.unpackb(encode(Welcome(1, 7, 30, 30, 5, {}, (), RoomInfo("r", "g", 1, ()))))
    assert "resume" not in wire and "resumed" not in wire
    assert set(wire["room"]) == {"name", "game", "max_players", "players", "info"}


@pytest.mark.parametrize(
    "fields",
    [
        {"resume": ""},
        {"resume": "x" * 65},
        {"resume": 5},
        {"spectate": 1},
        {"spectate": "yes"},
        {"presence": 0},
    ],
    ids=repr,
)
def test_bad_hello_fields_are_bad_message(fields: dict[str, Any]) -> None:
    data = msgpack.packb({"t": "hello", "version": 1, "name": "ada", **fields})
    with pytest.raises(ProtocolError) as info:
        decode_client_message(data)
    assert info.value.code is ErrorCode.BAD_MESSAGE


def test_nil_flags_mean_false() -> None:
    data = msgpack.packb({"t": "hello", "version": 1, "name": "a", "spectate": None})
    message = decode_client_message(data)
    assert isinstance(message, Hello) and message.spectate is False
