"""Anti-replay window: whitepaper section 5.4.6, RFC 6479 (kernel receive.c ``counter_validate``,
wireguard-go replay/replay.go).

The receiver of transport messages remembers which counters it has accepted, within a window of
``REPLAY_WINDOW_SIZE`` = 8128 counters behind the highest one seen, and refuses everything else:
repeats, counters too far behind, and counters at or past ``REJECT_AFTER_MESSAGES`` (section 6.1).
RFC 6479 keeps the window as a ring of ``REPLAY_RING_BLOCKS`` blocks of ``REPLAY_BLOCK_BITS`` bits, one
block more than the window needs, so that sliding forward only zeroes whole blocks and never shifts bits.

The rule, exactly (the model the tests check against): with ``highest`` the largest counter accepted so
far (0 before any), ``counter`` is accepted iff ``counter < reject_after_messages``, ``counter`` was
not accepted before, and ``highest - counter <= REPLAY_WINDOW_SIZE``. Accepting records it.

The kernel and wireguard-go differ only in the limit: the kernel refuses from ``2**64 - 8130``
(``U64_MAX - COUNTER_WINDOW_SIZE - 1``), wireguard-go from ``2**64 - 2**13 - 1`` (our
``REJECT_AFTER_MESSAGES``), hence the constructor argument. The kernel stores ``counter + 1`` and
indexes its bitmap with it, wireguard-go stores and indexes ``counter`` itself; no sequence of calls can
tell the two apart, and both pass both selftests. (On 32-bit hosts the kernel's window is 8160; we
follow 64-bit hosts and wireguard-go.)
"""

from __future__ import annotations

from .constants import REJECT_AFTER_MESSAGES, REPLAY_BLOCK_BITS, REPLAY_RING_BLOCKS, REPLAY_WINDOW_SIZE

_BLOCK_SHIFT = REPLAY_BLOCK_BITS.bit_length() - 1   # counter >> 6 is its block number
_BIT_MASK = REPLAY_BLOCK_BITS - 1                    # counter & 63 is its bit within the block
_RING_MASK = REPLAY_RING_BLOCKS - 1                  # block & 127 is its slot in the ring
# One precomputed mask per bit position, so accept() does not build 1 << n for every packet.
_BIT = tuple(1 << n for n in range(REPLAY_BLOCK_BITS))
_EMPTY_RING = (0,) * REPLAY_RING_BLOCKS


class ReplayFilter:
    """The receiving side of one keypair: which counters were already seen (kernel
    ``struct noise_replay_counter``, wireguard-go ``replay.Filter``).

    The ring is a list of 128 plain ints of 64 bits each. Measured with timeit in one run (Python 3.11,
    200,000 calls from counter 0, best of 5): about 195 ns per call in order and 250 ns reordered (runs
    of 256 shuffled), against about 420 ns both ways with the ring as one 8192-bit Python int (every bit
    set copies a kilobyte-sized int), so the list stays. A bytearray with one byte per counter measured
    about 155 ns, but it is no longer the RFC 6479 bitmap the kernel and wireguard-go share, and 40 ns
    is about 1 % of the 3.9 us of Python a received packet costs. ``benchmarks/bench_replay.py``
    measures this class beside ``set.add``.
    """

    __slots__ = ("_limit", "_ring", "_last")

    def __init__(self, reject_after_messages: int = REJECT_AFTER_MESSAGES) -> None:
        if not 0 < reject_after_messages <= 2**64:
            raise ValueError(f"reject_after_messages must be in 1..2**64, not {reject_after_messages}")
        self._limit = reject_after_messages
        self._ring = [0] * REPLAY_RING_BLOCKS
        self._last = 0   # the highest counter accepted so far; 0 before any (wireguard-go's "last")

    def window(self) -> tuple[int, tuple[int, ...]]:
        """The highest counter accepted and the ring of bitmaps: two filters with equal windows accept
        exactly the same counters from here on."""
        return self._last, tuple(self._ring)

    def reset(self) -> None:
        """Forget every counter, as for a new keypair."""
        self._ring[:] = _EMPTY_RING
        self._last = 0

    def accept(self, counter: int) -> bool:
        """True the first time ``counter`` (a u64 from a transport header, after its message
        authenticated) is seen inside the window and under the limit, and records it; False for a
        replay, a counter more than the window behind the highest one, or one at or past the limit."""
        last = self._last
        if counter > last:
            # A new highest counter: nothing at or above it was ever recorded, so it is fresh.
            if counter >= self._limit:
                return False
            block = counter >> _BLOCK_SHIFT
            current = last >> _BLOCK_SHIFT
            if block != current:
                # Slide forward: the blocks after the current one up to the new one hold bits from
                # 128 blocks ago; zero them (the whole ring after a jump of 128 blocks or more).
                ring = self._ring
                if block - current >= REPLAY_RING_BLOCKS:
                    ring[:] = _EMPTY_RING
                else:
                    while current != block:
                        current += 1
                        ring[current & _RING_MASK] = 0
            self._last = counter
            self._ring[block & _RING_MASK] |= _BIT[counter & _BIT_MASK]
            return True
        if last - counter > REPLAY_WINDOW_SIZE:
            return False   # behind the window
        ring = self._ring
        slot = (counter >> _BLOCK_SHIFT) & _RING_MASK
        bit = _BIT[counter & _BIT_MASK]
        old = ring[slot]
        if old & bit:
            return False   # seen before
        ring[slot] = old | bit
        return True

    def __repr__(self) -> str:
        return f"ReplayFilter(highest={self._last}, reject_after_messages={self._limit})"
