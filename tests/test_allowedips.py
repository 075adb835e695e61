"""Cryptokey routing (wgpy/core/allowedips.py): the kernel's and wireguard-go's selftest op lists, then the
table against a linear scan (the kernel's ``horrible_allowedips``), small and at 100,000 prefixes."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgpy.core.allowedips import AllowedIPs

from .vectors import cases


class Peer:
    """A peer compared by identity, like the kernel's ``struct wg_peer *``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Peer({self.name})"


class LinearModel:
    """Every prefix in one dict, and a scan over all of them for each lookup."""

    def __init__(self) -> None:
        self.prefixes: dict[tuple[int, int, int], object] = {}   # (size, cidr, masked int) -> peer
        self.order: dict[object, dict[tuple[int, int, int], None]] = {}

    @staticmethod
    def prefix(address: bytes, cidr: int) -> tuple[int, int, int]:
        bits = len(address) * 8
        return (len(address), cidr, int.from_bytes(address, "big") >> (bits - cidr) << (bits - cidr))

    def insert(self, address, cidr, peer):
        prefix = self.prefix(address, cidr)
        old = self.prefixes.get(prefix)
        if old is not None:
            del self.order[old][prefix]
        self.prefixes[prefix] = peer
        self.order.setdefault(peer, {})[prefix] = None

    def remove(self, address, cidr, peer) -> bool:
        prefix = self.prefix(address, cidr)
        if peer is None or self.prefixes.get(prefix) is not peer:
            return False
        del self.prefixes[prefix]
        del self.order[peer][prefix]
        return True

    def remove_by_peer(self, peer):
        for prefix in self.order.pop(peer, {}):
            del self.prefixes[prefix]

    def lookup(self, address):
        size, bits, value = len(address), len(address) * 8, int.from_bytes(address, "big")
        best, best_cidr = None, -1
        for (psize, cidr, masked), peer in self.prefixes.items():
            if psize == size and cidr > best_cidr and (value >> (bits - cidr) << (bits - cidr)) == masked:
                best, best_cidr = peer, cidr
        return best

    def entries(self, peer):
        owned = self.order.get(peer, {})
        return [(m.to_bytes(s, "big"), c) for (s, c, m) in owned]   # insertion order, families mixed


def ip(text: str, family: int | None = None) -> bytes:
    address = ipaddress.ip_address(text)
    if family is not None:
        assert address.version == family, text
    return address.packed


# The vectors, op by op.


@pytest.mark.parametrize("case", cases("allowedips", kind="ops"))
def test_selftest_op_list(case):
    peers = {name: Peer(name) for name in case["peers"]}
    peers[None] = None
    table: AllowedIPs[Peer] = AllowedIPs()
    model = LinearModel()
    for number, op in enumerate(case["ops"], 1):
        where = f"{case['id']} op {number}: {op}"
        kind = op["op"]
        if kind == "insert":
            address = ip(op["ip"], op["family"])
            table.insert(address, op["cidr"], peers[op["peer"]])
            model.insert(address, op["cidr"], peers[op["peer"]])
        elif kind == "lookup":
            address = ip(op["ip"], op["family"])
            assert table.lookup(address) is peers[op["expect"]], where
            assert model.lookup(address) is peers[op["expect"]], where
        elif kind == "lookup_not":
            address = ip(op["ip"], op["family"])
            assert table.lookup(address) is not peers[op["peer"]], where
            assert table.lookup(address) is model.lookup(address), where
        elif kind == "remove":
            address = ip(op["ip"], op["family"])
            if op.get("expect_return") == "-EINVAL":
                before = len(table)
                with pytest.raises(ValueError):
                    table.remove(address, op["cidr"], peers[op["peer"]])
                assert len(table) == before, where
                continue
            removed = table.remove(address, op["cidr"], peers[op["peer"]])
            assert removed is model.remove(address, op["cidr"], peers[op["peer"]]), where
            if op.get("expect_return") == 0:
                assert removed is False, where
        elif kind == "remove_by_peer":
            table.remove_by_peer(peers[op["peer"]])
            model.remove_by_peer(peers[op["peer"]])
        elif kind == "reset":
            table.clear()
            model = LinearModel()
        elif kind == "expect_peer_entries":
            got = table.entries(peers[op["peer"]])
            want = {(ip(e["ip"], e["family"]), e["cidr"]) for e in op["entries"]}
            assert set(got) == want and len(got) == len(want), where
            assert got == model.entries(peers[op["peer"]]), where   # insertion order, as wireguard-go
        elif kind == "expect_empty":
            assert len(table) == 0, where
            assert all(table.entries(peer) == [] for peer in peers.values() if peer is not None), where
        else:
            raise AssertionError(f"unknown op {kind!r}")
        assert len(table) == len(model.prefixes), where


@pytest.mark.parametrize("case", cases("allowedips", kind="common_bits"))
def test_common_bits(case):
    """wireguard-go's commonBits cases, asked through the public API: a prefix of ``a`` contains ``b``
    exactly when it is no longer than the bits they share."""
    a, b, shared = ip(case["a"], 4), ip(case["b"], 4), case["common_prefix_bits"]
    peer = Peer("a")
    for cidr in range(33):
        table: AllowedIPs[Peer] = AllowedIPs()
        table.insert(a, cidr, peer)
        assert (table.lookup(b) is peer) is (cidr <= shared), cidr
        table.clear()
        table.insert(b, cidr, peer)
        assert (table.lookup(a) is peer) is (cidr <= shared), cidr


# The API.


def test_lookup_takes_a_slice_of_a_header():
    table: AllowedIPs[Peer] = AllowedIPs()
    peer = Peer("p")
    table.insert(ip("192.0.2.0"), 24, peer)
    header = bytearray(ip("198.51.100.7") + ip("192.0.2.99"))   # source, destination
    assert table.lookup(memoryview(header)[4:8]) is peer
    assert table.lookup(bytes(header[0:4])) is None


def test_host_bits_are_masked_and_reinsert_moves_the_prefix():
    table: AllowedIPs[Peer] = AllowedIPs()
    a, b = Peer("a"), Peer("b")
    table.insert(ip("10.1.2.3"), 8, a)
    table.insert(ip("2001:db8::1"), 32, a)
    table.insert(ip("10.0.0.0"), 24, a)
    # In the order given, families mixed, as wireguard-go's EntriesForPeer (and so `wg show`) lists them.
    assert table.entries(a) == [(ip("10.0.0.0"), 8), (ip("2001:db8::"), 32), (ip("10.0.0.0"), 24)]
    table.insert(ip("10.9.9.9"), 8, a)   # the same prefix again, same peer: moves to the end
    assert table.entries(a) == [(ip("2001:db8::"), 32), (ip("10.0.0.0"), 24), (ip("10.0.0.0"), 8)]
    table.insert(ip("10.255.0.0"), 8, b)   # another peer takes it
    assert table.entries(a) == [(ip("2001:db8::"), 32), (ip("10.0.0.0"), 24)]
    assert table.entries(b) == [(ip("10.0.0.0"), 8)]
    assert table.lookup(ip("10.200.0.1")) is b
    assert table.lookup(ip("10.0.0.200")) is a
    assert len(table) == 3


def test_remove_is_exact_and_per_peer():
    table: AllowedIPs[Peer] = AllowedIPs()
    a, b = Peer("a"), Peer("b")
    table.insert(ip("fd00::"), 64, a)
    assert table.remove(ip("fd00::"), 63, a) is False
    assert table.remove(ip("fd00::"), 64, b) is False
    assert table.remove(ip("fd00::"), 64, None) is False
    assert table.remove(ip("fd00::ffff"), 64, a) is True   # host bits ignored, as on insert
    assert table.remove(ip("fd00::"), 64, a) is False
    assert len(table) == 0 and table.entries(a) == [] and table.lookup(ip("fd00::1")) is None


def test_remove_by_peer_and_clear():
    table: AllowedIPs[Peer] = AllowedIPs()
    a, b = Peer("a"), Peer("b")
    for i in range(10):
        table.insert(bytes([10, i, 0, 0]), 16, a)
        table.insert(bytes([10, i, 1, 0]), 24, b)
    table.insert_network(ipaddress.ip_network("::/0"), a)
    table.remove_by_peer(a)
    table.remove_by_peer(Peer("never inserted"))
    assert len(table) == 10 and table.entries(a) == []
    assert table.lookup(bytes([10, 3, 1, 1])) is b and table.lookup(bytes([10, 3, 2, 1])) is None
    assert table.lookup(ip("::1")) is None
    table.clear()
    assert len(table) == 0 and table.entries(b) == [] and table.lookup(bytes([10, 3, 1, 1])) is None
    table.insert(bytes(4), 0, b)
    assert table.lookup(bytes([1, 2, 3, 4])) is b


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.insert(bytes(5), 8, Peer("p")),
        lambda t: t.insert(bytes(4), 33, Peer("p")),
        lambda t: t.insert(bytes(16), 129, Peer("p")),
        lambda t: t.insert(bytes(4), -1, Peer("p")),
        lambda t: t.insert(bytes(4), 8, None),
        lambda t: t.remove(bytes(4), 33, Peer("p")),
        lambda t: t.remove(bytes(3), 8, Peer("p")),
        lambda t: t.lookup(bytes(6)),
    ],
)
def test_caller_mistakes_raise(call):
    with pytest.raises(ValueError):
        call(AllowedIPs())


# Against the linear scan.

PEERS = [Peer(name) for name in "abcd"]
# Addresses near a few bases, so prefixes nest and collide often.
BASES = {
    4: [0, 0x0A000000, 0xC0A80100, 0xFFFFFFFF],
    16: [0, 0x20010DB8 << 96, 0xFE80 << 112, (1 << 128) - 1],
}


@st.composite
def addresses(draw, size=None):
    size = size or draw(st.sampled_from([4, 16]))
    bits = size * 8
    value = draw(st.sampled_from(BASES[size]))
    value ^= draw(st.integers(0, 255)) << draw(st.sampled_from([0, 5, bits // 2, bits - 9, bits - 8]))
    return value.to_bytes(size, "big")


@st.composite
def prefixes(draw):
    address = draw(addresses())
    bits = len(address) * 8
    cidr = draw(st.one_of(st.sampled_from([0, 1, 8, bits // 2, bits - 1, bits]), st.integers(0, bits)))
    return address, cidr


OPS = st.one_of(
    st.tuples(st.just("insert"), prefixes(), st.sampled_from(PEERS)),
    st.tuples(st.just("remove"), prefixes(), st.sampled_from(PEERS + [None])),
    st.tuples(st.just("remove_by_peer"), st.just(None), st.sampled_from(PEERS)),
    st.tuples(st.just("lookup"), addresses(), st.just(None)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(OPS, max_size=60), st.lists(addresses(), max_size=20))
def test_against_a_linear_scan(ops, probes):
    table: AllowedIPs[Peer] = AllowedIPs()
    model = LinearModel()
    for kind, argument, peer in ops:
        if kind == "insert":
            table.insert(*argument, peer)
            model.insert(*argument, peer)
        elif kind == "remove":
            assert table.remove(*argument, peer) is model.remove(*argument, peer)
        elif kind == "remove_by_peer":
            table.remove_by_peer(peer)
            model.remove_by_peer(peer)
        else:
            assert table.lookup(argument) is model.lookup(argument)
    assert len(table) == len(model.prefixes)
    for address in probes:
        assert table.lookup(address) is model.lookup(address)
    for peer in PEERS:
        assert table.entries(peer) == model.entries(peer)


def random_prefixes(rng: random.Random, count: int):
    """Mixed families and lengths, IPv4 weighted toward /16 to /32 and IPv6 toward /32 to /128."""
    out = []
    for _ in range(count):
        size = rng.choice((4, 16))
        bits = size * 8
        cidr = rng.choice((rng.randint(0, bits), rng.randint(bits // 2, bits), bits))
        out.append((rng.getrandbits(bits).to_bytes(size, "big"), cidr))
    return out


def test_100000_random_prefixes_agree_with_a_model():
    rng = random.Random(20250521)
    peers = [Peer(str(i)) for i in range(1000)]
    table: AllowedIPs[Peer] = AllowedIPs()
    everything = {}   # (size, cidr, masked int) -> peer; the last insert of a prefix wins
    for i, (address, cidr) in enumerate(random_prefixes(rng, 100_000)):
        peer = peers[i % len(peers)]
        table.insert(address, cidr, peer)
        everything[LinearModel.prefix(address, cidr)] = peer
    assert len(table) == len(everything)

    def expected(address):
        # Every possible length from the longest down, in one dict: no probe order to get wrong.
        size, bits, value = len(address), len(address) * 8, int.from_bytes(address, "big")
        for cidr in range(bits, -1, -1):
            peer = everything.get((size, cidr, value >> (bits - cidr) << (bits - cidr)))
            if peer is not None:
                return peer
        return None

    inside = [  # inside some inserted prefix, host bits random
        (masked | rng.getrandbits(size * 8 - cidr)).to_bytes(size, "big")
        for size, cidr, masked in rng.sample(sorted(everything), 1500)
    ]
    outside = [rng.getrandbits(size * 8).to_bytes(size, "big") for size in rng.choices((4, 16), k=1500)]
    for address in inside + outside:
        assert table.lookup(address) is expected(address)

    # A few against the full linear scan too, and then remove half the peers.
    model = LinearModel()
    model.prefixes = everything
    for address in inside[:4] + outside[:4]:
        assert table.lookup(address) is model.lookup(address)
    removed = set(peers[::2])
    for peer in removed:
        table.remove_by_peer(peer)
    everything = {prefix: peer for prefix, peer in everything.items() if peer not in removed}
    assert len(table) == len(everything)
    for address in inside[:500] + outside[:500]:
        assert table.lookup(address) is expected(address)
