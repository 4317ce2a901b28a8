"""TickSchedule and TickStats: absolute deadlines, overruns, skips, catch-up (time as numbers)."""

from __future__ import annotations

import pytest

from gameserver.tick import TickSchedule, TickStats, current_tick, spread_phase


def run(schedule: TickSchedule, ends: list[float]) -> list[int]:
    """Run one tick per entry of ``ends``, each starting at its deadline; return tick numbers."""
    ran = []
    for finished in ends:
        started = schedule.next_deadline
        ran.append(schedule.tick_done(started, max(started, finished)))
    return ran


def test_deadlines_are_epoch_plus_n_over_rate() -> None:
    """Tick n is due at epoch + n / rate, computed, not accumulated."""
    schedule = TickSchedule(10, epoch=100.0, now=100.0)
    assert schedule.next_tick == 0
    assert schedule.next_deadline == 100.0
    assert schedule.deadline(7) == 100.0 + 7 / 10
    assert schedule.deadline(36_000) == 100.0 + 3600.0
    assert schedule.dt == 0.1


def test_on_time_ticks_advance_by_one() -> None:
    """Ticks that finish before the next deadline advance one at a time, no overrun."""
    schedule = TickSchedule(10, epoch=0.0, now=0.0)
    assert run(schedule, [0.0, 0.1, 0.2, 0.3]) == [0, 1, 2, 3]
    assert schedule.next_deadline == pytest.approx(0.4)
    assert (schedule.stats.overruns, schedule.stats.skipped, schedule.stats.ticks) == (0, 0, 4)


def test_finishing_exactly_on_next_deadline_is_not_an_overrun() -> None:
    """A tick finishing exactly at the next deadline is on time."""
    schedule = TickSchedule(10, epoch=0.0, now=0.0)
    assert schedule.tick_done(0.0, 0.1) == 0
    assert schedule.next_tick == 1
    assert schedule.stats.overruns == 0


def test_late_tick_skips_to_next_future_grid_point() -> None:
    """Steps ending 0.0, 0.1, 0.45 at 10 Hz: one overrun, ticks 3 and 4 skipped, next due 0.5."""
    schedule = TickSchedule(10, epoch=0.0, now=0.0)
    assert run(schedule, [0.0, 0.1, 0.45]) == [0, 1, 2]
    assert schedule.stats.overruns == 1
    assert schedule.stats.skipped == 2
    assert schedule.next_tick == 5
    assert schedule.next_deadline == 0.5
    assert schedule.tick_done(0.5, 0.5) == 5
    assert schedule.next_tick == 6


def test_overrun_past_many_deadlines_counts_every_skip() -> None:
    """A 1.23 s stall at 10 Hz skips every missed tick and resumes on the first future one."""
    schedule = TickSchedule(10, epoch=0.0, now=0.0)
    schedule.tick_done(0.0, 1.23)
    assert schedule.stats.overruns == 1
    assert schedule.stats.skipped == 12  # ticks 1..12; tick 13 at 1.3 is the next
    assert schedule.next_tick == 13


def test_stall_on_a_grid_point_skips_that_point_too() -> None:
    """Finishing exactly at a later deadline skips it: the next deadline is strictly future."""
    schedule = TickSchedule(4, epoch=0.0, now=0.0)
    schedule.tick_done(0.0, 0.5)  # deadlines 0.25 and 0.5 missed/at now
    assert schedule.next_tick == 3
    assert schedule.stats.skipped == 2


def test_catch_up_replays_late_ticks_then_skips() -> None:
    """max_catch_up=1 replays one late tick at once, then skips the rest."""
    schedule = TickSchedule(10, epoch=0.0, now=0.0, max_catch_up=1)
    assert schedule.tick_done(0.2, 0.45) == 0
    # Budget of one: tick 1 (due 0.1, in the past) runs at once, nothing skipped yet.
    assert schedule.next_tick == 1
    assert schedule.stats.skipped == 0
    assert schedule.tick_done(0.45, 0.45) == 1
    # Still late (tick 2 was due 0.2) and the budget is spent: skip 2, 3, 4.
    assert schedule.next_tick == 5
    assert schedule.stats.skipped == 3
    assert schedule.stats.overruns == 2


def test_catch_up_budget_refills_after_an_on_time_tick() -> None:
    """After a tick that ends on time, the full catch-up budget is available again."""
    schedule = TickSchedule(10, epoch=0.0, now=0.0, max_catch_up=2)
    schedule.tick_done(0.0, 0.15)  # late: replay (budget 2 -> 1)
    schedule.tick_done(0.15, 0.15)  # tick 1 ends before 0.2: on time, budget back to 2
    assert schedule.next_tick == 2
    schedule.tick_done(0.2, 0.55)  # late: replay (2 -> 1)
    schedule.tick_done(0.55, 0.55)  # tick 3 due 0.3: still late, replay (1 -> 0)
    assert schedule.next_tick == 4
    assert schedule.stats.skipped == 0
    schedule.tick_done(0.55, 0.55)  # tick 4 due 0.4 late, budget spent: skip tick 5
    assert schedule.next_tick == 6
    assert schedule.stats.skipped == 1


def test_schedule_joins_the_grid_at_the_first_point_not_before_now() -> None:
    """A room created between grid points starts on the next one; on a point, on that one."""
    assert TickSchedule(30, epoch=0.0, now=0.001).next_tick == 1
    assert TickSchedule(10, epoch=5.0, now=5.0).next_tick == 0
    assert TickSchedule(10, epoch=5.0, now=6.0).next_tick == 10
    assert TickSchedule(10, epoch=5.0, now=6.01).next_tick == 11
    assert TickSchedule(10, epoch=5.0, now=4.0).next_tick == 0


def test_phase_shifts_every_deadline_by_that_fraction_of_a_tick() -> None:
    """With phase p, tick n is due at epoch + (n + p) / rate; tick numbers stay on the grid."""
    schedule = TickSchedule(10, epoch=0.0, now=0.0, phase=0.5)
    assert schedule.next_tick == 0
    assert schedule.next_deadline == 0.05
    assert schedule.deadline(7) == pytest.approx(0.75)
    # Joining between points: the first tick whose phased deadline is not before now.
    assert TickSchedule(10, epoch=0.0, now=0.06, phase=0.5).next_tick == 1
    assert TickSchedule(10, epoch=0.0, now=0.04, phase=0.5).next_tick == 0


def test_phased_overrun_skips_to_the_next_phased_deadline() -> None:
    """A late tick of a phased room resumes on that room's own grid, not the server's."""
    schedule = TickSchedule(10, epoch=0.0, now=0.0, phase=0.25)
    assert run(schedule, [0.0]) == [0]  # tick 0 at 0.025, on time
    schedule.tick_done(
        schedule.next_deadline, 0.33
    )  # tick 1 (due 0.125) ends after 2 and 3 were due
    assert schedule.stats.overruns == 1
    assert schedule.stats.skipped == 2  # ticks 2 (due 0.225) and 3 (due 0.325)
    assert schedule.next_tick == 4
    assert schedule.next_deadline == pytest.approx(0.425)


def test_phase_must_be_a_fraction_of_a_tick() -> None:
    """A phase outside [0, 1) is refused: it would renumber the ticks."""
    for phase in (-0.1, 1.0, 2.5):
        with pytest.raises(ValueError):
            TickSchedule(30, epoch=0.0, now=0.0, phase=phase)


def test_spread_phase_halves_the_widest_gap() -> None:
    """Rooms get 0, 1/2, 3/4, 1/4, ...; a new room goes mid-way into the widest gap."""
    assert spread_phase([]) == 0.0
    taken: list[float] = []
    for _ in range(8):
        taken.append(spread_phase(taken))
    assert taken[:4] == [0.0, 0.5, 0.75, 0.25]
    assert sorted(taken) == [n / 8 for n in range(8)]  # 2^k rooms: evenly spaced
    assert spread_phase([0.0, 0.5, 0.25]) == 0.75
    assert spread_phase([0.9]) == pytest.approx(0.4)
    assert spread_phase([0.2, 0.2]) == pytest.approx(0.7)


def test_rate_must_be_positive() -> None:
    """A zero rate is refused."""
    with pytest.raises(ValueError):
        TickSchedule(0, epoch=0.0, now=0.0)


def test_current_tick() -> None:
    """current_tick is the tick whose deadline most recently passed, never negative."""
    assert current_tick(10, 0.0, 0.0) == 0
    assert current_tick(10, 0.0, 0.45) == 4
    assert current_tick(10, 0.0, 0.5) == 5
    assert current_tick(30, 2.0, 3.0) == 30
    assert current_tick(30, 2.0, 1.0) == 0
    assert current_tick(10, 0.0, 0.47, phase=0.5) == 4  # tick 4 was due at 0.45
    assert current_tick(10, 0.0, 0.47, phase=0.8) == 3  # tick 4 is due at 0.48


def test_stats_record_durations() -> None:
    """TickStats counts ticks and keeps max and total durations."""
    stats = TickStats()
    for d in (0.002, 0.010, 0.004):
        stats.record(d)
    assert stats.ticks == 3
    assert stats.max_duration == 0.010
    assert stats.total_duration == pytest.approx(0.016)


def test_stats_percentiles_nearest_rank() -> None:
    """Percentiles are nearest-rank over the window: p50 of 1..100 ms is 50 ms, p99 99 ms."""
    stats = TickStats()
    for ms in range(100, 0, -1):
        stats.record(ms / 1000)
    assert stats.percentile(50) == 0.050
    assert stats.percentile(99) == 0.099
    assert stats.percentile(100) == 0.100
    assert stats.percentile(0) == 0.001


def test_stats_percentile_of_empty_window_is_zero() -> None:
    """No ticks yet: every percentile is 0."""
    assert TickStats().percentile(99) == 0.0


def test_stats_window_is_bounded() -> None:
    """Old durations leave the window; lifetime counters keep counting."""
    stats = TickStats(window=3)
    for d in (1.0, 1.0, 1.0, 0.1, 0.2, 0.3):
        stats.record(d)
    assert stats.percentile(100) == 0.3
    assert stats.max_duration == 1.0
    assert stats.ticks == 6


def test_stats_as_dict_in_milliseconds() -> None:
    """as_dict reports counters and percentiles in ms; the schedule's counters show up in it."""
    schedule = TickSchedule(10, epoch=0.0, now=0.0)
    run(schedule, [0.002, 0.1 + 0.004, 0.45])
    d = schedule.stats.as_dict()
    assert d["ticks"] == 3
    assert d["overruns"] == 1
    assert d["skipped"] == 2
    assert d["max_ms"] == 250.0
    assert d["p50_ms"] == 4.0
    assert d["mean_ms"] == pytest.approx((2 + 4 + 250) / 3, abs=0.001)
    assert TickStats().as_dict()["mean_ms"] == 0.0


def test_percentiles_are_resorted_every_32_ticks() -> None:
    """Percentiles reuse one sort for 32 ticks, then see the new durations."""
    stats = TickStats()
    for _ in range(10):
        stats.record(0.001)
    assert stats.percentile(99) == 0.001
    for _ in range(31):
        stats.record(0.5)
    assert stats.percentile(99) == 0.001  # 31 ticks later: the cached sort
    stats.record(0.5)
    assert stats.percentile(99) == 0.5
