"""The retransmission timer: RFC 6298.

SRTT and RTTVAR from samples of one timed segment at a time; Karn's rule (RFC 6298 3: no sample from a
retransmitted segment); the timeout doubled on each expiry (5.5) and reset by the next sample.

Differences from RFC 6298, as in Linux: the minimum RTO is 200 ms (Linux's TCP_RTO_MIN) rather than the
1 s of 2.4, since the RFC's floor is meant for the Internet's slow timers and a tunnel's RTTs are small;
the maximum is 60 s (2.5 allows it). The initial RTO is 1 s (2.1).

With RFC 7323 timestamps, every ACK of new data gives a sample (RTTM, RFC 7323 4.1), whatever was
retransmitted; ``timestamp_sample`` takes them with the gains of RFC 7323 appendix G (alpha and beta divided
by the samples expected per RTT), so a window of many ACKs weighs as much as one classic sample.
"""

from __future__ import annotations

K = 4  # RFC 6298 2.3
ALPHA = 1 / 8
BETA = 1 / 4
CLOCK_GRANULARITY = 0.001  # G: ``now`` is a float; a millisecond keeps RTO above SRTT


class RttEstimator:
    __slots__ = ("srtt", "rttvar", "rto", "backoff", "minimum", "maximum", "_timed_seq", "_timed_at")

    def __init__(self, initial: float = 1.0, minimum: float = 0.2, maximum: float = 60.0) -> None:
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto = initial
        self.backoff = 0
        self.minimum, self.maximum = minimum, maximum
        self._timed_seq: int | None = None  # the segment being timed: its last sequence number + 1
        self._timed_at = 0.0

    @property
    def timeout(self) -> float:
        """The current RTO, backed off (RFC 6298 5.5), capped at the maximum."""
        return min(self.rto * (1 << self.backoff), self.maximum)

    def start(self, end_seq: int, now: float) -> None:
        """Call me when new data (up to ``end_seq``) leaves: it is timed unless a segment already is."""
        if self._timed_seq is None:
            self._timed_seq, self._timed_at = end_seq, now

    def on_ack(self, ack: int, now: float) -> None:
        """Call me when ``ack`` acknowledges new data: a sample if it covers the timed segment."""
        if self._timed_seq is not None and ack >= self._timed_seq:
            self.sample(now - self._timed_at)
            self._timed_seq = None

    def on_retransmit(self) -> None:
        """Call me when anything is retransmitted: Karn's rule, the timed segment gives no sample."""
        self._timed_seq = None

    def on_timeout(self) -> None:
        """Call me when the retransmission timer expires (RFC 6298 5.5: back off)."""
        self.backoff += 1
        self._timed_seq = None

    def timestamp_sample(self, r: float, expected_samples: int) -> None:
        """Call me with an RTT from a TSecr (RFC 7323 4.1) and ExpectedSamples = ceil(FlightSize / (2 *
        SMSS)) of RFC 7323 appendix G; the sequence-number timing is then not needed."""
        self._timed_seq = None
        self.sample(r, expected_samples if expected_samples > 1 else 1)

    def sample(self, r: float, expected_samples: int = 1) -> None:
        """RFC 6298 2.2 and 2.3 (RFC 7323 appendix G's gains when more samples per RTT are expected); a
        sample also ends the backoff (5.7)."""
        if self.srtt is None:
            self.srtt, self.rttvar = r, r / 2
        else:
            alpha, beta = ALPHA / expected_samples, BETA / expected_samples
            self.rttvar = (1 - beta) * self.rttvar + beta * abs(self.srtt - r)
            self.srtt = (1 - alpha) * self.srtt + alpha * r
        self.rto = min(max(self.srtt + max(CLOCK_GRANULARITY, K * self.rttvar), self.minimum), self.maximum)
        self.backoff = 0
