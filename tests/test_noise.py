"""The handshake (noise.py) against the cacophony IKpsk2 vector, and WireGuard's use of it."""

import pytest

from wgpy.core import noise, tai64n
from wgpy.core.crypto import AEAD, AEAD_DECRYPT, PrivateKey
from wgpy.core.errors import Drop, Rejected
from wgpy.core.messages import Initiation, Response

from .vectors import cases, h


@pytest.mark.parametrize("case", cases("noise_ikpsk2"))
def test_cacophony_vector_byte_for_byte(case):
    name = case["protocol_name"].encode()
    initiator, responder = PrivateKey(h(case["init_static"])), PrivateKey(h(case["resp_static"]))
    assert initiator.public != responder.public
    assert responder.public == h(case["init_remote_static"])
    (psk,) = map(h, case["init_psks"])
    messages = case["messages"]

    # -> e, es, s, ss   (the initiator writes, the responder reads)
    t = noise.Transcript.start(responder.public, protocol_name=name, prologue=h(case["init_prologue"]))
    e_pub, enc_static, enc_payload, sent = noise.write_message_1(
        t, initiator, responder.public, PrivateKey(h(case["init_ephemeral"])), h(messages[0]["payload"])
    )
    assert e_pub + enc_static + enc_payload == h(messages[0]["ciphertext"])

    t = noise.Transcript.start(responder.public, protocol_name=name, prologue=h(case["resp_prologue"]))
    wire = h(messages[0]["ciphertext"])
    received = noise.read_message_1(t, responder, wire[:32], wire[32:80], wire[80:])
    assert received.initiator_public == initiator.public
    assert received.payload == h(messages[0]["payload"])

    # <- e, ee, se, psk
    e_pub, enc_payload, responder_result = noise.write_message_2(
        received, PrivateKey(h(case["resp_ephemeral"])), psk, h(messages[1]["payload"])
    )
    assert e_pub + enc_payload == h(messages[1]["ciphertext"])
    wire = h(messages[1]["ciphertext"])
    initiator_result = noise.read_message_2(sent, initiator, wire[:32], wire[32:], psk)
    assert initiator_result.payload == h(messages[1]["payload"])
    assert initiator_result.hash == responder_result.hash == h(case["handshake_hash"])

    # Transport messages with the Split() keys, alternating initiator and responder, nonces from 0.
    i_keys = noise.derive_keys(initiator_result, is_initiator=True)
    r_keys = noise.derive_keys(responder_result, is_initiator=False)
    counters = {True: 0, False: 0}
    for n, message in enumerate(messages[2:]):
        from_initiator = n % 2 == 0
        sender, receiver = (i_keys, r_keys) if from_initiator else (r_keys, i_keys)
        counter = counters[from_initiator]
        counters[from_initiator] += 1
        ciphertext = AEAD(sender.sending_key, counter, h(message["payload"]), b"")
        assert ciphertext == h(message["ciphertext"])
        assert AEAD_DECRYPT(receiver.receiving_key, counter, ciphertext, b"") == h(message["payload"])


def _wireguard_handshake(rng, psk=None):
    initiator, responder = PrivateKey.generate(rng), PrivateKey.generate(rng)
    timestamp = tai64n.encode(1_700_000_000.5)
    message, sent = noise.create_initiation(initiator, responder.public, PrivateKey.generate(rng), 7, timestamp)
    return initiator, responder, message, sent, timestamp


def test_wireguard_handshake_roundtrip_through_the_wire_format(rng):
    psk = rng(32)
    initiator, responder, message, sent, timestamp = _wireguard_handshake(rng)
    received = noise.consume_initiation(responder, Initiation.parse(message.pack()))
    assert received.initiator_public == initiator.public
    assert received.payload == timestamp
    response, r_keys = noise.create_response(received, PrivateKey.generate(rng), psk, 9, message.sender_index)
    assert (response.sender_index, response.receiver_index) == (9, 7)
    i_keys = noise.consume_response(sent, initiator, Response.parse(response.pack()), psk)
    assert i_keys.sending_key == r_keys.receiving_key
    assert i_keys.receiving_key == r_keys.sending_key
    assert i_keys.sending_key != i_keys.receiving_key
    assert i_keys.handshake_hash == r_keys.handshake_hash
    assert i_keys.is_initiator and not r_keys.is_initiator


def test_psk_mismatch_fails_the_response(rng):
    initiator, responder, message, sent, _ = _wireguard_handshake(rng)
    received = noise.consume_initiation(responder, message)
    response, _ = noise.create_response(received, PrivateKey.generate(rng), rng(32), 9, 7)
    with pytest.raises(Rejected) as err:
        noise.consume_response(sent, initiator, response, None)
    assert err.value.reason is Drop.DECRYPTION_FAILED


def test_initiation_for_another_responder_is_rejected(rng):
    _, _, message, _, _ = _wireguard_handshake(rng)
    stranger = PrivateKey.generate(rng)
    with pytest.raises(Rejected) as err:
        noise.consume_initiation(stranger, message)
    assert err.value.reason is Drop.DECRYPTION_FAILED


@pytest.mark.parametrize("field", ["unencrypted_ephemeral", "encrypted_static", "encrypted_timestamp"])
def test_any_flipped_bit_in_the_initiation_is_rejected(rng, field):
    _, responder, message, _, _ = _wireguard_handshake(rng)
    value = bytearray(getattr(message, field))
    value[5] ^= 0x01
    fields = {f: getattr(message, f) for f in ("sender_index", "unencrypted_ephemeral", "encrypted_static", "encrypted_timestamp")}
    fields[field] = bytes(value)
    with pytest.raises(Rejected):
        noise.consume_initiation(responder, Initiation(**fields))


def test_low_order_ephemeral_is_rejected_by_name(rng):
    _, responder, message, _, _ = _wireguard_handshake(rng)
    bad = Initiation(message.sender_index, bytes(32), message.encrypted_static, message.encrypted_timestamp)
    with pytest.raises(Rejected) as err:
        noise.consume_initiation(responder, bad)
    assert err.value.reason is Drop.ZERO_SHARED_SECRET


def test_consuming_changes_nothing_it_was_given(rng):
    """All-or-nothing: the states are frozen, and a refused response leaves the initiator's state usable."""
    psk = rng(32)
    initiator, responder, message, sent, _ = _wireguard_handshake(rng)
    received = noise.consume_initiation(responder, message)
    response, r_keys = noise.create_response(received, PrivateKey.generate(rng), psk, 9, 7)
    forged = Response(9, 7, response.unencrypted_ephemeral, bytes(16))
    snapshot = (sent.chaining_key, sent.hash, sent.ephemeral)
    with pytest.raises(Rejected):
        noise.consume_response(sent, initiator, forged, psk)
    assert (sent.chaining_key, sent.hash, sent.ephemeral) == snapshot
    assert noise.consume_response(sent, initiator, response, psk).sending_key == r_keys.receiving_key
    with pytest.raises(AttributeError):
        sent.hash = b""  # frozen


def test_states_do_not_print_secrets(rng):
    initiator, responder, message, sent, _ = _wireguard_handshake(rng)
    received = noise.consume_initiation(responder, message)
    _, keys = noise.create_response(received, PrivateKey.generate(rng), None, 9, 7)
    for text in (repr(sent), repr(received), repr(keys)):
        for secret in (sent.chaining_key, received.chaining_key, keys.sending_key, keys.receiving_key,
                       sent.ephemeral.private_bytes(), initiator.private_bytes()):
            assert secret.hex() not in text
