"""Initial sequence numbers: RFC 6528 (RFC 9293 3.4.1).

    ISN = M + F(localip, localport, remoteip, remoteport, secretkey)

M is a clock ticking every 4 microseconds (RFC 9293 3.4.1), read from ``now``; F is BLAKE2s keyed with a
secret drawn once from the injected ``rng``, so an off-path attacker cannot guess one connection's ISN
from another's, and a new incarnation of the same four-tuple starts beyond the old one's numbers.
"""

from __future__ import annotations

import hashlib
import struct

_PORT = struct.Struct("!H")
TICKS_PER_SECOND = 250_000  # one tick every 4 microseconds


class IsnGenerator:
    """``isn(local, remote, now)``, ``local`` and ``remote`` being ``(address_bytes, port)``."""

    __slots__ = ("_secret",)

    def __init__(self, rng) -> None:
        self._secret = rng(32)  # RFC 6528 3: a secret of at least 128 bits

    def __repr__(self) -> str:
        return "IsnGenerator(<secret>)"

    def isn(self, local: tuple[bytes, int], remote: tuple[bytes, int], now: float) -> int:
        tuple_bytes = local[0] + _PORT.pack(local[1]) + remote[0] + _PORT.pack(remote[1])
        f = int.from_bytes(hashlib.blake2s(tuple_bytes, digest_size=4, key=self._secret).digest(), "big")
        return (int(now * TICKS_PER_SECOND) + f) & 0xFFFFFFFF

    def timestamp_offset(self, local: tuple[bytes, int], remote: tuple[bytes, int]) -> int:
        """The offset of one connection's timestamp clock (RFC 7323 5.4, 7.1): random per connection, the
        same for a four-tuple's later incarnations in this process, so their TSvals keep increasing."""
        tuple_bytes = b"TSval" + local[0] + _PORT.pack(local[1]) + remote[0] + _PORT.pack(remote[1])
        return int.from_bytes(hashlib.blake2s(tuple_bytes, digest_size=4, key=self._secret).digest(), "big")
