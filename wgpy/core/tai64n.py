"""TAI64N timestamps (whitepaper section 5.4.2; cr.yp.to/libtai/tai64.html).

12 bytes, big-endian: a 64-bit label ``2**62 + 10 + unix_seconds`` (TAI is 10 s ahead of the UNIX epoch at
1970 in this convention) and a 32-bit nanosecond count. The responder only accepts an initiation whose
timestamp is strictly greater than the last one it accepted from that peer, which is why comparing the
raw bytes is enough: big-endian order is numeric order.
"""

import struct

from .constants import INITIATIONS_PER_SECOND, TIMESTAMP_LEN

_TAI64N = struct.Struct(">QI")
TAI64_BASE = 2**62 + 10

# Kernel and wireguard-go round the nanoseconds down to a power of two no finer than the initiation rate
# limit (2**24 ns, about 16.8 ms) so that the timestamp does not leak a fine-grained clock reading.
WHITENING_NS = 1 << ((10**9 // INITIATIONS_PER_SECOND).bit_length() - 1)


def encode(epoch: float) -> bytes:
    """The TAI64N label of ``epoch`` (seconds since 1970, from the caller's wall clock), whitened."""
    seconds = int(epoch // 1)
    nanoseconds = int((epoch - seconds) * 1e9)
    nanoseconds -= nanoseconds % WHITENING_NS
    return label(seconds, nanoseconds)


def label(seconds: int, nanoseconds: int = 0) -> bytes:
    """The TAI64N label of ``seconds`` since 1970 and ``nanoseconds``, exactly as given (no whitening)."""
    return _TAI64N.pack(TAI64_BASE + seconds, nanoseconds)


def decode(timestamp: bytes) -> tuple[int, int]:
    """(unix seconds, nanoseconds) of a 12-byte TAI64N label."""
    if len(timestamp) != TIMESTAMP_LEN:
        raise ValueError("a TAI64N timestamp is 12 bytes")
    label, nanoseconds = _TAI64N.unpack(timestamp)
    return label - TAI64_BASE, nanoseconds


def is_after(timestamp: bytes, previous: bytes) -> bool:
    """True when ``timestamp`` is strictly later than ``previous`` (section 5.1: replay protection)."""
    return timestamp > previous
