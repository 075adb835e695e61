"""Per-source rate limit of handshake messages under load: whitepaper section 5.3 (kernel ratelimiter.c,
wireguard-go ratelimiter/ratelimiter.go).

Under load, a responder answers a handshake message with a cookie reply unless MAC2 proves that the sender
owns its source address (cookie.py). A proven address can still make us do Diffie-Hellman as fast as it can
send, so each source also gets a token bucket: 20 handshake messages a second, bursts of up to 5. The
device asks :meth:`RateLimiter.allow` only for messages with a valid MAC2 while under load (the kernel does
it inside ``wg_cookie_validate_packet``, answering ``VALID_MAC_WITH_COOKIE_BUT_RATELIMITED``; wireguard-go
in ``RoutineHandshake``); a refused message is dropped.

A source is an IPv4 address, or an IPv6 /64: one host usually owns a whole /64, so grouping by full IPv6
address would give it 2**64 buckets.
"""

from __future__ import annotations

NSEC_PER_SEC = 1_000_000_000
PACKETS_PER_SECOND = 20
PACKETS_BURSTABLE = 5
# Tokens are nanoseconds of elapsed time: one packet costs 1/20 s, a full bucket holds 5 packets.
PACKET_COST = NSEC_PER_SEC // PACKETS_PER_SECOND
TOKEN_MAX = PACKET_COST * PACKETS_BURSTABLE
# An entry idle this long is forgotten, and the table is swept this often (kernel: NSEC_PER_SEC and HZ;
# wireguard-go: garbageCollectTime). A forgotten source loses nothing: after 1/4 s idle its bucket is full
# anyway, exactly the state a new source starts in.
GARBAGE_COLLECT_TIME = NSEC_PER_SEC

_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"   # ::ffff:a.b.c.d (RFC 4291 section 2.5.5.2)


def _source_key(address: bytes) -> bytes:
    """The bucket of a packed address: IPv4 as it is, IPv6 by its first 64 bits (kernel: ``ip``)."""
    if len(address) == 4:
        return address
    if len(address) == 16:
        # A dual-stack socket reports IPv4 peers as mapped IPv6; they must not share ::ffff:0:0/64.
        if address[:12] == _V4_MAPPED_PREFIX:
            return address[12:]
        return address[:8]
    raise ValueError(f"a source address is 4 (IPv4) or 16 (IPv6) bytes, not {len(address)}")


class _Entry:
    """One source's bucket (kernel ``struct ratelimiter_entry``)."""

    __slots__ = ("tokens", "last_time_ns")

    def __init__(self, tokens: int, last_time_ns: int) -> None:
        self.tokens = tokens
        self.last_time_ns = last_time_ns


class RateLimiter:
    """Token buckets of handshake messages, one per source; ``now`` is seconds on a monotonic clock."""

    PACKETS_PER_SECOND = PACKETS_PER_SECOND
    PACKETS_BURSTABLE = PACKETS_BURSTABLE

    __slots__ = ("_max_entries", "_table", "_next_collection_ns")

    # 65536 is the kernel's bound on any machine with more than 1 GiB of RAM (8 entries per slot of an
    # 8192-slot table, sized after xt_hashlimit). It caps the memory a flood of spoofed sources can take,
    # and is far more proven addresses than can send handshakes to one device within a second.
    def __init__(self, max_entries: int = 65536) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self._max_entries = max_entries
        self._table: dict[bytes, _Entry] = {}
        self._next_collection_ns: int | None = None  # armed by the first allow()

    def allow(self, address: bytes, now: float) -> bool:
        """Whether to process one more handshake message from ``address`` (a packed 4-byte IPv4 or 16-byte
        IPv6 address); the answer is charged to the source's bucket."""
        key = _source_key(address)
        # Integer nanoseconds, as the kernel counts: float tokens would drift and refuse a packet that is
        # due exactly on time.
        now_ns = round(now * NSEC_PER_SEC)
        if self._next_collection_ns is None:
            self._next_collection_ns = now_ns + GARBAGE_COLLECT_TIME
        elif now_ns >= self._next_collection_ns:
            # Lazily, in place of the kernel's once-a-second work item; before the lookup, so a full
            # table makes room before it refuses a new source.
            self._collect(now_ns)

        entry = self._table.get(key)
        if entry is None:
            # A full table refuses new sources rather than evicting old ones (kernel ``err_oom``): eviction
            # would let a flood of spoofed sources reset the buckets of real ones.
            if len(self._table) >= self._max_entries:
                return False
            self._table[key] = _Entry(TOKEN_MAX - PACKET_COST, now_ns)
            return True

        # The burst is part of the bucket's size, not of the rate (kernel: "quasi-inspired by nft_limit.c").
        # A clock that steps back earns nothing and owes nothing.
        tokens = entry.tokens
        if now_ns > entry.last_time_ns:
            tokens = min(TOKEN_MAX, tokens + now_ns - entry.last_time_ns)
            entry.last_time_ns = now_ns
        if tokens >= PACKET_COST:
            entry.tokens = tokens - PACKET_COST
            return True
        entry.tokens = tokens  # a refused packet keeps what it earned (kernel, wireguard-go)
        return False

    def collect(self, now: float) -> None:
        """Forget every source idle for more than a second. :meth:`allow` does this itself at most once a
        second; call it to free memory when handshakes stop arriving."""
        self._collect(round(now * NSEC_PER_SEC))

    def _collect(self, now_ns: int) -> None:
        stale = [key for key, entry in self._table.items() if now_ns - entry.last_time_ns > GARBAGE_COLLECT_TIME]
        for key in stale:
            del self._table[key]
        self._next_collection_ns = now_ns + GARBAGE_COLLECT_TIME

    def __len__(self) -> int:
        """The number of sources currently tracked."""
        return len(self._table)

    def __repr__(self) -> str:
        return f"RateLimiter(sources={len(self._table)}, max_entries={self._max_entries})"
