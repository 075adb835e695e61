"""A stub resolver's two messages, sans-IO: the query for a name's addresses and the answer's addresses.

RFC 1035 4.1: a header, one question, and resource records whose names may be compressed (4.1.4). Only
what a stub resolver needs: A (RFC 1035 3.4.1) and AAAA (RFC 3596 2.1) records, recursion desired. The
runtime sends the query over UDP through the tunnel to the ``DNS =`` servers of the configuration and
retries; nothing here touches a socket. A malformed or unrelated answer never raises: it is an
:class:`Answer` whose ``refused`` names why.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum

HEADER = struct.Struct("!HHHHHH")     # ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT (RFC 1035 4.1.1)
QUESTION_TAIL = struct.Struct("!HH")  # QTYPE, QCLASS (4.1.2)
RECORD = struct.Struct("!HHIH")       # TYPE, CLASS, TTL, RDLENGTH after the owner name (4.1.3)

TYPE_A, TYPE_AAAA, CLASS_IN = 1, 28, 1
FLAG_QR, FLAG_TC, FLAG_RD = 0x8000, 0x0200, 0x0100
RCODE_MASK = 0x000F
RCODE_NXDOMAIN = 3
MAX_NAME = 253
MAX_POINTERS = 32   # compression pointers followed per name before a loop is assumed


class DnsRefused(Enum):
    """Why an answer gives no addresses. The value is the human-readable sentence."""

    MALFORMED = "DNS answer is malformed"
    NOT_OURS = "DNS answer does not answer our query (ID or question differ)"
    TRUNCATED = "DNS answer was truncated (TC): the name has more records than a UDP answer holds"
    NO_SUCH_NAME = "the name does not exist (NXDOMAIN)"
    SERVER_FAILURE = "the DNS server reported an error"


@dataclass(frozen=True)
class Answer:
    addresses: tuple[bytes, ...] = ()    # packed, 4 or 16 bytes, in the answer's order
    refused: DnsRefused | None = None


def encode_name(name: str) -> bytes:
    """A domain name as labels (RFC 1035 3.1). Raises ValueError for a name that cannot be one."""
    name = name.rstrip(".")
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"not a domain name: {name!r}")
    out = bytearray()
    for label in name.split("."):
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(raw) <= 63:
            raise ValueError(f"not a domain name: {name!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out + b"\0")


def build_query(name: str, record_type: int, ident: int) -> bytes:
    """The query for ``name``'s records of ``record_type`` (TYPE_A or TYPE_AAAA), with ID ``ident``."""
    return HEADER.pack(ident, FLAG_RD, 1, 0, 0, 0) + encode_name(name) + QUESTION_TAIL.pack(record_type, CLASS_IN)


def _skip_name(data: bytes, offset: int) -> int | None:
    """The offset after the name at ``offset`` (a pointer ends it, 4.1.4); None if it runs off the end."""
    for _ in range(MAX_POINTERS * 4):
        if offset >= len(data):
            return None
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2 if offset + 2 <= len(data) else None
        if length & 0xC0:
            return None   # the 01 and 10 label types are reserved (RFC 6891 drops EDNS0's extended labels)
        offset += 1 + length
    return None


def parse_answer(data: bytes, ident: int, question: bytes, record_type: int) -> Answer:
    """The addresses an answer to ``build_query(...)`` (whose bytes are ``question``) gives."""
    if len(data) < HEADER.size:
        return Answer(refused=DnsRefused.MALFORMED)
    answer_id, flags, questions, answers, _, _ = HEADER.unpack_from(data)
    if answer_id != ident or not flags & FLAG_QR or questions != 1:
        return Answer(refused=DnsRefused.NOT_OURS)
    end = _skip_name(data, HEADER.size)
    if end is None or end + QUESTION_TAIL.size > len(data):
        return Answer(refused=DnsRefused.MALFORMED)
    end += QUESTION_TAIL.size
    if data[HEADER.size:end].lower() != question[HEADER.size:].lower():
        return Answer(refused=DnsRefused.NOT_OURS)
    if flags & FLAG_TC:
        return Answer(refused=DnsRefused.TRUNCATED)
    rcode = flags & RCODE_MASK
    if rcode == RCODE_NXDOMAIN:
        return Answer(refused=DnsRefused.NO_SUCH_NAME)
    if rcode:
        return Answer(refused=DnsRefused.SERVER_FAILURE)
    size = 4 if record_type == TYPE_A else 16
    found, offset = [], end
    for _ in range(answers):
        offset = _skip_name(data, offset)
        if offset is None or offset + RECORD.size > len(data):
            return Answer(refused=DnsRefused.MALFORMED)
        kind, klass, _, length = RECORD.unpack_from(data, offset)
        offset += RECORD.size
        if offset + length > len(data):
            return Answer(refused=DnsRefused.MALFORMED)
        if kind == record_type and klass == CLASS_IN and length == size:   # CNAMEs before it are followed
            found.append(bytes(data[offset:offset + length]))
        offset += length
    return Answer(addresses=tuple(found))
