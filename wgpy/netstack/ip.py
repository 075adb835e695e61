"""IPv4 (RFC 791) and IPv6 (RFC 8200) headers: ``parse`` checks a packet, ``build_ipv4``/``build_ipv6`` make one.

``parse`` is the one place that checks an IP header; what comes after it trusts the fields. It returns a
:class:`Packet` (a named tuple: every TCP segment of a bulk transfer passes here, so no per-packet object
heavier than a tuple) or the :class:`~wgpy.netstack.errors.NetDrop` that refuses the packet. The payload is
a ``memoryview`` slice of the packet given, so nothing is copied.

No fragment is reassembled: a first, middle or last fragment is ``NetDrop.FRAGMENT`` (the stack advertises
an MSS that fits the tunnel MTU, and its own packets are never fragmented).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .checksum import checksum
from .errors import NetDrop

# IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
ICMP = 1
TCP = 6
UDP = 17
ICMPV6 = 58
# IPv6 extension headers the stack walks (RFC 8200 4), and the end of the chain.
HOP_BY_HOP = 0
ROUTING = 43
FRAGMENT_HEADER = 44
DESTINATION_OPTIONS = 60
NO_NEXT_HEADER = 59

IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")  # version/IHL, TOS, total length, id, flags/offset, TTL, protocol, checksum, addresses
IPV6_HEADER = struct.Struct("!IHBB16s16s")    # version/class/flow label, payload length, next header, hop limit, addresses
IPV4_HEADER_LEN = 20
IPV6_HEADER_LEN = 40
DEFAULT_TTL = 64  # Linux's net.ipv4.ip_default_ttl and net.ipv6.conf.*.hop_limit

_MORE_FRAGMENTS = 0x2000
_FRAGMENT_OFFSET = 0x1FFF
_DONT_FRAGMENT = 0x4000


class Packet(NamedTuple):
    """A checked IP packet. ``source`` and ``destination`` are 4 or 16 bytes; ``ttl`` is the hop limit in
    IPv6; ``payload`` is the upper-layer data (after any IPv6 extension headers) as a memoryview."""

    version: int
    source: bytes
    destination: bytes
    protocol: int
    ttl: int
    payload: memoryview


def parse(packet: bytes | memoryview) -> Packet | NetDrop:
    """The packet in ``packet``, checked, or the reason it is refused. Never raises on any input."""
    if not packet:
        return NetDrop.NOT_IP
    version = packet[0] >> 4
    if version == 4:
        return _parse_ipv4(packet)
    if version == 6:
        return _parse_ipv6(packet)
    return NetDrop.NOT_IP


def _parse_ipv4(packet: bytes | memoryview) -> Packet | NetDrop:
    size = len(packet)
    if size < IPV4_HEADER_LEN:
        return NetDrop.TRUNCATED
    first, _, total_length, _, fragment, ttl, protocol, _, source, destination = IPV4_HEADER.unpack_from(packet)
    header_len = (first & 0x0F) << 2
    # RFC 791 3.1: IHL counts 32-bit words, five at least; the total length covers header and data.
    if header_len < IPV4_HEADER_LEN or total_length < header_len:
        return NetDrop.BAD_HEADER
    if total_length > size:
        return NetDrop.TRUNCATED
    view = memoryview(packet)
    # RFC 791 3.1: the header checksum of a correct header, summed with itself, complements to zero.
    if checksum(view[:header_len]):
        return NetDrop.BAD_IP_CHECKSUM
    # RFC 791 3.2: a fragment has More Fragments set or a non-zero offset. Options (IHL > 5) are skipped.
    if fragment & (_MORE_FRAGMENTS | _FRAGMENT_OFFSET):
        return NetDrop.FRAGMENT
    # Bytes past the total length (link padding) are not part of the packet.
    return Packet(4, source, destination, protocol, ttl, view[header_len:total_length])


def _parse_ipv6(packet: bytes | memoryview) -> Packet | NetDrop:
    size = len(packet)
    if size < IPV6_HEADER_LEN:
        return NetDrop.TRUNCATED
    _, payload_length, next_header, hop_limit, source, destination = IPV6_HEADER.unpack_from(packet)
    end = IPV6_HEADER_LEN + payload_length
    # RFC 8200 3: the payload length counts everything after the fixed header. A zero length with a
    # Jumbo Payload option (RFC 2675) never fits a tunnel MTU: the chain walk below finds it truncated.
    if end > size:
        return NetDrop.TRUNCATED
    at = IPV6_HEADER_LEN
    # RFC 8200 4.1: extension headers in a chain, each naming the next; hop-by-hop only right after the header.
    while next_header in (HOP_BY_HOP, ROUTING, DESTINATION_OPTIONS, FRAGMENT_HEADER):
        if next_header == HOP_BY_HOP and at != IPV6_HEADER_LEN:
            return NetDrop.BAD_HEADER
        if at + 8 > end:
            return NetDrop.TRUNCATED
        if next_header == FRAGMENT_HEADER:
            # RFC 8200 4.5. An "atomic fragment" (offset 0, M clear; RFC 6946) is a whole packet, but it is
            # only ever sent in answer to a Packet Too Big below 1280 bytes: refused like any fragment.
            return NetDrop.FRAGMENT
        length = (packet[at + 1] + 1) << 3
        if at + length > end:
            return NetDrop.TRUNCATED
        if next_header == ROUTING:
            # RFC 8200 4.4: a host is the final destination only when no segments are left (this stack
            # does not forward); with segments left and any routing type it cannot process, discard.
            if packet[at + 3] != 0:
                return NetDrop.UNSUPPORTED_OPTION
        elif not _options_acceptable(packet, at + 2, at + length):
            return NetDrop.UNSUPPORTED_OPTION
        next_header = packet[at]
        at += length
    if next_header == NO_NEXT_HEADER:
        return NetDrop.UNKNOWN_PROTOCOL
    return Packet(6, source, destination, next_header, hop_limit, memoryview(packet)[at:end])


def _options_acceptable(packet: bytes | memoryview, at: int, end: int) -> bool:
    """Whether the TLV options of a hop-by-hop or destination options header in ``packet[at:end]`` may be
    skipped: RFC 8200 4.2, an unrecognised option whose type's two high bits are not 00 means discard."""
    while at < end:
        kind = packet[at]
        if kind == 0:   # Pad1
            at += 1
            continue
        if at + 2 > end or at + 2 + packet[at + 1] > end:
            return False
        if kind != 1 and kind & 0xC0:   # PadN is known; anything else is unknown here
            return False
        at += 2 + packet[at + 1]
    return True


def build_ipv4(source: bytes, destination: bytes, protocol: int, payload: bytes, ttl: int = DEFAULT_TTL,
               identification: int = 0) -> bytes:
    """An IPv4 packet with no options, Don't Fragment set (as Linux sets it for TCP and path-MTU-probed
    traffic), its header checksum computed."""
    header = IPV4_HEADER.pack(0x45, 0, IPV4_HEADER_LEN + len(payload), identification, _DONT_FRAGMENT, ttl,
                              protocol, 0, source, destination)
    check = checksum(header)
    return header[:10] + check.to_bytes(2, "big") + header[12:] + payload


def build_ipv6(source: bytes, destination: bytes, protocol: int, payload: bytes, ttl: int = DEFAULT_TTL) -> bytes:
    """An IPv6 packet with no extension headers (traffic class and flow label zero)."""
    return IPV6_HEADER.pack(0x60000000, len(payload), protocol, ttl, source, destination) + payload


def build(source: bytes, destination: bytes, protocol: int, payload: bytes, ttl: int = DEFAULT_TTL) -> bytes:
    """An IPv4 or IPv6 packet, by the length of the addresses."""
    if len(source) == 4:
        return build_ipv4(source, destination, protocol, payload, ttl)
    return build_ipv6(source, destination, protocol, payload, ttl)


def header_overhead(version: int) -> int:
    """Bytes of IP header the stack puts before a payload."""
    return IPV4_HEADER_LEN if version == 4 else IPV6_HEADER_LEN
