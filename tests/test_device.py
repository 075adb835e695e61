"""The device (sans-IO): sessions, keypair rotation, cryptokey routing, roaming, configuration.

    alice (192.0.2.1:51820, tunnel 10.0.0.1) <--- simulated network ---> bob (192.0.2.2:51820, tunnel 10.0.0.2)
"""

import pytest

from wgpy.core.constants import MessageType
from wgpy.core.crypto import PrivateKey
from wgpy.core.device import Device
from wgpy.core.errors import Drop
from wgpy.core.events import EndpointChanged, HandshakeCompleted, PacketDropped
from wgpy.core.messages import parse

from .netsim import Net, ipv4_packet

I, R, C, T = MessageType.INITIATION, MessageType.RESPONSE, MessageType.COOKIE_REPLY, MessageType.TRANSPORT


@pytest.fixture(params=[(False, False), (True, False), (True, True)], ids=["one-by-one", "batched", "prepared"])
def net(request):
    """The simulated network; every test runs with per-datagram calls, with the batch fast path, and with
    the batch fast path and handshakes prepared ahead of time (core/prepare.py)."""
    batch, prepare = request.param
    return Net(seed=1, batch=batch, prepare=prepare)


@pytest.fixture
def pair(net):
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob, psk=bytes(range(32)))
    return alice, bob


def drops(node, reason=None):
    found = [e for e in node.events if isinstance(e, PacketDropped)]
    return [e for e in found if reason is None or e.reason is reason]


def test_first_packet_starts_a_handshake_and_is_delivered_after_it(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"hello")
    net.run(until=net.now + 1)
    assert net.sent_types() == [I, R, T]
    assert bob.delivered == [net.packet(alice, bob, b"hello")]
    assert [e for e in alice.events if isinstance(e, HandshakeCompleted)] == [HandshakeCompleted(bob.public, True)]
    assert [e for e in bob.events if isinstance(e, HandshakeCompleted)] == [HandshakeCompleted(alice.public, False)]


def test_response_without_staged_data_is_confirmed_by_a_keepalive(net, pair):
    alice, bob = pair
    peer = alice.device.peers[bob.public]
    from wgpy.core import send

    send.send_handshake_initiation(alice.device, peer, net.now)
    net.run(until=net.now + 1)
    transport = [d for _, _, _, d in net.carried if d[0] == T]
    assert len(transport) == 1 and len(transport[0]) == 32  # a keepalive confirms the session at once
    assert bob.device.peers[alice.public].keypairs.current is not None


def test_responder_keypair_waits_in_next_until_the_first_data_packet(net, pair):
    alice, bob = pair
    net.blocked.add(alice.endpoint)  # alice's datagrams after the initiation vanish
    net.send(alice, bob, b"one")
    net.blocked.clear()
    net.run(until=net.now + 0.015)  # initiation arrives, response goes out
    net.blocked.add(alice.endpoint)
    net.run(until=net.now + 0.05)  # response arrives at alice; her data packet is lost
    bob_peer = bob.device.peers[alice.public]
    assert bob_peer.keypairs.next is not None and bob_peer.keypairs.current is None
    # Bob may not send with an unconfirmed keypair: his packet is staged and... he initiates himself.
    net.blocked.clear()
    net.send(alice, bob, b"two")
    net.run(until=net.now + 0.05)
    assert bob_peer.keypairs.current is not None and bob_peer.keypairs.next is None
    assert bob.delivered == [net.packet(alice, bob, b"two")]


def test_simultaneous_initiations_resolve_after_a_retransmission(net, pair):
    """Both send first: each answers the other's initiation, which supersedes its own, so both responses
    are refused; the jittered retransmission (REKEY_TIMEOUT) settles it, as in the kernel."""
    alice, bob = pair
    net.send(alice, bob, b"from alice")
    net.send(bob, alice, b"from bob")
    net.run(until=net.now + 1)
    assert alice.delivered == bob.delivered == []
    net.run(until=net.now + 30)
    assert alice.delivered == [net.packet(bob, alice, b"from bob")]
    assert bob.delivered == [net.packet(alice, bob, b"from alice")]


def test_traffic_both_ways_and_statistics(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"a")
    net.run(until=net.now + 0.1)
    for n in range(19):
        net.send(alice, bob, b"a%d" % n)
        net.send(bob, alice, b"b%d" % n)
        net.run(until=net.now + 0.1)
    assert len(bob.delivered) == 20 and len(alice.delivered) == 19
    a_peer, b_peer = alice.device.peers[bob.public], bob.device.peers[alice.public]
    sent_by_alice = sum(len(d) for _, s, _, d in net.carried if s == alice.endpoint)
    assert a_peer.tx_bytes == sent_by_alice == b_peer.rx_bytes
    assert b_peer.tx_bytes == a_peer.rx_bytes > 0
    assert a_peer.last_handshake_time is not None and abs(a_peer.last_handshake_time - (1.7e9 + 1000)) < 1


def test_packets_are_padded_to_16_bytes(net, pair):
    alice, bob = pair
    for size in (1, 15, 16, 17, 100):
        net.send(alice, bob, bytes(size))
        net.run(until=net.now + 0.1)
    sizes = [len(d) - 32 for _, s, _, d in net.carried if s == alice.endpoint and d[0] == T]
    assert all(size % 16 == 0 for size in sizes)
    assert [p[20:] for p in bob.delivered] == [bytes(s) for s in (1, 15, 16, 17, 100)]  # padding removed


def test_no_route_and_not_ip_are_named_drops(net, pair):
    alice, _ = pair
    alice.device.send_packet(ipv4_packet(alice.tunnel_ip, bytes([10, 9, 9, 9]), b"x"), net.now)
    alice.device.send_packet(b"\x00" * 40, net.now)
    net.run(until=net.now + 0.1)
    assert [e.reason for e in drops(alice)] == [Drop.NO_ROUTE, Drop.NOT_IP]
    assert net.carried == []


def test_inner_source_must_be_in_the_senders_allowed_ips(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"warm up")
    net.run(until=net.now + 1)
    spoofed = ipv4_packet(bytes([10, 0, 0, 99]), bob.tunnel_ip, b"spoof")
    alice.device.allowed_ips.insert(bob.tunnel_ip, 32, alice.device.peers[bob.public])
    alice.device.send_packet(spoofed, net.now)
    net.run(until=net.now + 1)
    assert spoofed not in bob.delivered
    assert [e.reason for e in drops(bob)] == [Drop.UNALLOWED_SOURCE]


def test_roaming_follows_the_latest_authenticated_packet(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"first")
    net.run(until=net.now + 1)
    # Alice moves: her datagrams now come from a new address, which bob learns and answers to.
    net.move(alice, "198.51.100.7")
    net.send(alice, bob, b"from afar")
    net.run(until=net.now + 1)
    assert bob.device.peers[alice.public].endpoint == ("198.51.100.7", 51820)
    assert EndpointChanged(alice.public, ("198.51.100.7", 51820)) in bob.events
    net.send(bob, alice, b"reply")
    net.run(until=net.now + 1)
    assert net.packet(bob, alice, b"reply") in alice.delivered


def test_forged_datagrams_do_not_move_the_endpoint(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"first")
    net.run(until=net.now + 1)
    wire = [d for _, s, _, d in net.carried if s == alice.endpoint and d[0] == T][-1]
    forged = wire[:-1] + bytes([wire[-1] ^ 1])
    bob.device.receive_datagram(forged, ("203.0.113.9", 1), net.now)
    bob.device.receive_datagram(wire, ("203.0.113.9", 1), net.now)  # a replay from elsewhere
    assert bob.device.peers[alice.public].endpoint == alice.endpoint
    assert [e.reason for e in bob.device.events() if isinstance(e, PacketDropped)] == [Drop.DECRYPTION_FAILED, Drop.REPLAYED]


def test_initiations_need_a_newer_timestamp_and_at_most_50_per_second(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"x")
    net.run(until=net.now + 1)
    initiation = next(d for _, s, _, d in net.carried if d[0] == I)
    bob.device.receive_datagram(initiation, alice.endpoint, net.now)  # replayed initiation
    assert bob.device.drops[Drop.STALE_TIMESTAMP] == 1
    peer = alice.device.peers[bob.public]
    from wgpy.core import send

    # Two fresh initiations 10 ms apart: the second exceeds 50 per second.
    for step in range(2):
        peer.last_sent_handshake = None
        alice.device.epoch_offset += 0.05  # a later wall clock, so the timestamp itself is newer
        send.send_handshake_initiation(alice.device, peer, net.now)
        for datagram, _ in alice.device.datagrams_to_send():
            bob.device.receive_datagram(datagram, alice.endpoint, net.now + 0.01 * step)
    assert bob.device.drops[Drop.INITIATION_FLOOD] == 1


def test_unknown_peer_and_garbage_are_dropped_by_name(net, pair):
    alice, bob = pair
    stranger = net.device("192.0.2.3")
    net.link(stranger, alice)  # alice knows the stranger, bob does not
    peer = stranger.device.add_peer(bob.public)
    peer.endpoint = bob.endpoint
    stranger.device.allowed_ips.insert(bob.tunnel_ip, 32, peer)
    net.send(stranger, bob, b"let me in")
    net.run(until=net.now + 1)
    assert bob.device.drops[Drop.UNKNOWN_PEER] >= 1
    for garbage in (b"", b"\x01", b"\x04\0\0\0" + bytes(40), b"\x09" * 100, b"\x03\0\0\0" + bytes(60)):
        bob.device.receive_datagram(garbage, ("203.0.113.1", 9), net.now)
    assert bob.device.drops[Drop.EMPTY] == 1 and bob.device.drops[Drop.UNKNOWN_TYPE] == 1
    assert bob.device.drops[Drop.UNKNOWN_INDEX] == 2


def test_own_public_key_is_not_a_peer(rng):
    key = PrivateKey.generate(rng)
    device = Device(key, rng=rng)
    assert device.add_peer(key.public) is None and device.peers == {}
    other = device.add_peer(PrivateKey.generate(rng).public)
    assert device.add_peer(other.public_key) is other


def test_changing_the_private_key_removes_a_peer_with_that_key(rng):
    device = Device(PrivateKey.generate(rng), rng=rng)
    new_key = PrivateKey.generate(rng)
    device.add_peer(new_key.public)
    device.set_private_key(new_key)
    assert device.peers == {}


def test_removing_a_peer_removes_its_routes_and_sessions(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"x")
    net.run(until=net.now + 1)
    index = alice.device.peers[bob.public].keypairs.current.local_index
    assert alice.device.indices.lookup(index) is not None
    alice.device.remove_peer(bob.public)
    assert alice.device.indices.lookup(index) is None
    assert alice.device.allowed_ips.lookup(bob.tunnel_ip) is None
    alice.device.remove_all_peers()
    assert alice.device.peers == {}


def test_a_peer_that_restarts_is_back_after_one_handshake(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"before")
    net.run(until=net.now + 1)
    # Bob restarts: same key, same configuration, no state.
    key = bob.device.private_key
    del net.nodes[bob.endpoint]
    reborn = net.device(bob.address, key=key)
    reborn.tunnel_ip = bob.tunnel_ip
    peer = reborn.device.add_peer(alice.public)
    peer.endpoint, peer.preshared_key = alice.endpoint, bytes(range(32))
    reborn.device.allowed_ips.insert(alice.tunnel_ip, 32, peer)
    handshakes_before = net.sent_types().count(I)
    net.send(reborn, alice, b"I am back")
    net.run(until=net.now + 1)
    assert net.packet(reborn, alice, b"I am back") in alice.delivered
    assert net.sent_types().count(I) == handshakes_before + 1
    net.send(alice, reborn, b"welcome back")
    net.run(until=net.now + 1)
    assert net.packet(alice, reborn, b"welcome back") in reborn.delivered


def test_receive_datagram_never_raises_on_mutations_of_real_traffic(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"x" * 50)
    net.run(until=net.now + 1)
    net.send(bob, alice, b"y" * 50)
    net.run(until=net.now + 1)
    for _, _, _, datagram in list(net.carried):
        for position in range(0, len(datagram), 7):
            mutated = bytearray(datagram)
            mutated[position] ^= 0xFF
            bob.device.receive_datagram(bytes(mutated), alice.endpoint, net.now)
            bob.device.receive_datagram(bytes(mutated[:position]), alice.endpoint, net.now)
    assert bob.device.peers[alice.public].keypairs.current is not None
    net.send(alice, bob, b"still works")
    net.run(until=net.now + 1)
    assert net.packet(alice, bob, b"still works") in bob.delivered


def test_messages_on_the_wire_parse(net, pair):
    alice, bob = pair
    net.send(alice, bob, b"x")
    net.run(until=net.now + 1)
    for _, _, _, datagram in net.carried:
        assert parse(datagram).pack() == datagram


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from([1, 2, 3, 4]),
    body=st.binary(max_size=200),
    size=st.sampled_from([None, 148, 92, 64, 32, 48]),
)
def test_any_datagram_is_dropped_by_name_never_raised(pair_for_hypothesis, kind, body, size):
    alice, bob, net = pair_for_hypothesis
    data = bytes([kind, 0, 0, 0]) + body
    if size is not None:
        data = data[:size].ljust(size, b"\0")
    before = sum(bob.device.drops.values())
    bob.device.receive_datagram(data, ("203.0.113.5", 7), net.now)
    assert sum(bob.device.drops.values()) == before + 1  # refused, and counted once
    assert bob.device.peers[alice.public].endpoint == alice.endpoint


@pytest.fixture(scope="module")
def pair_for_hypothesis():
    net = Net(seed=11)
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    net.send(alice, bob, b"x")
    net.run(until=net.now + 1)
    return alice, bob, net
