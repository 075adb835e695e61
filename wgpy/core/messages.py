"""The four WireGuard messages on the wire: whitepaper sections 5.4.2 to 5.4.7 (kernel messages.h).

Every message starts with a little-endian 32-bit word whose low byte is the type and whose three high
bytes are reserved zeros, so one ``I`` field checks both at once. Each message is one ``struct.Struct``,
one frozen dataclass and a ``parse``/``pack`` pair. ``parse`` is the only place that checks sizes and the
type word; code after it trusts the fields. For any byte string ``data``, ``parse(data)`` either returns a
message ``m`` with ``m.pack() == data`` or raises :class:`~wgpy.core.errors.Rejected` with a named
:class:`~wgpy.core.errors.Drop` reason (``tests/test_messages.py`` proves both with Hypothesis).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

from .constants import (
    COOKIE_NONCE_LEN,
    COOKIE_REPLY_SIZE,
    INITIATION_SIZE,
    KEY_LEN,
    MAC_LEN,
    RESPONSE_SIZE,
    TAG_LEN,
    TIMESTAMP_LEN,
    TRANSPORT_HEADER_SIZE,
    TRANSPORT_MIN_SIZE,
    MessageType,
)
from .errors import Drop, Rejected

ZERO_MAC = bytes(MAC_LEN)

# type|reserved, sender_index, unencrypted_ephemeral, encrypted_static, encrypted_timestamp, mac1, mac2
INITIATION = struct.Struct("<I I 32s 48s 28s 16s 16s")
# type|reserved, sender_index, receiver_index, unencrypted_ephemeral, encrypted_nothing, mac1, mac2
RESPONSE = struct.Struct("<I I I 32s 16s 16s 16s")
# type|reserved, receiver_index, nonce, encrypted_cookie
COOKIE_REPLY = struct.Struct("<I I 24s 32s")
# type|reserved, receiver_index, counter; then encrypted_encapsulated_packet (any length >= 16)
TRANSPORT_HEADER = struct.Struct("<I I Q")

assert (INITIATION.size, RESPONSE.size, COOKIE_REPLY.size, TRANSPORT_HEADER.size) == (
    INITIATION_SIZE,
    RESPONSE_SIZE,
    COOKIE_REPLY_SIZE,
    TRANSPORT_HEADER_SIZE,
)

# The MACs close both handshake messages: MAC1 covers everything before it, MAC2 everything before MAC2.
MAC1_OFFSET_FROM_END = 2 * MAC_LEN
MAC2_OFFSET_FROM_END = MAC_LEN


def _require(value: bytes, length: int, name: str) -> None:
    if len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, not {len(value)}")


def _require_index(value: int, name: str) -> None:
    if not 0 <= value < 2**32:
        raise ValueError(f"{name} must fit in 32 bits")


@dataclass(frozen=True, slots=True)
class Initiation:
    """Handshake initiation, 148 bytes (section 5.4.2)."""

    sender_index: int
    unencrypted_ephemeral: bytes
    encrypted_static: bytes
    encrypted_timestamp: bytes
    mac1: bytes = ZERO_MAC
    mac2: bytes = ZERO_MAC

    def __post_init__(self) -> None:
        _require_index(self.sender_index, "sender_index")
        _require(self.unencrypted_ephemeral, KEY_LEN, "unencrypted_ephemeral")
        _require(self.encrypted_static, KEY_LEN + TAG_LEN, "encrypted_static")
        _require(self.encrypted_timestamp, TIMESTAMP_LEN + TAG_LEN, "encrypted_timestamp")
        _require(self.mac1, MAC_LEN, "mac1")
        _require(self.mac2, MAC_LEN, "mac2")

    def pack(self) -> bytes:
        return INITIATION.pack(
            MessageType.INITIATION,
            self.sender_index,
            self.unencrypted_ephemeral,
            self.encrypted_static,
            self.encrypted_timestamp,
            self.mac1,
            self.mac2,
        )

    @classmethod
    def parse(cls, data: bytes) -> "Initiation":
        _check_frame(data, MessageType.INITIATION, INITIATION_SIZE)
        _, *fields = INITIATION.unpack(data)
        return cls(*fields)


@dataclass(frozen=True, slots=True)
class Response:
    """Handshake response, 92 bytes (section 5.4.3)."""

    sender_index: int
    receiver_index: int
    unencrypted_ephemeral: bytes
    encrypted_nothing: bytes
    mac1: bytes = ZERO_MAC
    mac2: bytes = ZERO_MAC

    def __post_init__(self) -> None:
        _require_index(self.sender_index, "sender_index")
        _require_index(self.receiver_index, "receiver_index")
        _require(self.unencrypted_ephemeral, KEY_LEN, "unencrypted_ephemeral")
        _require(self.encrypted_nothing, TAG_LEN, "encrypted_nothing")
        _require(self.mac1, MAC_LEN, "mac1")
        _require(self.mac2, MAC_LEN, "mac2")

    def pack(self) -> bytes:
        return RESPONSE.pack(
            MessageType.RESPONSE,
            self.sender_index,
            self.receiver_index,
            self.unencrypted_ephemeral,
            self.encrypted_nothing,
            self.mac1,
            self.mac2,
        )

    @classmethod
    def parse(cls, data: bytes) -> "Response":
        _check_frame(data, MessageType.RESPONSE, RESPONSE_SIZE)
        _, *fields = RESPONSE.unpack(data)
        return cls(*fields)


@dataclass(frozen=True, slots=True)
class CookieReply:
    """Cookie reply, 64 bytes (section 5.4.7): sent instead of a response when under load."""

    receiver_index: int
    nonce: bytes
    encrypted_cookie: bytes

    def __post_init__(self) -> None:
        _require_index(self.receiver_index, "receiver_index")
        _require(self.nonce, COOKIE_NONCE_LEN, "nonce")
        _require(self.encrypted_cookie, MAC_LEN + TAG_LEN, "encrypted_cookie")

    def pack(self) -> bytes:
        return COOKIE_REPLY.pack(MessageType.COOKIE_REPLY, self.receiver_index, self.nonce, self.encrypted_cookie)

    @classmethod
    def parse(cls, data: bytes) -> "CookieReply":
        _check_frame(data, MessageType.COOKIE_REPLY, COOKIE_REPLY_SIZE)
        _, *fields = COOKIE_REPLY.unpack(data)
        return cls(*fields)


@dataclass(frozen=True, slots=True)
class Transport:
    """Transport data, 32 bytes and up (section 5.4.6). An empty plaintext is a keepalive."""

    receiver_index: int
    counter: int
    encrypted_packet: bytes

    def __post_init__(self) -> None:
        _require_index(self.receiver_index, "receiver_index")
        if not 0 <= self.counter < 2**64:
            raise ValueError("counter must fit in 64 bits")
        if len(self.encrypted_packet) < TAG_LEN:
            raise ValueError("encrypted_packet holds at least the 16-byte tag")

    def pack(self) -> bytes:
        return TRANSPORT_HEADER.pack(MessageType.TRANSPORT, self.receiver_index, self.counter) + self.encrypted_packet

    @classmethod
    def parse(cls, data: bytes) -> "Transport":
        if len(data) < TRANSPORT_MIN_SIZE:
            _check_type(data, MessageType.TRANSPORT)
            raise Rejected(Drop.TOO_SHORT, f"{len(data)} bytes")
        type_word, receiver_index, counter = TRANSPORT_HEADER.unpack_from(data)
        if type_word != MessageType.TRANSPORT:
            _check_type(data, MessageType.TRANSPORT)
        return cls(receiver_index, counter, bytes(data[TRANSPORT_HEADER_SIZE:]))


Message = Union[Initiation, Response, CookieReply, Transport]

_BY_TYPE: dict[int, type] = {
    MessageType.INITIATION: Initiation,
    MessageType.RESPONSE: Response,
    MessageType.COOKIE_REPLY: CookieReply,
    MessageType.TRANSPORT: Transport,
}


def message_type(data: bytes) -> MessageType:
    """The type of a datagram, checking the type byte and the reserved zeros but not the size."""
    if not data:
        raise Rejected(Drop.EMPTY)
    try:
        kind = MessageType(data[0])
    except ValueError:
        raise Rejected(Drop.UNKNOWN_TYPE, f"type {data[0]}") from None
    if len(data) < 4:
        raise Rejected(Drop.TOO_SHORT if kind == MessageType.TRANSPORT else Drop.WRONG_SIZE, f"{len(data)} bytes")
    if data[1:4] != b"\0\0\0":
        raise Rejected(Drop.RESERVED_NONZERO)
    return kind


def parse(data: bytes) -> Message:
    """Parse any datagram into one of the four messages, or raise ``Rejected`` with a named reason."""
    return _BY_TYPE[message_type(data)].parse(data)


def _check_type(data: bytes, expected: MessageType) -> None:
    kind = message_type(data)
    if kind != expected:
        raise Rejected(Drop.UNEXPECTED_TYPE, f"expected {expected.name}, got {kind.name}")


def _check_frame(data: bytes, expected: MessageType, size: int) -> None:
    _check_type(data, expected)
    check_size(data, expected, size)


_HANDSHAKE_SIZES = {MessageType.INITIATION: INITIATION_SIZE, MessageType.RESPONSE: RESPONSE_SIZE,
                    MessageType.COOKIE_REPLY: COOKIE_REPLY_SIZE}


def check_size(data: bytes, kind: MessageType, size: int = 0) -> None:
    """Refuse a handshake message or cookie reply whose size is not its type's (the type already checked,
    by ``message_type``): what ``parse`` checks first, without building the message."""
    size = size or _HANDSHAKE_SIZES[kind]
    if len(data) != size:
        raise Rejected(Drop.WRONG_SIZE, f"{kind.name} is {size} bytes, got {len(data)}")


def macs_of(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a packed handshake message into (bytes covered by MAC1, MAC1, MAC2)."""
    return (
        data[:-MAC1_OFFSET_FROM_END],
        data[-MAC1_OFFSET_FROM_END:-MAC2_OFFSET_FROM_END],
        data[-MAC2_OFFSET_FROM_END:],
    )
