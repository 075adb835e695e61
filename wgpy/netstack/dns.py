"""DNS stub queries for A and AAAA records, sans-IO: RFC 1035 4.1 (messages), 4.1.4 (compression),
RFC 3596 (AAAA).

The tunnel's resolver (``DNS =`` of a wg-quick file) is asked through the tunnel, so a name given to
``wgpy proxy`` never leaks to the host's resolver. This module only writes the query and reads the answer;
who sends it, when and how often is the runtime's business. A malformed answer never raises: it is a
:class:`DnsDrop`. A name that cannot be asked (too long, an empty label) is a ``ValueError`` at once.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import Enum, IntEnum

HEADER = struct.Struct("!HHHHHH")        # ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT (RFC 1035 4.1.1)
QUESTION_TAIL = struct.Struct("!HH")     # QTYPE, QCLASS (4.1.2)
RECORD_TAIL = struct.Struct("!HHIH")     # TYPE, CLASS, TTL, RDLENGTH (4.1.3)
CLASS_IN = 1
MAX_NAME = 255                           # 2.3.4: octets of a name on the wire
MAX_LABEL = 63
MAX_POINTERS = 32                        # compression pointers followed in one name: more is a loop
# Flags (4.1.1): QR is bit 15, OPCODE bits 11-14, TC bit 9, RD bit 8, RCODE bits 0-3.
QR, TC, RD = 0x8000, 0x0200, 0x0100


class QType(IntEnum):
    A = 1
    CNAME = 5
    AAAA = 28


class RCode(IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5


class DnsDrop(Enum):
    """Why an answer is not taken. The value is the sentence."""

    TOO_SHORT = "message is shorter than its header or its records say"
    NOT_A_RESPONSE = "QR bit is clear: this is a query, not a response"
    WRONG_ID = "ID does not match the query's"
    WRONG_QUESTION = "question section does not repeat the query"
    TRUNCATED = "TC bit set: the answer did not fit a datagram"
    BAD_NAME = "a name is malformed (label too long, name too long or a reserved label type)"
    POINTER_LOOP = "compression pointers loop or point forward"
    BAD_RDATA = "an A or AAAA record's data has the wrong length"


@dataclass(frozen=True)
class Answer:
    """A response that matched its query: the addresses found (canonical text), the smallest TTL among
    them, and the response code (NXDOMAIN is an answer too: the name does not exist)."""

    rcode: int
    addresses: tuple[str, ...] = ()
    ttl: int = 0


def encode_name(name: str) -> bytes:
    """A host name as labels (RFC 1035 3.1). Letters are lowered: answers echo the question, and
    4.1.4's comparisons are case-insensitive (RFC 4343)."""
    name = name.rstrip(".") if name not in (".", "") else name
    if not name or name == ".":
        raise ValueError("an empty name cannot be asked")
    try:
        raw = name.lower().encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"{name!r} is not an ASCII name (IDNA is the client's job)") from None
    out = bytearray()
    for label in raw.split(b"."):
        if not label or len(label) > MAX_LABEL:
            raise ValueError(f"{name!r} has an empty label or one longer than {MAX_LABEL} octets")
        out += bytes([len(label)]) + label
    out += b"\0"
    if len(out) > MAX_NAME:
        raise ValueError(f"{name!r} is longer than {MAX_NAME} octets")
    return bytes(out)


def build_query(name: str, qtype: QType, ident: int) -> bytes:
    """One question, recursion desired (4.1.1: RD), as a stub resolver asks."""
    if not 0 <= ident <= 0xFFFF:
        raise ValueError("a DNS ID is 16 bits")
    return HEADER.pack(ident, RD, 1, 0, 0, 0) + encode_name(name) + QUESTION_TAIL.pack(qtype, CLASS_IN)


def _read_name(data: bytes, offset: int) -> tuple[bytes, int] | DnsDrop:
    """The name at offset, lowered, and the offset after it in the message (4.1.4: a pointer ends it)."""
    labels: list[bytes] = []
    end = None
    pointers = 0
    length = 0
    while True:
        if offset >= len(data):
            return DnsDrop.TOO_SHORT
        size = data[offset]
        if size & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                return DnsDrop.TOO_SHORT
            target = ((size & 0x3F) << 8) | data[offset + 1]
            if end is None:
                end = offset + 2
            pointers += 1
            # A pointer to itself or forward can only loop (4.1.4 points to a prior occurrence).
            if pointers > MAX_POINTERS or target >= offset:
                return DnsDrop.POINTER_LOOP
            offset = target
            continue
        if size & 0xC0:
            return DnsDrop.BAD_NAME    # 0x40 and 0x80 are reserved label types (RFC 6891 dropped 0x40)
        offset += 1
        if size == 0:
            break
        if offset + size > len(data):
            return DnsDrop.TOO_SHORT
        length += size + 1
        if length + 1 > MAX_NAME:
            return DnsDrop.BAD_NAME
        labels.append(data[offset:offset + size].lower())
        offset += size
    return b".".join(labels), end if end is not None else offset


def parse_response(data: bytes, ident: int, name: str, qtype: QType) -> Answer | DnsDrop:
    """The answer to ``build_query(name, qtype, ident)``, or why ``data`` is not it. Records of ``qtype``
    count when their owner is the name asked or a CNAME target reached from it (RFC 1034 3.6.2)."""
    if len(data) < HEADER.size:
        return DnsDrop.TOO_SHORT
    got_id, flags, qdcount, ancount, _, _ = HEADER.unpack_from(data)
    if not flags & QR:
        return DnsDrop.NOT_A_RESPONSE
    if got_id != ident:
        return DnsDrop.WRONG_ID
    if flags & TC:
        return DnsDrop.TRUNCATED
    try:
        asked = encode_name(name)
    except ValueError:
        return DnsDrop.WRONG_QUESTION
    question = asked + QUESTION_TAIL.pack(qtype, CLASS_IN)
    offset = HEADER.size
    if qdcount != 1:
        return DnsDrop.WRONG_QUESTION
    read = _read_name(data, offset)
    if isinstance(read, DnsDrop):
        return read
    owner, offset = read
    if offset + QUESTION_TAIL.size > len(data):
        return DnsDrop.TOO_SHORT
    if _wire(owner) + data[offset:offset + QUESTION_TAIL.size] != question:
        return DnsDrop.WRONG_QUESTION
    offset += QUESTION_TAIL.size
    rcode = flags & 0x000F
    names = {owner}
    addresses: list[str] = []
    ttl: int | None = None
    for _ in range(ancount):
        read = _read_name(data, offset)
        if isinstance(read, DnsDrop):
            return read
        owner, offset = read
        if offset + RECORD_TAIL.size > len(data):
            return DnsDrop.TOO_SHORT
        rtype, rclass, rttl, rdlength = RECORD_TAIL.unpack_from(data, offset)
        offset += RECORD_TAIL.size
        if offset + rdlength > len(data):
            return DnsDrop.TOO_SHORT
        rdata = data[offset:offset + rdlength]
        if rclass == CLASS_IN and owner in names:
            if rtype == QType.CNAME:
                target = _read_name(data, offset)
                if isinstance(target, DnsDrop):
                    return target
                names.add(target[0])
            elif rtype == qtype:
                if len(rdata) != (4 if qtype == QType.A else 16):
                    return DnsDrop.BAD_RDATA
                addresses.append(str(ipaddress.ip_address(rdata)))
                ttl = rttl if ttl is None else min(ttl, rttl)
        offset += rdlength
    return Answer(rcode, tuple(addresses), ttl or 0)


def _wire(dotted: bytes) -> bytes:
    """A lowered dotted name (as _read_name returns it) back in labels, to compare with the question."""
    if not dotted:
        return b"\0"
    return b"".join(bytes([len(label)]) + label for label in dotted.split(b".")) + b"\0"


def build_response(query: bytes, addresses: list[str], *, rcode: int = RCode.NOERROR, ttl: int = 60) -> bytes | None:
    """An authoritative answer to ``query`` with ``addresses`` of its type (the others left out), or None
    when ``query`` is not one question. For tests and the stand-in resolver; a name server it is not."""
    if len(query) < HEADER.size:
        return None
    ident, flags, qdcount, _, _, _ = HEADER.unpack_from(query)
    if qdcount != 1 or flags & QR:
        return None
    read = _read_name(query, HEADER.size)
    if isinstance(read, DnsDrop) or read[1] + QUESTION_TAIL.size > len(query):
        return None
    _, end = read
    qtype, _ = QUESTION_TAIL.unpack_from(query, end)
    question = query[HEADER.size:end + QUESTION_TAIL.size]
    records = b""
    count = 0
    for text in addresses:
        packed = ipaddress.ip_address(text).packed
        if (qtype, len(packed)) in ((QType.A, 4), (QType.AAAA, 16)):
            # 0xC00C: a pointer to the question's name, right after the header (4.1.4).
            records += struct.pack("!H", 0xC00C) + RECORD_TAIL.pack(qtype, CLASS_IN, ttl, len(packed)) + packed
            count += 1
    return HEADER.pack(ident, QR | RD | 0x0080 | (rcode & 0xF), 1, count, 0, 0) + question + records
