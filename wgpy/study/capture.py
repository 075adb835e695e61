"""Capture files, read with the standard library: pcap and pcapng (IETF draft-ietf-opsawg-pcap and
draft-ietf-opsawg-pcapng), the UDP datagrams in their frames, and the key log a pcapng file may carry.

Link types: Ethernet (with VLAN tags), Linux cooked SLL and SLL2, raw IP and BSD loopback. ``wgpy decode``
reads captures with it, and so do the interop tests (``tests/interop/reliability.py``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterable, Iterator

from ..core.keylog import DSB_SECRETS_TYPE, Keylog, parse_keylog
from .ip import Endpoint, udp_of

# Link types (tcpdump.org/linktypes.html).
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL = 0, 1, 101, 113
LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2 = 228, 229, 276
RAW_LINKTYPES = {LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6}  # 12 and 14 are raw IP on some systems
LINKTYPE_MASK = 0x0FFFFFFF  # the high bits of a pcap link type hold FCS flags
ETHERNET_HEADER, SLL_HEADER, SLL2_HEADER, NULL_HEADER, VLAN_TAG = 14, 16, 20, 4, 4
ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, ETHERTYPE_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
IP_ETHERTYPES = (ETHERTYPE_IPV4, ETHERTYPE_IPV6)

PCAP_MAGIC = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}   # magic -> seconds per tick of the fraction
PCAP_HEADER = 24
PCAP_LINKTYPE_OFFSET = 20
PCAPNG_SECTION_HEADER = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_BLOCK_HEAD, PCAPNG_BLOCK_TAIL = 8, 4   # type and length; the length again
PCAPNG_PACKET_HEAD = 20                       # the fields of an (enhanced) packet block before its data
BLOCK_INTERFACE, BLOCK_PACKET, BLOCK_SIMPLE_PACKET, BLOCK_ENHANCED_PACKET = 1, 2, 3, 6
BLOCK_DECRYPTION_SECRETS = 0x0000000A
OPTION_END, OPTION_IF_TSRESOL = 0, 9
DEFAULT_TICK = 1e-6


@dataclass(frozen=True)
class Frame:
    """A captured link-layer frame."""

    number: int
    time: float
    link_type: int
    data: bytes


@dataclass(frozen=True)
class Datagram:
    """A UDP datagram found in a frame."""

    frame: Frame
    source: Endpoint
    destination: Endpoint
    payload: bytes


class CaptureError(ValueError):
    """The file is not a capture this reader understands."""


def _word(data: bytes, order: str, offset: int = 0) -> int:
    return struct.unpack_from(order + "I", data, offset)[0]


def is_capture(data: bytes) -> bool:
    if len(data) < 4:
        return False
    return _word(data, "<") in PCAP_MAGIC or _word(data, ">") in PCAP_MAGIC or _word(data, "<") == PCAPNG_SECTION_HEADER


def read_capture(data: bytes) -> tuple[list[Frame], Keylog]:
    """The frames of a pcap or pcapng file, and the WireGuard key log of any Decryption Secrets Block."""
    if len(data) >= 4 and _word(data, "<") == PCAPNG_SECTION_HEADER:
        return _read_pcapng(data)
    return _read_pcap(data), Keylog()


def _read_pcap(data: bytes) -> list[Frame]:
    if len(data) < PCAP_HEADER:
        raise CaptureError("too short for a pcap header")
    for order in "<>":
        magic = _word(data, order)
        if magic in PCAP_MAGIC:
            resolution = PCAP_MAGIC[magic]
            break
    else:
        raise CaptureError("neither pcap nor pcapng")
    link_type = _word(data, order, PCAP_LINKTYPE_OFFSET) & LINKTYPE_MASK
    frames, offset = [], PCAP_HEADER
    record = struct.Struct(order + "IIII")
    while offset + record.size <= len(data):
        seconds, fraction, captured, _ = record.unpack_from(data, offset)
        offset += record.size
        if offset + captured > len(data):
            break  # a truncated last record: keep what came before
        frames.append(Frame(len(frames) + 1, seconds + fraction * resolution, link_type, data[offset : offset + captured]))
        offset += captured
    return frames


def _read_pcapng(data: bytes) -> tuple[list[Frame], Keylog]:
    frames: list[Frame] = []
    keylog = Keylog()
    interfaces: list[tuple[int, float, int]] = []  # (link type, seconds per tick, snap length)
    order, offset = "<", 0
    least = PCAPNG_BLOCK_HEAD + PCAPNG_BLOCK_TAIL
    while offset + least <= len(data):
        block_type = _word(data, order, offset)
        if block_type == PCAPNG_SECTION_HEADER:
            magic = data[offset + PCAPNG_BLOCK_HEAD : offset + least]
            order = "<" if _word(magic, "<") == PCAPNG_BYTE_ORDER_MAGIC else ">"
            if _word(magic, order) != PCAPNG_BYTE_ORDER_MAGIC:
                raise CaptureError("pcapng section header with a bad byte-order magic")
            interfaces = []  # interface numbers restart in each section
        length = _word(data, order, offset + 4)
        if length < least or length % 4 or offset + length > len(data):
            raise CaptureError(f"pcapng block at byte {offset} has a bad length {length}")
        body = data[offset + PCAPNG_BLOCK_HEAD : offset + length - PCAPNG_BLOCK_TAIL]
        packet = body[PCAPNG_PACKET_HEAD:]
        if block_type == BLOCK_INTERFACE:
            link_type, _, snap_length = struct.unpack_from(order + "HHI", body)
            interfaces.append((link_type, _tsresol(_options(body[8:], order)), snap_length))
        elif block_type == BLOCK_ENHANCED_PACKET:
            interface, high, low, captured, _ = struct.unpack_from(order + "IIIII", body)
            frames.append(_pcapng_frame(len(frames) + 1, interfaces, interface, high, low, packet[:captured]))
        elif block_type == BLOCK_PACKET:
            interface, _, high, low, captured, _ = struct.unpack_from(order + "HHIIII", body)
            frames.append(_pcapng_frame(len(frames) + 1, interfaces, interface, high, low, packet[:captured]))
        elif block_type == BLOCK_SIMPLE_PACKET:
            original = _word(body, order)
            snap = interfaces[0][2] if interfaces and interfaces[0][2] else original
            frames.append(_pcapng_frame(len(frames) + 1, interfaces, 0, 0, 0, body[4 : 4 + min(original, snap)]))
        elif block_type == BLOCK_DECRYPTION_SECRETS:
            secrets_type, secrets_length = struct.unpack_from(order + "II", body)
            if secrets_type == DSB_SECRETS_TYPE:
                keylog.extend(parse_keylog(body[8 : 8 + secrets_length].decode("ascii", "replace")))
        offset += length
    return frames, keylog


def _pcapng_frame(number: int, interfaces: list, interface: int, high: int, low: int, data: bytes) -> Frame:
    if interface >= len(interfaces):
        raise CaptureError(f"packet names interface {interface}, which was not described")
    link_type, tick, _ = interfaces[interface]
    return Frame(number, ((high << 32) | low) * tick, link_type, data)


def _options(data: bytes, order: str) -> dict[int, bytes]:
    options, offset = {}, 0
    while offset + 4 <= len(data):
        code, length = struct.unpack_from(order + "HH", data, offset)
        if code == OPTION_END:
            break
        options[code] = data[offset + 4 : offset + 4 + length]
        offset += 4 + length + (-length % 4)
    return options


def _tsresol(options: dict[int, bytes]) -> float:
    value = options.get(OPTION_IF_TSRESOL)
    if not value:
        return DEFAULT_TICK
    exponent = value[0] & 0x7F
    return 2.0**-exponent if value[0] & 0x80 else 10.0**-exponent


def datagrams(frames: Iterable[Frame]) -> Iterator[Datagram]:
    """The UDP datagrams in the frames (first fragments only; the rest cannot hold a UDP header)."""
    for frame in frames:
        packet = network_layer(frame)
        if packet is not None:
            found = udp_of(packet)
            if found is not None:
                yield Datagram(frame, *found)


def network_layer(frame: Frame) -> bytes | None:
    """The IP packet in a frame, or None if it holds something else."""
    data, link = frame.data, frame.link_type
    if link == LINKTYPE_ETHERNET:
        offset = ETHERNET_HEADER
        ethertype = int.from_bytes(data[offset - 2 : offset], "big") if len(data) >= offset else 0
        while ethertype in (ETHERTYPE_VLAN, ETHERTYPE_QINQ) and len(data) >= offset + VLAN_TAG:
            ethertype, offset = int.from_bytes(data[offset + 2 : offset + 4], "big"), offset + VLAN_TAG
        return data[offset:] if ethertype in IP_ETHERTYPES else None
    if link == LINKTYPE_LINUX_SLL:
        return data[SLL_HEADER:] if int.from_bytes(data[14:16], "big") in IP_ETHERTYPES else None
    if link == LINKTYPE_LINUX_SLL2:
        return data[SLL2_HEADER:] if int.from_bytes(data[0:2], "big") in IP_ETHERTYPES else None
    if link == LINKTYPE_NULL:
        return data[NULL_HEADER:] if len(data) > NULL_HEADER else None
    if link in RAW_LINKTYPES:
        return data
    return None
