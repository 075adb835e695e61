"""Ephemeral ports: RFC 6056 3.3.1 (Algorithm 1, a random start, then the next free port).

The range is IANA's dynamic ports (RFC 6335 6: 49152-65535), which RFC 6056 3.2 recommends; Linux uses
32768-60999 (net.ipv4.ip_local_port_range). The randomness comes from the stack's injected ``rng``.
"""

from __future__ import annotations

from typing import Callable

EPHEMERAL_FIRST = 49152
EPHEMERAL_LAST = 65535
EPHEMERAL_COUNT = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1


def choose_port(rng: Callable[[int], bytes], in_use: Callable[[int], bool]) -> int | None:
    """A port of the ephemeral range for which ``in_use`` is false, starting at a random one; None when
    every port of the range is taken."""
    offset = int.from_bytes(rng(2), "big") % EPHEMERAL_COUNT
    for step in range(EPHEMERAL_COUNT):
        port = EPHEMERAL_FIRST + (offset + step) % EPHEMERAL_COUNT
        if not in_use(port):
            return port
    return None


def check_port(port: int) -> int:
    """``port`` if it is a valid port number (1-65535); ValueError otherwise (a caller's mistake)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ValueError(f"not a port number: {port!r}")
    return port
