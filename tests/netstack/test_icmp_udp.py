"""ICMP and UDP through a Stack: echo replies and port unreachable as Linux writes them, UDP both ways,
the rate limit, and what is not for us."""

import pytest

from wgpy.netstack import icmp, ip, udp
from wgpy.netstack.checksum import checksum
from wgpy.netstack.errors import NetDrop
from wgpy.netstack.events import DatagramReceived
from wgpy.netstack.icmp import TokenBucket
from wgpy.netstack.stack import Stack

from ..conftest import seeded_rng
from .linux_packets import (ADDRESS_V4, ADDRESS_V6, ECHO_REPLY_V4, ECHO_REPLY_V6, ECHO_REQUEST_V4,
                            ECHO_REQUEST_V6, PORT_UNREACHABLE_V4, PORT_UNREACHABLE_V6, UDP_CHECKSUM_V4,
                            UDP_CHECKSUM_V6, with_udp_checksum)
from .linux_packets import UDP_V4 as OFFLOADED_V4
from .linux_packets import UDP_V6 as OFFLOADED_V6

# Linux's datagrams with the checksum the wire would carry (linux_packets.py: lo offloads it).
UDP_V4 = with_udp_checksum(OFFLOADED_V4, UDP_CHECKSUM_V4)
UDP_V6 = with_udp_checksum(OFFLOADED_V6, UDP_CHECKSUM_V6)

PEER4, PEER6 = bytes([10, 0, 0, 1]), bytes.fromhex("fd00" + "00" * 13 + "01")


def linux_stack(**options) -> Stack:
    """A stack at the addresses of the captures (linux_packets.py)."""
    return Stack(["10.0.0.2/24", "fd00::2/64"], rng=seeded_rng(1), **options)


def test_echo_replies_carry_the_same_icmp_message_as_linux():
    stack = linux_stack()
    stack.receive_packets([ECHO_REQUEST_V4, ECHO_REQUEST_V6], 1.0)
    reply4, reply6 = stack.packets_to_send()
    # The ICMP messages are Linux's byte for byte; the IP headers differ only in identification and DF.
    assert reply4[20:] == ECHO_REPLY_V4[20:]
    assert reply6[40:] == ECHO_REPLY_V6[40:]
    assert reply6[4:40] == ECHO_REPLY_V6[4:40]
    parsed = ip.parse(reply4)
    assert (parsed.source, parsed.destination, parsed.protocol) == (ADDRESS_V4, ADDRESS_V4, ip.ICMP)
    assert sum(stack.drops.values()) == 0


def test_port_unreachable_is_linux_s_message():
    # Linux's own port unreachable, from the quote Linux made (lo's partial UDP checksum in it): byte for byte.
    assert icmp.port_unreachable(4, ADDRESS_V4, ADDRESS_V4, OFFLOADED_V4, 1420) == PORT_UNREACHABLE_V4[20:]
    assert icmp.port_unreachable(6, ADDRESS_V6, ADDRESS_V6, OFFLOADED_V6, 1420) == PORT_UNREACHABLE_V6[40:]
    # Through the stack, with the checksum the wire carries: the same message around that datagram.
    stack = linux_stack()
    stack.receive_packets([UDP_V4, UDP_V6], 1.0)
    assert stack.drops == {NetDrop.PORT_UNREACHABLE: 2}
    error4, error6 = stack.packets_to_send()
    for version, error, linux, offending in ((4, error4, PORT_UNREACHABLE_V4, UDP_V4), (6, error6, PORT_UNREACHABLE_V6, UDP_V6)):
        parsed = ip.parse(error)
        assert (parsed.source, parsed.destination) == (ip.parse(linux).source, ip.parse(linux).destination)
        message = bytes(parsed.payload)
        assert icmp.parse(version, parsed.source, parsed.destination, parsed.payload) == (linux[len(error) - len(message)], 3 if version == 4 else 4)
        assert message[4:8] == bytes(4) and message[8:] == offending
        assert icmp.quoted_flow(version, parsed.payload) == (ip.UDP, parsed.source, parsed.source, 40000, 5353)
    # Linux's datagrams as captured carry a partial checksum, wrong on the wire: refused.
    stack.receive_packets([OFFLOADED_V4, OFFLOADED_V6], 1.0)
    assert stack.drops[NetDrop.BAD_UDP] == 2


def test_port_unreachable_quotes_at_most_576_or_1280_bytes():
    stack = Stack(["10.0.0.2/24", "fd00::2/64"], mtu=1500, rng=seeded_rng(1))
    big4 = ip.build(PEER4, ADDRESS_V4, ip.UDP, udp.build(PEER4, ADDRESS_V4, 1, 9, bytes(1400)))
    big6 = ip.build(PEER6, ADDRESS_V6, ip.UDP, udp.build(PEER6, ADDRESS_V6, 1, 9, bytes(1400)))
    stack.receive_packets([big4, big6], 1.0)
    error4, error6 = stack.packets_to_send()
    assert len(error4) == 576 and error4[28:] == big4[:576 - 28]
    assert len(error6) == 1280 and error6[48:] == big6[:1280 - 48]


def test_port_unreachable_is_rate_limited_by_a_token_bucket():
    stack = linux_stack(icmp_rate=TokenBucket(rate=2.0, burst=3))
    stack.receive_packets([UDP_V4] * 5, 10.0)
    assert len(stack.packets_to_send()) == 3
    assert stack.drops == {NetDrop.PORT_UNREACHABLE: 3, NetDrop.ICMP_RATE_LIMITED: 2}
    stack.receive_packets([UDP_V4] * 5, 10.5)     # half a second: one token back
    assert len(stack.packets_to_send()) == 1
    stack.receive_packets([UDP_V4] * 5, 9.0)      # the clock went back: nothing refilled
    assert stack.packets_to_send() == []
    stack.receive_packets([UDP_V4] * 5, 100.0)    # refilled to the burst, no more
    assert len(stack.packets_to_send()) == 3


def test_token_bucket_refuses_nonsense():
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


@pytest.mark.parametrize("peer, host", [(PEER4, "10.0.0.1"), (PEER6, "fd00::1")])
def test_udp_both_ways(peer, host):
    stack = linux_stack()
    sock = stack.udp_bind(5353)
    ours = ADDRESS_V4 if len(peer) == 4 else ADDRESS_V6
    stack.receive_packets([ip.build(peer, ours, ip.UDP, udp.build(peer, ours, 4444, 5353, b"question"))], 1.0)
    assert stack.events() == [DatagramReceived(sock)]
    assert stack.events() == []
    assert sock.recvfrom() == (b"question", (host, 4444))
    assert sock.recvfrom() is None
    sock.sendto(b"answer", (host, 4444))
    (packet,) = stack.packets_to_send()
    parsed = ip.parse(packet)
    assert (parsed.source, parsed.destination, parsed.protocol) == (ours, peer, ip.UDP)
    assert udp.parse(ours, peer, parsed.payload)[:2] == (5353, 4444)
    assert bytes(udp.parse(ours, peer, parsed.payload)[2]) == b"answer"


def test_udp_checksums_match_linux():
    for packet, offset, address in ((UDP_V4, 20, ADDRESS_V4), (UDP_V6, 40, ADDRESS_V6)):
        assert udp.build(address, address, 40000, 5353, b"hello") == packet[offset:]
        source_port, destination_port, data = udp.parse(address, address, memoryview(packet)[offset:])
        assert (source_port, destination_port, bytes(data)) == (40000, 5353, b"hello")


def test_udp_checksum_rules():
    datagram = bytearray(udp.build(PEER4, ADDRESS_V4, 1, 2, b"abc"))
    datagram[-1] ^= 1
    assert udp.parse(PEER4, ADDRESS_V4, memoryview(bytes(datagram))) is NetDrop.BAD_UDP
    datagram[6:8] = b"\0\0"        # no checksum: fine in IPv4 (RFC 768), refused in IPv6 (RFC 8200 8.1)
    assert bytes(udp.parse(PEER4, ADDRESS_V4, memoryview(bytes(datagram)))[2]) == b"abb"
    assert udp.parse(PEER6, ADDRESS_V6, memoryview(bytes(datagram))) is NetDrop.BAD_UDP
    assert udp.parse(PEER4, ADDRESS_V4, memoryview(bytes(7))) is NetDrop.BAD_UDP
    long = bytearray(udp.build(PEER4, ADDRESS_V4, 1, 2, b"abc"))
    long[4:6] = (20).to_bytes(2, "big")
    assert udp.parse(PEER4, ADDRESS_V4, memoryview(bytes(long))) is NetDrop.BAD_UDP


def test_a_computed_zero_checksum_is_sent_as_ffff():
    # Find a payload whose checksum would be zero: RFC 768 sends 0xffff instead.
    for n in range(70000):
        data = n.to_bytes(3, "big")
        datagram = udp.build(PEER4, ADDRESS_V4, 1, 2, data)
        if datagram[6:8] == b"\xff\xff":
            break
    else:
        pytest.fail("no payload with a zero checksum found")
    assert udp.parse(PEER4, ADDRESS_V4, memoryview(datagram))[2] == data


def test_udp_receive_queue_is_bounded():
    stack = linux_stack()
    sock = stack.udp_bind(5353)
    sock.receive_buffer = 10
    packet = ip.build(PEER4, ADDRESS_V4, ip.UDP, udp.build(PEER4, ADDRESS_V4, 1, 5353, b"123456"))
    stack.receive_packets([packet, packet, packet], 1.0)
    assert sock.pending == 1 and stack.drops == {NetDrop.UDP_QUEUE_FULL: 2}
    sock.recvfrom()
    stack.receive_packets([packet], 1.0)
    assert sock.pending == 1


def test_udp_bind_rules():
    stack = linux_stack()
    a = stack.udp_bind(53, address="10.0.0.2")
    with pytest.raises(ValueError):
        stack.udp_bind(53)               # the wildcard would shadow it
    b = stack.udp_bind(53, address="fd00::2")
    with pytest.raises(ValueError):
        stack.udp_bind(54, address="10.9.9.9")
    with pytest.raises(ValueError):
        stack.udp_bind(70000)
    with pytest.raises(ValueError):
        a.sendto(b"x", ("fd00::1", 53))   # bound to IPv4
    with pytest.raises(ValueError):
        a.sendto(b"x", ("not an address", 53))
    with pytest.raises(ValueError):
        a.sendto(bytes(1420 - 28 + 1), ("10.0.0.1", 53))
    a.sendto(bytes(1420 - 28), ("10.0.0.1", 53))
    assert len(stack.packets_to_send()[0]) == 1420
    a.close()
    with pytest.raises(ValueError):
        a.sendto(b"x", ("10.0.0.1", 53))
    assert stack.udp_bind(53, address="10.0.0.2").local == ("10.0.0.2", 53)
    assert b.local == ("fd00::2", 53)
    ephemeral = {stack.udp_bind().port for _ in range(50)}
    assert len(ephemeral) == 50 and all(49152 <= port <= 65535 for port in ephemeral)


def test_ipv4_only_stack_cannot_send_ipv6():
    stack = Stack(["10.0.0.2/24"], rng=seeded_rng(1))
    with pytest.raises(ValueError):
        stack.udp_bind().sendto(b"x", ("fd00::1", 1))


def test_closed_socket_gets_port_unreachable():
    stack = linux_stack()
    stack.udp_bind(5353).close()
    stack.receive_packets([UDP_V4], 1.0)
    assert stack.drops == {NetDrop.PORT_UNREACHABLE: 1}


def test_not_for_us_and_bad_sources_are_dropped_silently():
    stack = Stack(["10.0.0.3/24", "fd00::3/64"], rng=seeded_rng(1))
    stack.receive_packets([ECHO_REQUEST_V4, ECHO_REQUEST_V6, UDP_V4, UDP_V6], 1.0)
    assert stack.packets_to_send() == []
    assert stack.drops == {NetDrop.NOT_FOR_US: 4}
    ours = bytes([10, 0, 0, 3])
    for source in (bytes(4), bytes([224, 0, 0, 1]), bytes([255] * 4)):
        stack.receive_packets([ip.build(source, ours, ip.UDP, udp.build(source, ours, 1, 2, b""))], 1.0)
    assert stack.drops[NetDrop.BAD_SOURCE] == 3 and stack.packets_to_send() == []


def test_icmp_that_is_not_a_request_is_named():
    stack = linux_stack()
    stack.receive_packets([ECHO_REPLY_V4, ECHO_REPLY_V6, PORT_UNREACHABLE_V4, PORT_UNREACHABLE_V6], 1.0)
    assert stack.drops == {NetDrop.ICMP_IGNORED: 2, NetDrop.ICMP_ERROR_RECEIVED: 2}
    bad = bytearray(ECHO_REQUEST_V6)
    bad[-1] ^= 0xFF
    stack.receive_packets([bytes(bad)], 1.0)
    assert stack.drops[NetDrop.BAD_ICMP] == 1 and stack.packets_to_send() == []


def test_a_fragment_gets_no_answer():
    stack = linux_stack()
    packet = bytearray(UDP_V4)
    packet[6] = 0x20            # More Fragments
    packet[10:12] = b"\0\0"
    packet[10:12] = checksum(packet[:20]).to_bytes(2, "big")
    stack.receive_packets([bytes(packet)], 1.0)
    assert stack.drops == {NetDrop.FRAGMENT: 1} and stack.packets_to_send() == []
