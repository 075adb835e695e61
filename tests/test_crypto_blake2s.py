"""HASH and MAC (whitepaper section 5.4) against RFC 7693 and the official BLAKE2s KAT (vectors/blake2s.json)."""

import hashlib

import pytest

from wgpy.core.crypto import HASH, MAC

from .vectors import cases, h


@pytest.mark.parametrize("case", cases("blake2s", operation="hash"))
def test_rfc7693_hash(case):
    assert case["digest_size"] == 32 and not case["key"]
    assert HASH(h(case["input"])) == h(case["output"])


def _selftest_seq(length: int, seed: int) -> bytes:
    """RFC 7693 Appendix E ``selftest_seq``: a Fibonacci-style byte generator."""
    a = (0xDEAD4BAD * seed) & 0xFFFFFFFF
    b = 1
    out = bytearray()
    for _ in range(length):
        t = (a + b) & 0xFFFFFFFF
        a, b = b, t
        out.append((t >> 24) & 0xFF)
    return bytes(out)


def _blake2s(data: bytes, outlen: int, key: bytes = b"") -> bytes:
    """BLAKE2s through wgpy wherever wgpy has the shape: HASH is unkeyed/32, MAC is keyed/16."""
    if outlen == 32 and not key:
        return HASH(data)
    if outlen == 16 and key:
        return MAC(key, data)
    return hashlib.blake2s(data, digest_size=outlen, key=key).digest()


@pytest.mark.parametrize("case", cases("blake2s", operation="selftest"))
def test_rfc7693_appendix_e_selftest(case):
    """``blake2s_selftest()`` of RFC 7693 Appendix E; its 16-byte keyed rounds go through MAC."""
    outer = hashlib.blake2s(digest_size=32)
    for outlen in case["md_lens"]:
        for inlen in case["in_lens"]:
            data = _selftest_seq(inlen, inlen)
            outer.update(_blake2s(data, outlen))
            outer.update(_blake2s(data, outlen, key=_selftest_seq(outlen, outlen)))
    assert outer.digest() == h(case["output"])


@pytest.mark.parametrize("case", cases("blake2s", operation="unkeyed"))
def test_kat_unkeyed_hash(case):
    assert HASH(h(case["input"])) == h(case["output"])


@pytest.mark.parametrize("case", cases("blake2s", operation="keyed"))
def test_kat_keyed(case):
    """The 32-byte keyed KAT: wgpy has no such function, so this checks the hashlib that MAC relies on."""
    key, data = h(case["key"]), h(case["input"])
    assert len(key) == 32
    assert hashlib.blake2s(data, key=key).digest() == h(case["output"])


# The KAT is 32-byte output only; MAC is a 16-byte keyed BLAKE2s, which is a different hash (the output
# length is in the parameter block), not a truncation. Check MAC on a spread of the KAT's inputs and keys.
MAC_SAMPLE = [p for p in cases("blake2s", operation="keyed") if int(p.id.rsplit("-", 1)[1]) in
              (0, 1, 3, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 255)]


@pytest.mark.parametrize("case", MAC_SAMPLE)
@pytest.mark.parametrize("key_len", [1, 16, 32])
def test_mac_is_keyed_blake2s_128(case, key_len):
    key, data = h(case["key"])[:key_len], h(case["input"])
    mac = MAC(key, data)
    assert len(mac) == 16
    assert mac == hashlib.blake2s(data, digest_size=16, key=key).digest()
    if key_len == 32:
        assert mac != h(case["output"])[:16]


def test_mac_key_and_data_matter():
    key = bytes(range(32))
    assert MAC(key, b"a") != MAC(key, b"b")
    assert MAC(key, b"a") != MAC(key[:-1] + b"\x00", b"a")
    assert MAC(key, b"") == hashlib.blake2s(b"", digest_size=16, key=key).digest()
