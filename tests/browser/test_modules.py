"""The page's own modules on made-up data, in Chromium (``page.evaluate`` + ``import()``).

Prediction (predict.js) is checked against what the server really does with the
same inputs: the server side is the real ``Room`` and ``Arena`` ticked by hand,
inputs applied at the first tick after they arrive, or at the ``tick`` the page
asked for (PROTOCOL.md §5.3).
Interpolation (timeline.js) is checked against snapshots placed by hand.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from gameserver.game import RoomContext
from gameserver.games.arena import SCALE, SPEED, Arena
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
    targets: list[int | None],
) -> Served:
    """Run ``sends`` ([(sent_ms, dx, dy)], seq 1, 2, …) through a real room, each with its
    ``input.tick`` from ``targets``.

    Tick k runs at k · tick_ms and applies what arrived before it and is due; every input
    and every snapshot takes ``latency_ms`` on the way (one snapshot per tick).
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
    for seq, ((sent, dx, dy), target) in enumerate(zip(sends, targets, strict=True), 1):
        events.append(["input", sent, seq, dx, dy])
        arrivals.append((sent + latency_ms, seq, dx, dy, target))
    positions = {}
    for tick in range(1, ticks + 1):
        while arrivals and arrivals[0][0] < tick * tick_ms:
            _, seq, dx, dy, target = arrivals.pop(0)
            command = game.validate_input(member.player, {"dx": dx, "dy": dy})
            assert room.queue_input(1, seq, command, target) is None
        room.tick(tick, 1 / tick_rate)
        snapshot_tick, ack, state = member.snapshots[-1]
        assert snapshot_tick == tick
        [[_, x, y, _]] = unpack(state)["players"]
        events.append(["snapshot", tick * tick_ms + latency_ms, tick, ack, x / SCALE, y / SCALE])
        positions[tick] = (avatar.x, avatar.y)
    events.sort(key=lambda event: event[1])
    return Served(game.info(), events, positions)


PREDICT = """async ([info, tickRate, events, rttMs]) => {
    const { ArenaRules, clampInput, parseInfo } = await import("/static/arena.js");
    const { Predictor } = await import("/static/predict.js");
    const predictor = new Predictor(new ArenaRules(parseInfo(info), tickRate), tickRate);
    const seen = [];
    const targets = [];
    for (const [kind, at, ...rest] of events) {
        if (kind === "input") {
            const [seq, dx, dy] = rest;
            const [cx, cy] = clampInput(dx, dy); // as session.js sends it
            const tick = predictor.target(cx, cy, at, 15);
            targets.push(tick);
            predictor.inputSent(seq, cx, cy, at, tick);
        } else {
            const [tick, ack, x, y] = rest;
            const before = predictor.prediction(at);
            predictor.reconcile(tick, ack, x, y, at, rttMs, 0);
            const after = predictor.prediction(at);
            seen.push({ tick, ack, before, after, lead: predictor.lead });
        }
    }
    return { seen, targets };
}"""


def predicted(
    page: Any,
    tick_rate: int,
    sends: list[tuple[float, float, float]],
    latency_ms: float,
    ticks: int,
) -> tuple[Served, list[dict[str, Any]]]:
    """The room and the page's predictor on ``sends``, with the ticks the page targets.

    The page's targets depend on the snapshots, which depend on the targets: the room is
    run again with the page's targets until the page asks for the same ones (a fixed
    point: the first input's target never depends on a later one's).
    """
    targets: list[int | None] = [None] * len(sends)
    for _ in range(10):
        served = serve(tick_rate, sends, latency_ms, START, ticks, targets)
        result = page.evaluate(PREDICT, [served.info, tick_rate, served.events, 2 * latency_ms])
        if result["targets"] == targets:
            assert any(t is not None for t in targets)  # the changes of direction are targeted
            return served, result["seen"]
        targets = result["targets"]
    raise AssertionError(f"the page's targets never settled: {targets}")


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
    acknowledged (the lead is measured), no snapshot moves the prediction at all (the
    server keeps positions on the snapshots' grid), the turn and the stop included; it
    ends exactly where the server stops the player.
    """
    page = open_page("/").page
    interval = 1000 / inputs_per_second
    sends = [(1007 + i * interval, 1.0, 0.0) for i in range(inputs_per_second)]
    sends += [
        (1007 + (i + inputs_per_second) * interval, 0.0, 1.0) for i in range(inputs_per_second)
    ]
    sends.append((1007 + 2 * inputs_per_second * interval, 0.0, 0.0))
    served, seen = predicted(page, tick_rate, sends, latency_ms, ticks=4 * tick_rate)
    final = served.positions[max(served.positions)]
    second = tick_rate * round(SPEED / tick_rate * SCALE) / SCALE  # a second's move, on the grid
    assert final == pytest.approx((START[0] + second, START[1] + second)), final  # no wall met

    settled = [s for s in seen if s["ack"] is not None and s["ack"] > 4]
    assert len(settled) > 2 * tick_rate
    for s in settled:
        moved = abs(s["after"]["x"] - s["before"]["x"]) + abs(s["after"]["y"] - s["before"]["y"])
        assert moved <= 1e-9, s
    # Every tick drawn is one the inputs already sent decide (the turn and the stop are
    # applied at the ticks the page asked for): never drawn past the corner or the end.
    for s in seen:
        assert s["after"]["x"] <= final[0] + 1e-9 and s["after"]["y"] <= final[1] + 1e-9, s
    last = seen[-1]
    assert last["ack"] == len(sends)
    assert last["after"]["x"] == pytest.approx(final[0], abs=0.05)
    assert last["after"]["y"] == pytest.approx(final[1], abs=0.05)


def test_prediction_agrees_exactly_over_a_long_run(open_page: OpenPage) -> None:
    """Twenty seconds of random keys (diagonals, walls and edges met) at 30 ticks/s, 20 inputs
    a second, 80 ms each way: once the lead is measured, no snapshot moves the prediction by
    even 1e-9 units, and it ends on the server's position exactly."""
    page = open_page("/").page
    rng = random.Random(20)
    sends = []
    direction = (0.0, 0.0)
    for i in range(20 * 20):
        if rng.random() < 0.15:
            direction = (float(rng.choice((-1, 0, 1))), float(rng.choice((-1, 0, 1))))
        sends.append((1007 + i * 50.0, *direction))
    sends.append((1007 + len(sends) * 50.0, 0.0, 0.0))
    served, seen = predicted(page, 30, sends, 80.0, ticks=23 * 30)
    settled = [s for s in seen if s["ack"] is not None and s["ack"] > 4]
    assert len(settled) > 20 * 30
    for s in settled:
        moved = abs(s["after"]["x"] - s["before"]["x"]) + abs(s["after"]["y"] - s["before"]["y"])
        assert moved <= 1e-9, s
    final = served.positions[max(served.positions)]
    assert (seen[-1]["after"]["x"], seen[-1]["after"]["y"]) == final


RECONCILE = """async () => {
    const { ArenaRules } = await import("/static/arena.js");
    const { Predictor } = await import("/static/predict.js");
    const world = { width: 1000, height: 600, scale: 10, speed: 200, playerRadius: 12,
                    gemRadius: 8, walls: [] };
    const p = new Predictor(new ArenaRules(world, 10), 10); // 10 ticks/s: 20 units a tick
    const x = (at) => p.prediction(at).x;
    const send = (seq, dx, dy, at) => {
        const tick = p.target(dx, dy, at, 15);
        p.inputSent(seq, dx, dy, at, tick);
        return tick;
    };
    const seen = {};
    // Tick 10 arrives at 1000 ms, RTT 100 ms, no jitter: lead 0 + 1 tick, margin 0.5.
    p.reconcile(10, null, 100, 60, 1000, 100, 0);
    seen.leads = [p.lead, p.margin, p.shown, p.ahead];
    seen.standing = x(1090);
    seen.pressTick = send(1, 1, 0, 1005); // ceil(10.05 + 1.5) = 12
    seen.repeat = p.target(1, 0, 1040, 15); // the same direction: no target
    seen.pressed = [x(1005), x(1050), x(1100), x(1150), x(1200)];
    p.reconcile(11, null, 100, 60, 1100, 100, 0); // not applied by 11: as foreseen
    p.reconcile(12, 1, 120, 60, 1200, 100, 0); // applied at 12 indeed
    seen.acked = [p.unacknowledged, x(1200), x(1300), p.lead];
    seen.stopTick = send(2, 0, 0, 1210); // ceil(12.1 + 1.5) = 14
    seen.released = [x(1210), x(1300), x(2000)];
    const foreseen = x(1300);
    p.reconcile(13, 1, 140, 60, 1300, 100, 0); // still moving at 13, as foreseen
    seen.atThirteen = [foreseen, x(1300), x(2000)];
    const shown = p.position(1400).x;
    p.reconcile(14, 2, 137, 60, 1400, 100, 0); // the server says 137: 3 units off
    seen.corrected = [shown, p.position(1400).x, x(1400), p.position(2400).x];
    seen.settled = [p.lead, p.shown, p.ahead, p.extra];
    seen.lateTick = send(3, 1, 0, 1505); // ceil(15.05 + 1.5) = 17
    const before = x(1700);
    p.reconcile(17, 2, 137, 60, 1700, 100, 0); // tick 17 without it: it came late
    seen.late = [before, x(1700), p.lead, p.shown, p.ahead, p.extra];
    seen.capped = p.target(0, 0, 1710, 2); // 21, but at most 2 past tick 17
    seen.afterLate = send(4, 0, 0, 1710); // ceil(17.1 + 3.45) = 21: further ahead
    p.reconcile(18, 3, 157, 60, 1800, 100, 0);
    seen.stopped = [x(1800), x(2500)];
    return seen;
}"""


def test_reconcile_by_hand(open_page: OpenPage) -> None:
    """Predictor on made-up snapshots: a targeted press, its acknowledgement, a targeted
    release, a correction, a late start absorbed by the drawing clock."""
    seen = open_page("/").page.evaluate(RECONCILE)
    # Targets at lead + margin; drawn there too.
    assert seen["leads"] == pytest.approx([1, 0.5, 1.5, 1.5])
    assert seen["standing"] == 100  # no input: the snapshot's position
    assert seen["pressTick"] == 12 and seen["repeat"] is None
    # Applied at tick 12, drawn at the continuous tick now / 100 + 0.5: moving from 1050 ms on.
    assert seen["pressed"] == pytest.approx([100, 100, 110, 120, 130])
    # Acknowledged: the velocity holds (no input pending) until the next input.
    assert seen["acked"] == pytest.approx([0, 130, 150, 1])
    # The stop applies at tick 14, the one asked for: one more step (to 140, tick 13), then
    # still; the disc is never drawn past 140, and stops there when it gets there.
    assert seen["stopTick"] == 14
    assert seen["released"] == pytest.approx([132, 140, 140])
    assert seen["atThirteen"] == pytest.approx([140, 140, 140])  # nothing to correct
    # A correction is blended: shown where it was drawn, then at the server's position.
    before, after, predicted, later = seen["corrected"]
    assert after == pytest.approx(before) and predicted == 137
    assert later == pytest.approx(137, abs=0.01)
    # Standing still: no bound (every target was met), so the arrival plus the RTT again.
    assert seen["settled"] == pytest.approx([1, 1.5, 1.5, 0])
    # Asked for 17, not applied at 17: lead and drawing clock move a whole tick on, so the
    # disc drawn moving goes on from where it was (no jump, no crawl); the next inputs
    # target at least its arrival (past 18 - 15.05) plus the margin, and the margin grows.
    assert seen["lateTick"] == 17
    before, after, lead, shown_lead, ahead, extra = seen["late"]
    assert before == pytest.approx(167) and after == pytest.approx(167)
    assert (lead, shown_lead, ahead, extra) == pytest.approx((2, 2.5, 3.45, 0.5))
    assert seen["capped"] == 19
    assert seen["afterLate"] == 21
    # Applied at 18 (157); the stop at 21: drawn at tick 19.5 at 1800 ms, ends at 197.
    assert seen["stopped"] == pytest.approx([187, 197])


TIMELINE = """async () => {
    const { Timeline } = await import("/static/timeline.js");
    const tl = new Timeline(10, 10); // a snapshot every 100 ms: delay 200 ms at least
    const state = (players) => ({ players: new Map(players), gems: [] });
    const view = (nowMs) => {
        const v = tl.sample(nowMs);
        return { players: Object.fromEntries(v.players), tick: v.tick };
    };
    // Ticks 1..5 arrive 1000 ms after their server time (tick * 100 ms), on the dot.
    for (let tick = 1; tick <= 5; tick += 1) {
        const players = [[1, { x: tick * 10, y: 0 }], [2, { x: 0, y: tick }]];
        tl.push(tick, state(players), 1000 + tick * 100);
    }
    const seen = { delay: tl.delay };
    seen.between = view(1650); // render time 1650 - 1000 - 200 = 450: between ticks 4 and 5
    seen.past = view(1800); // render time 600: past the newest, which is held
    seen.before = view(1250); // render time 50: before the oldest, which is held
    tl.push(5, state([[1, { x: 999, y: 0 }]]), 1550); // not newer: ignored
    // Tick 6 (player 2 gone, player 3 new) arrives 150 ms late.
    tl.push(6, state([[1, { x: 60, y: 0 }], [3, { x: 7, y: 7 }]]), 1000 + 600 + 150);
    seen.target = tl.targetDelay;
    seen.joined = view(1755); // render time 555 with the delay easing from 200 ms
    seen.eased = tl.delay;
    view(2755); // a second later the delay has reached its target
    seen.settled = tl.delay;
    tl.push(7, state([[1, { x: 70, y: 0 }]]), 1000 + 700 + 2000); // 2 s late
    seen.capped = tl.targetDelay;
    return seen;
}"""


def test_timeline_interpolates_between_snapshots(open_page: OpenPage) -> None:
    """Timeline.sample on made-up snapshots: between two, past the newest, late arrivals."""
    seen = open_page("/").page.evaluate(TIMELINE)
    assert seen["delay"] == 200  # two snapshot intervals
    between = seen["between"]
    assert between["tick"] == pytest.approx(4.5)
    assert between["players"] == {"1": {"x": 45, "y": 0}, "2": {"x": 0, "y": 4.5}}
    assert seen["past"]["tick"] == 5 and seen["past"]["players"]["1"] == {"x": 50, "y": 0}
    assert seen["before"]["tick"] == 1 and seen["before"]["players"]["1"] == {"x": 10, "y": 0}
    # 150 ms late (the offset follows 1% of it): one interval + lateness + 5 ms.
    late = 150 - 1.5
    assert seen["target"] == pytest.approx(100 + late + 5)
    joined = seen["joined"]
    # Between 5 and 6: player 2 left (not drawn), player 3 joined (drawn where it is).
    assert set(joined["players"]) == {"1", "3"}
    assert joined["players"]["3"] == {"x": 7, "y": 7}
    assert 50 < joined["players"]["1"]["x"] < 60
    assert 200 < seen["eased"] < seen["target"]  # eased, not jumped
    assert seen["settled"] == pytest.approx(seen["target"])
    assert seen["capped"] == 500  # never more than half a second


LABELS = """async () => {
    const { placeLabels } = await import("/static/render.js");
    const world = { width: 1000, height: 600, playerRadius: 12 };
    const width = (p) => p.name.length * 7;
    const close = [
        { name: "ada (you)", x: 500, y: 300 },
        { name: "grace", x: 510, y: 302 },
        { name: "linus", x: 495, y: 296 },
    ];
    const edge = [{ name: "top", x: 3, y: 14 }];
    return { close: placeLabels(close, width, world), edge: placeLabels(edge, width, world) };
}"""


def test_name_labels_of_close_discs_do_not_overlap(open_page: OpenPage) -> None:
    """Three discs within a few units: the first label (the own player's) stays above its
    disc, the others go below it or further out, and no two labels overlap; at the top-left
    corner a label goes below its disc and is not cut off at the side."""
    seen = open_page("/").page.evaluate(LABELS)
    close = seen["close"]
    assert close[0]["above"] is True and close[0]["y"] == 300 - 12 - 5
    boxes = []
    for label in close:
        half = len(label["player"]["name"]) * 7 / 2 + 2
        top = label["y"] - 15 if label["above"] else label["y"]
        boxes.append((label["x"] - half, label["x"] + half, top, top + 15))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2]
            assert apart, (a, b)
    [edge] = seen["edge"]
    assert edge["above"] is False and edge["x"] - (3 * 7 / 2 + 2) >= 0
