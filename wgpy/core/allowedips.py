"""Cryptokey routing: the allowed-IPs table, whitepaper section 3 (kernel allowedips.c, wireguard-go
device/allowedips.go).

Each peer owns a set of IPv4 and IPv6 prefixes. Sending, the destination address of a packet picks the
peer (the longest prefix that contains it); receiving, the source address of a decrypted packet must
map back to the peer it came from. A prefix belongs to at most one peer: inserting it again moves it.

Layout, per address family: one dict per prefix length present, ``{address >> (bits - cidr): peer}``,
and the list of those dicts from the longest length to the shortest. A lookup turns the address into
one int and probes the dicts in that order; the first hit is the longest match. Its cost grows with the
number of distinct prefix lengths in the family, not with the number of prefixes, and inserts and
removals are O(1) dict operations (plus a re-sort of at most 129 lengths when a length appears or
disappears). The kernel's and wireguard-go's binary tries answer the same questions one bit-node at a
time, which Python would pay for per node. Two other layouts were measured on the same 100,000-prefix
sets and not kept: the prefixes flattened into sorted disjoint ranges searched with ``bisect`` (0.33 to
0.77 us for any mix of lengths, but every change re-flattens the table: 0.1 to 0.2 s at 100,000), and a
second tier of buckets keyed by the top 16 (IPv4) or 64 (IPv6) bits, listing the longer lengths present
under each (1.8 us instead of 5 to 9 us in the IPv6 worst case below, but one more probe on every lookup
in small and realistic tables, which carry few lengths; the prototype was slower there).

Measured with ``python3 benchmarks/bench_allowedips.py`` (Python 3.11, two shared vCPUs, three quiet
runs; a bare ``dict.get`` on a 100,000-key dict took 55 ns in the same runs):

* a small table, 10 peers with a /32 and a /128 each plus 0.0.0.0/0: 0.20 us per lookup;
* 100,000 random prefixes per family, lengths weighted like real tables (IPv4: 11 lengths, mostly /24
  and /32; IPv6: 13, mostly /48, /64 and /128): a hit 0.65 us (IPv4) and 0.8 us (IPv6), a miss, which
  probes every length, 1.0 and 1.2 us;
* the worst case, 100,000 prefixes with every length present (29 for IPv4, 125 for IPv6): a hit 1.3 and
  5 us, a miss 1.9 and 9 us;
* inserts: about 1.2 million per second.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from types import GenericAlias

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    import ipaddress
    from typing import Generic, TypeVar

    Peer = TypeVar("Peer", bound=Hashable)
    _Generic = Generic[Peer]
else:
    _Generic = object

# Bound once: looking up the classmethod on ``int`` builds a new bound method on every call, which was
# about 70 ns of a 280 ns lookup (timeit, Python 3.11).
_from_bytes = int.from_bytes

# A prefix as the per-peer index keeps it: (address size in bytes, cidr, address >> (bits - cidr)).
_Entry = tuple[int, int, int]


class _Family:
    """The prefixes of one address family (IPv4 or IPv6)."""

    __slots__ = ("size", "bits", "tables", "probes")

    def __init__(self, size: int) -> None:
        self.size = size         # address length in bytes: 4 or 16
        self.bits = size * 8
        self.tables: dict[int, dict[int, Hashable]] = {}    # cidr -> {address >> (bits - cidr): peer}
        self.probes: list[tuple[int, Callable]] = []         # (bits - cidr, that dict's .get), longest first

    def order_probes(self) -> None:
        """Rebuild the probe order after a prefix length appeared or disappeared."""
        self.probes = [(self.bits - cidr, self.tables[cidr].get) for cidr in sorted(self.tables, reverse=True)]

    def remove(self, cidr: int, key: int) -> None:
        table = self.tables[cidr]
        del table[key]
        if not table:
            del self.tables[cidr]
            self.order_probes()


class AllowedIPs(_Generic):
    """The table of every peer's allowed IPs, for both address families.

    Addresses are raw network-order bytes: 4 for IPv4, 16 for IPv6 (a slice of an IP header will do).
    Peers are any hashable objects other than ``None``; the table compares them as dict keys do (by
    identity unless they define ``__eq__``). A bad address size, a cidr out of range or a ``None`` peer
    on insert is the caller's mistake and raises ``ValueError``.
    """

    __class_getitem__ = classmethod(GenericAlias)   # AllowedIPs[Peer], as with typing.Generic

    __slots__ = ("_v4", "_v6", "_families", "_by_peer")

    def __init__(self) -> None:
        self._v4 = _Family(4)
        self._v6 = _Family(16)
        self._families = {4: self._v4, 16: self._v6}
        # Each peer's prefixes in insertion order (a dict used as an ordered set), so that entries()
        # and remove_by_peer() cost what the peer owns, not what the table holds.
        self._by_peer: dict[Peer, dict[_Entry, None]] = {}

    def _family(self, address: bytes, cidr: int) -> _Family:
        family = self._families.get(len(address))
        if family is None:
            raise ValueError(f"an address is 4 (IPv4) or 16 (IPv6) bytes, not {len(address)}")
        if not 0 <= cidr <= family.bits:
            raise ValueError(f"cidr {cidr} is out of range 0..{family.bits}")
        return family

    def insert(self, address: bytes, cidr: int, peer: Peer) -> None:
        """Route ``address/cidr`` to ``peer``. Host bits beyond ``cidr`` are ignored (the kernel masks
        them off); a prefix already present moves to ``peer`` and to the end of its entries."""
        if peer is None:
            raise ValueError("peer must not be None")
        family = self._family(address, cidr)
        key = _from_bytes(address, "big") >> (family.bits - cidr)
        entry = (family.size, cidr, key)
        table = family.tables.get(cidr)
        if table is None:
            table = family.tables[cidr] = {}
            family.order_probes()
        old = table.get(key)
        if old is not None:
            self._forget(old, entry)
        table[key] = peer
        self._by_peer.setdefault(peer, {})[entry] = None

    def insert_network(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network, peer: Peer) -> None:
        """:meth:`insert` for an ``ipaddress`` network."""
        self.insert(network.network_address.packed, network.prefixlen, peer)

    def remove(self, address: bytes, cidr: int, peer: Peer) -> bool:
        """Remove exactly the prefix ``address/cidr`` (host bits ignored), only if it belongs to
        ``peer``; True if it did (kernel ``wg_allowedips_remove_v4``/``_v6``: a shorter or longer prefix,
        another peer's prefix or a ``None`` peer leave the table unchanged)."""
        family = self._family(address, cidr)
        if peer is None:
            return False
        table = family.tables.get(cidr)
        if table is None:
            return False
        key = _from_bytes(address, "big") >> (family.bits - cidr)
        owner = table.get(key)
        if owner is None or owner != peer:
            return False
        family.remove(cidr, key)
        self._forget(peer, (family.size, cidr, key))
        return True

    def remove_by_peer(self, peer: Peer) -> None:
        """Remove every prefix of ``peer`` (as when the peer is removed or its allowed IPs replaced)."""
        for size, cidr, key in self._by_peer.pop(peer, ()):
            self._families[size].remove(cidr, key)

    def _forget(self, peer: Peer, entry: _Entry) -> None:
        entries = self._by_peer[peer]
        del entries[entry]
        if not entries:
            del self._by_peer[peer]

    def lookup(self, address: bytes) -> Peer | None:
        """The peer whose longest prefix contains ``address`` (4 or 16 raw bytes), or None."""
        size = len(address)
        if size == 4:
            probes = self._v4.probes
        elif size == 16:
            probes = self._v6.probes
        else:
            raise ValueError(f"an address is 4 (IPv4) or 16 (IPv6) bytes, not {size}")
        value = _from_bytes(address, "big")
        for shift, get in probes:
            peer = get(value >> shift)
            if peer is not None:
                return peer
        return None

    def entries(self, peer: Peer) -> list[tuple[bytes, int]]:
        """``peer``'s prefixes as (address bytes with host bits zero, cidr) in the order they were
        inserted, both families mixed, a re-inserted prefix moving to the end: wireguard-go's
        ``EntriesForPeer`` (one list per peer, ``trieEntries``), so ``wg show`` lists them as given."""
        return list(self.iter_entries(peer))

    def iter_entries(self, peer: Peer) -> Iterator[tuple[bytes, int]]:
        """:meth:`entries` one at a time, for a caller that takes them in slices; the table must not
        change meanwhile."""
        for size, cidr, key in self._by_peer.get(peer, ()):
            yield (key << (size * 8 - cidr)).to_bytes(size, "big"), cidr

    def clear(self) -> None:
        """Remove everything."""
        self._v4.tables.clear()
        self._v6.tables.clear()
        self._v4.order_probes()
        self._v6.order_probes()
        self._by_peer.clear()

    def __len__(self) -> int:
        return sum(len(table) for family in (self._v4, self._v6) for table in family.tables.values())

    def __repr__(self) -> str:
        return f"AllowedIPs({len(self)} prefixes, {len(self._by_peer)} peers)"
