"""A Python player beside the browser: the project's trio client library on its own thread.

Sync Playwright owns the test's thread, so the Python player runs ``trio.run``
on a thread of its own. It records every message it receives (pings are
answered by the client library) and the test waits on them with
:meth:`ThreadPlayer.wait_for`, bounded by a timeout; what it sends goes through
``trio.from_thread``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import trio

from clients.python.client import GameClient, connect
from protocol import Event, ServerMessage, Snapshot


class ThreadPlayer:
    """``with ThreadPlayer(url, "py", room="r1") as player: player.wait_for(...)``."""

    def __init__(
        self,
        url: str,
        name: str,
        *,
        room: str,
        timeout: float = 5.0,
        game: str = "arena",
        deltas: bool = True,
    ) -> None:
        self.url = url
        self.game = game
        self.deltas = deltas
        """Ask for delta snapshots (the client library applies them) or get them all whole."""
        self.name = name
        self.room = room
        self.timeout = timeout
        self.messages: list[ServerMessage] = []
        self.player_id: int | None = None
        self.failure: BaseException | None = None
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._client: GameClient | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    def __enter__(self) -> ThreadPlayer:
        self._thread.start()
        if not self._ready.wait(self.timeout):
            raise TimeoutError(f"{self.name}: no welcome within {self.timeout} s")
        if self.failure is not None:
            raise RuntimeError(f"{self.name} could not join {self.room}") from self.failure
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None and self._cancel is not None:
            with contextlib.suppress(trio.RunFinishedError):  # it ended already
                trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
        self._thread.join(self.timeout)
        assert not self._thread.is_alive(), f"{self.name}: client thread did not stop"

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        try:
            async with connect(
                self.url, self.name, game=self.game, room=self.room, deltas=self.deltas
            ) as client:
                self._client = client
                self.player_id = client.player_id
                with trio.CancelScope() as self._cancel:
                    self._ready.set()
                    async for message in client:
                        with self._changed:
                            self.messages.append(message)
                            self._changed.notify_all()
        except Exception as exc:  # reported to the test's thread by __enter__ / wait_for
            self.failure = exc
        finally:
            self._ready.set()
            with self._changed:
                self._changed.notify_all()

    def mark(self) -> int:
        """How many messages have arrived: pass it as ``since`` to wait only for later ones."""
        with self._changed:
            return len(self.messages)

    def wait_for(
        self,
        predicate: Callable[[ServerMessage], bool],
        timeout: float | None = None,
        since: int = 0,
    ) -> ServerMessage:
        """The first message since message number ``since`` that satisfies ``predicate``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen = since
        with self._changed:
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise TimeoutError(f"{self.name}: no matching message (got {seen})")
                self._changed.wait(left)

    def wait_for_position(
        self, player: int, check: Callable[[float, float], bool], since: int = 0
    ) -> tuple[float, float]:
        """World position of ``player`` in the first snapshot where ``check(x, y)`` holds."""
        found: list[tuple[float, float]] = []

        def matches(message: ServerMessage) -> bool:
            position = snapshot_position(message, player)
            if position is not None and check(*position):
                found.append(position)
                return True
            return False

        self.wait_for(matches, since=since)
        return found[0]

    def wait_until_still(self, player: int, since: int) -> tuple[float, float]:
        """Where ``player`` stands once two consecutive snapshots after ``since`` agree."""
        previous: list[Any] = [None]

        def still(message: ServerMessage) -> bool:
            position = snapshot_position(message, player)
            if position is None:
                return False
            same = position == previous[0]
            previous[0] = position
            return same

        message = self.wait_for(still, since=since)
        return snapshot_position(message, player)  # type: ignore[no-any-return]

    def chat(self, text: str) -> None:
        assert self._token is not None and self._client is not None
        trio.from_thread.run(self._client.chat, text, trio_token=self._token)

    def events(self, kind: str) -> list[Event]:
        with self._changed:
            return [m for m in self.messages if isinstance(m, Event) and m.kind == kind]


def snapshot_position(message: ServerMessage, player: int, scale: int = 10) -> Any:
    """(x, y) of ``player`` in world units if ``message`` is a snapshot that has it, else None."""
    if not isinstance(message, Snapshot):
        return None
    for pid, x, y, _score in message.state["players"]:
        if pid == player:
            return (x / scale, y / scale)
    return None
