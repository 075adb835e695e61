"""MAC1, MAC2 and the cookie reply round trip (cookie.py)."""

import pytest

from wgpy.core import noise, tai64n
from wgpy.core.cookie import CookieChecker, CookieGenerator, MacStatus, mac1_key, source_bytes
from wgpy.core.crypto import MAC, PrivateKey
from wgpy.core.errors import Drop, Rejected
from wgpy.core.messages import CookieReply, Initiation

SOURCE = ("192.0.2.7", 51820)


@pytest.fixture
def parties(rng):
    initiator, responder = PrivateKey.generate(rng), PrivateKey.generate(rng)
    message, _ = noise.create_initiation(
        initiator, responder.public, PrivateKey.generate(rng), 0x1234, tai64n.encode(1.0e9)
    )
    return CookieGenerator(responder.public), CookieChecker(responder.public, rng), message.pack()


def test_mac1_is_keyed_with_the_receivers_public_key(parties, rng):
    generator, checker, message = parties
    stamped = generator.add_macs(message, now=0.0)
    assert stamped[:-32] == message[:-32]
    assert stamped[-16:] == bytes(16)  # no cookie yet: MAC2 is zeros
    assert checker.check_macs(stamped, SOURCE, now=0.0, check_cookie=False) is MacStatus.VALID_MAC1
    other = CookieChecker(PrivateKey.generate(rng).public, rng)
    assert other.check_macs(stamped, SOURCE, now=0.0, check_cookie=False) is MacStatus.INVALID_MAC1


def test_any_change_before_mac1_invalidates_it(parties):
    generator, checker, message = parties
    stamped = bytearray(generator.add_macs(message, now=0.0))
    for position in (0, 4, 8, 100, len(stamped) - 33):
        tampered = bytearray(stamped)
        tampered[position] ^= 0x80
        assert checker.check_macs(bytes(tampered), SOURCE, 0.0, False) is MacStatus.INVALID_MAC1


def test_cookie_round_trip_makes_mac2_valid(parties):
    generator, checker, message = parties
    first = generator.add_macs(message, now=10.0)
    assert checker.check_macs(first, SOURCE, now=10.0, check_cookie=True) is MacStatus.VALID_MAC1
    reply = checker.create_reply(first, Initiation.parse(first).sender_index, SOURCE, now=10.0)
    reply = CookieReply.parse(reply.pack())
    assert reply.receiver_index == 0x1234
    generator.consume_reply(reply, now=10.1)

    second = generator.add_macs(message, now=11.0)
    assert second[-16:] != bytes(16)
    assert checker.check_macs(second, SOURCE, now=11.0, check_cookie=True) is MacStatus.VALID_MAC1_AND_MAC2
    # The cookie is bound to the source address and port.
    assert checker.check_macs(second, ("192.0.2.8", 51820), 11.0, True) is MacStatus.VALID_MAC1
    assert checker.check_macs(second, ("192.0.2.7", 51821), 11.0, True) is MacStatus.VALID_MAC1


def test_a_reply_only_answers_the_last_message_sent(parties):
    generator, checker, message = parties
    with pytest.raises(Rejected) as err:
        generator.consume_reply(checker.create_reply(message, 1, SOURCE, 0.0), now=0.0)
    assert err.value.reason is Drop.NO_MATCHING_INITIATION

    stamped = generator.add_macs(message, now=0.0)
    wrong = checker.create_reply(generator.add_macs(message[:-40] + b"x" * 8 + message[-32:], 0.0), 1, SOURCE, 0.0)
    generator.add_macs(stamped, now=0.0)  # last MAC1 is stamped's again
    with pytest.raises(Rejected) as err:
        generator.consume_reply(wrong, now=0.0)
    assert err.value.reason is Drop.DECRYPTION_FAILED
    assert not generator.has_fresh_cookie(0.0)  # a refused reply leaves nothing behind

    generator.consume_reply(checker.create_reply(stamped, 1, SOURCE, 0.0), now=0.0)
    with pytest.raises(Rejected):  # and a second reply to the same message is refused
        generator.consume_reply(checker.create_reply(stamped, 1, SOURCE, 0.0), now=0.0)


def test_the_cookie_is_used_for_115_seconds(parties):
    generator, checker, message = parties
    generator.consume_reply(checker.create_reply(generator.add_macs(message, 0.0), 1, SOURCE, 0.0), now=0.0)
    assert generator.has_fresh_cookie(114.9)
    assert not generator.has_fresh_cookie(115.0)
    assert generator.add_macs(message, now=115.0)[-16:] == bytes(16)


def test_the_secret_rotates_every_two_minutes(parties):
    generator, checker, message = parties
    generator.consume_reply(checker.create_reply(generator.add_macs(message, 0.0), 1, SOURCE, 0.0), now=0.0)
    stamped = generator.add_macs(message, now=100.0)
    assert checker.check_macs(stamped, SOURCE, 119.9, True) is MacStatus.VALID_MAC1_AND_MAC2
    assert checker.check_macs(stamped, SOURCE, 120.0, True) is MacStatus.VALID_MAC1  # new secret


def test_source_bytes_cover_ipv4_and_ipv6():
    assert source_bytes(("192.0.2.1", 0x1234)) == bytes([192, 0, 2, 1, 0x12, 0x34])
    assert source_bytes(("2001:db8::1", 443, 0, 0)) == bytes.fromhex("20010db8000000000000000000000001") + b"\x01\xbb"


def test_mac1_formula():
    public = bytes(range(32))
    generator = CookieGenerator(public)
    message = bytes(148)
    assert generator.add_macs(message, 0.0)[-32:-16] == MAC(mac1_key(public), message[:-32])
    assert "secret" not in repr(generator).lower() or "redacted" in repr(generator)
