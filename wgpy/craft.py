"""Build WireGuard messages from chosen inputs, and mutate them one field at a time: the crafting API for
fuzzing wgpy and other implementations (whitepaper sections 5.4.2 to 5.4.7).

The core builds messages from its own state and randomness. Here every input is the caller's: static keys,
ephemeral keys, indices, the timestamp, the counter, the payload, the preshared key and the cookie. The
result is exactly what a correct peer would send, MAC1 included and, given a cookie, MAC2::

    from wgpy import craft
    hello = craft.initiation(alice, bob.public, ephemeral=e, sender_index=1, timestamp=craft.timestamp(1_700_000_000))
    hello.data                                    # 148 bytes
    answer = craft.response(bob, hello.data, ephemeral=f, sender_index=2, psk=psk)
    keys = craft.finish(hello, answer.data, psk=psk)                 # the initiator's TransportKeys
    ping = craft.transport(keys.sending_key, receiver_index=2, counter=0, payload=ip_packet)

    wrong = craft.mutate(hello, craft.Field.EPHEMERAL, rng=os.urandom)
    wrong.data, wrong.field, wrong.before, wrong.after

:func:`mutate` changes one named field and says which. A field on the wire (an index, the ephemeral, an
encrypted field, a MAC, the counter, the length) is changed in the bytes; by default MAC1 and MAC2 are then
recomputed over the changed bytes (``remac=True``), so that the change reaches the checks behind MAC1
instead of stopping at it. An input field (the initiator's static key, the timestamp, the preshared key,
the payload) is changed by building the message again from changed inputs, since it is encrypted.

Everything here uses :mod:`wgpy.core` and nothing in the core uses this module (STYLE.md, "the rings").
``tests/fuzz/targets.py`` drives wgpy's device with it and states the exact drop reason each mutation
must earn; ``examples/fuzz_wireguard_go.py`` aims it at a wireguard-go.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Union

from .core import noise, tai64n
from .core.constants import (
    COOKIE_NONCE_LEN,
    KEY_LEN,
    MAC_LEN,
    PADDING_MULTIPLE,
    REJECT_AFTER_MESSAGES,
    TIMESTAMP_LEN,
    TRANSPORT_HEADER_SIZE,
    MessageType,
)
from .core.cookie import cookie_key, mac1_key, source_bytes
from .core.crypto import AEAD, AEAD_DECRYPT, MAC, XAEAD, XAEAD_DECRYPT, PrivateKey, Rng
from .core.messages import (
    LAYOUTS,
    MAC1_OFFSET_FROM_END,
    MAC2_OFFSET_FROM_END,
    SIZES,
    TRANSPORT_HEADER,
    CookieReply,
    Initiation,
    Response,
)
from .core.noise import InitiatorHandshake, TransportKeys

__all__ = [
    "Crafted", "Field", "Mutation", "InitiationInputs", "ResponseInputs", "CookieReplyInputs", "TransportInputs",
    "LAYOUT", "LOW_ORDER_POINTS", "initiation", "response", "finish", "cookie_reply", "transport", "build", "stamp_macs",
    "mac1_of", "open_cookie_reply", "open_transport", "cookie_for", "timestamp", "fields", "mutate",
]

# X25519 u-coordinates whose product with any clamped scalar is zero (points of small order, and their
# non-canonical encodings): DH with one of them is refused (kernel curve25519 returning false,
# wireguard-go's errInvalidPublicKey). Points of order 1, 2, 4 and 8 as cr.yp.to/ecdh.html lists them,
# each also with the ignored 256th bit set; tests/test_fuzz.py checks every one against the core.
_P = 2**255 - 19
_ORDER_8 = (
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
)
_SMALL = tuple(n.to_bytes(32, "little") for n in (0, 1, _P - 1, _P, _P + 1))
LOW_ORDER_POINTS: tuple[bytes, ...] = tuple(
    point[:31] + bytes([point[31] | high]) for point in _SMALL + _ORDER_8 for high in (0, 0x80)
)


def timestamp(seconds: int, nanoseconds: int = 0) -> bytes:
    """A TAI64N label for ``seconds`` since 1970, exactly as given (no whitening): the initiation's payload."""
    return tai64n.label(seconds, nanoseconds)


# ---------------------------------------------------------------------------------------------- MACs


def mac1_of(data: bytes) -> bytes:
    """MAC1 of a handshake message: the 16 bytes a cookie reply to it is bound to (section 5.4.7)."""
    return data[-MAC1_OFFSET_FROM_END:-MAC2_OFFSET_FROM_END]


def stamp_macs(data: bytes, receiver_public: bytes, cookie: bytes | None = None) -> bytes:
    """``data`` with MAC1 (keyed by the receiver's public key) and MAC2 (keyed by ``cookie``, or zeros
    without one) computed over it, as section 5.4.4 writes them. Any length of 32 bytes or more will do,
    so a mutated message can be stamped again."""
    if len(data) < 2 * MAC_LEN:
        raise ValueError("a handshake message ends with MAC1 and MAC2: at least 32 bytes")
    covered = data[:-MAC1_OFFSET_FROM_END]
    covered += MAC(mac1_key(receiver_public), covered)
    return covered + (MAC(cookie, covered) if cookie is not None else bytes(MAC_LEN))


def cookie_for(secret: bytes, source: tuple) -> bytes:
    """The cookie a responder whose current secret is ``secret`` gives to ``source`` (an ``(address,
    port)`` tuple): MAC(R_secret, address || port), section 5.4.7."""
    return MAC(secret, source_bytes(source))


# -------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class InitiationInputs:
    """Everything a handshake initiation is made of (section 5.4.2)."""

    initiator: PrivateKey
    responder_public: bytes
    ephemeral: PrivateKey
    sender_index: int
    timestamp: bytes
    cookie: bytes | None = None


@dataclass(frozen=True)
class ResponseInputs:
    """Everything a handshake response is made of (section 5.4.3). The responder decrypts ``initiation``
    to learn the initiator and the transcript; ``receiver_index`` defaults to the initiation's sender index."""

    responder: PrivateKey
    initiation: bytes
    ephemeral: PrivateKey
    sender_index: int
    psk: bytes | None = None
    cookie: bytes | None = None
    receiver_index: int | None = None


@dataclass(frozen=True)
class CookieReplyInputs:
    """Everything a cookie reply is made of (section 5.4.7): it is encrypted under the public key of the
    responder that sends it, and bound to MAC1 of the message it answers."""

    responder_public: bytes
    receiver_index: int
    nonce: bytes
    cookie: bytes
    mac1: bytes


@dataclass(frozen=True)
class TransportInputs:
    """Everything a transport message is made of (section 5.4.6). ``padding`` None pads the payload with
    zeros to a multiple of 16 as senders do; a number appends exactly that many zeros."""

    sending_key: bytes
    receiver_index: int
    counter: int
    payload: bytes
    padding: int | None = None


Inputs = Union[InitiationInputs, ResponseInputs, CookieReplyInputs, TransportInputs]


@dataclass(frozen=True)
class Crafted:
    """A message built here: its bytes and the inputs that made it.

    ``receiver_public`` is the static public key whose MAC1 key stamps a handshake message (None for cookie
    replies and transport). ``handshake`` is what the initiator of an initiation keeps to read the response;
    ``keys`` are the responder's transport keys for a response.
    """

    kind: MessageType
    data: bytes
    inputs: Inputs
    receiver_public: bytes | None = None
    handshake: InitiatorHandshake | None = None
    keys: TransportKeys | None = None


# ---------------------------------------------------------------------------------------------- build


def build(inputs: Inputs) -> Crafted:
    """The message these inputs make. Raises :class:`~wgpy.core.errors.Rejected` when a response's
    initiation does not decrypt for its responder, or a Diffie-Hellman result is zero."""
    if isinstance(inputs, InitiationInputs):
        message, state = noise.create_initiation(
            inputs.initiator, inputs.responder_public, inputs.ephemeral, inputs.sender_index, inputs.timestamp
        )
        data = stamp_macs(message.pack(), inputs.responder_public, inputs.cookie)
        return Crafted(MessageType.INITIATION, data, inputs, inputs.responder_public, handshake=state)
    if isinstance(inputs, ResponseInputs):
        hello = Initiation.parse(inputs.initiation)
        consumed = noise.consume_initiation(inputs.responder, hello)
        receiver_index = hello.sender_index if inputs.receiver_index is None else inputs.receiver_index
        message, keys = noise.create_response(consumed, inputs.ephemeral, inputs.psk, inputs.sender_index, receiver_index)
        data = stamp_macs(message.pack(), consumed.initiator_public, inputs.cookie)
        return Crafted(MessageType.RESPONSE, data, inputs, consumed.initiator_public, keys=keys)
    if isinstance(inputs, CookieReplyInputs):
        if len(inputs.nonce) != COOKIE_NONCE_LEN or len(inputs.cookie) != MAC_LEN or len(inputs.mac1) != MAC_LEN:
            raise ValueError("a cookie reply takes a 24-byte nonce, a 16-byte cookie and a 16-byte MAC1")
        encrypted = XAEAD(cookie_key(inputs.responder_public), inputs.nonce, inputs.cookie, inputs.mac1)
        data = CookieReply(inputs.receiver_index, inputs.nonce, encrypted).pack()
        return Crafted(MessageType.COOKIE_REPLY, data, inputs)
    if isinstance(inputs, TransportInputs):
        if len(inputs.sending_key) != KEY_LEN:
            raise ValueError("a transport key is 32 bytes")
        if not 0 <= inputs.counter < 2**64:
            raise ValueError("the counter is a 64-bit number")
        padding = -len(inputs.payload) % PADDING_MULTIPLE if inputs.padding is None else inputs.padding
        header = TRANSPORT_HEADER.pack(MessageType.TRANSPORT, inputs.receiver_index, inputs.counter)
        data = header + AEAD(inputs.sending_key, inputs.counter, inputs.payload + bytes(padding), b"")
        return Crafted(MessageType.TRANSPORT, data, inputs)
    raise TypeError(f"not crafting inputs: {inputs!r}")


def initiation(
    initiator: PrivateKey,
    responder_public: bytes,
    *,
    ephemeral: PrivateKey,
    sender_index: int,
    timestamp: bytes,
    cookie: bytes | None = None,
) -> Crafted:
    """A handshake initiation from ``initiator`` to the owner of ``responder_public`` (section 5.4.2)."""
    return build(InitiationInputs(initiator, responder_public, ephemeral, sender_index, timestamp, cookie))


def response(
    responder: PrivateKey,
    initiation: bytes,
    *,
    ephemeral: PrivateKey,
    sender_index: int,
    psk: bytes | None = None,
    cookie: bytes | None = None,
    receiver_index: int | None = None,
) -> Crafted:
    """The response of ``responder`` to the handshake initiation ``initiation`` (section 5.4.3); its
    ``keys`` are the responder's transport keys."""
    return build(ResponseInputs(responder, initiation, ephemeral, sender_index, psk, cookie, receiver_index))


def finish(hello: Crafted, response: bytes, psk: bytes | None = None) -> TransportKeys:
    """The initiator's transport keys, from the initiation it sent and the response it received. Raises
    :class:`~wgpy.core.errors.Rejected` when the response does not answer it (section 5.4.3)."""
    if hello.handshake is None or not isinstance(hello.inputs, InitiationInputs):
        raise ValueError("finish() takes a crafted initiation")
    return noise.consume_response(hello.handshake, hello.inputs.initiator, Response.parse(response), psk)


def cookie_reply(responder_public: bytes, *, receiver_index: int, nonce: bytes, cookie: bytes, mac1: bytes) -> Crafted:
    """A cookie reply from the owner of ``responder_public``, answering the handshake message whose sender
    index is ``receiver_index`` and whose MAC1 is ``mac1`` (section 5.4.7)."""
    return build(CookieReplyInputs(responder_public, receiver_index, nonce, cookie, mac1))


def transport(sending_key: bytes, *, receiver_index: int, counter: int, payload: bytes, padding: int | None = None) -> Crafted:
    """A transport message carrying ``payload`` (an IP packet, or nothing for a keepalive), section 5.4.6."""
    return build(TransportInputs(sending_key, receiver_index, counter, payload, padding))


def open_cookie_reply(data: bytes, responder_public: bytes, mac1: bytes) -> bytes:
    """The cookie inside a cookie reply sent by the owner of ``responder_public`` in answer to a message
    whose MAC1 was ``mac1``. Raises :class:`~wgpy.core.errors.Rejected` when it does not decrypt."""
    reply = CookieReply.parse(data)
    return XAEAD_DECRYPT(cookie_key(responder_public), reply.nonce, reply.encrypted_cookie, mac1)


def open_transport(receiving_key: bytes, data: bytes) -> bytes:
    """The padded plaintext of a transport message. Raises :class:`~wgpy.core.errors.Rejected` when it
    does not authenticate (no replay check: that is the receiver's state, not the message's)."""
    _, _, counter = TRANSPORT_HEADER.unpack_from(data)
    return AEAD_DECRYPT(receiving_key, counter, data[TRANSPORT_HEADER_SIZE:], b"")


# ------------------------------------------------------------------------------------------ mutation


class Field(Enum):
    """A field :func:`mutate` can change. The value says what it is."""

    # On the wire, changed in the bytes.
    TYPE = "the message type byte"
    RESERVED = "the three reserved zero bytes"
    SENDER_INDEX = "sender_index"
    RECEIVER_INDEX = "receiver_index"
    EPHEMERAL = "unencrypted_ephemeral"
    ENCRYPTED_STATIC = "encrypted_static"
    ENCRYPTED_TIMESTAMP = "encrypted_timestamp"
    ENCRYPTED_NOTHING = "encrypted_nothing"
    MAC1 = "mac1"
    MAC2 = "mac2"
    NONCE = "the cookie reply's nonce"
    ENCRYPTED_COOKIE = "encrypted_cookie"
    COUNTER = "the transport counter"
    ENCRYPTED_PACKET = "encrypted_encapsulated_packet"
    LENGTH = "the datagram's length"
    # Inputs, changed by building the message again (a Crafted message only).
    STATIC = "the initiator's static key"
    TIMESTAMP = "the TAI64N timestamp inside encrypted_timestamp"
    PSK = "the preshared key"
    PAYLOAD = "the plaintext inside a transport message"

    @property
    def on_the_wire(self) -> bool:
        return self not in _INPUT_FIELDS


_INPUT_FIELDS = frozenset({Field.STATIC, Field.TIMESTAMP, Field.PSK, Field.PAYLOAD})

# (offset, length) of every wire field, from the tables in messages.py; None: to the end of the datagram.
# The craft's fields are named as the tables name them, but for the type word's two parts, the nonce and
# the counter, whose names here say which message they belong to.
_BY_WIRE_NAME = {field.value: field for field in Field} | {
    "message_type": Field.TYPE, "reserved_zero": Field.RESERVED, "nonce": Field.NONCE, "counter": Field.COUNTER,
}
LAYOUT: dict[MessageType, dict[Field, tuple[int, int | None]]] = {
    kind: {_BY_WIRE_NAME[f.name]: (f.offset, f.size) for f in fields} for kind, fields in LAYOUTS.items()
}
_INPUTS_OF = {
    MessageType.INITIATION: (Field.STATIC, Field.TIMESTAMP),
    MessageType.RESPONSE: (Field.PSK,),
    MessageType.COOKIE_REPLY: (),
    MessageType.TRANSPORT: (Field.PAYLOAD,),
}
_HANDSHAKE = (MessageType.INITIATION, MessageType.RESPONSE)
# Lengths worth trying: empty, around the type word and the transport header, and around every message size.
_EDGE_LENGTHS = tuple(sorted(
    {0, 1, 3, 4, TRANSPORT_HEADER_SIZE - 1, TRANSPORT_HEADER_SIZE} | {size + d for size in SIZES.values() for d in (-1, 0, 1)}
))


@dataclass(frozen=True)
class Mutation:
    """One changed field: the mutated datagram, which field changed, its old and new value (the field's
    bytes on the wire; for inputs the timestamp, preshared key, payload or the static *public* key), and
    whether MAC1 and MAC2 were recomputed after the change."""

    data: bytes
    field: Field
    before: bytes
    after: bytes
    remac: bool


def fields(message: Crafted | bytes) -> tuple[Field, ...]:
    """The fields :func:`mutate` can change in this message: its wire fields, its length, and for a
    Crafted message the inputs it can be built again from."""
    kind = _kind_of(message)
    wire = (*LAYOUT[kind], Field.LENGTH)
    return wire + _INPUTS_OF[kind] if isinstance(message, Crafted) else wire


def mutate(
    message: Crafted | bytes,
    field: Field | None = None,
    *,
    rng: Rng | None = None,
    value: bytes | PrivateKey | None = None,
    remac: bool = True,
    receiver_public: bytes | None = None,
    cookie: bytes | None = None,
) -> Mutation:
    """Change one field of ``message`` (chosen with ``rng`` when ``field`` is None) and return the result.

    The new value is ``value`` if given, else one drawn with ``rng`` (an ``rng(n) -> bytes`` such as
    ``os.urandom``; needed unless both ``field`` and ``value`` are given): a flipped bit, random bytes, all
    zeros, all ones, a neighbouring or extreme number for indices and the counter, a low-order point for
    the ephemeral, an older or newer timestamp, a truncated or extended datagram for the length. A value
    equal to the old one gets its lowest bit flipped: the field always ends up different.

    ``value`` is the field's new bytes (of the field's length on the wire); for ``STATIC`` a
    :class:`~wgpy.core.crypto.PrivateKey` or its 32 bytes; for ``LENGTH`` the datagram's new length as a
    big-endian number (it is truncated, or extended with bytes drawn from ``rng``, zeros without one).

    With ``remac`` (the default), a handshake message whose wire field changed gets MAC1 and MAC2 stamped
    again, keyed by ``receiver_public`` and ``cookie`` (taken from a Crafted message when not given),
    unless the field is a MAC or the length. An input field needs a :class:`Crafted` message: the message
    is built again from the changed inputs, MACs and all.
    """
    kind = _kind_of(message)
    available = fields(message)
    rng = rng or _no_rng
    if field is None:
        field = available[_below(rng, len(available))]
    elif field not in available:
        raise ValueError(f"{field.name} cannot be mutated in this {kind.name} message")
    if isinstance(message, Crafted):
        receiver_public = message.receiver_public if receiver_public is None else receiver_public
        if cookie is None and kind in _HANDSHAKE:
            cookie = message.inputs.cookie
    if not field.on_the_wire:
        return _mutate_input(message, field, rng, value)
    data = message.data if isinstance(message, Crafted) else bytes(message)
    if field is Field.LENGTH:
        return _mutate_length(data, rng, value)
    offset, length = LAYOUT[kind][field]
    end = len(data) if length is None else offset + length
    before = data[offset:end]
    after = _differ(_new_bytes(field, before, rng) if value is None else bytes(value), before)
    if len(after) != len(before):
        raise ValueError(f"{field.name} is {len(before)} bytes here, not {len(after)}")
    mutated = data[:offset] + after + data[end:]
    stamped = remac and kind in _HANDSHAKE and field not in (Field.MAC1, Field.MAC2) and receiver_public is not None
    if stamped:
        mutated = stamp_macs(mutated, receiver_public, cookie)
    return Mutation(mutated, field, before, after, stamped)


def _kind_of(message: Crafted | bytes) -> MessageType:
    if isinstance(message, Crafted):
        return message.kind
    try:
        kind = MessageType(message[0])
    except (IndexError, ValueError):
        raise ValueError("not a WireGuard message: unknown type byte") from None
    size = SIZES[kind]
    if len(message) < size if kind == MessageType.TRANSPORT else len(message) != size:
        raise ValueError(f"not a {kind.name} message: {len(message)} bytes")
    return kind


def _no_rng(n: int) -> bytes:
    raise ValueError("mutate() needs rng= to choose a field or a value")


def _differ(after: bytes, before: bytes) -> bytes:
    """``after``, with its lowest bit flipped if it equals ``before``."""
    return bytes([after[0] ^ 1]) + after[1:] if after == before and after else after


def _below(rng: Rng, n: int) -> int:
    """A number in [0, n) from two random bytes (n is small: the slight bias does not matter here)."""
    return int.from_bytes(rng(2), "little") % n


def _new_bytes(field: Field, before: bytes, rng: Rng) -> bytes:
    """A new value for a wire field, from a few kinds of change that find different bugs."""
    size = len(before)
    if field is Field.TYPE:
        return bytes([rng(1)[0]])
    if field is Field.RESERVED:
        return rng(3) if rng(1)[0] & 1 else bytes([0, 0, 1 << (rng(1)[0] % 8)])
    if field in (Field.SENDER_INDEX, Field.RECEIVER_INDEX, Field.COUNTER):
        number = int.from_bytes(before, "little")
        top = 2 ** (8 * size)
        choices = [number + 1, number - 1, 0, top - 1, int.from_bytes(rng(size), "little"), number ^ (1 << (8 * size - 1))]
        if field is Field.COUNTER:
            choices += [REJECT_AFTER_MESSAGES, REJECT_AFTER_MESSAGES - 1]
        return (choices[_below(rng, len(choices))] % top).to_bytes(size, "little")
    kinds = 5 if field is Field.EPHEMERAL else 4
    choice = _below(rng, kinds)
    if choice == 0:   # one flipped bit
        bit = _below(rng, 8 * size)
        flipped = bytearray(before)
        flipped[bit // 8] ^= 1 << (bit % 8)
        return bytes(flipped)
    if choice == 1:
        return rng(size)
    if choice == 2:
        return bytes(size)
    if choice == 3:
        return b"\xff" * size
    return LOW_ORDER_POINTS[_below(rng, len(LOW_ORDER_POINTS))]


def _mutate_length(data: bytes, rng: Rng, value: bytes | None) -> Mutation:
    if value is not None:
        length = int.from_bytes(value, "big")
    else:
        choice = _below(rng, 3)
        if choice == 0:
            length = _EDGE_LENGTHS[_below(rng, len(_EDGE_LENGTHS))]
        elif choice == 1:
            length = _below(rng, len(data))                    # truncated
        else:
            length = len(data) + 1 + _below(rng, 64)           # extended
    if length == len(data):
        length += 1
    extension = max(0, length - len(data))
    mutated = data[:length] + (bytes(extension) if rng is _no_rng else rng(extension))
    return Mutation(mutated, Field.LENGTH, len(data).to_bytes(2, "big"), length.to_bytes(2, "big"), False)


def _mutate_input(message: Crafted | bytes, field: Field, rng: Rng, value: bytes | PrivateKey | None) -> Mutation:
    if not isinstance(message, Crafted):
        raise ValueError(f"{field.name} is an input: mutating it needs the Crafted message")
    inputs = message.inputs
    if field is Field.STATIC:
        key = value if isinstance(value, PrivateKey) else PrivateKey.generate(rng) if value is None else PrivateKey(value)
        if key.public == inputs.initiator.public:
            key = PrivateKey.generate(rng)
        changed, before, after = replace(inputs, initiator=key), inputs.initiator.public, key.public
    elif field is Field.TIMESTAMP:
        before = inputs.timestamp
        after = _differ(_new_timestamp(before, rng) if value is None else bytes(value), before)
        if len(after) != TIMESTAMP_LEN:
            raise ValueError("a timestamp is 12 bytes")
        changed = replace(inputs, timestamp=after)
    elif field is Field.PSK:
        before = inputs.psk or bytes(KEY_LEN)
        after = _differ(rng(KEY_LEN) if value is None else bytes(value), before)
        changed = replace(inputs, psk=after)
    else:   # Field.PAYLOAD
        before = inputs.payload
        after = _new_payload(before, rng) if value is None else bytes(value)
        if after == before:
            after = before + b"\x01"
        changed = replace(inputs, payload=after)
    return Mutation(build(changed).data, field, before, after, False)


def _new_timestamp(before: bytes, rng: Rng) -> bytes:
    number = int.from_bytes(before, "big")
    top = 2 ** (8 * TIMESTAMP_LEN)
    choices = [number - 1, number + 1, 0, top - 1, int.from_bytes(rng(TIMESTAMP_LEN), "big"), number - (1 << 32)]
    return (choices[_below(rng, len(choices))] % top).to_bytes(TIMESTAMP_LEN, "big")


def _new_payload(before: bytes, rng: Rng) -> bytes:
    choice = _below(rng, 4)
    if choice == 0 and before:   # one flipped bit
        bit = _below(rng, 8 * len(before))
        flipped = bytearray(before)
        flipped[bit // 8] ^= 1 << (bit % 8)
        return bytes(flipped)
    if choice == 1 and before:
        return before[: _below(rng, len(before))]
    if choice == 2:
        return b""
    return rng(_below(rng, 80))
