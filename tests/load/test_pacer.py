"""The bots' shared pacer: inputs on each bot's own schedule from one task, and a bot whose
connection ended is never paced again. A stand-in client records what is sent.

Every test runs on the autojump clock: its ``trio.sleep`` calls let virtual time pass
(the pacing over that time is what is under test), they synchronise nothing."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import trio
import trio.testing
from websockets.exceptions import ConnectionClosedError

from clients.bots import Bot, BotPlan, BotSettings, Timeline
from clients.inputs import InputSchedule
from clients.loadtest.metrics import Metrics
from gameserver.trio.timers import TimerWheel
from protocol import ClientMessage


class FakeClient:
    """What a paced bot uses of BotClient: sends without waiting, maybe a backlog."""

    def __init__(self) -> None:
        self.inputs: list[tuple[float, Any]] = []
        self.chats: list[ClientMessage] = []
        self.next_seq = 1
        self.closed = False
        self.backlogged = False
        self.flushes = 0

    def send_input_nowait(self, data: Any) -> int:
        if self.closed:
            raise ConnectionClosedError(None, None)
        self.inputs.append((trio.current_time(), data))
        self.next_seq += 1
        return self.next_seq - 1

    def send_nowait(self, message: ClientMessage) -> None:
        self.chats.append(message)

    async def flush(self) -> None:
        self.flushes += 1
        self.backlogged = False


def paced_bot(wheel: TimerWheel) -> Bot:
    settings = BotSettings(url="ws://127.0.0.1:1/", input_rate=10.0, chat_interval=0)
    bot = Bot(
        BotPlan(index=1, start_at=0.0),
        settings,
        Timeline(0.0, 100.0),
        Metrics(),
        random.Random(1),
        pacer=wheel,
    )
    bot.in_room = True
    return bot


async def test_inputs_follow_the_input_rate_and_stop_with_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel()
    bot = paced_bot(wheel)
    client = FakeClient()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wheel.run)
        bot._start_pacing(client, nursery)  # type: ignore[arg-type]
        await trio.sleep(1.0)
        times = [t for t, _ in client.inputs]
        assert len(times) == 10
        assert all(math.isclose(b - a, 0.1) for a, b in itertools.pairwise(times))
        client.closed = True  # the next input finds the connection gone
        await trio.sleep(0.15)
        assert len(client.inputs) == 10
        assert bot._paced is None
        await trio.sleep(1.0)
        assert len(client.inputs) == 10  # never paced again
        nursery.cancel_scope.cancel()


async def test_a_backlog_is_flushed_by_one_task_and_stopping_clears_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    wheel = TimerWheel()
    bot = paced_bot(wheel)
    client = FakeClient()
    client.backlogged = True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wheel.run)
        bot._start_pacing(client, nursery)  # type: ignore[arg-type]
        await trio.sleep(0.35)
        assert client.flushes == 1  # backlogged at the first input only; flushed once
        bot._stop_pacing()
        count = len(client.inputs)
        await trio.sleep(1.0)
        assert len(client.inputs) == count
        assert bot.timer_due == math.inf and not bot._flushing
        nursery.cancel_scope.cancel()


def test_a_late_call_skips_the_inputs_it_missed() -> None:
    """Called 0.35 s late at 10 Hz: three inputs are counted missed, the grid is kept."""
    schedule = InputSchedule(random.Random(1), input_rate=10.0, chat_interval=0, name="b")
    schedule.start(0.0)
    first = schedule.next_at
    assert 0.0 <= first < 0.1
    data, chat, missed = schedule.due(first + 0.35, seated=True)
    assert data is not None and set(data) == {"dx", "dy"} and chat is None
    assert missed == 3
    assert math.isclose(schedule.next_at, first + 0.4)
    assert schedule.due(schedule.next_at, seated=False)[:2] == (None, None)  # not seated
