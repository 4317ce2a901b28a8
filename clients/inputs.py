"""What a bot presses, and when: its input schedule.

A bot sends an input at ``input_rate`` Hz, steering in a direction it changes
every half second to two seconds, and now and then a chat line. Kept apart from
:class:`clients.bots.Bot`, which decides how these are sent (a task of its own,
or the worker's shared pacer) and what is measured about them.
"""

from __future__ import annotations

import math
import random


class InputSchedule:
    """The due times and contents of one bot's inputs (and chat lines)."""

    def __init__(
        self, rng: random.Random, input_rate: float, chat_interval: float, name: str
    ) -> None:
        self.rng = rng
        self.interval = 1.0 / input_rate
        self.chat_chance = self.interval / chat_interval if chat_interval else 0.0
        """Chance that an input comes with a chat line: one every ``chat_interval`` s."""
        self.chat_line = f"gg from {name}"
        self.next_at = 0.0
        """When the next input is due."""
        self._change_at = 0.0
        self._direction = (0.0, 0.0)

    def start(self, now: float) -> None:
        """Begin (again) at ``now``, the first input at a random point of an interval."""
        self.next_at = now + self.rng.uniform(0.0, self.interval)
        self._change_at = now
        self._direction = (0.0, 0.0)

    def due(self, now: float, seated: bool) -> tuple[dict[str, float] | None, str | None, int]:
        """The input and chat line due at ``now`` (none unless ``seated``), and how many
        inputs were missed because this call came late; moves the schedule on."""
        rng, interval = self.rng, self.interval
        data: dict[str, float] | None = None
        chat: str | None = None
        if seated:
            if now >= self._change_at:
                angle = rng.uniform(0.0, 2 * math.pi)
                self._direction = (round(math.cos(angle), 3), round(math.sin(angle), 3))
                self._change_at = now + rng.uniform(0.5, 2.0)
            data = {"dx": self._direction[0], "dy": self._direction[1]}
            if self.chat_chance and rng.random() < self.chat_chance:
                chat = self.chat_line
        self.next_at += interval
        missed = 0
        if self.next_at < now:
            missed = math.ceil((now - self.next_at) / interval)
            self.next_at += missed * interval
        return data, chat, missed
