"""Handshakes prepared ahead of time (core/prepare.py): the same messages as computed when due, each
prepared value used once, and nothing prepared for a key that is no longer ours."""

import random

import pytest

from wgpy.core import noise, prepare, send, tai64n
from wgpy.core.crypto import PrivateKey
from wgpy.core.device import Device
from wgpy.core.messages import Initiation, Response, parse

from .netsim import Net

LOW_ORDER = bytes(32)   # X25519 with it is all zeros (RFC 7748 section 5)


def seeded(seed: int):
    generator = random.Random(seed)
    return lambda n: generator.randbytes(n)


def keys(count: int) -> list[PrivateKey]:
    return [PrivateKey.generate(seeded(n)) for n in range(count)]


def test_a_prepared_initiation_is_the_message_create_initiation_makes():
    initiator, responder, ephemeral = keys(3)
    timestamp = tai64n.encode(1.7e9)
    computed, computed_state = noise.create_initiation(initiator, responder.public, ephemeral, 7, timestamp)
    prepared = noise.prepare_initiation(initiator, responder.public, ephemeral,
                                        static_static=initiator.exchange(responder.public))
    message, state = noise.finish_initiation(prepared, 7, timestamp)
    assert message == computed and state == computed_state
    assert noise.consume_initiation(responder, message).payload == timestamp


def test_a_prepared_response_is_the_message_create_response_makes():
    initiator, responder, first, second = keys(4)
    message, _ = noise.create_initiation(initiator, responder.public, first, 7, tai64n.encode(1.7e9))
    consumed = noise.consume_initiation(responder, message)
    computed = noise.create_response(consumed, second, None, 9, 7)
    prepared = noise.create_response(consumed, second, None, 9, 7,
                                     ephemeral_static=second.exchange(initiator.public))
    assert prepared == computed
    wrong = noise.create_response(consumed, second, None, 9, 7, ephemeral_static=bytes(range(32)))
    assert wrong[0].encrypted_nothing != computed[0].encrypted_nothing   # the value given is the one used


def test_secrets_of_what_is_prepared_are_not_printed():
    initiator, responder, ephemeral = keys(3)
    prepared = noise.prepare_initiation(initiator, responder.public, ephemeral)
    response = prepare.PreparedResponse(ephemeral, bytes(range(32)))
    for text in (repr(prepared), repr(response)):
        assert ephemeral.private_bytes().hex() not in text and bytes(range(32)).hex() not in text
        assert prepared.key.hex() not in text and prepared.chaining_key.hex() not in text


def pair(prepare: bool):
    net = Net(seed=3, prepare=prepare)
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob, psk=bytes(range(32)))
    net.run(until=net.now + 0.001)   # a quiet moment: the devices prepare what they can
    return net, alice, bob


def handshake_messages(net):
    return [parse(d) for _, _, _, d in net.carried if d[0] in (1, 2)]


def test_both_sides_use_what_they_prepared_once_and_prepare_again():
    net, alice, bob = pair(prepare=True)
    to_bob, to_alice = alice.device.peers[bob.public], bob.device.peers[alice.public]
    initiation, response = to_bob.prepared_initiation, to_alice.prepared_response
    assert initiation is not None and response is not None and not alice.device.to_prepare
    net.send(alice, bob, b"first")
    net.run(until=net.now + 1)
    assert bob.delivered == [net.packet(alice, bob, b"first")]
    sent_initiation, sent_response = handshake_messages(net)
    assert isinstance(sent_initiation, Initiation) and isinstance(sent_response, Response)
    assert sent_initiation.unencrypted_ephemeral == initiation.ephemeral.public
    assert sent_initiation.encrypted_static == initiation.encrypted_static
    assert sent_response.unencrypted_ephemeral == response.ephemeral.public
    # Used once: the next ones are new keys, prepared at the next quiet moment.
    assert to_bob.prepared_initiation is not None and to_bob.prepared_initiation.ephemeral != initiation.ephemeral
    assert to_alice.prepared_response is not None and to_alice.prepared_response.ephemeral != response.ephemeral


def test_a_retry_never_reuses_an_ephemeral_key():
    """Initiations lost: each retransmission is a new initiation with a new ephemeral key, whether the
    device prepared one in between (Net(prepare=True)) or computes it when due."""
    for prepared in (False, True):
        net, alice, bob = pair(prepare=prepared)
        net.blocked.add(alice.endpoint)
        net.send(alice, bob, b"lost")
        net.run(until=net.now + 12)   # REKEY_TIMEOUT is 5 s, plus jitter: two retransmissions
        ephemerals = [m.unencrypted_ephemeral for m in handshake_messages(net)]
        assert len(ephemerals) >= 3 and len(set(ephemerals)) == len(ephemerals)


def test_without_preparation_nothing_is_prepared_and_handshakes_complete():
    net, alice, bob = pair(prepare=False)
    to_bob = alice.device.peers[bob.public]
    assert to_bob.prepared_initiation is None and to_bob.prepared_response is None
    assert to_bob in alice.device.to_prepare   # waiting for a runtime that prepares
    net.send(alice, bob, b"hello")
    net.run(until=net.now + 1)
    assert bob.delivered == [net.packet(alice, bob, b"hello")]


def test_a_new_private_key_drops_the_initiation_prepared_for_the_old_one():
    old, new, other = keys(3)
    device = Device(old, rng=seeded(9))
    peer = device.add_peer(other.public)
    device.prepare_handshakes(10)
    response = peer.prepared_response
    assert peer.prepared_initiation.initiator_public == old.public and not device.to_prepare
    device.set_private_key(new)
    assert peer.prepared_initiation is None and list(device.to_prepare) == [peer]
    assert peer.prepared_response is response   # it does not depend on our key
    device.prepare_handshakes()
    assert peer.prepared_initiation.initiator_public == new.public
    device.rotate_private_key(old, grace=60, now=1.0)
    assert peer.prepared_initiation is None
    device.prepare_handshakes()
    # During the grace, an initiation as the identity being left is computed, never taken from what
    # was prepared for the current one.
    assert prepare.take_initiation(device, peer, new) is None
    assert prepare.take_initiation(device, peer, old).initiator_public == old.public


def test_an_initiation_as_the_identity_being_left_is_computed_when_due():
    old, new, other = keys(3)
    device = Device(old, rng=seeded(9))
    peer = device.add_peer(other.public)
    peer.endpoint = ("192.0.2.2", 51820)
    device.rotate_private_key(new, grace=60, now=1.0)
    device.prepare_handshakes()
    prepared = peer.prepared_initiation
    peer.local_identity = old.public   # the peer knows only the old key: the first attempt is as that one
    send.send_handshake_initiation(device, peer, 2.0)
    message = parse(device.datagrams_to_send()[0][0])
    assert message.unencrypted_ephemeral != prepared.ephemeral.public and peer.prepared_initiation is prepared
    assert noise.consume_initiation(other, message).initiator_public == old.public


def test_a_removed_peer_keeps_nothing_prepared_and_a_low_order_key_prepares_nothing():
    local, other = keys(2)
    device = Device(local, rng=seeded(9))
    peer = device.add_peer(other.public)
    device.prepare_handshakes()
    device.remove_peer(other.public)
    assert peer.prepared_initiation is None and peer.prepared_response is None and not device.to_prepare
    weak = device.add_peer(LOW_ORDER)
    device.prepare_handshakes()
    assert weak.prepared_initiation is None and weak.prepared_response is None and not device.to_prepare


def test_the_key_log_names_the_prepared_ephemeral_key():
    net, alice, bob = pair(prepare=True)
    alice.device.keylog_enabled = True
    ephemeral = alice.device.peers[bob.public].prepared_initiation.ephemeral
    net.send(alice, bob, b"logged")
    net.run(until=net.now + 1)
    assert [entry.local_ephemeral_private for entry in alice.device.keylog_entries()] == [ephemeral.private_bytes()]


def test_a_bug_while_preparing_leaves_the_rest_to_be_computed_when_due(monkeypatch):
    local, *others = keys(4)
    device = Device(local, rng=seeded(9))
    for other in others:
        device.add_peer(other.public)

    def broken(device, peer):
        raise RuntimeError("injected")

    monkeypatch.setattr(prepare, "prepare", broken)
    with pytest.raises(RuntimeError):
        device.prepare_handshakes(10)
    assert not device.to_prepare   # nothing left for a runtime to retry without sleeping
