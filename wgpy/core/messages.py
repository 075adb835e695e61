"""The four WireGuard messages on the wire: whitepaper sections 5.4.2 to 5.4.7 (kernel messages.h).

Each message is written out once, as a table of its fields (:data:`TABLES`): name, ``struct`` code and
what the whitepaper calls the field or computes it as. Everything else is derived from the tables: the
offsets (:data:`LAYOUTS`), one ``struct.Struct`` per message (:data:`INITIATION`, ...), one frozen
record per message (record.py) with its checks and ``pack``/``parse`` (:class:`Initiation`, ...), and outside the
core the labels of ``wgpy decode`` and the fields ``wgpy.craft`` mutates.

Every message starts with a little-endian 32-bit word whose low byte is the type and whose three high
bytes are reserved zeros, so one ``I`` field checks both at once. ``parse`` is the only place that checks
sizes and the type word; code after it trusts the fields. For any byte string ``data``, ``parse(data)``
either returns a message ``m`` with ``m.pack() == data`` or raises :class:`~wgpy.core.errors.Rejected`
with a named :class:`~wgpy.core.errors.Drop` reason (``tests/test_messages.py`` proves both with Hypothesis).
"""

from __future__ import annotations

import struct
from operator import attrgetter

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
from .record import record, replace

ZERO_MAC = bytes(MAC_LEN)

# ------------------------------------------------------------------------------------------ the tables

INDEX = "I"        # a 32-bit session index, little-endian
COUNTER = "Q"      # the 64-bit transport counter, little-endian
REST = ""          # the encrypted packet: the rest of the datagram (at least the tag)
MAC = f"{MAC_LEN}s"


def _bytes(n: int) -> str:
    return f"{n}s"


@record
class WireField:
    """One field of a message: its name in the whitepaper, its ``struct`` code, what the whitepaper calls
    it or computes it as, and where it is (``size`` None: the encrypted packet, to the end). ``default``
    is what the message's record fills in when it is not given (the MACs: zeros until cookie.py adds
    them); ``attribute`` the record's name for the field, where it is shorter than the whitepaper's."""

    name: str
    code: str
    whitepaper: str
    default: bytes | None = None
    attribute: str = ""
    offset: int = 0
    size: int | None = 0


# The type word, as two fields (what a reader sees), packed as one ``I`` (what parse checks).
TYPE_WORD = "I"
HEADER = (WireField("message_type", "B", "the message type"), WireField("reserved_zero", _bytes(3), "three zero bytes"))

TABLES: dict[MessageType, tuple[WireField, ...]] = {
    MessageType.INITIATION: (                       # section 5.4.2
        WireField("sender_index", INDEX, "I_i"),
        WireField("unencrypted_ephemeral", _bytes(KEY_LEN), "E_pub_i"),
        WireField("encrypted_static", _bytes(KEY_LEN + TAG_LEN), "AEAD(k, 0, S_pub_i, H): 32 bytes and a 16-byte tag"),
        WireField("encrypted_timestamp", _bytes(TIMESTAMP_LEN + TAG_LEN),
                  "AEAD(k, 0, TAI64N timestamp, H): 12 bytes and a 16-byte tag"),
        WireField("mac1", MAC, "HASH(LABEL_MAC1 || S_pub_r)", ZERO_MAC),     # the MACs: their keys
        WireField("mac2", MAC, "cookie", ZERO_MAC),
    ),
    MessageType.RESPONSE: (                         # section 5.4.3
        WireField("sender_index", INDEX, "I_r"),
        WireField("receiver_index", INDEX, "I_i"),
        WireField("unencrypted_ephemeral", _bytes(KEY_LEN), "E_pub_r"),
        WireField("encrypted_nothing", _bytes(TAG_LEN), "AEAD(k, 0, ε, H): the tag alone"),
        WireField("mac1", MAC, "HASH(LABEL_MAC1 || S_pub_i)", ZERO_MAC),
        WireField("mac2", MAC, "cookie", ZERO_MAC),
    ),
    MessageType.COOKIE_REPLY: (                     # section 5.4.7
        WireField("receiver_index", INDEX, "the sender_index of the message answered"),
        WireField("nonce", _bytes(COOKIE_NONCE_LEN), "random XChaCha20-Poly1305 nonce"),
        WireField("encrypted_cookie", _bytes(MAC_LEN + TAG_LEN),
                  "XAEAD(HASH(LABEL_COOKIE || S_pub_r), nonce, τ, mac1 answered): 16 + 16-byte tag"),
    ),
    MessageType.TRANSPORT: (                        # section 5.4.6
        WireField("receiver_index", INDEX, "the receiver's session index"),
        WireField("counter", COUNTER, "N"),
        WireField("encrypted_encapsulated_packet", REST, "AEAD(T_send, N, P, ε)", attribute="encrypted_packet"),
    ),
}


def _layout(rows: tuple[WireField, ...]) -> tuple[WireField, ...]:
    """The whole message, type word included, each field with its offset and size."""
    fields, offset = [], 0
    for row in HEADER + rows:
        size = struct.calcsize("<" + row.code) if row.code else None
        fields.append(replace(row, offset=offset, size=size))
        offset += size or 0
    return tuple(fields)


LAYOUTS: dict[MessageType, tuple[WireField, ...]] = {kind: _layout(rows) for kind, rows in TABLES.items()}


def _struct(kind: MessageType) -> struct.Struct:
    """The type word and every field of fixed size."""
    return struct.Struct("<" + TYPE_WORD + "".join(row.code for row in TABLES[kind]))


INITIATION = _struct(MessageType.INITIATION)
RESPONSE = _struct(MessageType.RESPONSE)
COOKIE_REPLY = _struct(MessageType.COOKIE_REPLY)
TRANSPORT_HEADER = _struct(MessageType.TRANSPORT)

# What parse requires: the exact size of each handshake message, the least size of a transport message.
SIZES = {MessageType.INITIATION: INITIATION_SIZE, MessageType.RESPONSE: RESPONSE_SIZE,
         MessageType.COOKIE_REPLY: COOKIE_REPLY_SIZE, MessageType.TRANSPORT: TRANSPORT_MIN_SIZE}
assert (INITIATION.size, RESPONSE.size, COOKIE_REPLY.size, TRANSPORT_HEADER.size) == (
    INITIATION_SIZE,
    RESPONSE_SIZE,
    COOKIE_REPLY_SIZE,
    TRANSPORT_HEADER_SIZE,
)

# The MACs close both handshake messages: MAC1 covers everything before it, MAC2 everything before MAC2.
MAC1_OFFSET_FROM_END = 2 * MAC_LEN
MAC2_OFFSET_FROM_END = MAC_LEN

# ------------------------------------------------------------------------------------------ the messages


class _Message:
    """What the four messages share: checks and ``pack``/``parse``, from the message's table."""

    __slots__ = ()
    # Set on each message's class: KIND (its MessageType), _STRUCT (its struct.Struct), _CHECKS ((attribute,
    # struct code, size) after the type word) and _VALUES (an attrgetter of its fields, in order).

    def __post_init__(self) -> None:
        for name, code, size in self._CHECKS:
            value = getattr(self, name)
            if code == INDEX:
                if not 0 <= value < 2**32:
                    raise ValueError(f"{name} must fit in 32 bits")
            elif code == COUNTER:
                if not 0 <= value < 2**64:
                    raise ValueError(f"{name} must fit in 64 bits")
            elif code == REST:
                if len(value) < TAG_LEN:
                    raise ValueError(f"{name} holds at least the 16-byte tag")
            elif len(value) != size:
                raise ValueError(f"{name} must be {size} bytes, not {len(value)}")

    def pack(self) -> bytes:
        return self._STRUCT.pack(self.KIND, *self._VALUES(self))

    @classmethod
    def parse(cls, data: bytes):
        _check_frame(data, cls.KIND, cls._STRUCT.size)
        _, *fields = cls._STRUCT.unpack(data)
        return cls(*fields)


class _Transport(_Message):
    """The transport message's own ``pack``/``parse``: its encrypted packet runs to the end."""

    __slots__ = ()

    def pack(self) -> bytes:
        return self._STRUCT.pack(self.KIND, self.receiver_index, self.counter) + self.encrypted_packet

    @classmethod
    def parse(cls, data: bytes):
        if len(data) < TRANSPORT_MIN_SIZE:
            _check_type(data, MessageType.TRANSPORT)
            raise Rejected(Drop.TOO_SHORT, f"{len(data)} bytes")
        type_word, receiver_index, counter = cls._STRUCT.unpack_from(data)
        if type_word != MessageType.TRANSPORT:
            _check_type(data, MessageType.TRANSPORT)
        return cls(receiver_index, counter, bytes(data[TRANSPORT_HEADER_SIZE:]))


def _message_class(name: str, kind: MessageType, doc: str, base: type = _Message) -> type:
    """The frozen record (record.py) of a message: one field per row of its table, in order."""
    rows = TABLES[kind]
    attributes = tuple(row.attribute or row.name for row in rows)
    namespace = {"__doc__": doc, "__module__": __name__, "KIND": kind,
                 "__annotations__": {a: "int" if row.code in (INDEX, COUNTER) else "bytes" for a, row in zip(attributes, rows)},
                 **{a: row.default for a, row in zip(attributes, rows) if row.default is not None}}
    cls = record(type(name, (base,), namespace))
    cls._STRUCT = _struct(kind)
    cls._CHECKS = tuple((attribute, row.code, struct.calcsize(row.code) if row.code else 0)
                        for attribute, row in zip(attributes, rows))
    cls._VALUES = attrgetter(*attributes)
    return cls


Initiation = _message_class("Initiation", MessageType.INITIATION, "Handshake initiation, 148 bytes (section 5.4.2).")
Response = _message_class("Response", MessageType.RESPONSE, "Handshake response, 92 bytes (section 5.4.3).")
CookieReply = _message_class(
    "CookieReply", MessageType.COOKIE_REPLY, "Cookie reply, 64 bytes (section 5.4.7): sent instead of a response when under load."
)
Transport = _message_class(
    "Transport", MessageType.TRANSPORT, "Transport data, 32 bytes and up (section 5.4.6). An empty plaintext is a keepalive.",
    _Transport,
)
Message = Initiation | Response | CookieReply | Transport

_BY_TYPE: dict[int, type] = {cls.KIND: cls for cls in (Initiation, Response, CookieReply, Transport)}


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


def check_size(data: bytes, kind: MessageType, size: int = 0) -> None:
    """Refuse a handshake message or cookie reply whose size is not its type's (the type already checked,
    by ``message_type``): what ``parse`` checks first, without building the message."""
    size = size or SIZES[kind]
    if len(data) != size:
        raise Rejected(Drop.WRONG_SIZE, f"{kind.name} is {size} bytes, got {len(data)}")


def macs_of(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a packed handshake message into (bytes covered by MAC1, MAC1, MAC2)."""
    return (
        data[:-MAC1_OFFSET_FROM_END],
        data[-MAC1_OFFSET_FROM_END:-MAC2_OFFSET_FROM_END],
        data[-MAC2_OFFSET_FROM_END:],
    )
