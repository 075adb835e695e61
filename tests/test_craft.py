"""The crafting API (wgpy/craft.py): what it builds is what the core builds and accepts, byte for byte, and
each mutation changes exactly the field it names.

    craft.initiation(...) --148 bytes--> core (CookieChecker, consume_initiation) ... craft.mutate(m, Field.X)
"""

from __future__ import annotations

import random

import pytest

from wgpy import craft
from wgpy.core import noise
from wgpy.core.constants import MessageType
from wgpy.core.cookie import CookieChecker, CookieGenerator, MacStatus
from wgpy.core.crypto import PrivateKey, clamp
from wgpy.core.errors import Drop, Rejected
from wgpy.core.messages import Initiation, parse

ALICE = PrivateKey(clamp(bytes([1]) * 32))
BOB = PrivateKey(clamp(bytes([2]) * 32))
PSK = bytes(range(32))
SOURCE = ("192.0.2.1", 51820)
F = craft.Field


def key(n: int) -> PrivateKey:
    return PrivateKey(clamp(bytes([n]) * 32))


def rng(seed: int = 0):
    return random.Random(seed).randbytes


def hello(cookie: bytes | None = None) -> craft.Crafted:
    return craft.initiation(ALICE, BOB.public, ephemeral=key(3), sender_index=0x01020304,
                            timestamp=craft.timestamp(1_700_000_000, 5), cookie=cookie)


def test_an_initiation_is_what_the_core_builds_and_stamps():
    message, _ = noise.create_initiation(ALICE, BOB.public, key(3), 0x01020304, craft.timestamp(1_700_000_000, 5))
    assert hello().data == CookieGenerator(BOB.public).add_macs(message.pack(), 0.0)
    assert CookieChecker(BOB.public, rng()).check_macs(hello().data, SOURCE, 0.0, check_cookie=False) is MacStatus.VALID_MAC1
    consumed = noise.consume_initiation(BOB, Initiation.parse(hello().data))
    assert consumed.initiator_public == ALICE.public and consumed.payload == craft.timestamp(1_700_000_000, 5)


def test_a_full_handshake_and_transport_both_ways():
    first = hello()
    answer = craft.response(BOB, first.data, ephemeral=key(4), sender_index=9, psk=PSK)
    assert parse(answer.data).receiver_index == 0x01020304
    keys = craft.finish(first, answer.data, psk=PSK)
    assert (keys.sending_key, keys.receiving_key) == (answer.keys.receiving_key, answer.keys.sending_key)
    packet = craft.transport(keys.sending_key, receiver_index=9, counter=7, payload=b"ping")
    assert len(packet.data) == 16 + 16 + 16 and parse(packet.data).counter == 7
    assert craft.open_transport(answer.keys.receiving_key, packet.data) == b"ping" + bytes(12)
    assert craft.open_transport(answer.keys.receiving_key, craft.transport(keys.sending_key, receiver_index=9,
                                counter=8, payload=b"ping", padding=0).data) == b"ping"
    with pytest.raises(Rejected) as refused:
        craft.finish(first, answer.data, psk=None)
    assert refused.value.reason is Drop.DECRYPTION_FAILED


def test_cookies_and_mac2_as_a_loaded_responder_checks_them():
    secret, nonce = bytes(range(100, 132)), bytes(24)
    checker = CookieChecker(BOB.public, lambda n: secret if n == 32 else nonce)
    reply = checker.create_reply(hello().data, 0x01020304, SOURCE, 0.0).pack()
    cookie = craft.open_cookie_reply(reply, BOB.public, craft.mac1_of(hello().data))
    assert cookie == craft.cookie_for(secret, SOURCE)
    assert craft.cookie_reply(BOB.public, receiver_index=0x01020304, nonce=nonce, cookie=cookie,
                              mac1=craft.mac1_of(hello().data)).data == reply
    assert checker.check_macs(hello(cookie).data, SOURCE, 0.0, check_cookie=True) is MacStatus.VALID_MAC1_AND_MAC2
    assert checker.check_macs(hello().data, SOURCE, 0.0, check_cookie=True) is MacStatus.VALID_MAC1


def test_a_generator_that_received_the_cookie_stamps_the_same_mac2():
    secret, nonce = bytes(range(32)), bytes(range(24))
    checker = CookieChecker(BOB.public, lambda n: secret if n == 32 else nonce)
    generator = CookieGenerator(BOB.public)
    stamped = generator.add_macs(hello().data, 0.0)
    generator.consume_reply(parse(checker.create_reply(stamped, 1, SOURCE, 0.0).pack()), 0.0)
    assert generator.add_macs(hello().data, 1.0) == hello(craft.cookie_for(secret, SOURCE)).data


MESSAGES = {
    "initiation": lambda: hello(),
    "response": lambda: craft.response(BOB, hello().data, ephemeral=key(4), sender_index=9, psk=PSK),
    "cookie reply": lambda: craft.cookie_reply(BOB.public, receiver_index=5, nonce=bytes(24), cookie=bytes(16), mac1=bytes(16)),
    "transport": lambda: craft.transport(bytes(32), receiver_index=5, counter=1, payload=b"x" * 20),
}


@pytest.mark.parametrize("name", MESSAGES)
@pytest.mark.parametrize("seed", range(12))
def test_each_wire_mutation_changes_its_field_and_nothing_else(name, seed):
    message = MESSAGES[name]()
    for field in craft.fields(message):
        if not field.on_the_wire or field is F.LENGTH:
            continue
        for remac in (True, False):
            mutation = craft.mutate(message, field, rng=rng(seed), remac=remac)
            offset, length = craft.LAYOUT[message.kind][field]
            end = len(message.data) if length is None else offset + length
            assert mutation.field is field and mutation.before == message.data[offset:end] != mutation.after
            assert mutation.data[offset:end] == mutation.after and len(mutation.data) == len(message.data)
            stamped = remac and message.kind in (MessageType.INITIATION, MessageType.RESPONSE) and field not in (F.MAC1, F.MAC2)
            assert mutation.remac is stamped
            tail = len(message.data) - 32 if stamped else len(message.data)
            assert mutation.data[:offset] == message.data[:offset] and mutation.data[end:tail] == message.data[end:tail]


def test_remac_makes_mac1_right_again():
    checker = CookieChecker(BOB.public, rng())
    for field in (F.SENDER_INDEX, F.EPHEMERAL, F.ENCRYPTED_STATIC, F.ENCRYPTED_TIMESTAMP):
        stamped = craft.mutate(hello(), field, rng=rng(1))
        assert checker.check_macs(stamped.data, SOURCE, 0.0, False) is MacStatus.VALID_MAC1
        raw = craft.mutate(hello(), field, rng=rng(1), remac=False)
        assert checker.check_macs(raw.data, SOURCE, 0.0, False) is MacStatus.INVALID_MAC1


def test_input_fields_rebuild_the_message():
    first = hello()
    older = craft.mutate(first, F.TIMESTAMP, value=craft.timestamp(1_600_000_000))
    consumed = noise.consume_initiation(BOB, Initiation.parse(older.data))
    assert consumed.payload == older.after == craft.timestamp(1_600_000_000) and older.before == first.inputs.timestamp
    stranger = craft.mutate(first, F.STATIC, rng=rng(2))
    assert noise.consume_initiation(BOB, Initiation.parse(stranger.data)).initiator_public == stranger.after != ALICE.public
    answer = MESSAGES["response"]()
    wrong = craft.mutate(answer, F.PSK, rng=rng(3))
    with pytest.raises(Rejected):
        craft.finish(first, wrong.data, psk=PSK)
    data = craft.mutate(MESSAGES["transport"](), F.PAYLOAD, value=b"other")
    assert craft.open_transport(bytes(32), data.data) == b"other" + bytes(11)


def test_explicit_values_lengths_and_caller_mistakes():
    low = craft.mutate(hello(), F.EPHEMERAL, value=craft.LOW_ORDER_POINTS[0])
    assert low.data[8:40] == craft.LOW_ORDER_POINTS[0]
    same = craft.mutate(hello(), F.SENDER_INDEX, value=hello().data[4:8])
    assert same.after != same.before   # an equal value still changes the field
    longer = craft.mutate(hello(), F.LENGTH, value=(200).to_bytes(2, "big"), rng=rng())
    assert len(longer.data) == 200 and longer.data[:148] == hello().data
    for seed in range(30):
        assert len(craft.mutate(hello(), F.LENGTH, rng=rng(seed)).data) != 148
    with pytest.raises(ValueError):
        craft.mutate(hello(), F.COUNTER, rng=rng())
    with pytest.raises(ValueError):
        craft.mutate(hello().data, F.TIMESTAMP, rng=rng())   # an input: needs the Crafted message
    with pytest.raises(ValueError):
        craft.mutate(hello(), F.MAC1, value=bytes(3))
    with pytest.raises(ValueError):
        craft.mutate(b"\x09" + bytes(147), rng=rng())


def test_bytes_from_elsewhere_can_be_mutated_and_stamped():
    mutation = craft.mutate(hello().data, F.SENDER_INDEX, rng=rng(), receiver_public=BOB.public)
    assert mutation.remac and CookieChecker(BOB.public, rng()).check_macs(mutation.data, SOURCE, 0.0, False) is MacStatus.VALID_MAC1
    assert not craft.mutate(hello().data, F.SENDER_INDEX, rng=rng()).remac   # no key, no stamp
    assert set(craft.fields(hello().data)) == set(craft.LAYOUT[MessageType.INITIATION]) | {F.LENGTH}
    assert F.TIMESTAMP in craft.fields(hello()) and F.TIMESTAMP not in craft.fields(hello().data)


def test_a_random_field_is_drawn_when_none_is_named():
    drawn = {craft.mutate(hello(), rng=rng(seed)).field for seed in range(200)}
    assert drawn == set(craft.fields(hello()))


def test_craft_is_in_the_study_and_fuzz_wing():
    """craft.py uses the core and the standard library only; nothing in the core uses it (STYLE.md, "the rings")."""
    import ast

    from .test_rings import CORE, MODULES

    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "craft" not in (node.module or "") and all(a.name != "craft" for a in node.names), path.name
    for node in ast.walk(ast.parse((CORE.parent / "craft.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1 and node.module.split(".")[0] == "core", node.module
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            assert {n.split(".")[0] for n in names} <= {"__future__", "struct", "dataclasses", "enum", "typing"}
