"""IP packets, as the study wing reads and writes them: the UDP datagram inside a captured packet, one line
about a decrypted inner packet, and a ping to encrypt (RFC 791, RFC 8200, RFC 768, RFC 792).
"""

from __future__ import annotations

import ipaddress
import struct

IPV4_HEADER_MIN = 20
IPV6_HEADER = 40
IPV6_EXTENSION_MIN = 8
UDP_HEADER = 8
ICMP_HEADER = 8
ICMP, TCP, UDP, IPV6_FRAGMENT, ICMPV6 = 1, 6, 17, 44, 58
PROTOCOLS = {ICMP: "ICMP", TCP: "TCP", UDP: "UDP", ICMPV6: "ICMPv6"}
ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY = 0, 8, 128, 129
ICMP_TYPES = {ICMP_ECHO_REPLY: "echo reply", 3: "destination unreachable", ICMP_ECHO_REQUEST: "echo request",
              11: "time exceeded"}
ICMPV6_TYPES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded", ICMPV6_ECHO_REQUEST: "echo request",
                ICMPV6_ECHO_REPLY: "echo reply", 133: "router solicitation", 134: "router advertisement",
                135: "neighbour solicitation", 136: "neighbour advertisement"}
ECHOES = {ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY}
IPV6_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options: skipped to the payload
FRAGMENT_OFFSET_MASK_V4, FRAGMENT_OFFSET_MASK_V6 = 0x1FFF, 0xFFF8

Endpoint = tuple[str, int]


def udp_of(packet: bytes) -> tuple[Endpoint, Endpoint, bytes] | None:
    """(source, destination, payload) of the UDP datagram in an IPv4 or IPv6 packet; None for anything
    else, and for a fragment after the first (it cannot hold the UDP header)."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4 and len(packet) >= IPV4_HEADER_MIN:
        header = (packet[0] & 15) * 4
        fragment = int.from_bytes(packet[6:8], "big") & FRAGMENT_OFFSET_MASK_V4
        if packet[9] != UDP or fragment:
            return None
        end = min(len(packet), int.from_bytes(packet[2:4], "big"))
        source, destination = str(ipaddress.IPv4Address(packet[12:16])), str(ipaddress.IPv4Address(packet[16:20]))
        udp = packet[header:end]
    elif version == 6 and len(packet) >= IPV6_HEADER:
        next_header, offset = packet[6], IPV6_HEADER
        while next_header in IPV6_EXTENSIONS | {IPV6_FRAGMENT} and offset + IPV6_EXTENSION_MIN <= len(packet):
            if next_header == IPV6_FRAGMENT and int.from_bytes(packet[offset + 2 : offset + 4], "big") & FRAGMENT_OFFSET_MASK_V6:
                return None  # a later fragment
            length = IPV6_EXTENSION_MIN if next_header == IPV6_FRAGMENT else IPV6_EXTENSION_MIN + packet[offset + 1] * 8
            next_header, offset = packet[offset], offset + length
        if next_header != UDP:
            return None
        source, destination = str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40]))
        udp = packet[offset : IPV6_HEADER + int.from_bytes(packet[4:6], "big")]
    else:
        return None
    if len(udp) < UDP_HEADER:
        return None
    source_port, destination_port, length = struct.unpack_from(">HHH", udp)
    payload = udp[UDP_HEADER:length] if UDP_HEADER <= length <= len(udp) else udp[UDP_HEADER:]
    return (source, source_port), (destination, destination_port), payload


def summarize_ip(plaintext: bytes) -> str:
    """One line about a decrypted packet: protocol, addresses, ports, length (and the padding after it)."""
    version = plaintext[0] >> 4
    if version == 4 and len(plaintext) >= IPV4_HEADER_MIN:
        header = (plaintext[0] & 15) * 4
        length = int.from_bytes(plaintext[2:4], "big")
        protocol = plaintext[9]
        source, destination = ipaddress.IPv4Address(plaintext[12:16]), ipaddress.IPv4Address(plaintext[16:20])
        payload = plaintext[header:length]
        label = "IPv4"
    elif version == 6 and len(plaintext) >= IPV6_HEADER:
        length = IPV6_HEADER + int.from_bytes(plaintext[4:6], "big")
        protocol = plaintext[6]
        source, destination = ipaddress.IPv6Address(plaintext[8:24]), ipaddress.IPv6Address(plaintext[24:40])
        offset = IPV6_HEADER
        while protocol in IPV6_EXTENSIONS and offset + IPV6_EXTENSION_MIN <= len(plaintext):
            protocol, offset = plaintext[offset], offset + IPV6_EXTENSION_MIN + plaintext[offset + 1] * 8
        payload = plaintext[offset:length]
        label = "IPv6"
    else:
        return f"not an IP packet ({len(plaintext)} bytes)"
    name = PROTOCOLS.get(protocol, f"protocol {protocol}")
    detail = ""
    if protocol in (TCP, UDP) and len(payload) >= 4:
        source_port, destination_port = struct.unpack_from(">HH", payload)
        text = f"{label} {name} {_host(source)}:{source_port} -> {_host(destination)}:{destination_port}"
    else:
        text = f"{label} {name} {source} -> {destination}"
        types = ICMP_TYPES if protocol == ICMP else ICMPV6_TYPES if protocol == ICMPV6 else None
        if types is not None and len(payload) >= ICMP_HEADER:
            detail = f" {types.get(payload[0], f'type {payload[0]}')}"
            if payload[0] in ECHOES:
                identifier, sequence = struct.unpack_from(">HH", payload, 4)
                detail += f" id={identifier} seq={sequence}"
    padding = len(plaintext) - length
    return f"{text}{detail}, {length} bytes" + (f" (+{padding} bytes of padding)" if padding > 0 else "")


def _host(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"[{address}]" if address.version == 6 else str(address)


def icmp_echo(source: str, destination: str, identifier: int = 1, sequence: int = 1, size: int = 56) -> bytes:
    """An ICMP echo request as ``ping`` sends it (84 bytes with the default size), checksums included."""
    data = bytes(range(size))
    icmp = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, identifier, sequence) + data
    icmp = icmp[:2] + _checksum(icmp).to_bytes(2, "big") + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, IPV4_HEADER_MIN + len(icmp), 0, 0x4000, 64, ICMP, 0,
                         ipaddress.IPv4Address(source).packed, ipaddress.IPv4Address(destination).packed)
    header = header[:10] + _checksum(header).to_bytes(2, "big") + header[12:]
    return header + icmp


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    total = sum(struct.unpack(f"!{len(data) // 2}H", data[: len(data) // 2 * 2])) + (data[-1] << 8 if len(data) % 2 else 0)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
