"""Authenticate hooks for the end-to-end tests (``--auth tests.net.auth_hooks:check`` in
the CLI test): a fixed table of tokens, read from ``?token=`` or ``Authorization: Bearer``."""

from __future__ import annotations

from gameserver import AuthRefused, AuthRequest, Identity

TOKENS = {
    "t-ada": Identity("u-1", "Ada"),
    "t-bob": Identity("u-2", data={"role": "admin"}),
}


async def check(request: AuthRequest) -> Identity:
    """The identity a token stands for; 401 for a missing or unknown one."""
    token = request.param("token") or request.bearer_token
    if token is None:
        raise AuthRefused("no token: add ?token=... or an Authorization header")
    identity = TOKENS.get(token)
    if identity is None:
        raise AuthRefused("unknown token")
    return identity
