"""WireGuard-shaped handshakes against an independent Noise implementation (the ``noiseprotocol`` package).

Both directions: wgpy initiates and noiseprotocol responds, then noiseprotocol initiates and wgpy
responds. Each side's transport keys must then decrypt the other's messages.
"""

import pytest
from noise.connection import Keypair, NoiseConnection  # the test extra; a missing package fails the run

from wgpy.core import noise, tai64n
from wgpy.core.constants import CONSTRUCTION, IDENTIFIER
from wgpy.core.crypto import AEAD, AEAD_DECRYPT, PrivateKey
from wgpy.core.messages import Initiation, Response


def _noise_peer(local: PrivateKey, remote_public: bytes, psk: bytes, initiator: bool):
    peer = NoiseConnection.from_name(CONSTRUCTION)
    peer.set_as_initiator() if initiator else peer.set_as_responder()
    peer.set_prologue(IDENTIFIER)
    peer.set_psks(psk=psk)
    peer.set_keypair_from_private_bytes(Keypair.STATIC, local.private_bytes())
    if initiator:
        peer.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote_public)
    peer.start_handshake()
    return peer


def _check_transport(wgpy_keys, other):
    """wgpy's keys and the other side's cipher states agree in both directions."""
    assert other.decrypt(AEAD(wgpy_keys.sending_key, 0, b"to noiseprotocol", b"")) == b"to noiseprotocol"
    assert AEAD_DECRYPT(wgpy_keys.receiving_key, 0, other.encrypt(b"to wgpy"), b"") == b"to wgpy"
    assert other.get_handshake_hash() == wgpy_keys.handshake_hash


@pytest.mark.parametrize("psk", [bytes(32), bytes(range(32))], ids=["no-psk", "psk"])
def test_wgpy_initiates_noiseprotocol_responds(rng, psk):
    initiator, responder = PrivateKey.generate(rng), PrivateKey.generate(rng)
    timestamp = tai64n.encode(1_800_000_000.25)
    message, sent = noise.create_initiation(initiator, responder.public, PrivateKey.generate(rng), 1, timestamp)
    other = _noise_peer(responder, initiator.public, psk, initiator=False)
    packed = message.pack()
    assert other.read_message(packed[8:116]) == timestamp  # the Noise part: ephemeral .. encrypted timestamp

    noise_message_2 = other.write_message(b"")
    assert len(noise_message_2) == 48
    response = Response(2, 1, noise_message_2[:32], noise_message_2[32:])
    keys = noise.consume_response(sent, initiator, Response.parse(response.pack()), psk)
    assert other.handshake_finished
    _check_transport(keys, other)


@pytest.mark.parametrize("psk", [bytes(32), bytes(range(32))], ids=["no-psk", "psk"])
def test_noiseprotocol_initiates_wgpy_responds(rng, psk):
    initiator, responder = PrivateKey.generate(rng), PrivateKey.generate(rng)
    other = _noise_peer(initiator, responder.public, psk, initiator=True)
    timestamp = tai64n.encode(1_800_000_001.0)
    noise_message_1 = other.write_message(timestamp)
    assert len(noise_message_1) == 108
    message = Initiation(3, noise_message_1[:32], noise_message_1[32:80], noise_message_1[80:])
    received = noise.consume_initiation(responder, Initiation.parse(message.pack()))
    assert received.initiator_public == initiator.public
    assert received.payload == timestamp

    response, keys = noise.create_response(received, PrivateKey.generate(rng), psk, 4, 3)
    assert other.read_message(response.pack()[12:60]) == b""
    assert other.handshake_finished
    _check_transport(keys, other)
