"""gameserver.auth (sans-I/O): the request description, Identity, refusals, and a session
whose player is authenticated, driven with plain numbers for time."""

from __future__ import annotations

from typing import Any

import pytest

from gameserver.auth import (
    MAX_REASON_CHARS,
    AuthRefused,
    AuthRequest,
    AuthStats,
    Identity,
    load_authenticate,
)
from gameserver.core import ServerCore
from gameserver.games import default_games
from gameserver.outbox import Outbox
from gameserver.session import Session
from gameserver.settings import Settings
from protocol import (
    PROTOCOL_VERSION,
    Chat,
    Error,
    Event,
    Hello,
    ServerMessage,
    Welcome,
    decode_server_message,
    encode,
)


def build(target: str = "/", *headers: tuple[str, str], ip: str = "10.0.0.1") -> AuthRequest:
    return AuthRequest.build(target, headers, ip)


# -- AuthRequest -----------------------------------------------------------------


def test_query_is_decoded_with_every_value() -> None:
    """Percent-encoding and + are decoded; blank values kept; a repeated parameter is
    ambiguous for param() but all there in query."""
    request = build("/?token=a%2Bb+c&x=1&x=2&blank=&bad=%zz")
    assert request.path == "/"
    assert request.param("token") == "a+b c"
    assert request.query["x"] == ("1", "2") and request.param("x") is None
    assert request.param("blank") == ""
    assert request.param("bad") == "%zz"
    assert request.param("absent") is None


def test_headers_by_lower_case_name() -> None:
    """Any case finds a header; a repeated one is in headers but header() refuses to pick."""
    request = build("/", ("Authorization", "Bearer abc"), ("X-A", "1"), ("x-a", "2"))
    assert request.header("authorization") == request.header("AUTHORIZATION") == "Bearer abc"
    assert request.headers["x-a"] == ("1", "2") and request.header("X-A") is None
    assert request.origin is None


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer   abc  ", "abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer ", None),
    ],
)
def test_bearer_token(value: str, token: str | None) -> None:
    """Only an Authorization header of the Bearer scheme (any case) with a token gives one."""
    assert build("/", ("Authorization", value)).bearer_token == token


def test_bearer_token_from_two_authorization_headers_is_none() -> None:
    request = build("/", ("Authorization", "Bearer a"), ("Authorization", "Bearer b"))
    assert request.bearer_token is None


def test_cookies_parsed_first_wins_quotes_removed() -> None:
    """Cookie pairs from every Cookie header; the first of a repeated name; quoted values
    unquoted; a pair without "=" skipped; values are not percent-decoded."""
    request = build(
        "/",
        ("Cookie", 'session="abc"; theme=dark; junk; theme=light; =nameless'),
        ("Cookie", "late=1; a=b=c"),
    )
    assert dict(request.cookies) == {"session": "abc", "theme": "dark", "late": "1", "a": "b=c"}


def test_origin_and_peer_ip() -> None:
    request = build("/", ("Origin", "https://game.example"), ip="2001:db8::1")
    assert request.origin == "https://game.example"
    assert request.peer_ip == "2001:db8::1"


def test_request_is_read_only() -> None:
    """The hook cannot change what other code sees: frozen, with read-only mappings."""
    request = build("/?a=1", ("Cookie", "c=1"))
    with pytest.raises(TypeError):
        request.query["a"] = ("2",)  # type: ignore[index]
    with pytest.raises(TypeError):
        request.headers["cookie"] = ("x",)  # type: ignore[index]
    with pytest.raises(TypeError):
        request.cookies["c"] = "2"  # type: ignore[index]
    with pytest.raises(AttributeError):
        request.peer_ip = "1.2.3.4"  # type: ignore[misc]


# -- Identity --------------------------------------------------------------------


def test_identity_data_is_a_read_only_copy() -> None:
    data: dict[str, Any] = {"role": "admin"}
    identity = Identity("u-1", "Ada", data)
    data["role"] = "guest"
    assert identity.data == {"role": "admin"}
    with pytest.raises(TypeError):
        identity.data["role"] = "guest"  # type: ignore[index]
    assert Identity("u-1").data == {} and Identity("u-1").name is None
    assert hash(identity) == hash(Identity("u-1", "Ada", {"other": 1}))  # data is not hashed


@pytest.mark.parametrize(
    ("user_id", "name"),
    [
        ("", None),
        (42, None),
        ("u", ""),
        ("u", "x" * 33),
        ("u", " Ada"),
        ("u", "Ada\n"),
        ("u", "A\u200bda"),  # a format character
        ("u", 7),
    ],
)
def test_identity_refuses_what_no_roster_may_show(user_id: Any, name: Any) -> None:
    """user_id a non-empty str; name None or 1..32 printable chars, unpadded (PROTOCOL.md's
    roster names): a hook returning otherwise fails loudly (500), not the clients."""
    with pytest.raises(ValueError):
        Identity(user_id, name)


def test_identity_name_may_be_32_chars_of_any_script() -> None:
    assert Identity("u", "é" * 32).name == "é" * 32
    assert Identity("u", "Ada Lovelace").name == "Ada Lovelace"


# -- AuthRefused and the responses ------------------------------------------------


def test_refusal_is_401_with_reason_and_challenge() -> None:
    stats = AuthStats()
    refusal = stats.refuse(AuthRefused("  expired token "))
    assert (refusal.status, refusal.text) == (401, "expired token\n")
    assert dict(refusal.headers) == {"WWW-Authenticate": "Bearer"}
    long = stats.refuse(AuthRefused("x" * 1000, challenge='Bearer realm="g"'))
    assert long.text == "x" * MAX_REASON_CHARS + "\n"
    assert long.headers["WWW-Authenticate"] == 'Bearer realm="g"'
    assert stats.refuse(AuthRefused("")).text == "authentication required\n"
    assert stats.refused == 3


@pytest.mark.parametrize("challenge", ["", "Bearer\r\nSet-Cookie: x=1", "Bearer é"])
def test_challenge_must_be_a_plain_header_value(challenge: str) -> None:
    """No way to inject a header line through the challenge."""
    with pytest.raises(ValueError):
        AuthRefused("no", challenge=challenge)


def test_timeout_and_failure_responses() -> None:
    stats = AuthStats()
    timed_out = stats.time_out()
    assert timed_out.status == 503 and timed_out.headers == {"Retry-After": "5"}
    failed = stats.fail()
    assert failed.status == 500 and failed.text == "Authentication failed on the server.\n"
    stats.accept()
    assert stats.as_dict() == {"accepted": 1, "refused": 0, "timed_out": 1, "failed": 1}


# -- load_authenticate (the CLI's --auth) ------------------------------------------


def test_load_authenticate_imports_a_callable() -> None:
    assert load_authenticate("gameserver.auth:Identity") is Identity


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("gameserver.auth", ValueError),
        (":check", ValueError),
        ("no_such_module_xyz:check", ImportError),
        ("gameserver.auth:no_such_hook", AttributeError),
        ("gameserver.auth:MAX_REASON_CHARS", TypeError),
    ],
)
def test_load_authenticate_errors(spec: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_authenticate(spec)


# -- the session of an authenticated player ------------------------------------------


def _session(identity: Identity | None) -> tuple[Session, Outbox, ServerCore]:
    core = ServerCore(Settings(), default_games(), epoch=0.0)
    outbox = Outbox(64)
    return Session(core, outbox, now=0.0, identity=identity), outbox, core


def _messages(outbox: Outbox) -> list[ServerMessage]:
    return [decode_server_message(frame) for frame in outbox.take()]


def test_identity_name_replaces_the_hello_name() -> None:
    """player.identity is the hook's Identity; its name is the player's in the roster, the
    join event, chat, and player.name."""
    ada = Identity("u-1", "Ada", {"team": "red"})
    session, outbox, core = _session(ada)
    session.receive_bytes(encode(Hello(PROTOCOL_VERSION, "mallory", game="arena")), 0.0)
    session.receive_bytes(encode(Chat("hi")), 0.1)
    welcome, join, *rest = _messages(outbox)
    assert isinstance(welcome, Welcome) and welcome.room is not None
    assert [p.name for p in welcome.room.players] == ["Ada"]
    assert isinstance(join, Event) and join.name == "Ada"
    chat = next(m for m in rest if isinstance(m, Event) and m.kind == "chat")
    assert chat.name == "Ada"
    assert session.player.identity is ada and session.player.name == "Ada"
    room = core.rooms.get(welcome.room.name)
    assert room is not None and room.seats[session.player_id].member.player.identity is ada


def test_identity_name_stands_even_when_the_hello_name_would_be_refused() -> None:
    """With an authenticated name, hello.name (valid on the wire) is not used at all."""
    session, outbox, _core = _session(Identity("u-1", "Ada"))
    session.receive_bytes(encode(Hello(PROTOCOL_VERSION, "\u200b")), 0.0)
    assert isinstance(_messages(outbox)[0], Welcome)
    assert session.player.name == "Ada"


def test_identity_without_a_name_keeps_the_hello_name() -> None:
    """An Identity without a name: the hello's (cleaned) name, the identity still there;
    and a hello name empty after cleaning is still refused."""
    bob = Identity("u-2")
    session, outbox, _core = _session(bob)
    session.receive_bytes(encode(Hello(PROTOCOL_VERSION, "\u200b")), 0.0)
    [error] = _messages(outbox)
    assert isinstance(error, Error) and error.code == "bad_message"
    session.receive_bytes(encode(Hello(PROTOCOL_VERSION, " bob ")), 0.1)
    assert isinstance(_messages(outbox)[0], Welcome)
    assert session.player.name == "bob" and session.player.identity is bob


def test_without_a_hook_there_is_no_identity() -> None:
    session, outbox, _core = _session(None)
    session.receive_bytes(encode(Hello(PROTOCOL_VERSION, "carol")), 0.0)
    assert isinstance(_messages(outbox)[0], Welcome)
    assert session.player.identity is None and session.player.name == "carol"
