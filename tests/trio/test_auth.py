"""The authenticate hook in the handshake: memory streams, virtual time.

Each test writes an upgrade request into one end of a memory stream pair and
runs ``open_websocket`` with an :class:`AuthGate` on the other; what the client
reads back is the 101 or the refusal. Async hooks run on the autojump clock. A
sync hook runs in a worker thread, and the autojump clock jumps whenever every
task waits, a thread's work included (it would time the hook out), so a sync
hook that must answer in time runs on a MockClock that does not move by itself
(the ``clock`` fixture below picks the clock by the hook's kind).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
import trio
import trio.testing
from websockets.protocol import OPEN

from gameserver.auth import AuthRefused, AuthRequest, Identity
from gameserver.settings import Settings
from gameserver.trio.handshake import AuthGate, Opened, open_websocket
from gameserver.trio.http import ConnectionCounter, HttpFront
from protocol import PROTOCOL_VERSION, Event, Hello, RoomInfo, Welcome, encode
from tests.helpers import WsPeer, read_response_head, read_to_eof
from tests.trio.test_handshake import client_frames, start_link, upgrade_request

ADA = Identity("u-1", "Ada", {"role": "admin"})


@pytest.fixture(params=["async", "sync"])
def clock(request: pytest.FixtureRequest) -> trio.testing.MockClock:
    """Virtual time for an async hook (autojump) or a sync one (frozen: see above);
    ``clock.kind`` says which hook the test should use."""
    if request.param == "async":
        clock = trio.testing.MockClock(autojump_threshold=0)
    else:
        clock = trio.testing.MockClock()
    clock.kind = request.param  # type: ignore[attr-defined]
    return clock


def of_kind(clock: trio.testing.MockClock, check: Any) -> Any:
    """``check`` itself (sync), or an async function calling it, as ``clock.kind`` says."""
    assert trio.lowlevel.current_clock() is clock  # pytest-trio runs the test on it
    if clock.kind == "sync":  # type: ignore[attr-defined]
        return check

    async def check_async(request: AuthRequest) -> Identity:
        await trio.lowlevel.checkpoint()
        return check(request)  # type: ignore[no-any-return]

    return check_async


class Conn:
    """One connection through a shared front and gate: ``open_websocket`` on one end of a
    memory stream pair, the test's client on the other."""

    def __init__(self, front: HttpFront, gate: AuthGate, ip: str = "10.0.0.1") -> None:
        self.front = front
        self.gate = gate
        self.ip = ip
        self.server_stream, self.client = trio.testing.memory_stream_pair()
        self.ended_at: float | None = None

    async def open(self) -> Opened | None:
        opened = await open_websocket(
            self.server_stream,
            settings=self.front.settings,
            front=self.front,
            peer_ip=self.ip,
            auth=self.gate,
        )
        self.ended_at = trio.current_time()
        return opened

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and the body (up to EOF unless a 101)."""
        status_line, headers, rest = await read_response_head(self.client)
        status = int(status_line.split()[1])
        if status != 101:
            rest += await read_to_eof(self.client)
        return status, headers, rest


class Server:
    """The shared part: settings, front (with its connection counter) and the gate."""

    def __init__(self, hook: Any, **settings: Any) -> None:
        self.settings = Settings(**settings)
        self.front = HttpFront(self.settings, ConnectionCounter(), lambda: {"status": "ok"})
        self.gate = AuthGate(hook, self.settings.auth_timeout)

    def conn(self, ip: str = "10.0.0.1") -> Conn:
        return Conn(self.front, self.gate, ip)


async def refused_500(hook: Any, caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """One upgrade through ``hook``, which must end in a 500; the errors logged meanwhile."""
    conn = Server(hook).conn()
    await conn.client.send_all(upgrade_request())
    with caplog.at_level(logging.ERROR, logger="gameserver.trio.handshake"):
        assert await conn.open() is None
    assert (await conn.response())[0] == 500
    return caplog.records


async def test_async_hook_accepts_with_identity_and_sees_the_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An async hook's Identity is Opened.identity; it saw path, query, headers, cookies,
    Origin, bearer token and peer IP; the 101 follows at once."""
    seen: list[AuthRequest] = []

    async def hook(request: AuthRequest) -> Identity:
        seen.append(request)
        await trio.sleep(0.25)  # a database round trip
        return ADA

    server = Server(hook)
    conn = server.conn(ip="10.0.0.7")
    extra = (
        "Origin: https://game.example\r\n"
        "Authorization: Bearer s3cret\r\n"
        "Cookie: theme=dark; session=abc%20def; theme=light\r\n"
        "X-Twice: 1\r\nX-Twice: 2\r\n"
    )
    await conn.client.send_all(upgrade_request("/?token=t%2B1&room=a&room=b&empty=", extra=extra))
    opened = await conn.open()
    assert opened is not None and opened.protocol.state is OPEN
    assert opened.identity is ADA
    status, _headers, _rest = await conn.response()
    assert status == 101
    assert conn.ended_at == 0.25
    [request] = seen
    assert request.path == "/"
    assert request.peer_ip == "10.0.0.7"
    assert request.param("token") == "t+1"
    assert request.query["room"] == ("a", "b") and request.param("room") is None
    assert request.param("empty") == "" and request.param("missing") is None
    assert request.origin == "https://game.example"
    assert request.bearer_token == "s3cret"
    assert request.header("AUTHORIZATION") == "Bearer s3cret"
    assert request.headers["x-twice"] == ("1", "2") and request.header("x-twice") is None
    assert dict(request.cookies) == {"theme": "dark", "session": "abc%20def"}
    assert server.gate.stats.as_dict() == {
        "accepted": 1,
        "refused": 0,
        "timed_out": 0,
        "failed": 0,
    }
    assert server.front.counter.total == 1  # the caller owns the open connection now


async def test_sync_hook_runs_in_a_thread_and_accepts(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A plain function runs in a worker thread (not the trio thread) and its Identity
    gets through, with no virtual time spent."""
    threads: list[threading.Thread] = []

    def hook(request: AuthRequest) -> Identity:
        threads.append(threading.current_thread())
        if request.param("token") != "good":
            raise AuthRefused("bad token")
        return ADA

    server = Server(hook)
    conn = server.conn()
    await conn.client.send_all(upgrade_request("/?token=good"))
    opened = await conn.open()
    assert opened is not None and opened.identity is ADA
    assert (await conn.response())[0] == 101
    assert conn.ended_at == 0.0
    assert threads and threads[0] is not threading.main_thread()


async def test_refusal_is_401_with_the_reason(clock: trio.testing.MockClock) -> None:
    """AuthRefused → 401, the reason as the text body, WWW-Authenticate, no WebSocket, the
    connection count released."""

    def refuse(request: AuthRequest) -> Identity:
        raise AuthRefused("token expired: reload the page", challenge='Bearer realm="game"')

    server = Server(of_kind(clock, refuse))
    conn = server.conn()
    await conn.client.send_all(upgrade_request("/?token=old"))
    assert await conn.open() is None
    status, headers, body = await conn.response()
    assert status == 401
    assert body == b"token expired: reload the page\n"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["www-authenticate"] == 'Bearer realm="game"'
    assert int(headers["content-length"]) == len(body)
    assert server.front.counter.total == 0
    assert server.gate.stats.refused == 1


async def test_slow_async_hook_gets_503_exactly_at_auth_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A hook that never answers is cancelled at auth_timeout → 503 with Retry-After; the
    shorter handshake_timeout does not cut it short (its clock stops during the hook)."""
    cancelled = trio.Event()

    async def hook(request: AuthRequest) -> Identity:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    server = Server(hook, auth_timeout=3.0, handshake_timeout=1.0)
    conn = server.conn()
    await conn.client.send_all(upgrade_request())
    assert await conn.open() is None
    assert conn.ended_at == 3.0
    assert cancelled.is_set()
    status, headers, _body = await conn.response()
    assert status == 503
    assert headers["retry-after"] == "5"
    assert server.gate.stats.timed_out == 1
    assert server.front.counter.total == 0


async def test_slow_sync_hook_gets_503_exactly_at_auth_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A blocking plain function is abandoned at auth_timeout → 503; its late answer is
    dropped."""
    release = threading.Event()
    finished = threading.Event()

    def hook(request: AuthRequest) -> Identity:
        release.wait(10)
        finished.set()
        return ADA

    server = Server(hook, auth_timeout=2.0)
    conn = server.conn()
    await conn.client.send_all(upgrade_request())
    try:
        assert await conn.open() is None
        assert conn.ended_at == 2.0
        assert (await conn.response())[0] == 503
    finally:
        release.set()
    assert await trio.to_thread.run_sync(finished.wait, 10)
    assert server.gate.stats.as_dict() == {
        "accepted": 0,
        "refused": 0,
        "timed_out": 1,
        "failed": 0,
    }


async def test_hook_within_its_timeout_outlasts_the_handshake_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A hook that takes 4 s of its 5 is answered with the 101, though handshake_timeout
    is 2 s: the hook's time is its own."""

    async def hook(request: AuthRequest) -> Identity:
        await trio.sleep(4.0)
        return ADA

    server = Server(hook, auth_timeout=5.0, handshake_timeout=2.0)
    conn = server.conn()
    await conn.client.send_all(upgrade_request())
    opened = await conn.open()
    assert opened is not None and opened.identity is ADA
    assert conn.ended_at == 4.0
    assert (await conn.response())[0] == 101


async def test_crashing_hook_is_500_logged_and_the_next_connection_works(
    clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook that raises → 500 (no detail to the client), logged with the traceback; the
    next connection through the same gate is accepted."""

    def check(request: AuthRequest) -> Identity:
        if request.param("token") == "boom":
            raise KeyError("database row missing")
        return ADA

    server = Server(of_kind(clock, check))
    first = server.conn()
    await first.client.send_all(upgrade_request("/?token=boom"))
    with caplog.at_level(logging.ERROR, logger="gameserver.trio.handshake"):
        assert await first.open() is None
    status, _headers, body = await first.response()
    assert status == 500
    assert body == b"Authentication failed on the server.\n"
    [record] = [r for r in caplog.records if "authenticate hook failed" in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert server.front.counter.total == 0

    second = server.conn()
    await second.client.send_all(upgrade_request("/?token=fine"))
    opened = await second.open()
    assert opened is not None and opened.identity is ADA
    assert server.gate.stats.as_dict() == {
        "accepted": 1,
        "refused": 0,
        "timed_out": 0,
        "failed": 1,
    }


@pytest.mark.parametrize("answer", [None, "u-1", {"user_id": "u-1"}], ids=["None", "str", "dict"])
async def test_hook_returning_no_identity_is_500(
    answer: object, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Returning anything but an Identity (None included: there is no anonymous accept) is a
    bug in the hook → 500, logged."""

    async def hook(request: AuthRequest) -> Any:
        return answer

    records = await refused_500(hook, caplog)
    assert any("not an Identity" in r.getMessage() for r in records)


async def test_plain_function_returning_a_coroutine_is_500(
    mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A sync callable that returns a coroutine (an async hook in disguise) → 500, logged
    with trio's explanation ("appears to be asynchronous")."""

    async def inner(request: AuthRequest) -> Identity:
        return ADA

    def hook(request: AuthRequest) -> Any:
        return inner(request)

    records = await refused_500(hook, caplog)
    [record] = [r for r in records if "authenticate hook failed" in r.getMessage()]
    assert record.exc_info is not None and "asynchronous" in str(record.exc_info[1])


async def test_callable_object_with_async_call_is_awaited(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An object whose __call__ is a coroutine function counts as an async hook."""

    class Checker:
        async def __call__(self, request: AuthRequest) -> Identity:
            await trio.sleep(0.5)
            return ADA

    server = Server(Checker())
    assert server.gate.is_async
    conn = server.conn()
    await conn.client.send_all(upgrade_request())
    opened = await conn.open()
    assert opened is not None and opened.identity is ADA and conn.ended_at == 0.5


@pytest.mark.parametrize(
    ("path", "extra", "settings", "status"),
    [
        ("/", "Origin: https://evil.example\r\n", {"allowed_origins": ("https://a.example",)}, 403),
        ("/play", "", {}, 404),
        ("/", "Sec-WebSocket-Version: 8\r\n", {}, 426),
    ],
    ids=["foreign-origin", "wrong-path", "bad-version"],
)
async def test_hook_is_not_called_for_an_upgrade_refused_before_it(
    path: str,
    extra: str,
    settings: dict[str, Any],
    status: int,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The front's and websockets' refusals come first: the hook never sees those requests."""
    calls: list[AuthRequest] = []

    async def hook(request: AuthRequest) -> Identity:
        calls.append(request)
        return ADA

    server = Server(hook, **settings)
    conn = server.conn()
    request = upgrade_request(path, extra=extra)
    if "Sec-WebSocket-Version: 8" in extra:
        request = request.replace(b"Sec-WebSocket-Version: 13\r\n", b"")
    await conn.client.send_all(request)
    assert await conn.open() is None
    assert (await conn.response())[0] == status
    assert calls == []


async def test_a_connection_in_authentication_counts_against_the_caps(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """While one upgrade waits for its hook it holds its place under the per-IP cap: a
    second upgrade from the same address gets 429 without reaching the hook."""
    calls = 0
    answer = trio.Event()

    async def hook(request: AuthRequest) -> Identity:
        nonlocal calls
        calls += 1
        await answer.wait()
        return ADA

    server = Server(hook, max_connections_per_ip=1)
    first, second = server.conn(), server.conn()
    results: list[Opened | None] = []

    async def open_first() -> None:
        results.append(await first.open())

    await first.client.send_all(upgrade_request())
    nursery.start_soon(open_first)
    await trio.testing.wait_all_tasks_blocked()
    assert calls == 1 and server.front.counter.per_ip == {"10.0.0.1": 1}
    await second.client.send_all(upgrade_request())
    assert await second.open() is None
    assert (await second.response())[0] == 429
    assert calls == 1
    answer.set()
    await trio.testing.wait_all_tasks_blocked()
    assert results and results[0] is not None and results[0].identity is ADA


async def test_identity_reaches_the_session_and_names_the_player(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """Through ClientLink: player.identity is the hook's Identity and its name replaces the
    hello's in the roster and the join event."""

    async def hook(request: AuthRequest) -> Identity:
        return ADA

    server = Server(hook)
    conn = server.conn()
    hello = encode(Hello(PROTOCOL_VERSION, "whoever", game="arena"))
    await conn.client.send_all(upgrade_request() + client_frames(hello))
    opened = await conn.open()
    assert opened is not None
    await conn.response()
    link = start_link(nursery, server.settings, opened)
    peer = WsPeer(conn.client)
    welcome = await peer.next_message()
    assert isinstance(welcome, Welcome) and isinstance(welcome.room, RoomInfo)
    assert [p.name for p in welcome.room.players] == ["Ada"]
    event = await peer.next_message()
    assert isinstance(event, Event) and event.kind == "join" and event.name == "Ada"
    assert link.session.player.identity is ADA
    assert link.session.player.name == "Ada"
