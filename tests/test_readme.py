"""The README's promises that code can check: its settings table, its example game and
its example authenticate hook."""

from __future__ import annotations

import re
import types
from pathlib import Path
from urllib.parse import quote

import pytest

from gameserver import AuthRefused, AuthRequest, Game, Identity
from gameserver.core import ServerCore
from gameserver.game import GameRegistry
from gameserver.outbox import Outbox
from gameserver.session import Session
from gameserver.settings import Settings, settings_table
from protocol import Hello, Input, Snapshot, decode_server_message, encode

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_settings_table_matches_the_code() -> None:
    """The README's settings table is exactly what --print-settings prints."""
    match = re.search(r"<!-- settings-table -->\n(.*?)\n<!-- /settings-table -->", README, re.S)
    assert match is not None
    assert match.group(1).strip() == settings_table().strip()


def _example_game() -> type[Game]:
    block = re.search(r"```python\n# mygame.py\n(.*?)```", README, re.S)
    assert block is not None
    module = types.ModuleType("mygame")
    exec(compile(block.group(1), "README:mygame.py", "exec"), module.__dict__)
    game = module.Clicker
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


def _example_auth(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    block = re.search(r"```python\n# myauth.py\n(.*?)```", README, re.S)
    assert block is not None
    monkeypatch.setenv("GAME_TOKEN_SECRET", "test secret")
    module = types.ModuleType("myauth")
    exec(compile(block.group(1), "README:myauth.py", "exec"), module.__dict__)
    return module


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
