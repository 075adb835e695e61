"""Two peers in memory, the clock in the test's hand: handshake with MACs, transport data both ways."""

import pytest

from wgpy.core import noise, tai64n
from wgpy.core.constants import REJECT_AFTER_MESSAGES
from wgpy.core.cookie import CookieChecker, CookieGenerator, MacStatus
from wgpy.core.crypto import PrivateKey
from wgpy.core.errors import Drop, Rejected
from wgpy.core.keypairs import Keypair, padding_size
from wgpy.core.messages import Initiation, Response, Transport, parse

ALICE_ADDR, BOB_ADDR = ("192.0.2.1", 51820), ("192.0.2.2", 51820)
PING = bytes.fromhex("4500001c000100004001f7cec0000201c0000202") + bytes.fromhex("0800f7ff00000000")  # 28 bytes


def handshake(rng, now=0.0):
    """Alice initiates, Bob responds; returns both keypairs, going through the wire bytes."""
    alice, bob = PrivateKey.generate(rng), PrivateKey.generate(rng)
    psk = rng(32)
    to_bob, to_alice = CookieGenerator(bob.public), CookieGenerator(alice.public)
    bob_checker, alice_checker = CookieChecker(bob.public, rng), CookieChecker(alice.public, rng)

    message, sent = noise.create_initiation(alice, bob.public, PrivateKey.generate(rng), 0xA11CE, tai64n.encode(1e9 + now))
    wire = to_bob.add_macs(message.pack(), now)
    assert len(wire) == 148

    assert bob_checker.check_macs(wire, ALICE_ADDR, now, check_cookie=False) is MacStatus.VALID_MAC1
    received = noise.consume_initiation(bob, parse(wire))
    assert received.initiator_public == alice.public
    response, bob_keys = noise.create_response(received, PrivateKey.generate(rng), psk, 0xB0B, 0xA11CE)
    wire = to_alice.add_macs(response.pack(), now)
    assert len(wire) == 92

    assert alice_checker.check_macs(wire, BOB_ADDR, now, check_cookie=False) is MacStatus.VALID_MAC1
    response = parse(wire)
    assert isinstance(response, Response) and response.receiver_index == 0xA11CE
    alice_keys = noise.consume_response(sent, alice, response, psk)
    return Keypair(alice_keys, 0xA11CE, 0xB0B, now), Keypair(bob_keys, 0xB0B, 0xA11CE, now)


def test_data_flows_both_ways_padded_to_16(rng):
    alice, bob = handshake(rng)
    for size in (0, 1, 15, 16, 17, 28, 1420):
        packet = bytes(range(256)) * 6
        packet = packet[:size]
        wire = alice.encrypt(packet)
        assert len(wire) == 16 + size + padding_size(size) + 16
        assert (len(wire) - 32) % 16 == 0
        message = parse(wire)
        assert isinstance(message, Transport) and message.receiver_index == 0xB0B
        plaintext = bob.decrypt(wire)
        assert plaintext[:size] == packet and plaintext[size:] == bytes(len(plaintext) - size)

        back = bob.encrypt(PING)
        assert alice.decrypt(back)[: len(PING)] == PING
    assert alice.sending_counter == bob.sending_counter == 7


def test_keepalive_is_an_empty_transport_message(rng):
    alice, bob = handshake(rng)
    keepalive = alice.encrypt(b"")
    assert len(keepalive) == 32
    assert bob.decrypt(keepalive) == b""


def test_padding_never_passes_the_mtu():
    assert padding_size(1419, mtu=1420) == 1
    assert padding_size(1420, mtu=1420) == 0
    assert padding_size(1417, mtu=1420) == 3   # 1432 would pass the MTU
    assert padding_size(1, mtu=1420) == 15
    assert padding_size(0) == 0 and padding_size(17) == 15


def test_replayed_packet_is_dropped(rng):
    alice, bob = handshake(rng)
    wire = alice.encrypt(PING)
    assert bob.decrypt(wire)[:28] == PING
    with pytest.raises(Rejected) as err:
        bob.decrypt(wire)
    assert err.value.reason is Drop.REPLAYED


@pytest.mark.parametrize("position", [8, 15, 20, -1])  # counter (low and high byte), ciphertext, tag
def test_altered_packet_is_dropped_and_does_not_move_the_window(rng, position):
    alice, bob = handshake(rng)
    wire = bytearray(alice.encrypt(PING))
    wire[position] ^= 0x01
    with pytest.raises(Rejected) as err:
        bob.decrypt(bytes(wire))
    assert err.value.reason is Drop.DECRYPTION_FAILED
    wire[position] ^= 0x01
    assert bob.decrypt(bytes(wire))[:28] == PING  # the forgery did not burn the counter


def test_out_of_order_within_the_window_is_accepted_once(rng):
    alice, bob = handshake(rng)
    wires = [alice.encrypt(bytes([n])) for n in range(50)]
    for wire in reversed(wires):
        bob.decrypt(wire)
    for wire in wires:
        with pytest.raises(Rejected):
            bob.decrypt(wire)


def test_sending_counter_exhaustion(rng):
    alice, _ = handshake(rng)
    alice.sending_counter = REJECT_AFTER_MESSAGES - 1
    alice.encrypt(b"")
    with pytest.raises(Rejected) as err:
        alice.encrypt(b"")
    assert err.value.reason is Drop.COUNTER_EXHAUSTED


def test_initiation_cannot_be_replayed_into_a_new_identity(rng):
    """The same initiation decrypts the same way twice: rejecting replays is the timestamp's job (device)."""
    alice, bob = PrivateKey.generate(rng), PrivateKey.generate(rng)
    message, _ = noise.create_initiation(alice, bob.public, PrivateKey.generate(rng), 1, tai64n.encode(5.0))
    first = noise.consume_initiation(bob, Initiation.parse(message.pack()))
    again = noise.consume_initiation(bob, Initiation.parse(message.pack()))
    assert first.payload == again.payload and not tai64n.is_after(again.payload, first.payload)
