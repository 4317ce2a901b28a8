"""PROTOCOL.md against the code: codes, message types, field tables, defaults, hex examples.

Hex examples are fenced ```hex blocks. In them a line ``C> xx xx ...`` starts a
client → server frame and ``S> ...`` a server → client frame; an indented line
continues the frame's bytes; ``=  {...}`` is the frame decoded, as JSON; a
line starting with ``#`` is commentary. Anything else in a hex block fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

import msgpack
import pytest

import protocol
from protocol import (
    MAX_NAME_CHARS,
    PROTOCOL_VERSION,
    CloseCode,
    DecodeLimits,
    ErrorCode,
    RoomInfo,
    Snapshot,
    decode_client_message,
    decode_server_message,
    encode,
    encode_snapshot,
    pack_state,
)
from protocol.messages import CLIENT_MESSAGE_TYPES, SERVER_MESSAGE_TYPES

SPEC_PATH = Path(protocol.__file__).with_name("PROTOCOL.md")
ALL_TYPES = {**CLIENT_MESSAGE_TYPES, **SERVER_MESSAGE_TYPES}


@cache
def spec() -> str:
    return SPEC_PATH.read_text(encoding="utf-8")


@cache
def flat_spec() -> str:
    """The spec with every run of whitespace collapsed to one space (for phrase checks)."""
    return " ".join(spec().split())


@cache
def section(title: str) -> str:
    """The text from the heading ``title`` to the next heading of the same or a higher level."""
    lines = spec().splitlines()
    for i, line in enumerate(lines):
        if line.lstrip("#").strip() == title and line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body = []
            for following in lines[i + 1 :]:
                hashes = len(following) - len(following.lstrip("#"))
                is_heading = following.startswith("#") and following[hashes : hashes + 1] == " "
                if is_heading and hashes <= level:
                    break
                body.append(following)
            return "\n".join(body)
    raise AssertionError(f"no section {title!r} in PROTOCOL.md")


def table_rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table row in ``text`` (header and separator rows skipped)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(cells)
    return [r for r in rows if r[0] not in ("field", "code", "setting", "key", "status")]


def unquote(cell: str) -> str:
    return cell.strip().strip("`")


# -- codes ------------------------------------------------------------------------


def test_every_error_code_is_in_the_error_table() -> None:
    documented = [unquote(r[0]) for r in table_rows(section("6.2 Error codes"))]
    assert sorted(documented) == sorted(code.value for code in ErrorCode)
    assert len(documented) == len(set(documented))


def test_every_close_code_is_in_the_close_table() -> None:
    rows = table_rows(section("6.1 Close codes"))
    documented = {int(r[0]): unquote(r[1]) for r in rows}
    assert documented == {code.value: code.name for code in CloseCode}
    assert len(rows) == len(CloseCode)


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_error_code_appears_in_spec(code: ErrorCode) -> None:
    assert f"`{code.value}`" in spec()


@pytest.mark.parametrize("code", list(CloseCode), ids=str)
def test_close_code_appears_in_spec(code: CloseCode) -> None:
    assert str(code.value) in spec()
    assert f"`{code.name}`" in spec()


def test_credit_column_matches_the_server() -> None:
    from gameserver.session import COSTLY_ERRORS

    rows = table_rows(section("6.2 Error codes"))
    costly = {unquote(r[0]) for r in rows if r[1] == "yes"}
    assert {r[1] for r in rows} == {"yes", "no"}
    assert costly == {code.value for code in COSTLY_ERRORS}


# -- messages -----------------------------------------------------------------------


def documented_fields(type_name: str) -> list[str] | None:
    """Field names of the table under the ``**`type`**`` paragraph (None: no table)."""
    text = spec()
    start = text.index(f"**`{type_name}`**")
    rest = text[start:]
    end = min(
        (i for i in (rest.find("\n**", 1), rest.find("\n#", 1), rest.find("```")) if i > 0),
    )
    rows = table_rows(rest[:end])
    return [unquote(r[0]) for r in rows] if rows else None


@pytest.mark.parametrize("type_name", sorted(ALL_TYPES))
def test_every_message_type_is_documented(type_name: str) -> None:
    assert f"**`{type_name}`**" in spec()


@pytest.mark.parametrize("type_name", sorted(ALL_TYPES))
def test_field_tables_match_the_dataclasses(type_name: str) -> None:
    cls = ALL_TYPES[type_name]
    documented = documented_fields(type_name) or []
    assert sorted(documented) == sorted(f.name for f in fields(cls))


def test_snapshot_table_is_in_wire_order() -> None:
    wire = Snapshot(id=1, tick=1, ack=None, rtt_us=0, jitter_us=0, state=None).to_wire()
    assert documented_fields("snapshot") == [k for k in wire if k != "t"]


def test_room_info_table_matches() -> None:
    text = spec()
    start = text.index("**RoomInfo**")
    rows = table_rows(text[start : text.index("```", start)])
    assert [unquote(r[0]) for r in rows] == [f.name for f in fields(RoomInfo)]


def test_version_and_limits_are_stated() -> None:
    assert f"`hello.version` must be `{PROTOCOL_VERSION}`" in flat_spec()
    limits = DecodeLimits()
    for phrase in (
        f"str ≤ {limits.max_str_len} bytes",
        f"bin ≤ {limits.max_bin_len} bytes",
        f"array ≤ {limits.max_array_len} elements",
        f"map ≤ {limits.max_map_len} entries",
        f"nesting ≤ {limits.max_depth} levels",
        f"`max_message_bytes` = {limits.max_message_bytes} bytes",
        f"1..{MAX_NAME_CHARS} chars",
    ):
        assert phrase in flat_spec()


def test_settings_table_matches_defaults() -> None:
    from gameserver.settings import Settings

    defaults = Settings()
    rows = table_rows(section("6.3 Server limits"))
    assert rows
    for row in rows:
        name, value = unquote(row[0]), row[1]
        assert repr(getattr(defaults, name)) == value, name


def test_arena_table_matches_the_game() -> None:
    from gameserver.games.arena import Arena

    info = Arena.info(Arena.__new__(Arena))  # info() reads only the class's world
    rows = table_rows(section("7. Reference game: arena"))
    keys = [unquote(r[0]) for r in rows]
    assert keys == list(info)
    for row in rows:
        key, kind, value = unquote(row[0]), row[1], row[2]
        if key == "walls":
            continue
        assert kind == type(info[key]).__name__, key
        assert value == repr(info[key]), key
    assert f"{len(info['walls'])} walls" in section("7. Reference game: arena")


# -- hex examples ---------------------------------------------------------------------


@dataclass
class Frame:
    direction: str
    line: int
    data: bytearray = field(default_factory=bytearray)
    decoded: Any = None
    has_decoded: bool = False

    def __repr__(self) -> str:
        return f"{self.direction}@{self.line}"


@cache
def frames() -> tuple[Frame, ...]:
    found: list[Frame] = []
    in_block = False
    for number, line in enumerate(spec().splitlines(), 1):
        if line.startswith("```"):
            in_block = line == "```hex"
            continue
        if not in_block or not line or line.startswith("#"):
            continue
        if line[:3] in ("C> ", "S> "):
            found.append(Frame(line[0], number, bytearray.fromhex(line[3:])))
        elif line.startswith("   ") and line.strip():
            assert found and not found[-1].has_decoded, f"line {number}: stray continuation"
            found[-1].data += bytearray.fromhex(line)
        elif line.startswith("=  "):
            assert found and not found[-1].has_decoded, f"line {number}: stray decoded form"
            found[-1].decoded = json.loads(line[3:])
            found[-1].has_decoded = True
        else:
            raise AssertionError(f"PROTOCOL.md line {number}: not a hex-block line: {line!r}")
    assert not in_block, "unterminated fenced block"
    return tuple(found)


def strictly_equal(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (1 and 1.0 differ; lists and dicts recurse)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(strictly_equal, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def test_spec_has_hex_examples() -> None:
    assert len(frames()) >= len(ALL_TYPES) + 10


@pytest.mark.parametrize("frame", frames(), ids=repr)
def test_hex_example_round_trips(frame: Frame) -> None:
    data = bytes(frame.data)
    if frame.direction == "C":
        message: Any = decode_client_message(data)
        assert message.TYPE in CLIENT_MESSAGE_TYPES
    else:
        message = decode_server_message(data)
        assert message.TYPE in SERVER_MESSAGE_TYPES
    assert encode(message) == data
    assert frame.has_decoded, "every frame needs its '=' line"
    assert strictly_equal(msgpack.unpackb(data), frame.decoded)
    if isinstance(message, Snapshot):
        fast = encode_snapshot(
            snapshot_id=message.id,
            tick=message.tick,
            ack=message.ack,
            rtt_us=message.rtt_us,
            jitter_us=message.jitter_us,
            state=pack_state(message.state),
            base=message.base,
        )
        assert fast == data


def test_every_message_type_has_a_hex_example() -> None:
    shown = {msgpack.unpackb(bytes(f.data))["t"] for f in frames()}
    assert shown == set(ALL_TYPES)


def test_examples_use_the_default_limits_and_arena_info() -> None:
    from gameserver.games.arena import Arena
    from gameserver.settings import Settings

    for frame in frames():
        value = msgpack.unpackb(bytes(frame.data))
        if value["t"] == "welcome":
            assert value["limits"] == Settings().client_limits()
        room = value.get("room")
        if isinstance(room, dict) and room["game"] == "arena":
            assert room["info"] == Arena.info(Arena.__new__(Arena))


def test_worked_session_order() -> None:
    lines = spec().splitlines()
    start = lines.index("## 8. Worked session") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("## ")) + 1
    session = [f for f in frames() if start < f.line < end]
    assert [(f.direction, msgpack.unpackb(bytes(f.data))["t"]) for f in session] == [
        ("C", "hello"),
        ("S", "welcome"),
        ("S", "event"),
        ("S", "ping"),
        ("C", "pong"),
        ("C", "input"),
        ("S", "snapshot"),
        ("C", "chat"),
        ("S", "event"),
        ("C", "leave"),
        ("S", "left"),
    ]


def test_delta_examples_are_what_the_server_would_send() -> None:
    from protocol.delta import apply, diff

    snapshots = {}
    for frame in frames():
        value = msgpack.unpackb(bytes(frame.data))
        if value["t"] == "snapshot":
            snapshots[value["id"]] = value
    deltas = [s for s in snapshots.values() if s["base"] is not None]
    assert deltas, "§5.6 shows a delta snapshot"
    for delta in deltas:
        base = snapshots[delta["base"]]["state"]
        assert diff(base, apply(base, delta["state"])) == delta["state"]
