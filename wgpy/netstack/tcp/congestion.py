"""Congestion control: RFC 5681 slow start and congestion avoidance, RFC 6582 NewReno fast retransmit and
fast recovery, the initial window of RFC 6928.

Sequence numbers here are the connection's unwrapped ones (plain ints that never wrap), so comparisons
are plain. The connection calls the ``on_*`` hooks and reads ``cwnd``; a hook that returns ``True`` asks it
to retransmit the first unacknowledged segment now.
"""

from __future__ import annotations

DUPLICATE_ACK_THRESHOLD = 3  # RFC 5681 3.2


def initial_window(mss: int) -> int:
    """RFC 6928 2: min(10*MSS, max(2*MSS, 14600))."""
    return min(10 * mss, max(2 * mss, 14600))


class NewReno:
    __slots__ = ("mss", "cwnd", "ssthresh", "duplicate_acks", "recover", "in_recovery", "_acked")

    def __init__(self, mss: int, iss: int) -> None:
        self.mss = mss
        self.cwnd = initial_window(mss)
        self.ssthresh = 1 << 30  # RFC 5681 3.1: "arbitrarily high"
        self.duplicate_acks = 0
        self.recover = iss  # RFC 6582 3.2 step 1: initialised to the ISS
        self.in_recovery = False
        self._acked = 0  # bytes acknowledged in congestion avoidance, towards the next MSS of cwnd

    def set_mss(self, mss: int) -> None:
        """Call me when the handshake fixes the MSS: the initial window follows it."""
        self.mss = mss
        self.cwnd = initial_window(mss)

    def on_new_ack(self, acked: int, ack: int, flight: int) -> bool:
        """Call me when an ACK acknowledges ``acked`` new bytes; ``flight`` is what remains outstanding.

        Returns ``True`` for a partial ACK in recovery (RFC 6582 3.2 step 5): retransmit the next hole.
        """
        mss = self.mss
        self.duplicate_acks = 0
        if self.in_recovery:
            if ack >= self.recover:  # full acknowledgment (step 3 of 3.2, the first option)
                self.in_recovery = False
                self.cwnd = min(self.ssthresh, max(flight, mss) + mss)
                return False
            # Partial acknowledgment: deflate by what was acked, add back one MSS if at least one was.
            self.cwnd = max(self.cwnd - acked + (mss if acked >= mss else 0), mss)
            return True
        if self.cwnd < self.ssthresh:  # slow start, RFC 5681 3.1 (appropriate byte counting, L = 1 SMSS)
            self.cwnd += min(acked, mss)
        else:  # congestion avoidance: one MSS per window of acknowledged bytes
            self._acked += acked
            if self._acked >= self.cwnd:
                self._acked -= self.cwnd
                self.cwnd += mss
        return False

    def on_duplicate_ack(self, flight: int, snd_max: int, snd_una: int) -> bool:
        """Call me on a duplicate ACK (RFC 5681 2). ``True``: fast retransmit the first unacked segment."""
        self.duplicate_acks += 1
        if self.in_recovery:
            self.cwnd += self.mss  # RFC 6582 3.2 step 4: inflate for the segment that left the network
            return False
        # RFC 6582 3.2 step 2: only if the cumulative ACK covers more than ``recover`` (no second
        # reduction for losses of the window already being recovered, or sent before a timeout).
        if self.duplicate_acks == DUPLICATE_ACK_THRESHOLD and snd_una > self.recover:
            self.ssthresh = max(flight // 2, 2 * self.mss)  # RFC 5681 (4)
            self.recover = snd_max
            self.cwnd = self.ssthresh + DUPLICATE_ACK_THRESHOLD * self.mss
            self.in_recovery = True
            return True
        return False

    def on_timeout(self, flight: int, snd_max: int) -> None:
        """Call me when the retransmission timer expires: RFC 5681 (4) and (5), RFC 6582 4."""
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.mss  # the loss window
        self.recover = snd_max
        self.in_recovery = False
        self.duplicate_acks = 0
        self._acked = 0
