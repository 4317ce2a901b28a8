"""The supervisor's restart policy on plain numbers: backoff, its reset, exit code 2."""

from __future__ import annotations

import signal

import pytest

from gameserver.cluster.restarts import (
    CONFIG_ERROR,
    Restart,
    RestartBackoff,
    Stop,
    describe_exit,
)


def delays(
    backoff: RestartBackoff, deaths: int, lifetime: float, start: float = 0.0
) -> list[float]:
    """Start and kill the worker ``deaths`` times, each living ``lifetime`` s; the delays."""
    now = start
    found = []
    for _ in range(deaths):
        backoff.started(now)
        now += lifetime
        decision = backoff.exited(now, -signal.SIGKILL)
        assert isinstance(decision, Restart)
        found.append(decision.delay)
        now += decision.delay
    return found


def test_a_worker_that_keeps_dying_waits_twice_as_long_each_time_up_to_30_s() -> None:
    assert delays(RestartBackoff(), 9, lifetime=1.0) == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_a_worker_that_lived_60_s_starts_again_at_half_a_second() -> None:
    backoff = RestartBackoff()
    assert delays(backoff, 4, lifetime=0.1) == [0.5, 1, 2, 4]
    assert delays(backoff, 1, lifetime=60.0, start=100.0) == [0.5]
    assert delays(backoff, 1, lifetime=59.0, start=200.0) == [1]


def test_any_exit_code_but_2_is_restarted() -> None:
    for code in (0, 1, 3, -signal.SIGTERM):
        backoff = RestartBackoff()
        backoff.started(0.0)
        assert backoff.exited(1.0, code) == Restart(0.5)


def test_a_configuration_error_stops_instead_of_restarting() -> None:
    """Exit 2 would fail again at once: stop, however long it lived."""
    backoff = RestartBackoff()
    backoff.started(0.0)
    assert backoff.exited(1000.0, CONFIG_ERROR) == Stop(2)


@pytest.mark.parametrize(
    ("code", "text"),
    [(1, "exit code 1"), (0, "exit code 0"), (-9, "signal SIGKILL"), (-15, "signal SIGTERM")],
)
def test_describe_exit_names_the_code_or_the_signal(code: int, text: str) -> None:
    assert describe_exit(code) == text


def test_a_configuration_error_after_the_slot_once_listened_is_restarted() -> None:
    """Exit 2 from a worker that listened before (Redis away while it restarts) is a
    moment, not the configuration: restart with backoff, keep the others running."""
    backoff = RestartBackoff()
    backoff.started(0.0)
    assert backoff.exited(1.0, CONFIG_ERROR, ever_ready=True) == Restart(0.5)
