"""The static-static DH, computed once per peer (kernel precomputed_static_static) and used by both
handshake messages' ``ss`` token: the messages are the same as with the DH computed in the handshake."""

import random

import pytest

from wgpy.core import noise, tai64n
from wgpy.core.crypto import PrivateKey
from wgpy.core.device import Device
from wgpy.core.errors import Drop, Rejected

# A low-order point (RFC 7748 section 5 test inputs): X25519 with it is all zeros.
LOW_ORDER = bytes(32)


def seeded(seed: int):
    generator = random.Random(seed)
    return lambda n: generator.randbytes(n)


def test_precomputed_on_add_peer_and_recomputed_when_the_private_key_changes():
    first, second, other = (PrivateKey.generate(seeded(n)) for n in range(3))
    device = Device(first, rng=seeded(9))
    peer = device.add_peer(other.public)
    assert peer.static_static == first.exchange(other.public)
    device.set_private_key(second)
    assert peer.static_static == second.exchange(other.public)
    device.set_private_key(None)
    assert peer.static_static is None
    assert device.add_peer(LOW_ORDER).static_static is None   # refused in the handshake, as before


def test_initiation_and_its_consumption_are_the_same_with_the_precomputed_dh():
    initiator, responder, ephemeral = (PrivateKey.generate(seeded(n)) for n in range(3))
    timestamp = tai64n.encode(1.7e9)
    plain, _ = noise.create_initiation(initiator, responder.public, ephemeral, 7, timestamp)
    known, _ = noise.create_initiation(initiator, responder.public, ephemeral, 7, timestamp,
                                       static_static=initiator.exchange(responder.public))
    assert known == plain
    asked = []

    def lookup(public: bytes):
        asked.append(public)
        return responder.exchange(public)

    consumed = noise.consume_initiation(responder, known, static_static=lookup)
    assert asked == [initiator.public]
    assert consumed == noise.consume_initiation(responder, plain)


def test_a_wrong_precomputed_dh_fails_the_handshake():
    """The precomputed value really is what the ss token uses: a wrong one cannot decrypt the timestamp."""
    initiator, responder, ephemeral = (PrivateKey.generate(seeded(n)) for n in range(3))
    message, _ = noise.create_initiation(initiator, responder.public, ephemeral, 7, tai64n.encode(1.7e9))
    with pytest.raises(Rejected) as refused:
        noise.consume_initiation(responder, message, static_static=lambda public: bytes(32))
    assert refused.value.reason is Drop.DECRYPTION_FAILED
