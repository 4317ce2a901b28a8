"""TokenBucket: burst, refill at rate, cap at burst (time as numbers)."""

from __future__ import annotations

import pytest

from gameserver.ratelimit import TokenBucket


def test_starts_full_and_allows_a_burst() -> None:
    """A fresh bucket allows exactly ``burst`` takes at one instant."""
    bucket = TokenBucket(rate=2.0, burst=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]


def test_refills_at_rate() -> None:
    """After emptying, one token comes back every 1/rate seconds."""
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    for _ in range(3):
        bucket.take(0.0)
    assert not bucket.take(0.4)
    assert bucket.take(0.5)
    assert not bucket.take(0.5)
    assert bucket.take(1.0)


def test_refill_is_capped_at_burst() -> None:
    """A long quiet spell refills to ``burst``, not more."""
    bucket = TokenBucket(rate=10.0, burst=4, now=0.0)
    bucket.take(0.0)
    assert [bucket.take(100.0) for _ in range(5)] == [True] * 4 + [False]
    assert bucket.tokens == 0.0


def test_refused_take_spends_nothing() -> None:
    """A refused take leaves the tokens as they were."""
    bucket = TokenBucket(rate=1.0, burst=2, now=0.0)
    bucket.take(0.0)
    assert not bucket.take(0.0, cost=2.0)
    assert bucket.tokens == 1.0
    assert bucket.take(0.0)


def test_cost_spends_several_tokens() -> None:
    """A take with cost 3 spends 3 tokens."""
    bucket = TokenBucket(rate=1.0, burst=5, now=0.0)
    assert bucket.take(0.0, cost=3.0)
    assert bucket.tokens == 2.0


def test_time_going_backwards_does_not_refill() -> None:
    """An earlier ``now`` neither refills nor breaks the bucket."""
    bucket = TokenBucket(rate=1.0, burst=1, now=10.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert bucket.take(11.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 1)])
def test_rate_and_burst_must_be_positive(rate: float, burst: float) -> None:
    """A zero or negative rate or burst is refused."""
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, 0.0)
