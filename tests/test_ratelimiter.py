"""Per-source token buckets of handshake messages (ratelimiter.py), with the clock in the test's hand."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgpy.core.ratelimiter import RateLimiter


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


A = ip("192.0.2.1")
B = ip("192.0.2.2")
A_MAPPED = ip("::ffff:192.0.2.1")
NET1_HOST1 = ip("2001:db8:0:1::1")
NET1_HOST2 = ip("2001:db8:0:1:ffff:ffff:ffff:ffff")
NET2_HOST1 = ip("2001:db8:0:2::1")

T0 = 1000.0   # an arbitrary point on the monotonic clock
COST = 1 / RateLimiter.PACKETS_PER_SECOND   # 0.05 s


def burst(limiter: RateLimiter, address: bytes, now: float, count: int = 10) -> int:
    """How many of ``count`` packets sent at the same instant are allowed."""
    return sum(limiter.allow(address, now) for _ in range(count))


def test_constants_are_the_kernels():
    assert (RateLimiter.PACKETS_PER_SECOND, RateLimiter.PACKETS_BURSTABLE) == (20, 5)


def test_a_new_source_gets_a_burst_of_five_then_refusal():
    limiter = RateLimiter()
    assert [limiter.allow(A, T0) for _ in range(7)] == [True] * 5 + [False] * 2


def test_refill_at_twenty_per_second():
    limiter = RateLimiter()
    assert burst(limiter, A, T0) == 5
    assert not limiter.allow(A, T0 + 0.049)   # not yet a whole packet's worth
    assert burst(limiter, A, T0 + 0.05) == 1   # refused packets keep what they earned: exactly one more
    assert burst(limiter, A, T0 + 0.10) == 1
    assert burst(limiter, A, T0 + 0.25) == 3


def test_steady_rate_of_twenty_per_second_is_always_allowed():
    limiter = RateLimiter()
    assert all(limiter.allow(A, T0 + i * COST) for i in range(200))
    # ... and the unspent burst is still there (4 tokens left after the first packet).
    assert burst(limiter, A, T0 + 199 * COST) == 4


def test_a_long_idle_refills_only_up_to_the_burst():
    limiter = RateLimiter()
    assert burst(limiter, A, T0) == 5
    assert burst(limiter, A, T0 + 0.9) == 5    # idle less than the collection age: the same entry
    assert burst(limiter, A, T0 + 3600.0) == 5
    assert len(limiter) == 1


def test_sources_are_independent():
    limiter = RateLimiter()
    assert burst(limiter, A, T0) == 5
    assert burst(limiter, B, T0) == 5
    assert burst(limiter, NET1_HOST1, T0) == 5
    assert len(limiter) == 3


def test_ipv6_sources_share_a_bucket_per_64():
    limiter = RateLimiter()
    assert burst(limiter, NET1_HOST1, T0, 3) == 3
    assert burst(limiter, NET1_HOST2, T0) == 2   # same /64: what is left of the same bucket
    assert burst(limiter, NET2_HOST1, T0) == 5   # next /64: a bucket of its own
    assert len(limiter) == 2


def test_an_ipv4_mapped_address_is_its_ipv4_address():
    limiter = RateLimiter()
    assert burst(limiter, A, T0, 3) == 3
    assert burst(limiter, A_MAPPED, T0) == 2
    # ... and not the ::ffff:0:0/64 that every mapped address would otherwise share.
    assert burst(limiter, ip("::ffff:192.0.2.99"), T0) == 5
    assert len(limiter) == 2


@pytest.mark.parametrize("length", [0, 1, 3, 5, 8, 15, 17, 32])
def test_a_wrong_length_address_is_a_caller_mistake(length):
    with pytest.raises(ValueError):
        RateLimiter().allow(bytes(length), T0)


def test_max_entries_must_be_positive():
    with pytest.raises(ValueError):
        RateLimiter(max_entries=0)


def test_explicit_collection_forgets_sources_idle_for_more_than_a_second():
    limiter = RateLimiter()
    limiter.allow(A, T0)
    limiter.allow(B, T0 + 0.5)
    limiter.collect(T0 + 1.0)     # idle exactly one second is not "more than"
    assert len(limiter) == 2
    limiter.collect(T0 + 1.2)
    assert len(limiter) == 1      # A is forgotten, B (idle 0.7 s) is kept
    limiter.collect(T0 + 1.6)
    assert len(limiter) == 0


def test_allow_collects_lazily_at_most_once_a_second():
    limiter = RateLimiter()
    limiter.allow(A, T0)
    limiter.allow(B, T0 + 0.9)
    limiter.allow(B, T0 + 1.5)    # A has been idle 1.5 s, but the first sweep is due only at T0 + 1
    assert len(limiter) == 1      # ... which this call is past, so it ran
    limiter.allow(NET1_HOST1, T0 + 1.6)
    limiter.allow(B, T0 + 2.4)    # the next sweep is due at T0 + 2.5: nothing is collected
    assert len(limiter) == 2
    limiter.allow(B, T0 + 3.0)    # swept: NET1_HOST1 (idle 1.4 s) goes
    assert len(limiter) == 1


def test_a_full_table_refuses_new_sources_and_keeps_old_ones():
    limiter = RateLimiter(max_entries=2)
    assert limiter.allow(A, T0) and limiter.allow(B, T0)
    assert not limiter.allow(NET1_HOST1, T0)      # no eviction
    assert not limiter.allow(NET1_HOST1, T0 + 0.5)
    assert len(limiter) == 2
    assert burst(limiter, A, T0 + 0.5) == 5       # known sources are unaffected
    assert limiter.allow(A, T0 + 0.9)             # before the first sweep is due (T0 + 1)
    # Once B has been idle for more than a second, the sweep makes room; A, active, stays.
    assert limiter.allow(NET1_HOST1, T0 + 1.6)
    assert len(limiter) == 2
    assert not limiter.allow(B, T0 + 1.6)         # B is new again, and the table is full again


# A dumb model to check the limiter against (kernel selftest's "horrible" style): exact integer
# nanoseconds, keys from the ipaddress module, the same sweep schedule, no cleverness.

NS = 1_000_000_000
MODEL_COST = NS // 20
MODEL_MAX = 5 * MODEL_COST


def model_key(packed: bytes):
    address = ipaddress.ip_address(packed)
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.version == 6:
        return ipaddress.ip_network(f"{address}/64", strict=False)
    return address


class ModelLimiter:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.buckets = {}   # key -> [tokens, last_time_ns]
        self.next_sweep = None

    def sweep(self, now: int) -> None:
        self.buckets = {key: b for key, b in self.buckets.items() if now - b[1] <= NS}
        self.next_sweep = now + NS

    def allow(self, packed: bytes, now: int) -> bool:
        if self.next_sweep is None:
            self.next_sweep = now + NS
        elif now >= self.next_sweep:
            self.sweep(now)
        key = model_key(packed)
        if key not in self.buckets:
            if len(self.buckets) >= self.max_entries:
                return False
            self.buckets[key] = [MODEL_MAX - MODEL_COST, now]
            return True
        bucket = self.buckets[key]
        bucket[0] = min(MODEL_MAX, bucket[0] + now - bucket[1])
        bucket[1] = now
        if bucket[0] >= MODEL_COST:
            bucket[0] -= MODEL_COST
            return True
        return False


# Addresses that must share a bucket are drawn together.
GROUPS = [(A, A_MAPPED), (B,), (NET1_HOST1, NET1_HOST2), (NET2_HOST1,)]


@st.composite
def steps(draw):
    """(operation, source, nanoseconds since the previous step, packets at that instant) lists. Each
    example draws its own few sources, so one source often comes back soon enough to hit its limit."""
    groups = draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True))
    pool = [address for group in groups for address in group]
    step = st.tuples(
        st.sampled_from(["allow"] * 6 + ["collect"]),
        st.sampled_from(pool),
        st.one_of(  # the same instant, exact boundaries, around one packet's cost and the collection age
            st.sampled_from([0, MODEL_COST // 2, MODEL_COST, NS]),
            st.integers(0, 2 * MODEL_COST),
            st.integers(NS - MODEL_COST, NS + MODEL_COST),
            st.integers(0, 3 * NS),
        ),
        st.integers(1, 8),  # so bursts run dry and overflow
    )
    return draw(st.lists(step, max_size=40))


@settings(max_examples=400, deadline=None)
@given(max_entries=st.sampled_from([1, 2, 3, 65536]), steps=steps())
def test_matches_a_simple_model(max_entries, steps):
    limiter, model = RateLimiter(max_entries), ModelLimiter(max_entries)
    now = 10**12   # 1000 s, in nanoseconds
    for operation, address, elapsed, count in steps:
        now += elapsed
        seconds = now / NS
        assert round(seconds * NS) == now   # the float clock carries the exact instant
        if operation == "allow":
            for _ in range(count):
                assert limiter.allow(address, seconds) == model.allow(address, now)
        else:
            limiter.collect(seconds)
            model.sweep(now)
        assert len(limiter) == len(model.buckets) <= max_entries
