"""Ephemeral ports: RFC 6056 3.3.3 (Algorithm 3, "simple hash-based") for connections, Algorithm 1 for
sockets bound without a remote end.

Algorithm 3 picks ``offset + next_ephemeral`` in the range, ``offset`` being a keyed hash of the local
address and the remote address and port: towards one server, successive connections take successive ports,
so a port comes back only after the whole range was used (what a server holding our old connections in
TIME-WAIT needs: RFC 6056 2.3 and 3.3.3), while the start is unpredictable to anyone without the key.
Linux uses Algorithm 4's table of counters with random steps (``__inet_hash_connect``); a single counter
is Algorithm 3, simpler and enough for one tunnel's stack.

The range is IANA's dynamic ports (RFC 6335 6: 49152-65535), which RFC 6056 3.2 recommends, rather than
Linux's 32768-60999 (``net.ipv4.ip_local_port_range``): its 16384 ports last 16384 connections to one
server before a port returns, enough for the 60 s of a Linux TIME-WAIT at 270 connections per second,
and the ports below 49152 are IANA's registered ones. The key and the randomness come from the stack's
injected ``rng``.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Callable

EPHEMERAL_FIRST = 49152
EPHEMERAL_LAST = 65535
EPHEMERAL_COUNT = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1

_PORT = struct.Struct("!H")


def choose_port(rng: Callable[[int], bytes], in_use: Callable[[int], bool]) -> int | None:
    """RFC 6056 3.3.1 (Algorithm 1): a port of the ephemeral range for which ``in_use`` is false, starting
    at a random one; None when every port of the range is taken. For sockets without a remote end."""
    return _first_free(int.from_bytes(rng(2), "big"), in_use)


def _first_free(start: int, in_use: Callable[[int], bool]) -> int | None:
    for step in range(EPHEMERAL_COUNT):
        port = EPHEMERAL_FIRST + (start + step) % EPHEMERAL_COUNT
        if not in_use(port):
            return port
    return None


class PortChooser:
    """RFC 6056 3.3.3, Algorithm 3: ``port = min_ephemeral + (F(local, remote, secret) + next_ephemeral)
    % num_ephemeral``, the counter moving on past every port tried."""

    __slots__ = ("_secret", "next_ephemeral")

    def __init__(self, rng: Callable[[int], bytes]) -> None:
        self._secret = rng(32)
        self.next_ephemeral = 0

    def __repr__(self) -> str:
        return f"PortChooser(<secret>, next_ephemeral={self.next_ephemeral})"

    def offset(self, local: bytes, remote: bytes, remote_port: int) -> int:
        """F of RFC 6056 3.3.3: a keyed hash of the four-tuple without the local port."""
        data = local + remote + _PORT.pack(remote_port)
        return int.from_bytes(hashlib.blake2s(data, digest_size=4, key=self._secret).digest(), "big")

    def choose(self, local: bytes, remote: bytes, remote_port: int, in_use: Callable[[int], bool]) -> int | None:
        """A free ephemeral port towards ``remote``:``remote_port`` from ``local``; None when all are taken."""
        offset = self.offset(local, remote, remote_port)
        for _ in range(EPHEMERAL_COUNT):
            port = EPHEMERAL_FIRST + (offset + self.next_ephemeral) % EPHEMERAL_COUNT
            self.next_ephemeral = (self.next_ephemeral + 1) & 0xFFFFFFFF
            if not in_use(port):
                return port
        return None


def check_port(port: int) -> int:
    """``port`` if it is a valid port number (1-65535); ValueError otherwise (a caller's mistake)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"not a port number: {port!r}")
    return port
