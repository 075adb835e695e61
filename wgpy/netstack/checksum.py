"""The Internet checksum (RFC 1071) and the pseudo-headers of TCP and UDP (RFC 9293 3.1, RFC 8200 8.1).

The ones'-complement sum is computed as one big integer: ``int.from_bytes`` of the whole buffer, folded
to 16 bits. Folding works because 2^16 = 1 (mod 2^16 - 1): the sum of the 16-bit words and the integer
itself agree modulo 0xffff. It is one C call for the bytes instead of a Python loop over words.
"""

from __future__ import annotations

import struct

_PSEUDO4 = struct.Struct("!4s4sxBH")
_PSEUDO6 = struct.Struct("!16s16sI3xB")


def ones_complement_sum(data: bytes | memoryview, start: int = 0) -> int:
    """The 16-bit ones'-complement sum of ``data`` (padded with a zero byte if odd) plus ``start``."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    total = int.from_bytes(data, "big") % 0xFFFF + start
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    # A sum that is a non-zero multiple of 0xffff is 0xffff in ones' complement, not 0.
    return 0xFFFF if total == 0 and any(data) else total


def checksum(data: bytes | memoryview, start: int = 0) -> int:
    """The Internet checksum: the complement of the ones'-complement sum."""
    return ~ones_complement_sum(data, start) & 0xFFFF


def pseudo_header_sum(source: bytes, destination: bytes, protocol: int, length: int) -> int:
    """The ones'-complement sum of the pseudo-header for IPv4 (4-byte addresses) or IPv6 (16-byte)."""
    if len(source) == 4:
        return ones_complement_sum(_PSEUDO4.pack(source, destination, protocol, length))
    return ones_complement_sum(_PSEUDO6.pack(source, destination, length, protocol))
