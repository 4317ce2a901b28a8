"""LatencyEstimator: RTT samples, RFC 6298 smoothing, RFC 3550 jitter, forged pongs ignored."""

from __future__ import annotations

import random

import pytest

from gameserver.latency import LatencyEstimator, LatencyReport


def test_pong_gives_rtt_sample() -> None:
    """A pong 80 ms after its ping gives the sample 0.080."""
    est = LatencyEstimator()
    nonce = est.ping_sent(10.0)
    assert est.pong_received(nonce, 10.080) == pytest.approx(0.080)


def test_first_sample_sets_srtt_and_half_rttvar() -> None:
    """RFC 6298 2.2: the first sample R sets SRTT = R and RTTVAR = R/2; jitter starts at 0."""
    est = LatencyEstimator()
    est.pong_received(est.ping_sent(0.0), 0.080)
    report = est.report
    assert report.rtt == pytest.approx(0.080)
    assert report.rtt_var == pytest.approx(0.040)
    assert report.jitter == 0.0
    assert report.last_rtt == pytest.approx(0.080)
    assert report.min_rtt == pytest.approx(0.080)
    assert report.samples == 1
    assert report.rtt_us == 80_000


def test_second_sample_starts_again() -> None:
    """The 1st sample (taken while the client starts) is dropped when the 2nd arrives."""
    est = LatencyEstimator()
    est.pong_received(est.ping_sent(0.0), 0.112)  # 30 ms high
    est.pong_received(est.ping_sent(0.1), 0.182)  # R = 0.082
    r = est.report
    assert (r.rtt, r.rtt_var, r.jitter) == pytest.approx((0.082, 0.041, 0.0))
    assert r.min_rtt == pytest.approx(0.082)
    assert r.last_rtt == pytest.approx(0.082)
    assert r.samples == 2


def test_plain_means_until_the_rfc_gains_are_larger() -> None:
    """After the restart, SRTT is the mean of the samples and jitter the mean |R_i - R_{i-1}|."""
    est = LatencyEstimator()
    samples = [0.300, 0.080, 0.120, 0.040, 0.100]
    for i, r in enumerate(samples):
        est.pong_received(est.ping_sent(float(i)), i + r)
    r = est.report
    assert r.rtt == pytest.approx((0.080 + 0.120 + 0.040 + 0.100) / 4)
    assert r.jitter == pytest.approx((0.040 + 0.080 + 0.060) / 3)
    assert r.min_rtt == pytest.approx(0.040)
    assert r.samples == 5


def test_rfc6298_and_rfc3550_gains_take_over() -> None:
    """From the 8th sample of the restarted estimate SRTT has gain 1/8 (RTTVAR 1/4) and from
    the 16th jitter has 1/16, as RFC 6298 and RFC 3550 state."""
    est = LatencyEstimator()
    for i in range(17):  # the 1st, then 16 of the restarted estimate, alternating
        est.pong_received(est.ping_sent(float(i)), i + (0.080 if i % 2 else 0.120))
    old = est.report
    est.pong_received(est.ping_sent(17.0), 17.200)  # R = 0.200
    r = est.report
    assert r.rtt_var == pytest.approx(0.75 * old.rtt_var + 0.25 * abs(old.rtt - 0.200))
    assert r.rtt == pytest.approx(0.875 * old.rtt + 0.125 * 0.200)
    assert r.jitter == pytest.approx(old.jitter + (abs(0.200 - old.last_rtt) - old.jitter) / 16)
    assert r.jitter_us == round(r.jitter * 1e6)
    assert r.samples == 18


def test_settles_within_a_second_of_a_burst() -> None:
    """A 150 ms link with ±20 ms each way, the first sample 30 ms high (the issue's case):
    eight pings 0.1 s apart bring SRTT within 10 ms of the link's mean and jitter within half
    of the link's mean |R_i - R_{i-1}| (18.4 ms for two uniform ±20 ms legs); a ping a
    second from the start (RFC gains alone) would still be ~18 ms high after 8 s."""
    rng = random.Random(13)
    links = [0.150 + rng.uniform(-0.02, 0.02) + rng.uniform(-0.02, 0.02) for _ in range(8)]
    links[0] += 0.030
    est = LatencyEstimator()
    for i, r in enumerate(links):
        est.pong_received(est.ping_sent(i / 10), i / 10 + r)
    assert abs(est.report.rtt - 0.150) < 0.010, est.report
    assert 0.0092 < est.report.jitter < 0.0276, est.report


def test_unknown_nonce_ignored() -> None:
    """A pong for a nonce never sent gives no sample and is counted."""
    est = LatencyEstimator()
    est.ping_sent(0.0)
    assert est.pong_received(999, 0.05) is None
    assert est.ignored_pongs == 1
    assert est.report == LatencyReport()


def test_replayed_nonce_ignored() -> None:
    """The second pong with the same nonce is ignored: one sample per ping."""
    est = LatencyEstimator()
    nonce = est.ping_sent(0.0)
    assert est.pong_received(nonce, 0.05) is not None
    assert est.pong_received(nonce, 0.06) is None
    assert est.ignored_pongs == 1
    assert est.report.samples == 1


def test_pong_before_send_time_ignored() -> None:
    """A pong stamped before its ping was sent gives no (negative) sample."""
    est = LatencyEstimator()
    nonce = est.ping_sent(5.0)
    assert est.pong_received(nonce, 4.9) is None
    assert est.ignored_pongs == 1
    assert est.report.samples == 0


def test_nonces_are_fresh() -> None:
    """Every ping gets a new nonce."""
    est = LatencyEstimator()
    nonces = [est.ping_sent(float(t)) for t in range(5)]
    assert len(set(nonces)) == 5


def test_oldest_unanswered() -> None:
    """oldest_unanswered is the send time of the oldest pending ping, None when all answered."""
    est = LatencyEstimator()
    assert est.oldest_unanswered() is None
    first = est.ping_sent(1.0)
    est.ping_sent(2.0)
    assert est.oldest_unanswered() == 1.0
    est.pong_received(first, 1.1)
    assert est.oldest_unanswered() == 2.0


def test_answering_a_newer_ping_forgets_older_ones() -> None:
    """A pong for ping 3 drops pings 1 and 2: their late pongs are then ignored."""
    est = LatencyEstimator()
    n1, n2, n3, n4 = (est.ping_sent(float(t)) for t in range(4))
    assert est.pong_received(n3, 2.05) == pytest.approx(0.05)
    assert est.oldest_unanswered() == 3.0  # only ping 4 remains
    assert est.pong_received(n1, 2.1) is None
    assert est.pong_received(n2, 2.1) is None
    assert est.ignored_pongs == 2
    assert est.pong_received(n4, 3.02) == pytest.approx(0.02)
    assert est.oldest_unanswered() is None


def test_max_outstanding_bounds_memory() -> None:
    """Past max_outstanding the oldest pings are forgotten; their pongs count as unknown."""
    est = LatencyEstimator(max_outstanding=3)
    nonces = [est.ping_sent(float(t)) for t in range(5)]
    assert est.oldest_unanswered() == 2.0
    assert est.pong_received(nonces[0], 5.0) is None
    assert est.pong_received(nonces[1], 5.0) is None
    assert est.pong_received(nonces[2], 5.0) == pytest.approx(3.0)


def test_report_defaults_are_zero() -> None:
    """Before any sample the report is all zeros, in seconds and microseconds."""
    r = LatencyEstimator().report
    assert (r.rtt, r.rtt_var, r.jitter, r.samples, r.rtt_us, r.jitter_us) == (0, 0, 0, 0, 0, 0)
