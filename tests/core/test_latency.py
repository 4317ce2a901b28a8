"""LatencyEstimator: RTT samples, RFC 6298 smoothing, RFC 3550 jitter, forged pongs ignored."""

from __future__ import annotations

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


def test_later_samples_follow_rfc6298() -> None:
    """RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R| (old SRTT), then SRTT = 7/8 SRTT + 1/8 R."""
    est = LatencyEstimator()
    est.pong_received(est.ping_sent(0.0), 0.080)
    est.pong_received(est.ping_sent(1.0), 1.120)  # R = 0.120
    r = est.report
    assert r.rtt_var == pytest.approx(0.75 * 0.040 + 0.25 * 0.040)  # 0.040
    assert r.rtt == pytest.approx(0.875 * 0.080 + 0.125 * 0.120)  # 0.085
    est.pong_received(est.ping_sent(2.0), 2.040)  # R = 0.040
    r = est.report
    assert r.rtt_var == pytest.approx(0.75 * 0.040 + 0.25 * abs(0.085 - 0.040))  # 0.04125
    assert r.rtt == pytest.approx(0.875 * 0.085 + 0.125 * 0.040)  # 0.079375
    assert r.min_rtt == pytest.approx(0.040)
    assert r.last_rtt == pytest.approx(0.040)
    assert r.samples == 3


def test_jitter_rfc3550_gain_one_sixteenth() -> None:
    """J += (|R_i - R_{i-1}| - J) / 16."""
    est = LatencyEstimator()
    est.pong_received(est.ping_sent(0.0), 0.080)
    est.pong_received(est.ping_sent(1.0), 1.120)
    assert est.report.jitter == pytest.approx(0.040 / 16)  # 0.0025
    est.pong_received(est.ping_sent(2.0), 2.120)
    assert est.report.jitter == pytest.approx(0.0025 + (0.0 - 0.0025) / 16)
    assert est.report.jitter_us == round(est.report.jitter * 1e6)


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
