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


def _mask(ip_length: int, tcp_length: int) -> int:
    """The header bytes that must be equal for two segments to merge, as 1 bits over the header read as
    one big-endian integer: all but the IP length fields, the IPv4 ID and checksum, and the TCP sequence
    number, flags and checksum (the TCP options byte for byte). One ``&`` and one ``==`` then compare a
    header with the run's first."""
    mask = bytearray(b"\xff" * (ip_length + tcp_length))
    varying = [(2, 6), (10, 12)] if ip_length == 20 else [(4, 6)]
    varying += [(ip_length + 4, ip_length + 8), (ip_length + 13, ip_length + 14), (ip_length + 16, ip_length + 18)]
    for start, end in varying:
        mask[start:end] = bytes(end - start)
    return _from_bytes(mask, "big")


_MASKS: dict[tuple[int, int], int] = {}   # (ip_length, tcp_length) -> _mask(...)


def coalesce(packets: list[bytes]) -> list[list]:
    """The writes for ``packets``: each a list of buffers for ``os.writev``, virtio-net header first.

    A run starts at a segment ``_tcp_segment`` accepts; the next packet continues it when its header,
    masked (``_mask``), equals the first's, its sequence number follows, its payload is no longer than the
    first's and its flags are ACK, with PSH at most. Everything but the lengths and the sequence number is
    then known to be the first's, so a continuing segment is checked with a few slices, no parse."""
    writes: list[list] = []
    parts = None   # the open run's payloads; None when no run is open
    first = ip_length = tcp_length = header = key = mask = seq_at = length_at = length_base = fixed = 0
    size = next_seq = carried = last_flags = 0
    for packet in packets:
        if parts is not None:
            total = len(packet)
            if total > header and _from_bytes(packet[:header], "big") & mask == key:
                payload = total - header
                flags = packet[seq_at + 9]
                if (
                    _from_bytes(packet[seq_at : seq_at + 4], "big") == next_seq
                    and payload <= size
                    and _from_bytes(packet[length_at : length_at + 2], "big") + length_base == total
                    and flags & _TCP_ACK and not flags & ~(_TCP_ACK | _TCP_PSH)
                    and len(parts) < MAX_SEGMENTS
                    and fixed + carried + payload <= MAX_COALESCED
                ):
                    parts.append(memoryview(packet)[header:])
                    next_seq = (next_seq + payload) & 0xFFFFFFFF
                    carried += payload
                    last_flags = flags
                    if payload < size or flags & _TCP_PSH:
                        writes.append(_merged(first, ip_length, tcp_length, size, parts, last_flags, carried))
                        parts = None
                    continue
            writes.append(_merged(first, ip_length, tcp_length, size, parts, last_flags, carried))
            parts = None
        segment = _tcp_segment(packet)
        if segment is None:
            writes.append([ZERO_HEADER, packet])
            continue
        ip_length, tcp_length, size, seq, last_flags = segment
        if last_flags & _TCP_PSH:
            writes.append([ZERO_HEADER, packet])
            continue
        first, header, seq_at = packet, ip_length + tcp_length, ip_length + 4
        mask = _MASKS.get((ip_length, tcp_length))
        if mask is None:
            mask = _MASKS[ip_length, tcp_length] = _mask(ip_length, tcp_length)
        key = _from_bytes(packet[:header], "big") & mask
        length_at, length_base = (2, 0) if ip_length == 20 else (4, 40)
        fixed = (ip_length if ip_length == 20 else 0) + tcp_length   # what a length field counts besides payload
        parts = [memoryview(packet)[header:]]
        next_seq = (seq + size) & 0xFFFFFFFF
        carried = size
    if parts is not None:
        writes.append(_merged(first, ip_length, tcp_length, size, parts, last_flags, carried))
    return writes


def _merged(first: bytes, ip_length: int, tcp_length: int, size: int, parts: list, last_flags: int,
            carried: int) -> list:
    """The write for a run: the first segment alone, or one GSO packet carrying every payload in ``parts``
    behind the first's headers with the lengths, the IPv4 checksum and the pseudo-header sum set."""
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
