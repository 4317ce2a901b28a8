"""``input.tick`` over loopback WebSockets with the Python client (PROTOCOL.md §5.3)."""

from __future__ import annotations

import pytest
import trio

from clients.python.client import connect
from protocol import Error, Snapshot

from .conftest import StartServer, expect

pytestmark = pytest.mark.network


async def test_an_input_is_applied_at_the_tick_it_names(start_server: StartServer) -> None:
    """Sent for a tick well ahead, an input is acknowledged by no snapshot before that tick
    and by the one of that tick; one past max_input_lead is refused with input_too_early."""
    server = await start_server(max_input_lead=30)
    with trio.fail_after(10):
        async with connect(server.url, "ada", game="arena", room="ticks") as client:
            now = await client.next_snapshot()
            target = now.tick + 20
            seq = await client.send_input({"dx": 1, "dy": 0}, tick=target)
            while True:
                snapshot = await client.next_snapshot()
                if snapshot.tick < target:
                    assert snapshot.ack != seq, "applied before the tick it named"
                else:
                    break
            assert snapshot.ack == seq  # the snapshot of the target tick (or the first after)

            far = snapshot.tick + 1000  # far more than max_input_lead past the room's tick
            await client.send_input({"dx": 0, "dy": 0}, tick=far)
            error = await expect(client, lambda m: isinstance(m, Error))
            assert isinstance(error, Error)
            assert (error.code, error.ref) == ("input_too_early", "input")
            assert isinstance(await client.next_snapshot(), Snapshot)  # the connection goes on
