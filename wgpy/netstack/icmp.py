"""ICMP (RFC 792) and ICMPv6 (RFC 4443): echo replies, port unreachable, and the rate limit on errors.

Only the messages a host on a point-to-point tunnel needs: an echo request to one of the stack's addresses
is answered (RFC 1122 3.2.2.6, RFC 4443 4.2), a UDP datagram to a port with no socket earns a destination
unreachable / port unreachable (RFC 1122 4.1.3.1, RFC 4443 3.1), errors are held to a token bucket (RFC
4443 2.4(f); RFC 1812 4.3.2.8 for IPv4). Incoming errors are parsed far enough to say which of our flows
they concern (``quoted_flow``). Neighbour discovery has no place on a WireGuard tunnel (no link layer).

The functions here return ICMP messages (no IP header); the stack wraps them with ``ip.build``.
"""

from __future__ import annotations

import struct

from .checksum import checksum, ones_complement_sum, pseudo_header_sum
from .errors import NetDrop
from .ip import ICMP, ICMPV6, IPV4_HEADER_LEN, IPV6_HEADER_LEN

HEADER = struct.Struct("!BBHI")  # type, code, checksum, the four bytes of "rest of header"
HEADER_LEN = 8

# ICMP types and codes (RFC 792)
ECHO_REPLY = 0
DESTINATION_UNREACHABLE = 3
PORT_UNREACHABLE = 3             # code of DESTINATION_UNREACHABLE
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
PARAMETER_PROBLEM = 12
ERRORS_V4 = frozenset({DESTINATION_UNREACHABLE, 4, TIME_EXCEEDED, PARAMETER_PROBLEM})  # 4: source quench (RFC 6633)

# ICMPv6 types and codes (RFC 4443 2.1)
V6_DESTINATION_UNREACHABLE = 1
V6_PORT_UNREACHABLE = 4          # code of V6_DESTINATION_UNREACHABLE
V6_PACKET_TOO_BIG = 2
V6_TIME_EXCEEDED = 3
V6_PARAMETER_PROBLEM = 4
V6_ECHO_REQUEST = 128
V6_ECHO_REPLY = 129
ERRORS_V6 = frozenset({V6_DESTINATION_UNREACHABLE, V6_PACKET_TOO_BIG, V6_TIME_EXCEEDED, V6_PARAMETER_PROBLEM})

# How much an error message may weigh, IP header included: RFC 1812 4.3.2.3 (576 bytes, as Linux's
# icmp_send), RFC 4443 2.4(c) (the IPv6 minimum MTU).
ERROR_LIMIT_V4 = 576
ERROR_LIMIT_V6 = 1280

# Linux's global ICMP limit (net.ipv4.icmp_msgs_per_sec = 1000, icmp_msgs_burst = 50).
ERRORS_PER_SECOND = 1000.0
ERROR_BURST = 50.0


def _sum(version: int, source: bytes, destination: bytes, message: bytes | memoryview) -> int:
    """The ones'-complement sum of ``message``, with ICMPv6's pseudo-header (RFC 4443 2.3) for version 6."""
    if version == 4:
        return ones_complement_sum(message)
    return ones_complement_sum(message, pseudo_header_sum(source, destination, ICMPV6, len(message)))


def parse(version: int, source: bytes, destination: bytes, message: memoryview) -> tuple[int, int] | NetDrop:
    """``(type, code)`` of a checked ICMP (version 4) or ICMPv6 (version 6) message, or why it is refused."""
    if len(message) < HEADER_LEN or _sum(version, source, destination, message) != 0xFFFF:
        return NetDrop.BAD_ICMP
    return message[0], message[1]


def _finish(version: int, source: bytes, destination: bytes, message: bytearray) -> bytes:
    """Fill in the checksum of ``message`` (its checksum field zero) and return it."""
    if version == 4:
        check = checksum(message)
    else:
        check = checksum(message, pseudo_header_sum(source, destination, ICMPV6, len(message)))
    message[2:4] = check.to_bytes(2, "big")
    return bytes(message)


def echo_reply(version: int, source: bytes, destination: bytes, request: memoryview) -> bytes:
    """The echo reply to ``request`` (a checked echo request): same identifier, sequence number and data
    (RFC 792 "Echo or Echo Reply Message", RFC 4443 4.2). ``source`` is our address, the request's
    destination; ``destination`` the requester."""
    reply = bytearray(request)
    reply[0] = ECHO_REPLY if version == 4 else V6_ECHO_REPLY
    reply[1] = 0
    reply[2:4] = b"\0\0"
    return _finish(version, source, destination, reply)


def port_unreachable(version: int, source: bytes, destination: bytes, offending: bytes | memoryview,
                     mtu: int) -> bytes:
    """A destination unreachable / port unreachable message for the ``offending`` packet (its IP header
    and as much of its data as fits: RFC 1812 4.3.2.3, RFC 4443 2.4(c) and 3.1; never beyond ``mtu``).
    ``source`` is our address (the offending packet's destination), ``destination`` its sender."""
    if version == 4:
        kind, code, room = DESTINATION_UNREACHABLE, PORT_UNREACHABLE, min(ERROR_LIMIT_V4, mtu) - IPV4_HEADER_LEN
    else:
        kind, code, room = V6_DESTINATION_UNREACHABLE, V6_PORT_UNREACHABLE, min(ERROR_LIMIT_V6, mtu) - IPV6_HEADER_LEN
    message = bytearray(HEADER.pack(kind, code, 0, 0))   # the four "unused" bytes are zero
    message += offending[: max(room - HEADER_LEN, 0)]
    return _finish(version, source, destination, message)


def is_error(version: int, kind: int) -> bool:
    """Whether ICMP type ``kind`` is an error message (never answered with another error: RFC 1122
    3.2.2, RFC 4443 2.4(e))."""
    return kind in (ERRORS_V4 if version == 4 else ERRORS_V6)


def protocol(version: int) -> int:
    """The IP protocol number of ICMP for ``version``."""
    return ICMP if version == 4 else ICMPV6


def is_echo_request(version: int, kind: int, code: int) -> bool:
    return code == 0 and kind == (ECHO_REQUEST if version == 4 else V6_ECHO_REQUEST)


def quoted_flow(version: int, message: memoryview) -> tuple[int, bytes, bytes, int, int] | None:
    """``(protocol, source, destination, source port, destination port)`` of the packet an ICMP error
    quotes (the packet we sent), when enough of it is there; None otherwise."""
    quoted = message[HEADER_LEN:]
    if version == 4:
        if len(quoted) < IPV4_HEADER_LEN + 4 or quoted[0] >> 4 != 4:
            return None
        header_len = (quoted[0] & 0x0F) << 2
        if header_len < IPV4_HEADER_LEN or len(quoted) < header_len + 4:
            return None
        proto, source, destination = quoted[9], bytes(quoted[12:16]), bytes(quoted[16:20])
    else:
        # Only a quoted packet without extension headers: the stack sends none.
        header_len = IPV6_HEADER_LEN
        if len(quoted) < header_len + 4 or quoted[0] >> 4 != 6:
            return None
        proto, source, destination = quoted[6], bytes(quoted[8:24]), bytes(quoted[24:40])
    ports = quoted[header_len : header_len + 4]
    return proto, source, destination, (ports[0] << 8) | ports[1], (ports[2] << 8) | ports[3]


class TokenBucket:
    """At most ``burst`` at once, refilled at ``rate`` per second of ``now`` (RFC 4443 2.4(f) suggests a
    token bucket). Starts full."""

    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, rate: float = ERRORS_PER_SECOND, burst: float = ERROR_BURST) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least one")
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.last: float | None = None

    def take(self, now: float) -> bool:
        """Spend one token if there is one; a clock that goes backwards refills nothing."""
        if self.last is not None and now > self.last:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        if self.last is None or now > self.last:
            self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False
