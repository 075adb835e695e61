"""The userspace stack's fuzz world: a Stack with sockets to reach, the valid packets it is seeded with, and
the byte layout the ``netstack`` target reads (so the corpus and the Hypothesis strategies write the same).

An input is a series of steps, each one byte saying what, then its data:

    0  a raw packet: Source.blob
    1  a valid packet: one byte, its index in PACKETS
    2  a valid packet with edits: index, a count byte (mod 4), then (position: 2 bytes, value) per edit
    3  a valid packet cut or grown: index, one byte of length change (-64..+63)
    4  time passes: one byte, an index in TIME_STEPS, then the stack's timers run
"""

from __future__ import annotations

import random
from functools import lru_cache

from wgpy.netstack import icmp, ip, udp
from wgpy.netstack.checksum import checksum, pseudo_header_sum
from wgpy.netstack.stack import Stack
from wgpy.netstack.tcp import segment as tcp

ADDRESSES = ["10.0.0.2/24", "fd00::2/64"]
US4, US6 = bytes([10, 0, 0, 2]), bytes.fromhex("fd00" + "00" * 13 + "02")
PEER4, PEER6 = bytes([10, 0, 0, 1]), bytes.fromhex("fd00" + "00" * 13 + "01")
UDP_PORT = 5353
TCP_PORT = 80
CLIENT_PORT = 40001        # the peer's port of the connection established in build()
START = 1000.0
TIME_STEPS = (0.0, 0.001, 0.04, 0.2, 1.0, 3.0, 61.0)
RAW, VALID, EDITED, RESIZED, TIME = range(5)


def _tcp(source: bytes, destination: bytes, segment: tcp.Segment) -> bytes:
    return ip.build(source, destination, ip.TCP, segment.pack(source, destination))


def build() -> Stack:
    """The stack under test: both families, a UDP socket with a small queue, a TCP listener with a small
    backlog, and one connection (from PEER4:CLIENT_PORT) established and accepted."""
    return _build()[0]


def _build() -> tuple[Stack, int]:
    stack = Stack(ADDRESSES, mtu=1420, rng=random.Random(7).randbytes, max_connections=16)
    sock = stack.udp_bind(UDP_PORT)
    sock.receive_buffer = 600
    listener = stack.tcp_listen(port=TCP_PORT, backlog=4)
    stack.receive_packets([_tcp(PEER4, US4, tcp.Segment(CLIENT_PORT, TCP_PORT, 1000, 0, tcp.SYN, 65535, mss=1380,
                                                        window_scale=7, sack_permitted=True))], START)
    (syn_ack,) = stack.packets_to_send()
    iss = tcp.parse(ip.parse(syn_ack).payload, US4, PEER4).seq
    stack.receive_packets([_tcp(PEER4, US4, tcp.Segment(CLIENT_PORT, TCP_PORT, 1001, iss + 1, tcp.ACK, 512))], START)
    connection = listener.accept()
    assert connection is not None, "the fuzz world's handshake did not complete"
    connection.send(b"from the stack")
    stack.packets_to_send()
    stack.events()
    return stack, iss


def _echo(version: int, source: bytes, destination: bytes, data: bytes) -> bytes:
    kind = icmp.ECHO_REQUEST if version == 4 else icmp.V6_ECHO_REQUEST
    message = bytearray(icmp.HEADER.pack(kind, 0, 0, 0x1234_0001) + data)
    start = 0 if version == 4 else pseudo_header_sum(source, destination, ip.ICMPV6, len(message))
    message[2:4] = checksum(message, start).to_bytes(2, "big")
    return ip.build(source, destination, icmp.protocol(version), bytes(message))


def _udp(source: bytes, destination: bytes, port: int, data: bytes) -> bytes:
    return ip.build(source, destination, ip.UDP, udp.build(source, destination, 40000, port, data))


@lru_cache(maxsize=None)
def packets() -> tuple[bytes, ...]:
    """Packets the stack takes or answers as they are (each one on its own, in a fresh stack)."""
    found = []
    for version, peer, us in ((4, PEER4, US4), (6, PEER6, US6)):
        found += [
            _echo(version, peer, us, b"ping"),
            _udp(peer, us, UDP_PORT, b"to the socket"),
            _udp(peer, us, 9, b"to a closed port"),
            _tcp(peer, us, tcp.Segment(50000, TCP_PORT, 7, 0, tcp.SYN, 65535, mss=1200, window_scale=2,
                                       sack_permitted=True, timestamps=(1, 0))),
        ]
    iss = _build()[1]
    ours = iss + 1 + len(b"from the stack")
    found += [
        _tcp(PEER4, US4, tcp.Segment(CLIENT_PORT, TCP_PORT, 1001, ours, tcp.ACK | tcp.PSH, 512, b"data in order")),
        _tcp(PEER4, US4, tcp.Segment(CLIENT_PORT, TCP_PORT, 1001, ours, tcp.ACK | tcp.FIN, 512)),
        _tcp(PEER4, US4, tcp.Segment(CLIENT_PORT, TCP_PORT, 1001, 0, tcp.RST, 0)),
        _tcp(PEER4, US4, tcp.Segment(CLIENT_PORT, TCP_PORT, 2001, ours, tcp.ACK, 512, b"beyond a gap",
                                     sack_blocks=((1, 2),))),
    ]
    return tuple(found)


def step_valid(index: int) -> bytes:
    return bytes([VALID, index])


def step_raw(packet: bytes) -> bytes:
    return bytes([RAW]) + len(packet).to_bytes(2, "big") + packet


def step_edited(index: int, edits: list[tuple[int, int]]) -> bytes:
    return bytes([EDITED, index, len(edits)]) + b"".join(at.to_bytes(2, "big") + bytes([value]) for at, value in edits)


def step_resized(index: int, change: int) -> bytes:
    return bytes([RESIZED, index, (change + 64) & 0x7F])


def step_time(index: int) -> bytes:
    return bytes([TIME, index])


def seeds() -> dict[str, bytes]:
    """The seed corpus: each valid packet alone, all of them with time passing, and a few edits."""
    found = {f"valid-{n}": step_valid(n) for n in range(len(packets()))}
    found["all-with-time"] = b"".join(step_valid(n) + step_time(n % len(TIME_STEPS)) for n in range(len(packets())))
    found["ttl-and-checksum-edits"] = step_edited(0, [(8, 1)]) + step_edited(1, [(27, 0)])
    found["ipv6-cut"] = step_resized(3, -10) + step_resized(4, 5)
    found["syn-flood"] = b"".join(step_edited(3, [(21, n)]) for n in range(8))   # SYNs from 8 source ports
    found["close-and-time-wait"] = step_valid(9) + step_time(4) + step_time(6) + step_time(6)
    return found
