"""Which local address replies leave from ("sticky sockets"): set only by authenticated input, cleared
when a handshake goes unanswered, as the kernel does (socket.c ``wg_socket_set_peer_endpoint``,
timers.c ``wg_socket_clear_peer_endpoint_src``).

    alice (192.0.2.1:51820) ---> bob, who owns two addresses: "A1" (alice's datagrams arrive there) and
                                 "A2" (an attacker spoofing alice's address sends there)

The local addresses are opaque to the core: here plain strings, in the runtime IP_PKTINFO control data.
"""

import pytest

from wgpy.core.constants import KEEPALIVE_TIMEOUT, REKEY_TIMEOUT, MessageType

from .netsim import Net


@pytest.fixture(params=[False, True], ids=["one-by-one", "batched"])
def net(request):
    return Net(seed=5, batch=request.param)


@pytest.fixture
def session(net):
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    net.send(alice, bob, b"hello")
    net.run(until=net.now + 1)
    assert bob.delivered
    return alice, bob


def deliver(net, node, data, source, local):
    if net.batch:
        node.device.receive_datagrams([(data, source, local)], net.now)
    else:
        node.device.receive_datagram(data, source, net.now, local)
    return node.device.datagrams_to_send()


def transport_from(net, alice, bob, payload):
    alice.device.send_packet(net.packet(alice, bob, payload), net.now)
    (data, _), = alice.device.datagrams_to_send()
    return data


def test_only_authenticated_input_sets_the_reply_source(net, session):
    alice, bob = session
    first = transport_from(net, alice, bob, b"one")
    deliver(net, bob, first, alice.endpoint, "A1")
    assert bob.device.reply_source(alice.endpoint) == "A1"
    spoofed = [
        net.rng(100),                                            # junk
        first,                                                   # a replay of an authentic datagram
        first[:16] + bytes(len(first) - 16),                     # a real index and counter, a wrong tag
        bytes([1, 0, 0, 0]) + net.rng(144),                      # an initiation with a bad MAC1
        bytes([3, 0, 0, 0]) + first[4:8] + net.rng(56),          # a cookie reply naming a real index
    ]
    for data in spoofed:
        deliver(net, bob, data, alice.endpoint, "A2")
        bob.device.handle_timer(net.now)                         # whatever was queued is handled
    assert bob.device.reply_source(alice.endpoint) == "A1"
    assert bob.device.peers[alice.public].endpoint == alice.endpoint
    # Authentic input that reaches the other address moves it (the fast path notices too).
    deliver(net, bob, transport_from(net, alice, bob, b"two"), alice.endpoint, "A2")
    assert bob.device.reply_source(alice.endpoint) == "A2"
    deliver(net, bob, transport_from(net, alice, bob, b"three"), alice.endpoint, "A1")
    assert bob.device.reply_source(alice.endpoint) == "A1"
    net.run(until=net.now)
    assert len(bob.delivered) == 4


def test_a_handshake_that_goes_unanswered_clears_it(net, session):
    """Bob sends data, alice has gone quiet: at KEEPALIVE_TIMEOUT + REKEY_TIMEOUT bob starts a new
    handshake from an address routing chooses, and again at each retransmission."""
    alice, bob = session
    deliver(net, bob, transport_from(net, alice, bob, b"one"), alice.endpoint, "A1")
    net.blocked.add(alice.endpoint)
    net.send(bob, alice, b"anyone there?")
    net.run(until=net.now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT - 0.5)
    assert bob.device.reply_source(alice.endpoint) == "A1"
    net.run(until=net.now + 1)
    assert net.sent_types(bob, since=net.now - 1) == [MessageType.INITIATION]
    assert bob.device.reply_source(alice.endpoint) is None


def test_a_retransmission_clears_it(net, session):
    alice, bob = session
    net.blocked.add(alice.endpoint)
    peer = bob.device.peers[alice.public]
    from wgpy.core import send

    send.send_handshake_initiation(bob.device, peer, net.now + 200)      # a rekey, say
    net.now += 200
    bob.device.set_endpoint(peer, alice.endpoint, "A1")                  # as if authenticated meanwhile
    net.run(until=net.now + REKEY_TIMEOUT - 0.5)
    assert bob.device.reply_source(alice.endpoint) == "A1"
    net.run(until=net.now + 1)
    assert bob.device.reply_source(alice.endpoint) is None


def test_configuration_and_removal_clear_it(net, session):
    alice, bob = session
    peer = bob.device.peers[alice.public]
    deliver(net, bob, transport_from(net, alice, bob, b"one"), alice.endpoint, "A1")
    bob.device.set_endpoint(peer, ("192.0.2.9", 51820))                  # wg set ... endpoint
    assert bob.device.reply_source(alice.endpoint) is None and bob.device.reply_source(("192.0.2.9", 51820)) is None
    deliver(net, bob, transport_from(net, alice, bob, b"two"), alice.endpoint, "A1")
    assert peer.endpoint == alice.endpoint and bob.device.reply_source(alice.endpoint) == "A1"
    bob.device.remove_peer(alice.public)
    assert bob.device.reply_source(alice.endpoint) is None
