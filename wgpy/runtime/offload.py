"""Coalesced TUN writes: consecutive TCP segments of one flow go to the kernel as one packet.

The TUN device is opened with ``IFF_VNET_HDR``, so every packet written carries a 10-byte virtio-net
header. A run of in-order TCP segments of one flow (same addresses, ports, ACK, window and options; only
ACK and PSH set; every payload the same size but the last) is written once, as one large segment with
``gso_type`` TCPV4/TCPV6, ``gso_size`` = the segments' payload size and ``NEEDS_CSUM``, the TCP checksum
field holding the pseudo-header sum, as a NIC's GRO would hand it up. The kernel's TCP receive then works
per write instead of per segment (../shared/PERFORMANCE-NOTES.md: +25 %).

Reads keep offloads off (no ``TUNSETOFFLOAD``): segmenting a TSO packet in Python costs more than it
saves, so every packet read is a complete IP packet behind a header of zeros.
"""

from __future__ import annotations

import struct

VNET_HDR_LEN = 10
NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_TCPV6 = 0, 1, 4
ZERO_HEADER = bytes(VNET_HDR_LEN)
MAX_COALESCED = 65535          # an IPv4 total length, or an IPv6 payload length
MAX_SEGMENTS = 64              # segments per write (as wireguard-go)
_VNET = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
_TCP_ACK, _TCP_PSH = 0x10, 0x08
_from_bytes = int.from_bytes


def _fold(total: int) -> int:
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    """The 16-bit one's-complement sum of ``data`` (unfolded, then folded)."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    return _fold(sum(struct.unpack(f"!{len(data) // 2}H", data)))


def _tcp_segment(packet: bytes):
    """(ip header length, tcp header length, payload length, seq, flags) of a plain TCP segment that may
    be coalesced, or None (not TCP, IPv4 options or fragments, IPv6 extension headers, odd flags)."""
    size = len(packet)
    first = packet[0] if size else 0
    if first == 0x45 and size >= 40:
        if packet[9] != 6 or (packet[6] & 0x3F) or packet[7]:   # not TCP, or a fragment
            return None
        ip_length = 20
        total = _from_bytes(packet[2:4], "big")
    elif first >> 4 == 6 and size >= 60:
        if packet[6] != 6:
            return None
        ip_length = 40
        total = 40 + _from_bytes(packet[4:6], "big")
    else:
        return None
    if total != size:
        return None
    tcp_length = (packet[ip_length + 12] >> 4) * 4
    flags = packet[ip_length + 13]
    payload = size - ip_length - tcp_length
    if tcp_length < 20 or payload <= 0 or flags & ~(_TCP_ACK | _TCP_PSH) or not flags & _TCP_ACK:
        return None
    return ip_length, tcp_length, payload, _from_bytes(packet[ip_length + 4 : ip_length + 8], "big"), flags


def _flow(packet: bytes, ip_length: int, tcp_length: int) -> bytes:
    """What must be equal for two segments to merge: IP fields but length, ID and checksum; TCP fields
    but sequence number, flags and checksum; the TCP options byte for byte."""
    if ip_length == 20:
        ip_part = packet[1:2] + packet[6:7] + packet[8:10] + packet[12:20]
    else:
        ip_part = packet[0:4] + packet[6:40]
    return ip_part + packet[ip_length : ip_length + 4] + packet[ip_length + 8 : ip_length + 12] + \
        packet[ip_length + 14 : ip_length + 16] + packet[ip_length + 20 : ip_length + tcp_length]


def coalesce(packets: list[bytes]) -> list[list]:
    """The writes for ``packets``: each a list of buffers for ``os.writev``, virtio-net header first."""
    writes: list[list] = []
    group: list = []  # [first packet, ip_length, tcp_length, segment size, next seq, flow, parts, flags, bytes]
    for packet in packets:
        segment = _tcp_segment(packet)
        if segment is not None and group:
            ip_length, tcp_length, payload, seq, flags = segment
            first, g_ip, g_tcp, size, next_seq, flow, parts, _, carried = group
            if (
                seq == next_seq and ip_length == g_ip and tcp_length == g_tcp and payload <= size
                and len(parts) < MAX_SEGMENTS
                and _fits(ip_length, tcp_length, carried + payload)
                and _flow(packet, ip_length, tcp_length) == flow
            ):
                parts.append(memoryview(packet)[ip_length + tcp_length :])
                group[4] = seq + payload
                group[7] = flags
                group[8] = carried + payload
                if payload < size or flags & _TCP_PSH:
                    writes.append(_merged(group))
                    group = []
                continue
        if group:
            writes.append(_merged(group))
            group = []
        if segment is None:
            writes.append([ZERO_HEADER, packet])
            continue
        ip_length, tcp_length, payload, seq, flags = segment
        group = [packet, ip_length, tcp_length, payload, seq + payload, _flow(packet, ip_length, tcp_length),
                 [memoryview(packet)[ip_length + tcp_length :]], flags, payload]
        if flags & _TCP_PSH:
            writes.append(_merged(group))
            group = []
    if group:
        writes.append(_merged(group))
    return writes


def _fits(ip_length: int, tcp_length: int, payload: int) -> bool:
    """Whether a merged segment still fits its length field (IPv4 total length, IPv6 payload length)."""
    return (ip_length if ip_length == 20 else 0) + tcp_length + payload <= MAX_COALESCED


def _merged(group: list) -> list:
    first, ip_length, tcp_length, size, _, _, parts, last_flags, carried = group
    if len(parts) == 1:
        return [ZERO_HEADER, first]
    header = bytearray(first[: ip_length + tcp_length])
    tcp_total = tcp_length + carried
    if ip_length == 20:
        struct.pack_into("!H", header, 2, ip_length + tcp_total)
        struct.pack_into("!H", header, 10, 0)
        struct.pack_into("!H", header, 10, 0xFFFF - _sum16(bytes(header[:20])))
        pseudo = _sum16(bytes(header[12:20])) + 6 + tcp_total
        gso_type = GSO_TCPV4
    else:
        struct.pack_into("!H", header, 4, tcp_total)
        pseudo = _sum16(bytes(header[8:40])) + 6 + tcp_total
        gso_type = GSO_TCPV6
    header[ip_length + 13] |= last_flags & _TCP_PSH
    # NEEDS_CSUM: the checksum field holds the folded pseudo-header sum; the kernel adds the rest.
    struct.pack_into("!H", header, ip_length + 16, _fold(pseudo))
    vnet = _VNET.pack(NEEDS_CSUM, gso_type, ip_length + tcp_length, size, ip_length, 16)
    return [vnet, header, *parts]


def complete_checksum(packet: bytes, start: int, offset: int) -> bytes:
    """Finish a partial checksum (a read with NEEDS_CSUM, which only happens if offloads were turned on
    by someone else): the field holds the pseudo-header sum; add the data from ``start`` and invert."""
    data = bytearray(packet)
    struct.pack_into("!H", data, start + offset, ~_sum16(bytes(data[start:])) & 0xFFFF)
    return bytes(data)
