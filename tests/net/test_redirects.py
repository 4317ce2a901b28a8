"""The Python client follows redirects (PROTOCOL.md §5.11) through tests/fake_cluster.py.

The fake front redirects to the fake worker, which seats the ticket's holder in a
room of the real server behind both; see tests/fake_cluster.py for the script.
"""

from __future__ import annotations

import pytest
import trio
from websockets.trio.client import connect as ws_connect

from clients.python.client import (
    MAX_REDIRECTS,
    GameClient,
    ServerRefused,
    TooManyRedirects,
    connect,
    redirect_url,
)
from protocol import CloseCode, ErrorCode
from tests.fake_cluster import fake_cluster

from .conftest import StartServer

pytestmark = pytest.mark.network

LIMIT = 10.0


async def test_hello_for_a_room_elsewhere_ends_in_that_room(start_server: StartServer) -> None:
    server = await start_server()
    with trio.fail_after(LIMIT):
        async with (
            fake_cluster(server.url) as cluster,
            connect(cluster.front_url, "ada", game="arena") as client,
        ):
            assert client.redirects == 1
            assert client.welcome is not None and client.room is not None
            assert client.room.name == cluster.far_room
            assert (client.player_id, "ada") in [(p.id, p.name) for p in client.room.players]
            # The hello at the worker carried the ticket and the same version and name.
            [hello] = cluster.worker_hellos
            assert hello["ticket"] == cluster.redirects[0].ticket
            assert (hello["version"], hello["name"]) == (1, "ada")
            await client.send_input({"dx": 1, "dy": 0})
            snapshot = await client.next_snapshot()
            assert snapshot.tick >= client.welcome.tick
        assert client.close_code == CloseCode.NORMAL


async def test_join_from_the_lobby_redirected_looks_like_joined(start_server: StartServer) -> None:
    server = await start_server()
    with trio.fail_after(LIMIT):
        async with (
            fake_cluster(server.url) as cluster,
            connect(cluster.front_url, "bob") as client,
        ):
            assert client.room is None and client.redirects == 0
            room = await client.join("arena", "r7")
            assert room.name == "r7" and client.room == room
            assert client.redirects == 1
            assert client.welcome is not None and client.welcome.room == room
            assert [h.get("room") for h in cluster.front_hellos] == [None]
            assert await client.next_snapshot()
            assert server.core.rooms.player_count == 1  # the lobby connection is gone


async def test_headers_and_the_query_go_along(start_server: StartServer) -> None:
    server = await start_server()
    with trio.fail_after(LIMIT):
        async with fake_cluster(server.url) as cluster:
            url = cluster.front_url + "?token=t0k"
            headers = {"Authorization": "Bearer abc"}
            async with connect(url, "cy", game="arena", headers=headers) as client:
                assert client.redirects == 1
            [(path, sent)] = cluster.worker_requests
            assert path == "/?token=t0k"
            assert sent["Authorization"] == "Bearer abc"


def test_redirect_url_keeps_its_own_query_or_takes_the_first_one() -> None:
    assert redirect_url("ws://w:2/", "ws://f:1/?token=a") == "ws://w:2/?token=a"
    assert redirect_url("ws://w:2/?x=1", "ws://f:1/?token=a") == "ws://w:2/?x=1"
    assert redirect_url("ws://w:2/", "ws://f:1/") == "ws://w:2/"
    assert redirect_url("ws://w:2/", None) == "ws://w:2/"


async def test_a_redirect_loop_stops_after_max_redirects(start_server: StartServer) -> None:
    server = await start_server()
    with trio.fail_after(LIMIT):
        async with fake_cluster(server.url, loop=True) as cluster:
            with pytest.raises(TooManyRedirects) as caught:
                async with connect(cluster.front_url, "dan", game="arena"):
                    pass
            assert caught.value.code == "too_many_redirects"
            assert caught.value.redirect == cluster.redirects[-1]
            # One redirect from the front, then one per hop the client made.
            assert len(cluster.worker_hellos) == MAX_REDIRECTS
            assert len(cluster.redirects) == MAX_REDIRECTS + 1


async def test_a_refused_ticket_starts_over_once_at_the_first_url(
    start_server: StartServer,
) -> None:
    server = await start_server()
    with trio.fail_after(LIMIT):
        async with (
            fake_cluster(server.url, refuse_tickets=1) as cluster,
            connect(cluster.front_url, "eve", game="arena", room="r3") as client,
        ):
            assert client.room is not None and client.room.name == "r3"
            assert client.redirects == 2
            # The second hello at the front is the original one again: no ticket.
            assert [(h.get("room"), h.get("ticket")) for h in cluster.front_hellos] == [
                ("r3", None),
                ("r3", None),
            ]
            assert len(cluster.worker_hellos) == 2


async def test_a_ticket_refused_twice_is_raised(start_server: StartServer) -> None:
    server = await start_server()
    with trio.fail_after(LIMIT):
        async with fake_cluster(server.url, refuse_tickets=2) as cluster:
            with pytest.raises(ServerRefused) as caught:
                async with connect(cluster.front_url, "fay", game="arena"):
                    pass
            assert caught.value.code == ErrorCode.BAD_TICKET
            assert len(cluster.front_hellos) == 2


async def test_a_client_without_an_opener_does_not_follow(start_server: StartServer) -> None:
    server = await start_server()
    with trio.fail_after(LIMIT):
        async with (
            fake_cluster(server.url) as cluster,
            ws_connect(cluster.front_url, compression=None) as ws,
        ):
            client = GameClient(ws)
            with pytest.raises(TooManyRedirects):
                await client.hello("gus", "arena")
            assert cluster.worker_hellos == []
