"""Why the userspace stack refuses a packet or a segment: one enum of named reasons.

As in the core (``wgpy.core.errors.Drop``), input from the network never raises: a packet the stack does
not take is counted under a :class:`NetDrop` reason (``Stack.drops``), so tests, fuzzers and ``/metrics``
can say exactly why. Mistakes by the caller (a port of 70000) are ``ValueError``, raised at once.
"""

from __future__ import annotations

from enum import Enum


class NetDrop(Enum):
    """A named reason for refusing input. The value is the human-readable sentence."""

    # IP (ip.py)
    NOT_IP = "packet is neither IPv4 nor IPv6"
    TRUNCATED = "packet is shorter than its headers say"
    BAD_HEADER = "IP header is malformed (version, length or options)"
    BAD_IP_CHECKSUM = "IPv4 header checksum is wrong"
    FRAGMENT = "IP fragments are not reassembled"
    NOT_FOR_US = "destination is not one of the stack's addresses"
    BAD_SOURCE = "source address is a multicast, broadcast or unspecified address"
    UNKNOWN_PROTOCOL = "IP protocol is not ICMP, UDP or TCP"
    UNSUPPORTED_OPTION = "IPv6 option or routing header that must not be skipped (RFC 8200 4.2, 4.4)"
    # ICMP (icmp.py)
    BAD_ICMP = "ICMP message is malformed or has a wrong checksum"
    ICMP_IGNORED = "ICMP message of a type the stack does not act on"
    ICMP_ERROR_RECEIVED = "ICMP error that ends no connection attempt (soft, for UDP, or not matching)"
    ICMP_RATE_LIMITED = "an ICMP error was due but the rate limit holds it back"
    ECHO_TOO_BIG = "echo request whose reply would not fit the MTU (the stack does not fragment)"
    # UDP (udp.py)
    BAD_UDP = "UDP header is malformed or its checksum is wrong"
    PORT_UNREACHABLE = "no UDP socket is bound to the destination port"
    UDP_QUEUE_FULL = "the UDP socket's receive queue is full"
    # TCP segments (tcp/segment.py)
    BAD_TCP = "TCP header is malformed or its checksum is wrong"
    BAD_TCP_OPTIONS = "TCP options are malformed"
    # TCP state (stack.py, tcp/connection.py)
    NO_LISTENER = "no connection or listener for this segment: answered with RST"
    STRAY_RST = "RST for no connection: ignored (RFC 9293 3.10.7.1)"
    SYN_BACKLOG_FULL = "the listener's backlog is full and none of its half-open connections is stale"
    SYN_BACKLOG_STALE_DROPPED = "the listener's backlog was full: its oldest, stale half-open connection was reset for a new SYN"
    TOO_MANY_CONNECTIONS = "the stack holds as many connections as it allows"
    UNACCEPTABLE_SEGMENT = "segment is outside the receive window (RFC 9293 3.10.7.4): answered with ACK"
    BAD_ACK = "ACK acknowledges something not yet sent"
    OLD_ACK = "ACK is older than the oldest unacknowledged byte"
    RST_OUT_OF_WINDOW = "RST sequence number outside the window: ignored"
    CHALLENGE_ACK = "RST or SYN in the window but not exact (RFC 5961): answered with a challenge ACK"
    UNEXPECTED_SEGMENT = "segment does not fit the connection's state"
    OUT_OF_ORDER_FULL = "out-of-order segment dropped: the reassembly queue is full"
    WINDOW_FULL = "data beyond the receive window dropped"
    PAWS_REJECTED = "TSval older than TS.Recent: an old duplicate (RFC 7323 5.3 PAWS), answered with ACK"
