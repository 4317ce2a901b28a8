"""Round-trip time and jitter from application pings (sans-I/O: time is an argument).

The server stamps each ping with a fresh nonce and its own clock; a pong is
matched to that stamp, so a client can neither forge nor replay a sample. The
smoothing follows RFC 6298 (SRTT gain 1/8, RTTVAR gain 1/4; the first sample
sets SRTT = R, RTTVAR = R/2) and jitter follows RFC 3550 §6.4.1: the mean of
``|R_i - R_{i-1}|`` with gain 1/16.

Two changes let the estimate settle within a second of a connection instead of
~30 s (the session sends a burst of pings after the welcome, ``ping_burst``):
the first sample, taken right behind the welcome while the client is still
starting (tens of ms high), is only used until the second arrives, which
starts the estimate again; and from there the gains are never below 1/n for
the n-th sample of the restarted estimate (1/(n-1) for jitter, which needs
two), so SRTT and jitter are plain means until the RFC gains are the larger:
from the 8th sample for SRTT, the 16th for jitter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LatencyReport:
    """A player's latency as game code sees it. All times in seconds; 0 before any sample."""

    rtt: float = 0.0
    """Smoothed round-trip time (SRTT)."""
    rtt_var: float = 0.0
    """Smoothed mean deviation of RTT (RTTVAR)."""
    jitter: float = 0.0
    """Smoothed difference between consecutive RTT samples."""
    last_rtt: float = 0.0
    min_rtt: float = 0.0
    samples: int = 0

    @property
    def rtt_us(self) -> int:
        return round(self.rtt * 1_000_000)

    @property
    def jitter_us(self) -> int:
        return round(self.jitter * 1_000_000)


class LatencyEstimator:
    """Pings out, pongs in, smoothed RTT/jitter out.

    ``max_outstanding`` bounds memory: the oldest unanswered pings are
    forgotten first (their pongs are then ignored as unknown).
    """

    def __init__(self, max_outstanding: int = 32) -> None:
        self._outstanding: dict[int, float] = {}
        self._next_nonce = 1
        self._max_outstanding = max_outstanding
        self.report = LatencyReport()
        self.ignored_pongs = 0

    def ping_sent(self, now: float) -> int:
        """Register a ping sent at ``now``; return the nonce to put in it."""
        nonce = self._next_nonce
        self._next_nonce += 1
        self._outstanding[nonce] = now
        if len(self._outstanding) > self._max_outstanding:
            del self._outstanding[next(iter(self._outstanding))]
        return nonce

    def pong_received(self, nonce: int, now: float) -> float | None:
        """Match a pong; return the RTT sample, or None for an unknown or replayed nonce."""
        sent = self._outstanding.pop(nonce, None)
        if sent is None or now < sent:
            self.ignored_pongs += 1
            return None
        # Pings are answered in order: an older outstanding ping was lost or
        # skipped by the client, so it can no longer time out the connection.
        for older in [n for n in self._outstanding if n < nonce]:
            del self._outstanding[older]
        self._add_sample(now - sent)
        return now - sent

    @property
    def awaiting_pong(self) -> bool:
        """Whether a ping is still waiting for its pong."""
        return bool(self._outstanding)

    def oldest_unanswered(self) -> float | None:
        """Send time of the oldest ping still waiting for its pong."""
        return min(self._outstanding.values(), default=None)

    @property
    def pings_sent(self) -> int:
        """How many pings were sent (nonces handed out)."""
        return self._next_nonce - 1

    def _add_sample(self, r: float) -> None:
        old = self.report
        n = old.samples  # this sample's number in the estimate restarted at the 2nd sample
        if n <= 1:
            # The 1st sample stands alone; the 2nd starts the estimate again (see above).
            srtt, rttvar, jitter = r, r / 2, 0.0
            min_rtt = r if n == 0 else min(old.min_rtt, r)
        else:
            rttvar_gain = max(0.25, 1 / n)
            rttvar = (1 - rttvar_gain) * old.rtt_var + rttvar_gain * abs(old.rtt - r)
            rtt_gain = max(0.125, 1 / n)
            srtt = (1 - rtt_gain) * old.rtt + rtt_gain * r
            jitter = old.jitter + (abs(r - old.last_rtt) - old.jitter) * max(1 / 16, 1 / (n - 1))
            min_rtt = min(old.min_rtt, r)
        self.report = LatencyReport(
            rtt=srtt,
            rtt_var=rttvar,
            jitter=jitter,
            last_rtt=r,
            min_rtt=min_rtt,
            samples=old.samples + 1,
        )
