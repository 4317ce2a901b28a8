"""The bundled clients route through a real cluster (two workers, one real Redis).

The Python client and the Node client written from PROTOCOL.md follow the
redirect to the worker that holds the room, keep their player id across a
lobby join's hop, and play there; a spectator is redirected without taking a
seat; a dropped player resumes at the worker ``welcome.resume_url`` names.
(The browser page: tests/browser/test_cluster_page.py.)
"""

from __future__ import annotations

import trio
from prometheus_client.parser import text_string_to_metric_families

from clients.python import connect
from gameserver.trio import RunningServer
from protocol import Snapshot
from tests.cluster.conftest import Cluster
from tests.net.conftest import get_request, http_exchange
from tests.net.test_node_client import node, run_spec_client, summary_of
from tests.net.test_resume import cut

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


async def test_a_spectator_is_redirected_to_watch_without_a_seat(cluster: Cluster) -> None:
    first, second = await cluster.start(2)
    async with (
        connect(url_of(first), "ada", game="arena", room="duel"),
        connect(url_of(second), "eve", room="duel", spectate=True) as eve,
    ):
        assert eve.redirects == 1
        assert eve.room is not None and eve.room.name == "duel"
        assert eve.resume_token is None  # a spectator holds no seat to take back
        with trio.fail_after(5):
            while not isinstance(await eve.recv(), Snapshot):
                pass
        directory = first.directory
        assert directory is not None
        taken = await directory.client.hget(f"{cluster.prefix}:r:duel", "taken")
        assert taken == "1"  # ada's seat only
        room = first.core.rooms.get("duel")
        assert room is not None and len(room.seats) == 1


async def test_a_dropped_player_resumes_at_the_worker_holding_the_seat(cluster: Cluster) -> None:
    first, second = await cluster.start(2)
    async with connect(url_of(first), "ada", game="arena", room="duel"):
        async with connect(url_of(second), "bob", room="duel") as bob:
            token, resume_url, player = bob.resume_token, bob.resume_url, bob.player_id
            assert token is not None
            assert resume_url == url_of(first)  # the worker holding the seat, not second
            await cut(bob)
        # Through the other worker the token means nothing...
        async with connect(url_of(second), "bob", resume=token) as wrong:
            assert wrong.resume_refused and not wrong.resumed
        # ...at the worker the welcome named, the seat comes back.
        async with connect(resume_url, "bob", resume=token) as back:
            assert back.resumed and back.player_id == player
            assert back.room is not None and back.room.name == "duel"
    # What an operator sees: the resume on the first worker, the refusal on the second.
    first_metrics, second_metrics = await scrape(first), await scrape(second)
    assert first_metrics[("gameserver_resumes_total", ("resumed",))] == 1
    assert second_metrics[("gameserver_resumes_total", ("failed",))] == 1
    assert first_metrics[("gameserver_directory_up", ())] == 1


async def scrape(server: RunningServer) -> dict[tuple[str, tuple[str, ...]], float]:
    """The worker's /metrics, parsed by prometheus-client's own parser."""
    response = await http_exchange(server.port, get_request(server.port, "/metrics"))
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sample.labels.values()))] = sample.value
    return samples
