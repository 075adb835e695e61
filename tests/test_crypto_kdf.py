"""HMAC and KDF1/2/3 (whitepaper section 5.4) against wireguard-go's KDF table (vectors/kdf.json) and
Python's own ``hmac`` over BLAKE2s."""

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgpy.core.crypto import HMAC, KDF1, KDF2, KDF3

from .vectors import cases, h


@pytest.mark.parametrize("case", cases("kdf"))
def test_kdf_outputs(case):
    key, data = h(case["key"]), h(case["input"])
    t0, t1, t2 = h(case["t0"]), h(case["t1"]), h(case["t2"])
    assert KDF1(key, data) == t0
    assert KDF2(key, data) == (t0, t1)
    assert KDF3(key, data) == (t0, t1, t2)


@pytest.mark.parametrize("case", cases("kdf"))
def test_kdf_is_hkdf_over_hmac(case):
    """The table's definition, step by step, with the standard library's HMAC."""
    def std_hmac(k: bytes, m: bytes) -> bytes:
        return hmac.new(k, m, hashlib.blake2s).digest()

    prk = std_hmac(h(case["key"]), h(case["input"]))
    t0 = std_hmac(prk, b"\x01")
    t1 = std_hmac(prk, t0 + b"\x02")
    t2 = std_hmac(prk, t1 + b"\x03")
    assert (t0.hex(), t1.hex(), t2.hex()) == (case["t0"], case["t1"], case["t2"])


# Keys on both sides of BLAKE2s's 64-byte block: a longer key is hashed first (RFC 2104 section 2).
KEY_LENGTHS = [0, 1, 31, 32, 33, 63, 64, 65, 100, 128, 200]
DATA = [b"", b"\x00", b"abc", bytes(range(64)), bytes(range(256)) * 5]


@pytest.mark.parametrize("key_len", KEY_LENGTHS)
@pytest.mark.parametrize("data", DATA, ids=lambda d: f"data{len(d)}")
def test_hmac_matches_the_standard_library(key_len, data):
    key = bytes((7 * i + key_len) & 0xFF for i in range(key_len))
    assert HMAC(key, data) == hmac.new(key, data, hashlib.blake2s).digest()


def test_long_key_is_hashed_not_truncated():
    long_key = bytes(range(65))
    assert HMAC(long_key, b"x") == HMAC(hashlib.blake2s(long_key).digest(), b"x")
    assert HMAC(long_key, b"x") != HMAC(long_key[:64], b"x")


@settings(max_examples=200, deadline=None)
@given(key=st.binary(max_size=150), data=st.binary(max_size=300))
def test_hmac_property(key, data):
    assert HMAC(key, data) == hmac.new(key, data, hashlib.blake2s).digest()


@settings(max_examples=100, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), data=st.binary(max_size=64))
def test_kdf_prefixes_agree(key, data):
    """KDF1 is KDF2's first output, and KDF2 is KDF3's first two (the chaining key is always t0)."""
    t0, t1, t2 = KDF3(key, data)
    assert KDF2(key, data) == (t0, t1)
    assert KDF1(key, data) == t0
    assert len({t0, t1, t2}) == 3
