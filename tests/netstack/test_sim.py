"""Two stacks over the simulated link and behind two WireGuard Devices: UDP and ICMP echo end to end."""

from wgpy.netstack import icmp, ip
from wgpy.netstack.checksum import checksum
from wgpy.netstack.errors import NetDrop
from wgpy.netstack.events import DatagramReceived

from .sim import Link, Tunneled


def _echo_request(source: bytes, destination: bytes, sequence: int) -> bytes:
    message = bytearray(icmp.HEADER.pack(icmp.ECHO_REQUEST, 0, 0, 0x4242_0000 | sequence) + b"payload")
    message[2:4] = checksum(message).to_bytes(2, "big")
    return ip.build(source, destination, ip.ICMP, bytes(message))


def test_udp_over_a_lossy_reordering_link_arrives_with_what_survived():
    link = Link(seed=3, loss=0.2, duplicate=0.1, reorder=0.3)
    server = link.bob.udp_bind(53)
    client = link.alice.udp_bind()
    for n in range(200):
        client.sendto(b"query %d" % n, ("10.0.0.2", 53))
        client.sendto(b"query6 %d" % n, ("fd00::2", 53))
    link.run(until=link.now + 1.0)
    received = []
    while (item := server.recvfrom()) is not None:
        received.append(item)
    sent_packets = [p for _, who, p in link.carried if who == "alice"]
    assert len(sent_packets) == 400
    # Some lost, some twice, out of order: each received datagram is one that was sent, from the client.
    assert 200 < len(received) < 480
    assert {data for data, _ in received} <= {b"query %d" % n for n in range(200)} | {b"query6 %d" % n for n in range(200)}
    assert {source for _, source in received} == {("10.0.0.1", client.port), ("fd00::1", client.port)}
    assert [data for data, _ in received] != sorted((data for data, _ in received), key=lambda d: int(d.split()[1]))
    assert DatagramReceived(server) in link.events["bob"]
    # Answers go back the other way.
    for data, source in received[:10]:
        server.sendto(b"answer " + data, source)
    link.run(until=link.now + 1.0)
    answers = []
    while (item := client.recvfrom()) is not None:
        answers.append(item)
    assert answers and all(data.startswith(b"answer query") and source[1] == 53 for data, source in answers)
    assert sum(link.alice.drops.values()) == 0 and sum(link.bob.drops.values()) == 0


def test_ping_and_udp_through_two_wireguard_devices():
    tunnel = Tunneled(seed=5)
    alice_address, bob_address = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    # An echo request from alice's side to bob's stack: the reply comes back through both devices.
    tunnel.alice_node.device.send_packets([_echo_request(alice_address, bob_address, 7)], tunnel.now)
    server = tunnel.bob.udp_bind(5000)
    client = tunnel.alice.udp_bind()
    client.sendto(b"over wireguard", ("10.0.0.2", 5000))
    tunnel.run(until=tunnel.now + 2.0)
    assert server.recvfrom() == (b"over wireguard", ("10.0.0.1", client.port))
    server.sendto(b"and back", ("10.0.0.1", client.port))
    tunnel.run(until=tunnel.now + 1.0)
    assert client.recvfrom() == (b"and back", ("10.0.0.2", 5000))
    # alice's stack saw bob's echo reply (it sent no request itself: an ICMP message it ignores, named).
    assert tunnel.alice.drops[NetDrop.ICMP_IGNORED] == 1
