"""DH (whitepaper section 5.4) against RFC 7748 and the kernel's curve25519 selftest (vectors/x25519.json).

The 1,000,000-iteration vector of RFC 7748 section 5.2 takes about a minute; it runs only with WGPY_SLOW=1.
"""

import os

import pytest

from wgpy.core.crypto import PrivateKey, clamp, public_key, x25519
from wgpy.core.errors import Drop, Rejected

from .vectors import cases, h

ZERO = bytes(32)
BASE_POINT = (9).to_bytes(32, "little")
SLOW = os.environ.get("WGPY_SLOW") == "1" or os.environ.get("CI") == "true"  # CI runs the 75 s vector


@pytest.mark.parametrize("case", cases("x25519", operation="x25519"))
def test_x25519(case):
    assert x25519(h(case["scalar"]), h(case["u"])) == h(case["output"])


@pytest.mark.parametrize("case", cases("x25519", operation="x25519"))
def test_exchange_rejects_exactly_the_all_zero_results(case):
    """WireGuard refuses a DH result of all zeros (kernel ``curve25519()`` returns false, wireguard-go errors)."""
    key = PrivateKey(h(case["scalar"]))
    if h(case["output"]) == ZERO:
        assert case.get("valid") is False
        with pytest.raises(Rejected) as raised:
            key.exchange(h(case["u"]))
        assert raised.value.reason is Drop.ZERO_SHARED_SECRET
    else:
        assert case.get("valid", True) is True
        assert key.exchange(h(case["u"])) == h(case["output"])


def test_kernel_table_is_all_there():
    kernel = [p.values[0] for p in cases("x25519") if p.id.startswith("kernel-")]
    assert len(kernel) == 81
    assert sum(not c["valid"] for c in kernel) == 16


def _iterated(case):
    marks = [pytest.mark.skipif(not SLOW, reason="1,000,000 X25519 iterations (about 75 s): run with WGPY_SLOW=1; CI always runs it")] if case["slow"] else []
    return pytest.param(case, id=f"rfc7748-5.2-iterated-{case['iterations']}", marks=marks)


@pytest.mark.parametrize("case", [_iterated(p.values[0]) for p in cases("x25519", operation="iterated")])
def test_iterated(case):
    k, u = h(case["k"]), h(case["u"])
    for _ in range(case["iterations"]):
        k, u = x25519(k, u), k
    assert k == h(case["output"])


@pytest.mark.parametrize("case", cases("x25519", operation="dh"))
def test_rfc7748_diffie_hellman(case):
    alice, bob = PrivateKey(h(case["alice_private"])), PrivateKey(h(case["bob_private"]))
    assert alice.public == public_key(h(case["alice_private"])) == h(case["alice_public"])
    assert bob.public == public_key(h(case["bob_private"])) == h(case["bob_public"])
    assert x25519(h(case["alice_private"]), BASE_POINT) == h(case["alice_public"])
    assert alice.exchange(bob.public) == bob.exchange(alice.public) == h(case["shared"])


# ---------------------------------------------------------------------------------------------- keys


def test_clamp():
    assert clamp(b"\xff" * 32) == b"\xf8" + b"\xff" * 30 + b"\x7f"
    assert clamp(ZERO) == ZERO[:31] + b"\x40"
    raw = bytes(range(32))
    assert clamp(clamp(raw)) == clamp(raw)


@pytest.mark.parametrize("fill", [b"\x00", b"\xff", b"\x5a"])
def test_generate_clamps(fill):
    key = PrivateKey.generate(lambda n: fill * n)
    raw = key.private_bytes()
    assert raw[0] & 7 == 0 and raw[31] & 0x80 == 0 and raw[31] & 0x40
    assert raw == clamp(fill * 32)


def test_generate_uses_the_rng(rng):
    first, second = PrivateKey.generate(rng), PrivateKey.generate(rng)
    assert first != second
    for key in (first, second):
        raw = key.private_bytes()
        assert len(raw) == 32 and raw == clamp(raw)
        assert key.public == public_key(raw) == x25519(raw, BASE_POINT)


def test_clamping_does_not_change_the_key():
    """X25519 clamps the scalar itself, so an unclamped private key and its clamped form are the same key."""
    (param,) = cases("x25519", operation="dh")
    raw = h(param.values[0]["alice_private"])
    assert raw != clamp(raw)
    assert public_key(raw) == public_key(clamp(raw))


def test_repr_never_shows_the_private_key(rng):
    key = PrivateKey.generate(rng)
    text = repr(key) + str(key)
    raw = key.private_bytes()
    assert raw.hex() not in text and raw.hex().upper() not in text
    # nor any 8-byte window of it
    assert not any(raw[i:i + 8].hex() in text for i in range(25))


def test_equality_and_hash():
    raw = bytes(range(32))
    assert PrivateKey(raw) == PrivateKey(raw)
    assert hash(PrivateKey(raw)) == hash(PrivateKey(raw))
    assert PrivateKey(raw) != PrivateKey(bytes(range(1, 33)))
    assert PrivateKey(raw) != raw


@pytest.mark.parametrize("bad", [bytes(31), bytes(33), "00" * 32])
def test_wrong_length_private_key_is_a_caller_mistake(bad):
    with pytest.raises(ValueError):
        PrivateKey(bad)
    with pytest.raises(ValueError):
        x25519(bad, BASE_POINT)


def test_wrong_length_public_key_is_a_caller_mistake():
    with pytest.raises(ValueError):
        x25519(bytes(range(32)), bytes(31))


@pytest.mark.parametrize("bad", [bytes(31), bytes(33), b""])
def test_exchange_with_a_wrong_length_public_key_is_a_caller_mistake(bad):
    """Not a ZERO_SHARED_SECRET drop: the caller handed over something that is not a public key."""
    with pytest.raises(ValueError) as raised:
        PrivateKey(bytes(range(32))).exchange(bad)
    assert not isinstance(raised.value, Rejected)
