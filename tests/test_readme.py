"""The README's promises that code can check: its settings table, its example games (the
quickstart and interest management) and its example authenticate hook."""

from __future__ import annotations

import random
import re
import types
from pathlib import Path
from urllib.parse import quote

import pytest

from gameserver import AuthRefused, AuthRequest, Game, Identity, InvalidInput, Player
from gameserver.core import ServerCore
from gameserver.game import GameRegistry, RoomContext
from gameserver.latency import LatencyReport
from gameserver.outbox import Outbox
from gameserver.room import Room
from gameserver.session import Session
from gameserver.settings import Settings, settings_table
from protocol import Hello, Input, Snapshot, decode_server_message, encode
from tests.helpers import RecordingMember, unpack

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_settings_table_matches_the_code() -> None:
    """The README's settings table is exactly what --print-settings prints."""
    match = re.search(r"<!-- settings-table -->\n(.*?)\n<!-- /settings-table -->", README, re.S)
    assert match is not None
    assert match.group(1).strip() == settings_table().strip()


def _readme_module(name: str) -> types.ModuleType:
    """The README's ```python block that starts with ``# <name>.py``, run as a module."""
    block = re.search(rf"```python\n# {name}.py\n(.*?)```", README, re.S)
    assert block is not None
    module = types.ModuleType(name)
    exec(compile(block.group(1), f"README:{name}.py", "exec"), module.__dict__)
    return module


def _example_game() -> type[Game]:
    game = _readme_module("mygame").Clicker
    assert isinstance(game, type) and issubclass(game, Game)
    return game


def test_readme_example_game_runs() -> None:
    """The quickstart game registers, accepts clicks, refuses bad input and snapshots."""
    games = GameRegistry()
    games.register(_example_game())
    core = ServerCore(Settings(), games, epoch=0.0)
    outbox = Outbox(64)
    session = Session(core, outbox, now=0.0)
    session.receive_bytes(encode(Hello(1, "ada", game="clicker")), 0.0)
    session.receive_bytes(encode(Input(1, {"clicks": 3})), 0.01)
    session.receive_bytes(encode(Input(2, {"clicks": 99})), 0.01)
    room = core.rooms.get("clicker-1")
    assert room is not None and room.max_players == 8
    room.tick(1, 1 / 30)
    messages = [decode_server_message(f) for f in outbox.take()]
    errors = [m for m in messages if m.TYPE == "error"]
    assert [e.code for e in errors] == ["bad_input"]  # type: ignore[union-attr]
    snapshot = messages[-1]
    assert isinstance(snapshot, Snapshot)
    assert snapshot.ack == 1
    assert snapshot.state["scores"] == {session.player_id: 3}


def _example_nearby() -> type[Game]:
    game = _readme_module("nearby").Wanderers
    assert isinstance(game, type) and issubclass(game, Game)
    return game


def test_readme_interest_management_example() -> None:
    """The grid example: two players in one cell share one encode and see each other, a
    third far away sees only itself; a spectator sees everyone; bad input is refused."""
    game_type = _example_nearby()
    game = game_type(RoomContext("w", 30, 8, random.Random(0)))
    room = Room("w", "wanderers", game, max_players=8, settings=Settings(), now=0.0)
    members = [RecordingMember(pid, f"p{pid}", room) for pid in (1, 2, 3)]
    for member, where in zip(members, [(100, 100), (140, 120.5), (2000, 2000)], strict=True):
        room.add(member)
        game.on_input(
            member.player, game.validate_input(member.player, {"x": where[0], "y": where[1]})
        )
    with pytest.raises(InvalidInput):
        game.validate_input(members[0].player, {"x": -1, "y": 5})
    calls: list[int] = []
    real = game.snapshot

    def counting(viewer: Player) -> object:
        calls.append(viewer.id)
        return real(viewer)

    game.snapshot = counting  # type: ignore[method-assign]
    room.tick(0, 1 / 30)
    assert len(calls) == 2
    states = [m.snapshots[-1][2] for m in members]
    assert states[0] is states[1]
    assert unpack(states[0]) == {"players": [[1, 100, 100], [2, 140, 120]]}
    assert unpack(states[2]) == {"players": [[3, 2000, 2000]]}
    watcher = Player(9, "w", LatencyReport)
    watcher.spectator = True
    assert len(real(watcher)["players"]) == 3


def _example_auth(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    monkeypatch.setenv("GAME_TOKEN_SECRET", "test secret")
    return _readme_module("myauth")


def test_readme_example_auth_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's HMAC hook accepts its own tokens from the query or a Bearer header and
    refuses a missing, forged or expired one."""
    auth = _example_auth(monkeypatch)

    def request(target: str = "/", *headers: tuple[str, str]) -> AuthRequest:
        return AuthRequest.build(target, headers, "203.0.113.5")

    token = auth.make_token("u-42", "Ada")
    ada = Identity("u-42", "Ada")
    assert auth.authenticate(request("/?token=" + quote(token))) == ada
    assert auth.authenticate(request("/", ("Authorization", f"Bearer {token}"))) == ada
    forged = auth.make_token("u-1", "Admin").partition(".")[0] + "." + token.partition(".")[2]
    expired = auth.make_token("u-42", "Ada", ttl=-1.0)
    for bad, reason in [
        (request(), "log in on the website first"),
        (request("/?token=" + quote(forged)), "invalid token"),
        (request("/?token=" + quote(token + "0")), "invalid token"),
        (request("/?token=%C3%A9"), "invalid token"),
        (request("/?token=" + quote(expired)), "token expired: reload the page"),
    ]:
        with pytest.raises(AuthRefused) as refused:
            auth.authenticate(bad)
        assert refused.value.reason == reason
