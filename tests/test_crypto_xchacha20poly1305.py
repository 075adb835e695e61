"""XAEAD and HChaCha20 (whitepaper section 5.4) against draft-irtf-cfrg-xchacha-03 and the kernel's selftest
(vectors/xchacha20poly1305.json), and ``hchacha20`` against a plain transcription of its rounds."""

import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from hypothesis import given, settings
from hypothesis import strategies as st

from wgpy.core.crypto import XAEAD, XAEAD_DECRYPT, hchacha20
from wgpy.core.errors import Drop, Rejected

from .vectors import cases, h


@pytest.mark.parametrize("case", cases("xchacha20poly1305", operation="hchacha20"))
def test_hchacha20(case):
    assert hchacha20(h(case["key"]), h(case["nonce16"])) == h(case["subkey"])
    assert reference_hchacha20(h(case["key"]), h(case["nonce16"])) == h(case["subkey"])


@pytest.mark.parametrize("case", cases("xchacha20poly1305", operation="encrypt"))
def test_encrypt(case):
    key, nonce, aad, plaintext = h(case["key"]), h(case["nonce"]), h(case["aad"]), h(case["plaintext"])
    sealed = h(case["ciphertext"]) + h(case["tag"])
    assert XAEAD(key, nonce, plaintext, aad) == sealed
    assert XAEAD_DECRYPT(key, nonce, sealed, aad) == plaintext
    if "poly1305_one_time_key" in case:
        block0 = chacha20(hchacha20(key, nonce[:16]), bytes(4) + nonce[16:], 0, bytes(32))
        assert block0 == h(case["poly1305_one_time_key"])


@pytest.mark.parametrize("case", cases("xchacha20poly1305", operation="decrypt"))
def test_decrypt(case):
    key, nonce, aad = h(case["key"]), h(case["nonce"]), h(case["aad"])
    sealed = h(case["ciphertext"]) + h(case["tag"])
    if case["must_fail"]:
        with pytest.raises(Rejected) as raised:
            XAEAD_DECRYPT(key, nonce, sealed, aad)
        assert raised.value.reason is Drop.DECRYPTION_FAILED
    else:
        assert XAEAD_DECRYPT(key, nonce, sealed, aad) == h(case["plaintext"])


@pytest.mark.parametrize("case", cases("xchacha20poly1305", operation="encrypt"))
def test_tampering_is_rejected(case):
    key, nonce, aad = h(case["key"]), h(case["nonce"]), h(case["aad"])
    sealed = h(case["ciphertext"]) + h(case["tag"])
    flipped_tag = sealed[:-1] + bytes([sealed[-1] ^ 0x80])
    flipped_nonce = nonce[:5] + bytes([nonce[5] ^ 1]) + nonce[6:]     # in the HChaCha20 half
    flipped_tail = nonce[:-1] + bytes([nonce[-1] ^ 1])                 # in the ChaCha20 half
    for attempt in [(key, nonce, flipped_tag, aad), (key, flipped_nonce, sealed, aad),
                    (key, flipped_tail, sealed, aad), (key, nonce, sealed, aad + b"!")]:
        with pytest.raises(Rejected) as raised:
            XAEAD_DECRYPT(*attempt)
        assert raised.value.reason is Drop.DECRYPTION_FAILED


def chacha20(key: bytes, nonce12: bytes, counter: int, data: bytes) -> bytes:
    """IETF ChaCha20 from ``cryptography`` (its 16-byte nonce is the 32-bit LE counter || 96-bit nonce)."""
    nonce16 = counter.to_bytes(4, "little") + nonce12
    return Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor().update(data)


@pytest.mark.parametrize("case", cases("xchacha20poly1305", operation="stream"))
def test_xchacha20_stream(case):
    """XChaCha20 (draft section 2.3): ChaCha20 keyed by HChaCha20(key, nonce[:16]), nonce 0^32 || nonce[16:]."""
    key, nonce, plaintext = h(case["key"]), h(case["nonce"]), h(case["plaintext"])
    subkey = hchacha20(key, nonce[:16])
    short_nonce = bytes(4) + nonce[16:]
    keystream = h(case["keystream"])
    assert len(keystream) == len(plaintext)
    assert chacha20(subkey, short_nonce, case["counter"], bytes(len(plaintext))) == keystream
    assert chacha20(subkey, short_nonce, case["counter"], plaintext) == h(case["ciphertext"])


@pytest.mark.parametrize("bad", [
    lambda: XAEAD(bytes(32), bytes(23), b"", b""),
    lambda: XAEAD_DECRYPT(bytes(32), bytes(12), bytes(16), b""),
    lambda: hchacha20(bytes(32), bytes(15)),
    lambda: hchacha20(bytes(31), bytes(16)),
])
def test_wrong_lengths_are_caller_mistakes(bad):
    with pytest.raises(ValueError):
        bad()


# ------------------------------------------------------------------------ a dumb HChaCha20 to compare with

def _quarter_round(s: list[int], a: int, b: int, c: int, d: int) -> None:
    def rotl(v: int, n: int) -> int:
        return ((v << n) | (v >> (32 - n))) & 0xFFFFFFFF

    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)   # noqa: E702
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)   # noqa: E702
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)    # noqa: E702
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)    # noqa: E702


def reference_hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20 exactly as draft-irtf-cfrg-xchacha-03 section 2.2 writes it: 20 rounds, no final addition."""
    state = list(struct.unpack("<4I", b"expand 32-byte k") + struct.unpack("<8I", key) + struct.unpack("<4I", nonce16))
    for _ in range(10):
        _quarter_round(state, 0, 4, 8, 12)
        _quarter_round(state, 1, 5, 9, 13)
        _quarter_round(state, 2, 6, 10, 14)
        _quarter_round(state, 3, 7, 11, 15)
        _quarter_round(state, 0, 5, 10, 15)
        _quarter_round(state, 1, 6, 11, 12)
        _quarter_round(state, 2, 7, 8, 13)
        _quarter_round(state, 3, 4, 9, 14)
    return struct.pack("<8I", *state[0:4], *state[12:16])


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), nonce16=st.binary(min_size=16, max_size=16))
def test_hchacha20_matches_the_rounds(key, nonce16):
    """crypto.hchacha20 recovers the rounds' output from a ChaCha20 block; the plain rounds must agree."""
    assert hchacha20(key, nonce16) == reference_hchacha20(key, nonce16)


@pytest.mark.parametrize("nonce16", [bytes(16), b"\xff" * 16, b"\xff" * 4 + bytes(12), bytes(12) + b"\xff" * 4])
def test_hchacha20_counter_edges(nonce16):
    """Nonce words 12-15 at 0 and 2**32-1: where a carry from the block counter would show."""
    key = bytes(range(32))
    assert hchacha20(key, nonce16) == reference_hchacha20(key, nonce16)
