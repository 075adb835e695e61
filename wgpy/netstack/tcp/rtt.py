"""The retransmission timer: RFC 6298.

SRTT and RTTVAR from samples of one timed segment at a time; Karn's rule (RFC 6298 3: no sample from a
retransmitted segment); the timeout doubled on each expiry (5.5) and reset by the next sample.

Differences from RFC 6298, as in Linux: the minimum RTO is 200 ms (Linux's TCP_RTO_MIN) rather than the
1 s of 2.4, since the RFC's floor is meant for the Internet's slow timers and a tunnel's RTTs are small;
the maximum is 60 s (2.5 allows it). The initial RTO is 1 s (2.1).
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

    def sample(self, r: float) -> None:
        """RFC 6298 2.2 and 2.3; a sample also ends the backoff (5.7)."""
        if self.srtt is None:
            self.srtt, self.rttvar = r, r / 2
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - r)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * r
        self.rto = min(max(self.srtt + max(CLOCK_GRANULARITY, K * self.rttvar), self.minimum), self.maximum)
        self.backoff = 0
