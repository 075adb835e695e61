"""TAI64N timestamps (whitepaper section 5.4.2; wireguard-go tai64n/tai64n.go, kernel noise.c tai64n_now)."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wgpy.core import tai64n
from wgpy.core.constants import INITIATIONS_PER_SECOND, TIMESTAMP_LEN

WHITENING = 2**24
BUCKETS = 10**9 // WHITENING + 1          # 60 whitened nanosecond values per second: 0, 2**24, ..., 59 * 2**24
seconds = st.integers(min_value=0, max_value=2**33)   # floats keep microsecond precision well past 2200
buckets = st.integers(min_value=0, max_value=BUCKETS - 1)


def test_base_is_2_62_plus_10():
    assert tai64n.TAI64_BASE == 2**62 + 10
    assert tai64n.encode(0.0) == struct.pack(">QI", 2**62 + 10, 0)
    assert tai64n.decode(tai64n.encode(0.0)) == (0, 0)


def test_whitening_is_2_24_ns():
    """Kernel: rounddown_pow_of_two(NSEC_PER_SEC / INITIATIONS_PER_SECOND); wireguard-go: mask 0xffffff."""
    assert tai64n.WHITENING_NS == WHITENING == 0xFFFFFF + 1
    assert WHITENING <= 10**9 // INITIATIONS_PER_SECOND < 2 * WHITENING


def test_byte_order_is_big_endian():
    stamp = tai64n.encode(1.0 + 3 * WHITENING / 1e9 + 1e-6)
    assert len(stamp) == TIMESTAMP_LEN
    assert stamp == bytes.fromhex("400000000000000b") + (3 * WHITENING).to_bytes(4, "big")
    assert stamp.hex() == "400000000000000b03000000"


def test_a_known_date():
    # 2017-06-11 00:00:00 UTC (the whitepaper's date), half-way into the eighth whitening bucket.
    epoch = 1497139200 + (7.5 * WHITENING) / 1e9
    assert tai64n.encode(epoch) == struct.pack(">QI", 2**62 + 10 + 1497139200, 7 * WHITENING)


@given(second=seconds, bucket=buckets)
def test_roundtrip(second, bucket):
    """Half-way into a bucket, float rounding cannot move the value across a bucket edge."""
    epoch = second + (bucket * WHITENING + WHITENING // 2) / 1e9
    assert tai64n.decode(tai64n.encode(epoch)) == (second, bucket * WHITENING)


@given(epoch=st.floats(min_value=0, max_value=2**33, allow_nan=False, allow_infinity=False))
def test_encode_whitens_and_never_rounds_up(epoch):
    second, nanoseconds = tai64n.decode(tai64n.encode(epoch))
    assert nanoseconds % WHITENING == 0
    assert 0 <= nanoseconds < 10**9
    true_ns = (epoch - second) * 1e9
    assert second == int(epoch)
    assert nanoseconds <= true_ns + 1e-3 and true_ns - nanoseconds < WHITENING + 1e3


def test_decode_keeps_raw_nanoseconds():
    """Decoding is exact: a peer's unwhitened timestamp is read as sent."""
    assert tai64n.decode(struct.pack(">QI", 2**62 + 10 + 5, 123456789)) == (5, 123456789)


@pytest.mark.parametrize("length", [0, 11, 13])
def test_decode_wrong_length(length):
    with pytest.raises(ValueError):
        tai64n.decode(bytes(length))


def test_is_after_is_strict():
    a = tai64n.encode(1000.0)
    assert not tai64n.is_after(a, a)
    assert tai64n.is_after(tai64n.encode(1000.0 + 0.02), a)
    assert not tai64n.is_after(a, tai64n.encode(1000.0 + 0.02))
    assert tai64n.is_after(tai64n.encode(1001.0), tai64n.encode(1000.999))


def test_is_after_within_one_whitening_bucket_is_false():
    """Two initiations less than 2**24 ns apart carry the same timestamp; the second is a replay."""
    a, b = tai64n.encode(1000.0 + 0.001), tai64n.encode(1000.0 + 0.010)
    assert a == b and not tai64n.is_after(b, a)


def test_byte_order_beats_lexicographic_pitfalls():
    """A carry into the seconds wins over any nanoseconds; a larger label wins over its low bytes."""
    late_ns = struct.pack(">QI", 2**62 + 10 + 255, 999_999_999)
    next_second = struct.pack(">QI", 2**62 + 10 + 256, 0)
    assert tai64n.is_after(next_second, late_ns)
    assert not tai64n.is_after(late_ns, next_second)


@given(a=st.tuples(seconds, buckets), b=st.tuples(seconds, buckets))
def test_is_after_is_numeric_order(a, b):
    stamp_a = struct.pack(">QI", tai64n.TAI64_BASE + a[0], a[1] * WHITENING)
    stamp_b = struct.pack(">QI", tai64n.TAI64_BASE + b[0], b[1] * WHITENING)
    assert tai64n.is_after(stamp_a, stamp_b) == (a > b)


@given(x=st.floats(min_value=0, max_value=2**33), y=st.floats(min_value=0, max_value=2**33))
def test_encode_is_monotonic(x, y):
    early, late = sorted((x, y))
    assert not tai64n.is_after(tai64n.encode(early), tai64n.encode(late))
