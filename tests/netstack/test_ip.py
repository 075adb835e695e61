"""IPv4 and IPv6 headers (wgpy/netstack/ip.py): checks, checksums against Linux's packets, extension headers."""

import struct

import pytest

from wgpy.netstack import ip
from wgpy.netstack.checksum import checksum
from wgpy.netstack.errors import NetDrop

from .linux_packets import (ADDRESS_V4, ADDRESS_V6, ECHO_REPLY_V4, ECHO_REQUEST_V4, ECHO_REQUEST_V6,
                            PORT_UNREACHABLE_V4, UDP_V4, UDP_V6)

A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A6, B6 = bytes.fromhex("fd00" + "00" * 13 + "01"), bytes.fromhex("fd00" + "00" * 13 + "02")


def test_linux_packets_parse():
    for packet, protocol in ((ECHO_REQUEST_V4, ip.ICMP), (ECHO_REPLY_V4, ip.ICMP), (UDP_V4, ip.UDP),
                             (PORT_UNREACHABLE_V4, ip.ICMP)):
        parsed = ip.parse(packet)
        assert (parsed.version, parsed.source, parsed.destination, parsed.protocol, parsed.ttl) == (4, ADDRESS_V4, ADDRESS_V4, protocol, 64)
        assert bytes(parsed.payload) == packet[20:]
    parsed = ip.parse(UDP_V6)
    assert (parsed.version, parsed.source, parsed.destination, parsed.protocol, parsed.ttl) == (6, ADDRESS_V6, ADDRESS_V6, ip.UDP, 64)
    assert bytes(parsed.payload) == UDP_V6[40:]
    assert ip.parse(ECHO_REQUEST_V6).protocol == ip.ICMPV6


def test_the_header_checksum_matches_linux():
    # Linux's echo request, rebuilt with its own identification and flags: the same checksum (0xa959).
    header = bytearray(ECHO_REQUEST_V4[:20])
    header[10:12] = b"\0\0"
    assert checksum(header) == 0xA959
    # The textbook example (Wikipedia, "IPv4 header checksum"): 0xb861.
    example = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert checksum(example) == 0xB861


def test_build_ipv4_computes_a_checksum_that_parse_accepts():
    packet = ip.build_ipv4(A4, B4, ip.UDP, b"payload", ttl=7, identification=0x1234)
    assert checksum(packet[:20]) == 0
    assert packet[:2] == b"\x45\x00" and struct.unpack("!H", packet[2:4])[0] == 27
    assert packet[6] & 0x40   # Don't Fragment
    parsed = ip.parse(packet)
    assert (parsed.source, parsed.destination, parsed.protocol, parsed.ttl, bytes(parsed.payload)) == (A4, B4, ip.UDP, 7, b"payload")


def test_build_ipv6_round_trips():
    packet = ip.build(A6, B6, ip.TCP, b"x" * 30)
    assert len(packet) == 70 and packet[0] >> 4 == 6 and packet[6] == ip.TCP and packet[7] == 64
    parsed = ip.parse(packet)
    assert (parsed.version, parsed.source, parsed.destination, bytes(parsed.payload)) == (6, A6, B6, b"x" * 30)


@pytest.mark.parametrize("packet, reason", [
    (b"", NetDrop.NOT_IP),
    (b"\x50" + bytes(30), NetDrop.NOT_IP),
    (ECHO_REQUEST_V4[:19], NetDrop.TRUNCATED),
    (ECHO_REQUEST_V4[:-1], NetDrop.TRUNCATED),                         # total length says more
    (b"\x44" + ECHO_REQUEST_V4[1:], NetDrop.BAD_HEADER),               # IHL 4
    (ECHO_REQUEST_V6[:39], NetDrop.TRUNCATED),
    (ECHO_REQUEST_V6[:-1], NetDrop.TRUNCATED),                         # payload length says more
])
def test_malformed_headers_are_named(packet, reason):
    assert ip.parse(packet) is reason


def test_a_wrong_header_checksum_is_refused():
    packet = bytearray(ECHO_REQUEST_V4)
    packet[10] ^= 1
    assert ip.parse(bytes(packet)) is NetDrop.BAD_IP_CHECKSUM
    packet = bytearray(ECHO_REQUEST_V4)
    packet[8] = 1                       # TTL changed, checksum not
    assert ip.parse(bytes(packet)) is NetDrop.BAD_IP_CHECKSUM


def _with_fragment_field(value: int) -> bytes:
    header = bytearray(ip.build_ipv4(A4, B4, ip.UDP, b"12345678"))
    header[6:8] = value.to_bytes(2, "big")
    header[10:12] = b"\0\0"
    header[10:12] = checksum(header[:20]).to_bytes(2, "big")
    return bytes(header)


@pytest.mark.parametrize("field", [0x2000, 0x0001, 0x2001, 0x1FFF])   # MF; offset; both; last fragment
def test_ipv4_fragments_are_dropped(field):
    assert ip.parse(_with_fragment_field(field)) is NetDrop.FRAGMENT


def test_df_alone_is_not_a_fragment():
    assert isinstance(ip.parse(_with_fragment_field(0x4000)), ip.Packet)


def test_ipv4_options_are_skipped_and_padding_is_trimmed():
    options = b"\x01\x01\x01\x00"   # NOP NOP NOP EOL
    header = bytearray(struct.pack("!BBHHHBBH4s4s", 0x46, 0, 24 + 5, 0, 0, 64, ip.UDP, 0, A4, B4) + options)
    header[10:12] = checksum(header).to_bytes(2, "big")
    parsed = ip.parse(bytes(header) + b"hello" + b"\0\0\0")   # three bytes of link padding
    assert bytes(parsed.payload) == b"hello"


def _v6(next_header: int, chain: bytes, payload: bytes = b"data") -> bytes:
    body = chain + payload
    return struct.pack("!IHBB16s16s", 0x60000000, len(body), next_header, 64, A6, B6) + body


def test_ipv6_extension_headers_are_walked():
    hop_by_hop = bytes([ip.DESTINATION_OPTIONS, 0, 1, 4, 0, 0, 0, 0])          # PadN
    destination = bytes([ip.ROUTING, 0, 0, 1, 0, 0, 0, 0])                    # Pad1, PadN of 0, Pad1, Pad1
    routing = bytes([ip.UDP, 0, 0, 0, 0, 0, 0, 0])                           # type 0, segments left 0
    parsed = ip.parse(_v6(ip.HOP_BY_HOP, hop_by_hop + destination + routing))
    assert (parsed.protocol, bytes(parsed.payload)) == (ip.UDP, b"data")


def test_ipv6_unacceptable_extension_headers():
    assert ip.parse(_v6(ip.FRAGMENT_HEADER, bytes([ip.UDP, 0, 0, 0, 0, 0, 0, 1]))) is NetDrop.FRAGMENT
    assert ip.parse(_v6(ip.FRAGMENT_HEADER, bytes([ip.UDP, 0, 0, 0, 0, 0, 0, 0]))) is NetDrop.FRAGMENT  # atomic
    routing_left = bytes([ip.UDP, 0, 0, 1, 0, 0, 0, 0])
    assert ip.parse(_v6(ip.ROUTING, routing_left)) is NetDrop.UNSUPPORTED_OPTION
    unknown_discard = bytes([ip.UDP, 0, 0x80, 2, 0, 0, 1, 0])   # option type 10xxxxxx: discard
    assert ip.parse(_v6(ip.DESTINATION_OPTIONS, unknown_discard)) is NetDrop.UNSUPPORTED_OPTION
    unknown_skip = bytes([ip.UDP, 0, 0x3E, 2, 0, 0, 1, 0])      # option type 00xxxxxx: skip
    assert ip.parse(_v6(ip.DESTINATION_OPTIONS, unknown_skip)).protocol == ip.UDP
    late_hop_by_hop = bytes([ip.HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0]) * 2
    assert ip.parse(_v6(ip.DESTINATION_OPTIONS, late_hop_by_hop)) is NetDrop.BAD_HEADER
    assert ip.parse(_v6(ip.HOP_BY_HOP, bytes([ip.UDP, 1, 1, 4, 0, 0, 0, 0]))) is NetDrop.TRUNCATED   # says 16 bytes
    assert ip.parse(_v6(ip.NO_NEXT_HEADER, b"")) is NetDrop.UNKNOWN_PROTOCOL
    assert ip.parse(_v6(ip.HOP_BY_HOP, bytes([ip.UDP, 0, 1, 9, 0, 0, 0, 0]))) is NetDrop.UNSUPPORTED_OPTION  # PadN overruns
