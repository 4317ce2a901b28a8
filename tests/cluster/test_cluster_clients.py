"""The bundled clients route through a real cluster (two workers, one real Redis).

The Python client and the Node client written from PROTOCOL.md follow the
redirect to the worker that holds the room, keep their player id across a
lobby join's hop, and play there. (The browser page: tests/browser/test_cluster_page.py.)
"""

from __future__ import annotations

import trio

from clients.python import connect
from protocol import Snapshot
from tests.cluster.conftest import Cluster
from tests.net.test_node_client import node, run_spec_client, summary_of

from .test_cluster_net import url_of

__all__ = ["node"]  # the fixture, shared with tests/net/test_node_client.py


async def test_the_python_client_follows_a_redirect_into_a_named_room(cluster: Cluster) -> None:
    first, second = await cluster.start(2)
    async with connect(url_of(first), "ada", game="arena", room="duel") as ada:
        async with connect(url_of(second), "bob", room="duel") as bob:
            assert bob.redirects == 1
            assert bob.room is not None and bob.room.name == "duel"
            assert [p.name for p in bob.room.players] == ["ada", "bob"]
            with trio.fail_after(5):
                while not isinstance(await bob.recv(), Snapshot):
                    pass
        assert ada.redirects == 0


async def test_the_python_client_keeps_its_id_on_a_lobby_join_hop(cluster: Cluster) -> None:
    first, second = await cluster.start(2)
    async with (
        connect(url_of(first), "ada", game="arena", room="duel"),
        connect(url_of(second), "bob") as bob,
    ):
        lobby_id = bob.player_id
        with trio.fail_after(5):
            room = await bob.join(room="duel")
        assert room.name == "duel"
        assert bob.redirects == 1
        assert bob.player_id == lobby_id


async def test_the_node_client_follows_a_redirect(cluster: Cluster, node: str) -> None:
    first, second = await cluster.start(2)
    # The oldest arena room with a free seat is on the first worker: matchmaking
    # through the second sends the Node client there.
    async with connect(url_of(first), "ada", game="arena"):
        summary = summary_of(*await run_spec_client(node, url_of(second), "node-hop"))
    assert summary["redirects"] == 1, summary
