"""The errors the Python client raises for a server's refusal (an ``error`` message)."""

from __future__ import annotations

from protocol import Error, Redirect


class ServerRefused(Exception):
    """The server answered a request with an ``error`` message."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error
        self.code = error.code


class TooManyRedirects(ServerRefused):
    """More redirects for one request than the client follows (or it cannot open connections).

    Its ``code`` is ``too_many_redirects``, a client-side code: no server sends it.
    """

    def __init__(self, redirect: Redirect, hops: int) -> None:
        super().__init__(
            Error("too_many_redirects", f"redirected {hops} times, last to {redirect.url}", None)
        )
        self.redirect = redirect
