"""PROTOCOL.md's settled points against the code: each rule's sentence, and its behaviour.

A client written from PROTOCOL.md alone had to guess at these (issue #13, "the
spec, made exact"). Each test finds the rule's wording in the spec, so the text
cannot lose it, and drives the code that must do exactly that: the codec, a
session over a fake clock, the latency estimator, the arena, the WebSocket
library's close-code check.
"""

from __future__ import annotations

import math
import random
import re
import struct
from typing import Any

import msgpack
import pytest
import websockets.exceptions
import websockets.frames

from gameserver.game import Player, RoomContext
from gameserver.games.arena import GEM_RADIUS, PLAYER_RADIUS, SCALE, Arena
from gameserver.latency import LatencyEstimator, LatencyReport
from gameserver.ratelimit import TokenBucket
from gameserver.settings import Settings
from gameserver.trio.admission import FrameAdmission
from protocol import (
    CloseCode,
    Error,
    ErrorCode,
    Event,
    Joined,
    ProtocolError,
    decode_client_message,
    decode_server_message,
    encode,
)
from protocol.messages import Ack, Chat, Hello, Input, Join, Leave, Pong
from tests.core.test_session import Client, make_core
from tests.protocol.test_spec import flat_spec, frames, section, table_rows, unquote


def stated(*phrases: str) -> None:
    """Every phrase is in the spec (whitespace-insensitive)."""
    for phrase in phrases:
        assert " ".join(phrase.split()) in flat_spec(), phrase


def client_error(data: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        decode_client_message(data)
    return caught.value


VALID: dict[str, dict[str, Any]] = {
    "hello": {"t": "hello", "version": 1, "name": "ada"},
    "join": {"t": "join", "game": "arena"},
    "leave": {"t": "leave"},
    "input": {"t": "input", "seq": 1, "data": None},
    "chat": {"t": "chat", "text": "gg"},
    "pong": {"t": "pong", "nonce": 1},
    "ack": {"t": "ack", "id": 0},
}
"""A minimal valid message of every client type."""


# -- §2: one rule for unknown fields --------------------------------------------------


def test_unknown_fields_rule_is_stated() -> None:
    stated(
        "an unknown field (a key the message's table does not list) is checked as a value of "
        "type `any` and then ignored",
        "**bin:** at most 1024 bytes, and only in a value of type `any`: game data "
        "(`input.data`) and unknown fields",
    )


@pytest.mark.parametrize("t", sorted(VALID))
@pytest.mark.parametrize(
    "extra",
    [b"\x00" * 1024, "s", 1, 1.5, None, True, [1, [b"x"]], {"k": {"k": b"x"}}],
    ids=["bin", "str", "int", "float", "nil", "bool", "array", "map"],
)
def test_an_unknown_field_may_hold_any_allowed_value(t: str, extra: Any) -> None:
    plain = decode_client_message(msgpack.packb(VALID[t]))
    assert decode_client_message(msgpack.packb({**VALID[t], "x": extra})) == plain


@pytest.mark.parametrize("t", sorted(VALID))
@pytest.mark.parametrize(
    "raw_extra",
    [
        msgpack.packb(math.nan),
        msgpack.packb(-math.inf),
        msgpack.packb(msgpack.ExtType(1, b"x")),
        b"\xd6\xff" + b"\x00" * 4,  # a timestamp (ext -1)
        msgpack.packb(msgpack.ExtType(5, b"")),
        b"\x81\x01\x01",  # {1: 1}
        b"\x81\xc4\x01k\x01",  # {bin "k": 1}
        msgpack.packb(b"\x00" * 1025),
        msgpack.packb("s" * 1025),
        msgpack.packb(list(range(257))),
        b"\x91" * 8 + b"\x00",  # arrays at levels 2..9
    ],
    ids=[
        "nan", "inf", "ext", "timestamp", "empty-ext", "int-key", "bin-key", "long-bin",
        "long-str", "long-array", "too-deep",
    ],
)  # fmt: skip
def test_an_unknown_field_obeys_every_rule_of_section_2(t: str, raw_extra: bytes) -> None:
    """The same value fails as game data too: an unknown field gets no extra leniency."""
    head = msgpack.packb(VALID[t])
    data = bytes([head[0] + 1]) + head[1:] + msgpack.packb("x") + raw_extra  # one more entry
    err = client_error(data)
    assert err.code is ErrorCode.BAD_MESSAGE
    assert err.ref == t  # t came first, so it is known (§4.2 error)
    as_data = b"\x83" + b"".join(map(msgpack.packb, ["t", "input", "seq", 1, "data"]))
    assert client_error(as_data + raw_extra).code is ErrorCode.BAD_MESSAGE


def test_bin_in_a_typed_field_is_refused_and_in_game_data_allowed() -> None:
    for t, key in (("chat", "text"), ("hello", "name"), ("join", "room"), ("ack", "id")):
        err = client_error(msgpack.packb({**VALID[t], key: b"ada"}))
        assert (err.code, err.ref) == (ErrorCode.BAD_MESSAGE, t)
    data = msgpack.packb({"t": "input", "seq": 1, "data": {"blob": b"\x01" * 1024}})
    assert decode_client_message(data) == Input(1, {"blob": b"\x01" * 1024})


def test_server_messages_follow_the_same_rule() -> None:
    stated("and so inside a server message's unknown fields (of type `any` as above)")
    ping = {"t": "ping", "nonce": 1}
    assert decode_server_message(msgpack.packb({**ping, "x": b"bin"})) == decode_server_message(
        msgpack.packb(ping)
    )
    with_int_key = msgpack.packb({**ping, "x": {7: b"bin"}})  # int keys: as in game data
    assert decode_server_message(with_int_key) == decode_server_message(msgpack.packb(ping))
    with pytest.raises(ProtocolError):
        decode_server_message(msgpack.packb({**ping, "x": math.nan}))


# -- §4: key order -----------------------------------------------------------------


def test_key_order_is_stated_as_not_normative() -> None:
    stated("**Key order is not normative.**", "Clients should still write `t` first")


@pytest.mark.parametrize("frame", frames(), ids=repr)
def test_every_example_reads_the_same_in_reverse_key_order(frame: Any) -> None:
    value = msgpack.unpackb(bytes(frame.data), strict_map_key=False)
    reversed_data = msgpack.packb(dict(reversed(list(value.items()))), use_bin_type=True)
    decode = decode_client_message if frame.direction == "C" else decode_server_message
    assert decode(reversed_data) == decode(bytes(frame.data))


# -- §4.2: error.ref -----------------------------------------------------------------


def test_ref_rule_is_stated() -> None:
    stated(
        "`ref` is present exactly when the refused message's `t` could be read and names a "
        "client message type of §4.1",
        "It is absent for `unknown_type`",
    )


@pytest.mark.parametrize(
    ("data", "ref"),
    [
        (msgpack.packb({"t": "ack", "id": 1}) + b"\x00", "ack"),  # trailing bytes
        (msgpack.packb({"t": "chat", "text": "x" * 2000}), "chat"),  # str over the limit
        (msgpack.packb({"x": "x" * 2000, "t": "chat"}), "chat"),  # the value before t unread
        (b"\x82\xa1t\xa4join\xa4game\xa2\xff\xfe", "join"),  # bad UTF-8 after t
        (b"\x82\xa1t\xa3ack\x01\x02", "ack"),  # an int key after t
        (msgpack.packb({"t": "input", "seq": 1, "data": msgpack.ExtType(1, b"x")}), "input"),
        (b"\x83\xa1t\xa3ack\xa2id", "ack"),  # ends after t
        (b"\x82\xa2\xff\xfe\x01\xa1t\xa3ack", None),  # a key that fails to decode, before t
        (b"\x82\xa1x\xc1\xa1t\xa3ack", None),  # not msgpack, before t
        (msgpack.packb({"t": "warp"}), None),  # unknown_type
        (msgpack.packb({"t": "welcome"}), None),  # a server type: unknown from a client
        (msgpack.packb({"t": 5}), None),
        (msgpack.packb(["t", "ack"]), None),
    ],
)
def test_ref_is_there_exactly_when_t_was_readable_and_known(data: bytes, ref: str | None) -> None:
    assert client_error(data).ref == ref


def test_the_server_sends_the_codecs_ref() -> None:
    client = Client(make_core())
    client.hello()
    client.session.receive_bytes(msgpack.packb({"t": "chat", "text": "x" * 2000}), 0.0)
    client.session.receive_bytes(msgpack.packb({"t": "teleport"}), 0.0)
    assert client.errors() == [("bad_message", "chat"), ("unknown_type", None)]


# -- §4.2: welcome.limits --------------------------------------------------------------


def limits_table() -> list[list[str]]:
    text = section("4.2 Server → client")
    start = text.index("**`welcome.limits`**")
    return table_rows(text[start : text.index("```", start)])


def test_limits_table_is_what_a_default_server_announces() -> None:
    rows = limits_table()
    announced = Settings().client_limits()
    assert [(unquote(r[0]), int(r[1])) for r in rows] == list(announced.items())


def test_limits_follow_the_settings() -> None:
    settings = Settings(
        frames_per_second=99.9,
        reconnect_grace=0.0,
        ping_interval=0.25,
        empty_room_grace=1.5,
        max_input_seq_gap=7,
    )
    limits = settings.client_limits()
    assert limits["frames_per_second"] == 99  # truncated: keeping to it is safe
    assert limits["reconnect_grace_ms"] == 0  # resume off
    assert limits["ping_interval_ms"] == 250
    assert limits["empty_room_grace_ms"] == 1500
    assert limits["max_input_seq_gap"] == 7
    assert all(type(v) is int for v in limits.values())


def test_settings_not_announced_are_said_to_be_server_side() -> None:
    stated("Every other setting is server-side only")
    for name in ("keepalive_interval", "keepalive_timeout", "event_queue_depth", "send_timeout"):
        assert f"`{name}`" in section("4.2 Server → client"), name


# -- §5.2: matchmaking picks only matchmade rooms ---------------------------------------


def test_named_rooms_are_private_to_their_name() -> None:
    stated(
        "**Named rooms are private to their name.**",
        "the oldest **matchmade** room of that game with a free seat",
        "watching by `game` alone (§5.13) never pick it",
    )
    core = make_core()
    owner, stranger, watcher = Client(core), Client(core), Client(core)
    for client in (owner, stranger, watcher):
        client.hello()
    owner.send(Join(game="arena", room="arena-1"))  # named like a matchmade room
    owner.take()
    stranger.send(Join(game="arena"))
    joined = stranger.take()[0]
    assert isinstance(joined, Joined) and joined.room.name == "arena-2"
    stranger.send(Leave())
    stranger.take()
    watcher.send(Join(game="arena", spectate=True))  # the empty matchmade room, in its grace
    watched = watcher.take()[0]
    assert isinstance(watched, Joined) and watched.room.name == "arena-2"


# -- §5.4 and §6.2: the chat rate -------------------------------------------------------


def test_chat_rate_rule_is_stated() -> None:
    stated(
        "This error is sent for **each** line so refused",
        "A line that got past 3 has used its token, whatever follows",
        "over the chat rate: that line dropped, sent for each such line, `ref` `chat`",
    )


def test_each_refused_chat_line_gets_rate_limited_and_takes_no_token() -> None:
    core = make_core(chat_burst=2, chat_per_second=1.0)
    client = Client(core)
    client.hello(game="arena")

    def said(*lines: str, now: float = 0.0) -> tuple[list[str | None], list[tuple[str, Any]]]:
        for line in lines:
            client.send(Chat(line), now=now)
        out = client.take()
        chat = [m.text for m in out if isinstance(m, Event)]
        return chat, [(m.code, m.ref) for m in out if isinstance(m, Error)]

    # " \t " is empty after cleaning: bad_chat, and the token it took is spent.
    assert said(" \t ", "one", "two", "three", "four") == (
        ["one"],
        [("bad_chat", "chat"), ("rate_limited", "chat"), ("rate_limited", "chat"),
         ("rate_limited", "chat")],
    )  # fmt: skip
    # One second later exactly one token is back: the three refused lines took none.
    assert said("five", "six", now=1.0) == (["five"], [("rate_limited", "chat")])


# -- §5.5: a pong settling older pings --------------------------------------------------


def test_a_pong_settling_older_pings_yields_one_sample() -> None:
    stated(
        "A `pong` that settles older unanswered pings yields one RTT sample, for its own ping only"
    )
    latency = LatencyEstimator()
    first = latency.ping_sent(0.0)
    second = latency.ping_sent(1.0)
    assert latency.pong_received(second, 1.25) == 0.25
    assert latency.report.samples == 1 and latency.report.rtt == 0.25
    assert latency.pong_received(first, 1.5) is None  # settled: ignored
    assert latency.report.samples == 1 and not latency.awaiting_pong


# -- §5.8: the exact flood thresholds ----------------------------------------------------


def test_message_flood_closes_at_the_stated_message() -> None:
    settings = Settings()
    nth = settings.message_burst + settings.flood_close_after + 1
    stated(
        "60 drops are tolerated and the 61st closes",
        "`message_burst` + `flood_close_after` + 1 = 181st message",
    )
    assert nth == 181
    client = Client(make_core())
    client.hello()  # message 1
    client.take()
    for n in range(2, nth):
        client.send(Ack(0))
        assert client.close_code is None, n
    assert client.errors() == [("rate_limited", None)]  # once for the whole run
    client.send(Ack(0))
    assert client.close_code == CloseCode.POLICY_VIOLATION


def test_frame_flood_closes_at_the_stated_frame() -> None:
    stated("with no time passing, the 481st frame")
    settings = Settings()
    admission = FrameAdmission(
        TokenBucket(settings.frames_per_second, settings.frame_burst, 0.0),
        settings.max_fragments,
    )
    assert all(admission.admit(0.0) for _ in range(480))
    assert not admission.admit(0.0)
    assert admission.failure == (CloseCode.POLICY_VIOLATION, "frame flood")


# -- §6.1: which close codes a client may send -------------------------------------------


def test_bad_close_codes_are_the_ones_the_websocket_layer_refuses() -> None:
    text = " ".join(section("6.1 Close codes").split())
    match = re.search(r"a close frame's code must be one of ([^.]*?), or the frame may", text)
    assert match is not None
    allowed: set[int] = set()
    for low, high in re.findall(r"(\d{4})\u2013(\d{4})", match.group(1)):
        allowed |= set(range(int(low), int(high) + 1))
    assert allowed  # the sentence was read
    for code in range(0, 6000):
        payload = struct.pack("!H", code)
        if code in allowed:
            assert websockets.frames.Close.parse(payload).code == code
        else:
            with pytest.raises(websockets.exceptions.ProtocolError):
                websockets.frames.Close.parse(payload)
    with pytest.raises(websockets.exceptions.ProtocolError):
        websockets.frames.Close.parse(b"\x03")  # a one-byte payload
    stated("a one-byte payload is a framing error: the server answers 1002")


# -- §7: arena's exact rules --------------------------------------------------------------


def arena_with(*positions: tuple[float, float]) -> tuple[Arena, list[Player]]:
    """An arena whose players stand at ``positions`` (joined in that order), with no gems."""
    arena = Arena(RoomContext("arena-1", tick_rate=30, max_players=50, rng=random.Random(1)))
    players = []
    for pid, (x, y) in enumerate(positions, 1):
        player = Player(pid, f"p{pid}", LatencyReport)
        arena.on_join(player)
        arena.avatars[pid].x, arena.avatars[pid].y = x, y
        players.append(player)
    arena.gems = {}
    return arena, players


def test_positions_round_half_to_even() -> None:
    stated("**ties to even**", "12.76 → 128 (floor would give 127), 12.25 → 122, 12.75 → 128")
    arena, _ = arena_with((12.76, 12.25), (12.75, 100.0))
    state = arena.snapshot(Player(0, "viewer", LatencyReport))
    assert SCALE == 10
    assert state["players"] == [[1, 128, 122, 0], [2, 128, 1000, 0]]


def test_a_gem_at_exactly_the_reach_is_collected() -> None:
    stated("(x \u2212 gx)² + (y \u2212 gy)² ≤ (`player_radius` + `gem_radius`)²")  # minus signs
    reach = PLAYER_RADIUS + GEM_RADIUS
    arena, (p,) = arena_with((100.0, 100.0))
    arena.gems = {50: (100.0 + reach, 100.0)}
    arena._next_gem = 51
    arena.step(1 / 30)
    assert arena.avatars[p.id].score == 1 and 50 not in arena.gems and 51 in arena.gems
    arena2, (q,) = arena_with((100.0, 100.0))
    arena2.gems = {50: (100.0 + reach + 1e-9, 100.0)}
    arena2.step(1 / 30)
    assert arena2.avatars[q.id].score == 0


def test_a_gem_is_tested_after_both_axes_only() -> None:
    stated("nor the position after the x move alone")
    arena, (p,) = arena_with((100.0, 100.0))
    arena.on_input(p, arena.validate_input(p, {"dx": 0.6, "dy": 0.8}))
    stride = 200.0 / 30
    after_x = round((100.0 + 0.6 * stride) * 10) / 10  # positions stay on the 1/scale grid
    after_y = round((100.0 + 0.8 * stride) * 10) / 10
    # Within reach of the point after the x move, out of reach after the y move.
    arena.gems = {7: (after_x, 100.0 - (PLAYER_RADIUS + GEM_RADIUS))}
    arena.step(1 / 30)
    avatar = arena.avatars[p.id]
    assert (avatar.x, avatar.y) == (after_x, after_y)
    assert avatar.score == 0 and 7 in arena.gems


@pytest.mark.parametrize(("spawn_at", "first_tick"), [(1, (1, 0)), (2, (1, 1))])
def test_a_gem_spawning_under_a_player(spawn_at: int, first_tick: tuple[int, int]) -> None:
    """The new gem is tested by players after the collector on that tick, else the next."""
    stated(
        "players after the collector in the join order test it on that tick, the collector "
        "and those before it on the next"
    )
    arena, players = arena_with((100.0, 100.0), (400.0, 100.0))
    arena.gems = {1: (100.0, 100.0)}
    arena._next_gem = 2
    under = arena.avatars[spawn_at]
    spots = iter([(under.x, under.y)])  # the next gem under that player, later ones far away
    arena._free_spot = lambda radius: next(spots, (900.0, 500.0))  # type: ignore[method-assign]
    arena.step(1 / 30)
    assert tuple(arena.avatars[p.id].score for p in players) == first_tick
    arena.step(1 / 30)  # the collector (or one before it) takes it on the next tick
    expected = (2, 0) if spawn_at == 1 else (1, 1)
    assert tuple(arena.avatars[p.id].score for p in players) == expected


def test_a_player_joining_on_a_gem_collects_it_at_the_next_tick() -> None:
    stated("a player who joins within reach of a gem collects it at the room's next tick")
    arena, (p,) = arena_with((300.0, 300.0))
    arena.gems = {3: (305.0, 300.0)}
    assert arena.avatars[p.id].score == 0
    arena.step(1 / 30)
    assert arena.avatars[p.id].score == 1


def test_every_client_type_is_covered() -> None:
    """VALID above has a minimal valid message of each client type, and nothing else."""
    types = {cls.TYPE for cls in (Hello, Join, Leave, Input, Chat, Pong, Ack)}
    assert set(VALID) == types
    for t, wire in VALID.items():
        message = decode_client_message(msgpack.packb(wire))
        assert t == message.TYPE and encode(message) == msgpack.packb(wire)
