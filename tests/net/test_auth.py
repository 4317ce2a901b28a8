"""The authenticate hook end to end, on 127.0.0.1: the game sees ``player.identity``.

The game here puts every player's identity into its snapshot, so what the
client reads is what game code saw. Tokens come in the URL's query (what a
browser page can do) and in an Authorization header (bots).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from websockets.exceptions import InvalidStatus

from clients.python import connect
from gameserver import Game, GameRegistry, Player
from protocol import Snapshot
from tests.net.auth_hooks import check
from tests.net.conftest import StartServer, get_request, http_exchange, upgrade_request

pytestmark = pytest.mark.network


class WhoAmI(Game):
    """Shows game code's view of each player: id → [user_id, name, data] (None: anonymous)."""

    name = "whoami"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.players: dict[int, Player] = {}

    def on_join(self, player: Player) -> None:
        self.players[player.id] = player

    def on_leave(self, player: Player) -> None:
        del self.players[player.id]

    def step(self, dt: float) -> None:
        pass

    def snapshot(self, viewer: Player) -> Any:
        return {
            "who": {
                pid: None
                if p.identity is None
                else [p.identity.user_id, p.name, dict(p.identity.data)]
                for pid, p in self.players.items()
            }
        }


def games() -> GameRegistry:
    registry = GameRegistry()
    registry.register(WhoAmI)
    return registry


async def state_with(client: Any, count: int) -> dict[int, Any]:
    """The game's "who" map, once it lists ``count`` players."""
    while True:
        message = await client.recv()
        if isinstance(message, Snapshot) and len(message.state["who"]) == count:
            return message.state["who"]  # type: ignore[no-any-return]


async def test_game_sees_identity_from_query_and_header_and_bad_token_gets_401(
    start_server: StartServer,
) -> None:
    """?token= (browsers) and Authorization: Bearer (bots) both reach player.identity; the
    identity's name replaces hello.name, a nameless identity keeps it; a bad token or none
    is a 401 with the hook's reason; /healthz counts each outcome."""
    server = await start_server(games(), check, tick_rate=20, snapshot_rate=20)
    with trio.fail_after(10):
        async with connect(server.url + "?token=t-ada", "ignored", game="whoami") as ada:
            assert ada.room is not None
            assert [p.name for p in ada.room.players] == ["Ada"]
            async with connect(
                server.url, "bob", game="whoami", headers={"Authorization": "Bearer t-bob"}
            ) as bob:
                who = await state_with(bob, 2)
                assert who == {
                    ada.player_id: ["u-1", "Ada", {}],
                    bob.player_id: ["u-2", "bob", {"role": "admin"}],
                }

        refused = await http_exchange(server.port, upgrade_request(server.port, "/?token=nope"))
        assert refused.status == 401
        assert refused.body == b"unknown token\n"
        assert refused.headers["www-authenticate"] == "Bearer"

        with pytest.raises(InvalidStatus) as no_token:
            async with connect(server.url, "eve", game="whoami"):
                pass
        assert no_token.value.response.status_code == 401
        assert no_token.value.response.body.startswith(b"no token")

        health = await http_exchange(server.port, get_request(server.port, "/healthz"))
        assert json.loads(health.body)["auth"] == {
            "accepted": 2,
            "refused": 2,
            "timed_out": 0,
            "failed": 0,
        }


async def test_without_a_hook_players_have_no_identity(start_server: StartServer) -> None:
    """No hook: everyone is let in as before, player.identity is None, /healthz has no auth."""
    server = await start_server(games(), tick_rate=20, snapshot_rate=20)
    with trio.fail_after(10):
        async with connect(server.url + "?token=t-ada", "carol", game="whoami") as carol:
            assert await state_with(carol, 1) == {carol.player_id: None}
        health = await http_exchange(server.port, get_request(server.port, "/healthz"))
        assert "auth" not in json.loads(health.body)


async def test_a_crashing_hook_costs_only_that_connection(start_server: StartServer) -> None:
    """A hook that raises for one request → 500 for it; a player already in and the next
    connection are served."""

    async def flaky(request: Any) -> Any:
        if request.param("token") == "crash":
            raise RuntimeError("auth backend bug")
        return await check(request)

    server = await start_server(games(), flaky, tick_rate=20, snapshot_rate=20)
    with trio.fail_after(10):
        async with connect(server.url + "?token=t-ada", "x", game="whoami") as ada:
            crashed = await http_exchange(
                server.port, upgrade_request(server.port, "/?token=crash")
            )
            assert crashed.status == 500
            async with connect(server.url + "?token=t-bob", "bob", game="whoami") as bob:
                assert len(await state_with(bob, 2)) == 2
                await state_with(ada, 2)
            await state_with(ada, 1)  # ada still gets snapshots after bob left
