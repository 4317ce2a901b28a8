"""Authentication: who a player is, decided once per connection, before the 101 (sans-I/O).

A game developer passes an ``authenticate`` hook to the server
(``serve_game(settings, games, authenticate)`` or ``python -m gameserver --auth
module:function``). The trio shell calls it in the connection's own handshake
task, after the HTTP front has accepted the upgrade (path, caps, Origin) and
before the ``101 Switching Protocols``; never in a room's tick loop. It gets an
:class:`AuthRequest` and returns an :class:`Identity`, or raises
:class:`AuthRefused`:

- an :class:`Identity` → the upgrade goes on; the session's ``player.identity``
  is it, and its ``name`` (if any) replaces the name the client's ``hello`` gives;
- :class:`AuthRefused` → HTTP 401 with the reason as the body;
- no answer within ``auth_timeout`` → HTTP 503 with ``Retry-After``;
- any other exception, or a return value that is not an Identity → HTTP 500,
  logged with its traceback. Other connections are not affected.

The hook may be a coroutine function (awaited in the handshake task: use trio,
and let it be cancelled at ``auth_timeout``) or a plain function (run in a
worker thread, so it may block on a database without stalling any tick). Browsers
cannot set headers on a WebSocket: a token comes in the URL's query
(``ws://host/?token=...``), in a cookie of the page's own site, or, from bots and
native clients, in an ``Authorization`` header.

This module holds the plain types and decisions; the awaiting is in
``gameserver.trio.handshake``.
"""

from __future__ import annotations

import importlib
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from protocol import MAX_NAME_CHARS

MAX_REASON_CHARS = 200
"""A refusal's reason is cut to this many characters in the 401's body."""

RETRY_AFTER_SECONDS = 5
"""``Retry-After`` of the 503 a hook that timed out earns (the server-full 503's too)."""


class AuthRefused(Exception):
    """Raise from an ``authenticate`` hook to refuse a connection: HTTP 401.

    ``reason`` is the 401's body (plain text, cut to ``MAX_REASON_CHARS``): what
    the player may read, not what the server knows. ``challenge`` is the
    ``WWW-Authenticate`` header's value, which a 401 must carry (RFC 9110
    §11.6.1); the default, ``Bearer``, makes no browser show a password dialog.
    """

    def __init__(self, reason: str = "authentication required", *, challenge: str = "Bearer"):
        if not isinstance(reason, str):
            raise TypeError("AuthRefused: reason must be a str")
        if not challenge or not challenge.isprintable() or not challenge.isascii():
            raise ValueError("AuthRefused: challenge must be printable ASCII (a header value)")
        super().__init__(reason)
        self.reason = reason
        self.challenge = challenge


def _printable_name(name: str) -> bool:
    """No control or format character (Unicode category C*) and no padding: what
    ``hello.name`` becomes after cleaning (PROTOCOL.md §5.4)."""
    return name == name.strip() and all(unicodedata.category(ch)[0] != "C" for ch in name)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the player is, as the ``authenticate`` hook established it.

    Game code reads it as ``player.identity`` (None when the server has no hook).
    """

    user_id: str
    """Your site's id for this user (non-empty). The server only hands it on; it does not
    stop one user from connecting twice (refuse in the hook if your game needs that)."""
    name: str | None = None
    """Display name. When set, it replaces ``hello.name`` as the player's name in rosters,
    events and ``player.name``: 1..32 printable characters (no control or format
    characters, no leading or trailing whitespace), else ValueError."""
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)
    """Anything else game code should know (roles, team, rating); kept read-only."""

    def __post_init__(self) -> None:
        if not isinstance(self.user_id, str) or not self.user_id:
            raise ValueError("Identity.user_id must be a non-empty str")
        if self.name is not None and not (
            isinstance(self.name, str)
            and 1 <= len(self.name) <= MAX_NAME_CHARS
            and _printable_name(self.name)
        ):
            raise ValueError(
                f"Identity.name must be 1..{MAX_NAME_CHARS} printable characters without "
                f"leading or trailing whitespace, got {self.name!r}"
            )
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """What the ``authenticate`` hook knows about the connection: the upgrade request.

    Everything here comes from the client and is only as trustworthy as your check of
    it (``peer_ip`` is the client: the TCP peer, or the address a trusted proxy forwarded).
    """

    path: str
    """The request's path without the query: always ``/`` (other paths get 404 first)."""
    query: Mapping[str, tuple[str, ...]]
    """Query parameters, decoded, each with every value given (``?token=a`` →
    ``{"token": ("a",)}``); :meth:`param` gives one."""
    headers: Mapping[str, tuple[str, ...]]
    """Request headers by lower-case name, each with every value given;
    :meth:`header` gives one."""
    cookies: Mapping[str, str]
    """Cookies of the ``Cookie`` header(s); for a name given twice, the first
    (browsers send the cookie of the most specific path first)."""
    peer_ip: str
    """The client's IP address: the TCP peer, or the one a ``trusted_proxies`` peer forwarded."""

    @classmethod
    def build(cls, target: str, headers: Iterable[tuple[str, str]], peer_ip: str) -> AuthRequest:
        """From the request target (``/?token=...``) and the raw header lines."""
        parts = urlsplit(target)
        query = {
            name: tuple(values)
            for name, values in parse_qs(parts.query, keep_blank_values=True).items()
        }
        by_name: dict[str, list[str]] = {}
        for name, value in headers:
            by_name.setdefault(name.lower(), []).append(value)
        cookies: dict[str, str] = {}
        for line in by_name.get("cookie", ()):
            for pair in line.split(";"):
                name, equals, value = pair.partition("=")
                name = name.strip()
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]  # RFC 6265 allows a quoted value
                if equals and name:
                    cookies.setdefault(name, value)
        return cls(
            path=parts.path or "/",
            query=MappingProxyType(query),
            headers=MappingProxyType({k: tuple(v) for k, v in by_name.items()}),
            cookies=MappingProxyType(cookies),
            peer_ip=peer_ip,
        )

    def param(self, name: str) -> str | None:
        """The query parameter ``name``; None when absent, or given more than once
        (which of two tokens did the client mean?)."""
        values = self.query.get(name, ())
        return values[0] if len(values) == 1 else None

    def header(self, name: str) -> str | None:
        """The header ``name`` (any case); None when absent or repeated."""
        values = self.headers.get(name.lower(), ())
        return values[0] if len(values) == 1 else None

    @property
    def origin(self) -> str | None:
        """The ``Origin`` header: set by browsers (the page's site), absent from most bots.
        The server has checked it against ``allowed_origins`` already, when that is set."""
        return self.header("origin")

    @property
    def bearer_token(self) -> str | None:
        """The token of an ``Authorization: Bearer <token>`` header, else None."""
        value = self.header("authorization")
        if value is None:
            return None
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None


Authenticate = Callable[[AuthRequest], Identity | Awaitable[Identity]]
"""The hook: ``def check(request: AuthRequest) -> Identity`` or an ``async def`` one."""


@dataclass(frozen=True, slots=True)
class HttpRefusal:
    """The HTTP response that ends a handshake whose authentication did not succeed."""

    status: int
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class AuthStats:
    """Outcomes of the hook since the server started (``/healthz``'s ``auth``), and the
    response each failed one earns."""

    accepted: int = 0
    refused: int = 0
    timed_out: int = 0
    failed: int = 0
    """The hook raised something other than AuthRefused, or returned no Identity."""

    def accept(self) -> None:
        self.accepted += 1

    def refuse(self, refusal: AuthRefused) -> HttpRefusal:
        self.refused += 1
        reason = refusal.reason.strip()[:MAX_REASON_CHARS] or "authentication required"
        return HttpRefusal(401, reason + "\n", {"WWW-Authenticate": refusal.challenge})

    def time_out(self) -> HttpRefusal:
        self.timed_out += 1
        return HttpRefusal(
            503,
            "Authentication is taking too long; try again shortly.\n",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    def fail(self) -> HttpRefusal:
        self.failed += 1
        return HttpRefusal(500, "Authentication failed on the server.\n")

    def as_dict(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "refused": self.refused,
            "timed_out": self.timed_out,
            "failed": self.failed,
        }


def load_authenticate(spec: str) -> Authenticate:
    """Import the hook named ``"package.module:function"`` (the CLI's ``--auth``)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"expected module:function, got {spec!r}")
    hook = getattr(importlib.import_module(module_name), attribute)
    if not callable(hook):
        raise TypeError(f"{spec} is not callable")
    return cast(Authenticate, hook)
