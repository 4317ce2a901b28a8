"""The page's own modules on made-up data, in Chromium (``page.evaluate`` + ``import()``).

Prediction (predict.js) is checked against what the server really does with the
same inputs: the server side is the real ``Room`` and ``Arena`` ticked by hand,
inputs applied at the first tick after they arrive (PROTOCOL.md §5.3).
Interpolation (timeline.js) is checked against snapshots placed by hand.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from gameserver.game import RoomContext
from gameserver.games.arena import SCALE, Arena
from gameserver.room import Room
from gameserver.settings import Settings
from tests.helpers import RecordingMember, unpack

from .conftest import OpenPage

pytestmark = pytest.mark.network


@dataclass
class Served:
    """What a client sees of a scripted session, and where the server really had it."""

    info: dict[str, Any]
    """The room's info, as the page reads it from joined."""
    events: list[list[Any]]
    """["input", sent_ms, seq, dx, dy], ["snapshot", arrival_ms, tick, ack, x, y]: in time order."""
    positions: dict[int, tuple[float, float]]
    """The server's position of the player after each tick."""


def serve(
    tick_rate: int,
    sends: list[tuple[float, float, float]],
    latency_ms: float,
    start: tuple[float, float],
    ticks: int,
) -> Served:
    """Run ``sends`` ([(sent_ms, dx, dy)], seq 1, 2, …) through a real room.

    Tick k runs at k · tick_ms and applies what arrived before it; every input and
    every snapshot takes ``latency_ms`` on the way (one snapshot per tick).
    """
    tick_ms = 1000 / tick_rate
    settings = Settings(tick_rate=tick_rate, snapshot_rate=tick_rate)
    game = Arena(RoomContext("predict", tick_rate, 2, random.Random(0)))
    room = Room("predict", "arena", game, max_players=2, settings=settings, now=0.0)
    member = RecordingMember(1, "me", room)
    room.add(member)
    avatar = game.avatars[1]
    avatar.x, avatar.y = start
    events: list[list[Any]] = []
    arrivals = []
    for seq, (sent, dx, dy) in enumerate(sends, 1):
        events.append(["input", sent, seq, dx, dy])
        arrivals.append((sent + latency_ms, seq, dx, dy))
    positions = {}
    for tick in range(1, ticks + 1):
        while arrivals and arrivals[0][0] < tick * tick_ms:
            _, seq, dx, dy = arrivals.pop(0)
            command = game.validate_input(member.player, {"dx": dx, "dy": dy})
            assert room.queue_input(1, seq, command) is None
        room.tick(tick, 1 / tick_rate)
        snapshot_tick, ack, state = member.snapshots[-1]
        assert snapshot_tick == tick
        [[_, x, y, _]] = unpack(state)["players"]
        events.append(["snapshot", tick * tick_ms + latency_ms, tick, ack, x / SCALE, y / SCALE])
        positions[tick] = (avatar.x, avatar.y)
    events.sort(key=lambda event: event[1])
    return Served(game.info(), events, positions)


PREDICT = """async ([info, tickRate, events]) => {
    const { ArenaRules, parseInfo } = await import("/static/arena.js");
    const { Predictor } = await import("/static/predict.js");
    const predictor = new Predictor(new ArenaRules(parseInfo(info), tickRate), tickRate);
    const seen = [];
    for (const [kind, at, ...rest] of events) {
        if (kind === "input") {
            const [seq, dx, dy] = rest;
            predictor.inputSent(seq, dx, dy, at);
        } else {
            const [tick, ack, x, y] = rest;
            const before = predictor.prediction(at);
            predictor.reconcile(tick, ack, x, y, at);
            const after = predictor.prediction(at);
            seen.push({ tick, ack, before, after, lead: predictor.lead });
        }
    }
    return seen;
}"""


START = (400.0, 60.0)
"""Two hundred units of free floor to the right, then two hundred down."""


@pytest.mark.parametrize(
    ("tick_rate", "inputs_per_second", "latency_ms"),
    [(10, 6, 45.0), (30, 30, 45.0), (30, 20, 80.0)],
    ids=["10-ticks-6-inputs", "30-ticks-30-inputs", "30-ticks-20-inputs"],
)
def test_prediction_follows_the_servers_rule(
    open_page: OpenPage, tick_rate: int, inputs_per_second: int, latency_ms: float
) -> None:
    """A held key, a turn and a release: the prediction is where the server puts the player.

    Right for a second, down for a second, then stop, sent at the page's input rate
    (which need not divide the tick rate: at 10 ticks/s and 6 inputs/s an input
    moves the player for 1 or 2 ticks, 1.67 on average). Once a few inputs have been
    acknowledged (the lead is measured), no snapshot moves the prediction by more
    than a snapshot's rounding (0.1 units), the turn and the stop included; it ends
    exactly where the server stops the player.
    """
    page = open_page("/").page
    interval = 1000 / inputs_per_second
    sends = [(1007 + i * interval, 1.0, 0.0) for i in range(inputs_per_second)]
    sends += [
        (1007 + (i + inputs_per_second) * interval, 0.0, 1.0) for i in range(inputs_per_second)
    ]
    sends.append((1007 + 2 * inputs_per_second * interval, 0.0, 0.0))
    served = serve(tick_rate, sends, latency_ms, START, ticks=4 * tick_rate)
    final = served.positions[max(served.positions)]
    assert final == pytest.approx((START[0] + 200, START[1] + 200)), final  # no wall met
    seen = page.evaluate(PREDICT, [served.info, tick_rate, served.events])

    settled = [s for s in seen if s["ack"] is not None and s["ack"] > 4]
    assert len(settled) > 2 * tick_rate
    for s in settled:
        moved = abs(s["after"]["x"] - s["before"]["x"]) + abs(s["after"]["y"] - s["before"]["y"])
        assert moved <= 0.1 + 1e-9, s
    # Between two ticks the page shows part of the next step; a turn or a stop not sent
    # yet cannot be foreseen, so that part may pass the corner: never a whole step.
    step = served.info["speed"] / tick_rate
    for s in seen:
        assert s["after"]["x"] < final[0] + step and s["after"]["y"] < final[1] + step, s
    last = seen[-1]
    assert last["ack"] == len(sends)
    assert last["after"]["x"] == pytest.approx(final[0], abs=0.05)
    assert last["after"]["y"] == pytest.approx(final[1], abs=0.05)
