"""AEAD (whitepaper section 5.4) against RFC 8439 and the kernel's selftest (vectors/chacha20poly1305.json).

WireGuard's nonce is 32 zero bits then the 64-bit little-endian counter. The kernel selftest's 8-byte
nonces are that counter (it reads them with ``get_unaligned_le64``), and RFC 8439 A.5's nonce happens to
have the same shape, so those go through ``AEAD``/``AEAD_DECRYPT``. The other 12-byte nonces (RFC 8439
2.8.2 and the Wycheproof entries) cannot be expressed as a counter; they check the same primitive through
``cryptography`` directly.
"""

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wgpy.core.crypto import AEAD, AEAD_DECRYPT, aead_nonce
from wgpy.core.errors import Drop, Rejected

from .vectors import cases, h


def wireguard_counter(nonce: bytes) -> int | None:
    """The counter whose WireGuard nonce is ``nonce``, or None if ``nonce`` has no such shape."""
    if len(nonce) == 8:
        counter = int.from_bytes(nonce, "little")
    elif len(nonce) == 12 and nonce[:4] == bytes(4):
        counter = int.from_bytes(nonce[4:], "little")
    else:
        assert len(nonce) == 12
        return None
    assert aead_nonce(counter) == bytes(4) + nonce[-8:]
    return counter


@pytest.mark.parametrize("case", cases("chacha20poly1305", operation="encrypt"))
def test_encrypt(case):
    key, nonce, aad, plaintext = h(case["key"]), h(case["nonce"]), h(case["aad"]), h(case["plaintext"])
    sealed = h(case["ciphertext"]) + h(case["tag"])
    counter = wireguard_counter(nonce)
    if counter is None:
        assert ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad) == sealed
        assert ChaCha20Poly1305(key).decrypt(nonce, sealed, aad) == plaintext
    else:
        assert AEAD(key, counter, plaintext, aad) == sealed
        assert AEAD_DECRYPT(key, counter, sealed, aad) == plaintext


@pytest.mark.parametrize("case", cases("chacha20poly1305", operation="decrypt"))
def test_decrypt(case):
    key, nonce, aad = h(case["key"]), h(case["nonce"]), h(case["aad"])
    sealed = h(case["ciphertext"]) + h(case["tag"])
    counter = wireguard_counter(nonce)
    if case["must_fail"]:
        assert counter is not None
        with pytest.raises(Rejected) as raised:
            AEAD_DECRYPT(key, counter, sealed, aad)
        assert raised.value.reason is Drop.DECRYPTION_FAILED
    elif counter is None:
        assert ChaCha20Poly1305(key).decrypt(nonce, sealed, aad) == h(case["plaintext"])
    else:
        assert AEAD_DECRYPT(key, counter, sealed, aad) == h(case["plaintext"])


WIREGUARD_SHAPED = [p for p in cases("chacha20poly1305") if p.values[0]["operation"] in ("encrypt", "decrypt")
                    and not p.values[0].get("must_fail") and wireguard_counter(h(p.values[0]["nonce"])) is not None]


def _flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize("case", WIREGUARD_SHAPED)
def test_any_change_is_rejected(case):
    """A flipped bit in the tag, the ciphertext or the AD, or the wrong counter or key: DECRYPTION_FAILED."""
    key, aad = h(case["key"]), h(case["aad"])
    counter = wireguard_counter(h(case["nonce"]))
    sealed = h(case["ciphertext"]) + h(case["tag"])
    attempts = [
        (key, counter, _flip(sealed, -1), aad),
        (key, counter, _flip(sealed, 0), aad),
        (key, counter ^ 1, sealed, aad),
        (_flip(key, 31), counter, sealed, aad),
        (key, counter, sealed, aad + b"\x00"),
        (key, counter, sealed[:-1], aad),
    ]
    if aad:
        attempts.append((key, counter, sealed, _flip(aad, 0)))
    for attempt in attempts:
        with pytest.raises(Rejected) as raised:
            AEAD_DECRYPT(*attempt)
        assert raised.value.reason is Drop.DECRYPTION_FAILED


def test_too_short_for_a_tag_is_rejected():
    with pytest.raises(Rejected) as raised:
        AEAD_DECRYPT(bytes(32), 0, bytes(15), b"")
    assert raised.value.reason is Drop.DECRYPTION_FAILED


@pytest.mark.parametrize(
    "counter, nonce",
    [
        (0, "000000000000000000000000"),
        (1, "000000000100000000000000"),
        (0x0807060504030201, "000000000102030405060708"),   # RFC 8439 A.5
        (2**64 - 1, "00000000ffffffffffffffff"),
    ],
)
def test_aead_nonce(counter, nonce):
    assert aead_nonce(counter) == h(nonce)


def _keystream_block0(key: bytes, nonce12: bytes) -> bytes:
    # cryptography's ChaCha20 takes the 16-byte state words 12-15: 32-bit LE block counter || 96-bit nonce.
    encryptor = Cipher(algorithms.ChaCha20(key, (0).to_bytes(4, "little") + nonce12), mode=None).encryptor()
    return encryptor.update(bytes(64))


@pytest.mark.parametrize(
    "case", [p for p in cases("chacha20poly1305") if "poly1305_one_time_key" in p.values[0]]
)
def test_poly1305_key_generation(case):
    """RFC 8439 2.6: the Poly1305 key is the first 32 bytes of ChaCha20 block 0 (A.4, and 2.8.2 / A.5)."""
    nonce = h(case["nonce"])
    assert _keystream_block0(h(case["key"]), nonce)[:32] == h(case["poly1305_one_time_key"])


def test_kernel_selftest_is_all_there():
    """Every entry of the kernel tables is transcribed, numbered as in the C source."""
    ids = [p.id for p in cases("chacha20poly1305")]
    assert [i for i in ids if i.startswith("kernel-enc-")] == [f"kernel-enc-{n:03d}" for n in range(118)]
    assert [i for i in ids if i.startswith("kernel-dec-")] == [f"kernel-dec-{n:03d}" for n in range(13)]
    assert [p.id for p in cases("chacha20poly1305", must_fail=True)] == ["kernel-dec-012"]


def test_cryptography_rejects_the_failing_vector_too():
    """The must-fail case is a bad tag for the primitive itself, not an artefact of the counter mapping."""
    (param,) = cases("chacha20poly1305", must_fail=True)
    case = param.values[0]
    with pytest.raises(InvalidTag):
        ChaCha20Poly1305(h(case["key"])).decrypt(
            bytes(4) + h(case["nonce"]), h(case["ciphertext"]) + h(case["tag"]), h(case["aad"])
        )
