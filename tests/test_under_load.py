"""Under load: cookie replies instead of Diffie-Hellman, the per-source rate limit, and a legitimate
initiator that still gets through (whitepaper section 5.3; kernel receive.c, cookie.c, ratelimiter.c).

    attacker (many sources, knows bob's public key) ---flood---> bob <--- alice (legitimate peer)

"Under load" is a backlog: handshake messages that pass MAC1 wait in a bounded queue, and a queue at least
UNDER_LOAD_QUEUE_LENGTH deep puts the device under load for a second (handshake_queue.py). In the
simulation the device works instantly, so a flood makes a backlog by arriving in bursts, as datagrams
read from a socket in one go do.
"""

import pytest

from wgpy.core import noise, tai64n
from wgpy.core.constants import MAX_QUEUED_HANDSHAKES, UNDER_LOAD_QUEUE_LENGTH, MessageType
from wgpy.core.cookie import CookieGenerator
from wgpy.core.crypto import PrivateKey
from wgpy.core.errors import Drop
from wgpy.core.events import CookieReceived, HandshakeCompleted, UnderLoad
from wgpy.core.messages import CookieReply, Initiation

from .netsim import Net


def flood_initiation(net, bob, attacker_key, index):
    """A real initiation from a static key bob does not know, with a valid MAC1."""
    message, _ = noise.create_initiation(
        attacker_key, bob.public, PrivateKey.generate(net.rng), index, tai64n.encode(1.7e9 + index)
    )
    return CookieGenerator(bob.public).add_macs(message.pack(), 0.0)


def source(n):
    """The n-th flood source, in the benchmarking range 198.18.0.0/15."""
    return (f"198.{18 + n // 65536 % 2}.{n // 256 % 256}.{n % 256}", 40000 + n % 1000)


@pytest.fixture
def setup(monkeypatch):
    net = Net(seed=3)
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    attacker = PrivateKey.generate(net.rng)
    templates = [flood_initiation(net, bob, attacker, n) for n in range(64)]
    exchanges = []
    original = PrivateKey.exchange

    def counting_exchange(self, public):
        exchanges.append(self.public)
        return original(self, public)

    monkeypatch.setattr(PrivateKey, "exchange", counting_exchange)
    return net, alice, bob, templates, exchanges


def flood(net, bob, templates, count, rate, first_source=0, burst=UNDER_LOAD_QUEUE_LENGTH):
    """``count`` initiations at ``rate`` per second from many sources, straight into bob, in bursts of
    ``burst`` (each read in one go); bob works through each backlog before the next burst."""
    replies = 0
    for start in range(0, count, burst):
        batch = [(templates[n % len(templates)], source(first_source + n), None) for n in range(start, min(start + burst, count))]
        bob.device.receive_datagrams(batch, net.now)
        while True:
            for datagram, _ in bob.device.datagrams_to_send():
                replies += datagram[0] == MessageType.COOKIE_REPLY
            if not bob.device.handshake_queue:
                break
            bob.device.handle_timer(net.now)
        net.run(until=net.now + len(batch) / rate)
    return replies


def test_a_flood_turns_into_cookie_replies_without_diffie_hellman(setup):
    net, alice, bob, templates, exchanges = setup
    flood(net, bob, templates, UNDER_LOAD_QUEUE_LENGTH, rate=2000)
    assert UnderLoad(True) in bob.events
    dh_before = len([e for e in exchanges if e == bob.public])
    cookies_before = bob.device.drops[Drop.COOKIE_REPLY_SENT]
    replies = flood(net, bob, templates, 3000, rate=2000, first_source=UNDER_LOAD_QUEUE_LENGTH)
    assert replies == 3000
    assert len([e for e in exchanges if e == bob.public]) == dh_before  # no DH by bob at all
    assert bob.device.drops[Drop.COOKIE_REPLY_SENT] - cookies_before == 3000


def test_a_legitimate_initiator_gets_a_cookie_and_gets_through(setup):
    net, alice, bob, templates, exchanges = setup
    flood(net, bob, templates, UNDER_LOAD_QUEUE_LENGTH, rate=2000)
    net.send(alice, bob, b"let me through")
    start = net.now
    # Keep the flood going (1000/s from fresh sources) while alice retries after REKEY_TIMEOUT.
    flood(net, bob, templates, 7000, rate=1000, first_source=10_000)
    assert CookieReceived(bob.public) in alice.events
    assert net.packet(alice, bob, b"let me through") in bob.delivered
    completed = [e for e in alice.events if isinstance(e, HandshakeCompleted)]
    assert completed and net.now - start < 7.5
    cookie_replies_to_alice = [d for _, s, to, d in net.carried if to == alice.endpoint and d[0] == MessageType.COOKIE_REPLY]
    assert len(cookie_replies_to_alice) == 1


def test_the_rate_limit_applies_per_source_under_load(setup):
    net, alice, bob, templates, _ = setup
    flood(net, bob, templates, UNDER_LOAD_QUEUE_LENGTH, rate=2000)
    # A source that holds a valid cookie may send 5 at once, then 20 per second.
    spoofer = source(99_999)
    first = Initiation.parse(templates[0])
    generator = CookieGenerator(bob.public)
    wire = generator.add_macs(first.pack(), net.now)
    bob.device.receive_datagram(wire, spoofer, net.now)
    reply = next(CookieReply.parse(d) for d, _ in bob.device.datagrams_to_send() if d[0] == MessageType.COOKIE_REPLY)
    generator.consume_reply(reply, net.now)
    before = bob.device.drops[Drop.RATE_LIMITED]
    for n in range(10):
        bob.device.receive_datagram(generator.add_macs(first.pack(), net.now), spoofer, net.now)
    assert bob.device.drops[Drop.RATE_LIMITED] - before == 5
    assert bob.device.drops[Drop.UNKNOWN_PEER] >= 5  # the 5 allowed ones were processed (and refused)


def test_load_ends_a_second_after_the_flood(setup):
    net, alice, bob, templates, _ = setup
    flood(net, bob, templates, UNDER_LOAD_QUEUE_LENGTH, rate=2000)
    net.run(until=net.now + 1.5)
    net.send(alice, bob, b"after the storm")
    net.run(until=net.now + 1)
    assert net.packet(alice, bob, b"after the storm") in bob.delivered
    assert not [d for _, s, to, d in net.carried if s == bob.endpoint and to == alice.endpoint and d[0] == MessageType.COOKIE_REPLY]


def test_junk_that_fails_mac1_is_not_load(setup):
    """Random bytes shaped as initiations cost one BLAKE2s each and never count: alice's handshake right
    after a burst of them needs no cookie (issue: 600 junk datagrams a second made every handshake take 5 s)."""
    net, alice, bob, _, exchanges = setup
    junk = [(bytes([1, 0, 0, 0]) + net.rng(144), source(n), None) for n in range(4 * UNDER_LOAD_QUEUE_LENGTH)]
    bob.device.receive_datagrams(junk, net.now)
    assert bob.device.drops[Drop.BAD_MAC1] == len(junk)
    assert not bob.device.handshake_queue and not bob.device.datagrams_to_send()
    net.send(alice, bob, b"right after the junk")
    net.run(until=net.now + 0.1)
    assert net.packet(alice, bob, b"right after the junk") in bob.delivered
    assert UnderLoad(True) not in bob.events and CookieReceived(bob.public) not in alice.events


def test_the_queue_is_bounded_and_transport_goes_first(setup):
    """A burst larger than the queue: the excess is dropped by name, and a transport message that arrived
    behind the whole burst is delivered before any of it is handled."""
    net, alice, bob, templates, _ = setup
    net.send(alice, bob, b"hello")
    net.run(until=net.now + 0.1)
    peer = alice.device.peers[bob.public]
    alice.device.send_packet(net.packet(alice, bob, b"behind the flood"), net.now)
    (data, _), = alice.device.datagrams_to_send()
    burst = [(templates[n % len(templates)], source(n), None) for n in range(MAX_QUEUED_HANDSHAKES + 500)]
    bob.device.receive_datagrams(burst + [(data, alice.endpoint, None)], net.now)
    assert bob.device.packets_to_deliver() == [net.packet(alice, bob, b"behind the flood")]
    assert bob.device.drops[Drop.HANDSHAKE_QUEUE_FULL] == 500
    assert len(bob.device.handshake_queue) == MAX_QUEUED_HANDSHAKES - 8   # HANDSHAKES_PER_CALL handled
    assert peer.endpoint == bob.endpoint


def test_a_proven_source_gets_into_a_full_queue(setup):
    """When the queue is full, an initiation whose MAC2 carries bob's cookie for its source takes the
    place of the oldest message: a flood from spoofed addresses cannot keep alice out."""
    net, alice, bob, templates, _ = setup
    flood(net, bob, templates, UNDER_LOAD_QUEUE_LENGTH, rate=2000)
    net.send(alice, bob, b"let me through")
    net.run(until=net.now + 0.1)
    assert CookieReceived(bob.public) in alice.events           # alice now holds bob's cookie
    alice.device.handle_timer(net.now + 5.5)                        # her retransmission, with MAC2
    retry = [d for d, _ in alice.device.datagrams_to_send() if d[0] == MessageType.INITIATION]
    assert len(retry) == 1
    # The retry arrives behind more flood than the queue holds, all read in one go.
    full = [(templates[n % len(templates)], source(20_000 + n), None) for n in range(MAX_QUEUED_HANDSHAKES + 8)]
    dropped = bob.device.drops[Drop.HANDSHAKE_QUEUE_FULL]
    bob.device.receive_datagrams(full + [(retry[0], alice.endpoint, None)], net.now + 5.5)
    # 8 flood messages found the queue full; for alice's, the oldest waiting message made room.
    assert bob.device.drops[Drop.HANDSHAKE_QUEUE_FULL] == dropped + 8 + 1
    while bob.device.handshake_queue:
        bob.device.handle_timer(net.now + 5.5)
    responses = [d for d, to in bob.device.datagrams_to_send() if d[0] == MessageType.RESPONSE]
    assert len(responses) == 1


def test_the_end_of_the_load_is_told_without_more_handshakes(setup):
    """UnderLoad(False) comes from the timer a second after the backlog, not only with the next handshake
    message (the runtime restores its socket buffers on it)."""
    net, alice, bob, templates, _ = setup
    flood(net, bob, templates, UNDER_LOAD_QUEUE_LENGTH, rate=2000)
    assert bob.events[-1:] != [UnderLoad(False)] and UnderLoad(True) in bob.events
    start = net.now
    net.run(until=net.now + 1.5)
    assert bob.events.count(UnderLoad(False)) == 1
    assert bob.device.next_deadline() is None or bob.device.next_deadline() > start + 1.5
