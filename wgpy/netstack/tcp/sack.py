"""The sender's SACK scoreboard (RFC 2018, RFC 6675), kept just enough to retransmit holes.

The peer's SACK blocks say which bytes beyond SND.UNA it holds. In fast recovery the holes below the
highest SACKed byte are the segments presumed lost: each is retransmitted once per recovery, from a
pointer that only moves forward (a simplified NextSeg of RFC 6675 section 4, without its "pipe": the
congestion window bounds each call instead). After a timeout the scoreboard is forgotten (RFC 2018 8:
the receiver may have discarded what it SACKed).

Sequence numbers are the connection's unwrapped ones. Blocks are bounded: at most ``MAX_BLOCKS`` kept.
"""

from __future__ import annotations

import bisect

MAX_BLOCKS = 64


class Scoreboard:
    __slots__ = ("starts", "ends", "rexmit_next")

    def __init__(self) -> None:
        self.starts: list[int] = []  # sorted, disjoint, not touching
        self.ends: list[int] = []
        self.rexmit_next = 0  # holes below this were retransmitted in the current recovery

    def __bool__(self) -> bool:
        return bool(self.starts)

    @property
    def high(self) -> int:
        """One past the highest SACKed byte (0 when nothing is SACKed)."""
        return self.ends[-1] if self.ends else 0

    def add(self, left: int, right: int) -> bool:
        """Record that the peer holds [left, right); ``True`` if any of it is new."""
        starts, ends = self.starts, self.ends
        i = bisect.bisect_left(ends, left)  # the first block ending at or after left: it may touch
        j = i
        while j < len(starts) and starts[j] <= right:
            j += 1
        if j == i + 1 and starts[i] <= left and right <= ends[i]:
            return False  # already known
        if i < j:
            left, right = min(left, starts[i]), max(right, ends[j - 1])
        starts[i:j] = [left]
        ends[i:j] = [right]
        if len(starts) > MAX_BLOCKS:  # forget the highest: at worst a hole is retransmitted late
            del starts[-1], ends[-1]
        return True

    def acknowledge(self, snd_una: int) -> None:
        """Drop what the cumulative ACK now covers."""
        starts, ends = self.starts, self.ends
        while starts and ends[0] <= snd_una:
            del starts[0], ends[0]
        if starts and starts[0] < snd_una:
            starts[0] = snd_una

    def clear(self) -> None:
        self.starts.clear()
        self.ends.clear()
        self.rexmit_next = 0

    def holes(self, start: int, limit: int, mss: int):
        """(seq, length) of unSACKed segments from ``start`` below ``high``, ``limit`` bytes at most."""
        starts, ends = self.starts, self.ends
        seq, sent = start, 0
        i = bisect.bisect_right(starts, seq) - 1
        if i >= 0 and ends[i] > seq:
            seq = ends[i]
        i += 1  # the first block starting after seq
        while i < len(starts) and sent < limit:
            if seq >= starts[i]:
                seq = max(seq, ends[i])
                i += 1
                continue
            n = min(mss, starts[i] - seq)
            yield seq, n
            seq += n
            sent += n
