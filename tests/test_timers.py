"""Every timer rule of whitepaper section 6, one test each, with the clock in the test's hand.

    alice (initiator, 192.0.2.1) <--- simulated network, 10 ms each way ---> bob (responder, 192.0.2.2)
"""

import pytest

from wgpy.core.constants import (
    KEEPALIVE_TIMEOUT,
    MAX_TIMER_HANDSHAKES,
    MessageType,
    REJECT_AFTER_MESSAGES,
    REJECT_AFTER_TIME,
    REKEY_AFTER_MESSAGES,
    REKEY_AFTER_TIME,
    REKEY_ATTEMPT_TIME,
    REKEY_TIMEOUT,
    REKEY_TIMEOUT_JITTER_MAX,
)
from wgpy.core.errors import Drop
from wgpy.core.events import HandshakeGaveUp, KeysZeroed, SessionExpired
from wgpy.core.timers import Timer

from .netsim import Net

I, R, T = MessageType.INITIATION, MessageType.RESPONSE, MessageType.TRANSPORT


@pytest.fixture(params=[False, True], ids=["one-by-one", "batched"])
def net(request):
    """The simulated network; every test runs with per-datagram calls and with the batch fast path."""
    return Net(seed=7, batch=request.param)


@pytest.fixture
def session(net):
    """alice and bob with a session that alice initiated at net.now (returned as t0)."""
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    net.send(alice, bob, b"start")
    net.run(until=net.now + 0.1)
    assert bob.delivered
    t0 = net.now - 0.1
    return alice, bob, t0


def times_of(net, node, kind, since=0.0):
    return [t for t, s, _, d in net.carried if s == node.endpoint and d[0] == kind and t >= since]


def keepalives_of(net, node, since=0.0):
    return [t for t, s, _, d in net.carried if s == node.endpoint and d[0] == T and len(d) == 32 and t >= since]


def test_rekey_timeout_retransmits_with_jitter(net):
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    net.blocked.add(alice.endpoint)
    start = net.now
    net.send(alice, bob, b"x")
    net.run(until=start + 30)
    sent = times_of(net, alice, I)
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    assert len(sent) == 6
    assert all(REKEY_TIMEOUT <= gap < REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX for gap in gaps)
    assert len({round(gap, 3) for gap in gaps}) > 1  # jittered, not a fixed period


def test_rekey_attempt_time_gives_up_and_drops_staged_packets(net):
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    net.blocked.add(alice.endpoint)
    start = net.now
    net.send(alice, bob, b"x")
    net.send(alice, bob, b"y")
    net.run(until=start + 200)
    sent = times_of(net, alice, I)
    # The first attempt and MAX_TIMER_HANDSHAKES + 1 retries, as the kernel and wireguard-go count.
    assert len(sent) == MAX_TIMER_HANDSHAKES + 2
    gave_up = [e for e in alice.events if isinstance(e, HandshakeGaveUp)]
    assert len(gave_up) == 1
    assert REKEY_ATTEMPT_TIME <= sent[-1] - start + REKEY_TIMEOUT <= REKEY_ATTEMPT_TIME + 3 * REKEY_TIMEOUT
    assert alice.device.drops[Drop.HANDSHAKE_GAVE_UP] == 2
    assert not alice.device.peers[bob.public].staged


def test_keepalive_timeout_answers_received_data_with_a_keepalive(net, session):
    alice, bob, t0 = session
    net.run(until=t0 + 30)
    assert len(keepalives_of(net, bob)) == 1  # the answer to alice's first packet
    net.send(alice, bob, b"data")  # bob receives data and has nothing to send back
    sent_at = net.now
    net.run(until=sent_at + 30)
    keepalives = keepalives_of(net, bob, since=sent_at)
    assert len(keepalives) == 1
    assert keepalives[0] - sent_at == pytest.approx(KEEPALIVE_TIMEOUT + 0.01, abs=0.02)


def test_data_received_while_a_keepalive_is_pending_asks_for_another(net, session):
    alice, bob, t0 = session
    net.send(alice, bob, b"more data")  # bob's keepalive for "start" is still pending
    net.run(until=t0 + 40)
    keepalives = keepalives_of(net, bob)
    assert len(keepalives) == 2
    assert keepalives[1] - keepalives[0] == pytest.approx(KEEPALIVE_TIMEOUT)


def test_no_keepalive_when_data_went_back(net, session):
    alice, bob, _ = session
    net.send(alice, bob, b"data")
    net.run(until=net.now + 1)
    net.send(bob, alice, b"answer")  # bob's own data stands in for the keepalive
    start = net.now
    net.run(until=start + 9)
    assert keepalives_of(net, bob, since=start - 1) == []


def test_new_handshake_when_sent_data_gets_no_answer(net, session):
    alice, bob, _ = session
    net.blocked.add(bob.endpoint)  # bob hears alice but nothing he sends arrives
    net.send(alice, bob, b"anyone there?")
    sent_at = net.now
    net.run(until=sent_at + 20)
    initiations = times_of(net, alice, I, since=sent_at)
    assert initiations, "alice should have started a new handshake"
    delay = initiations[0] - sent_at
    assert KEEPALIVE_TIMEOUT + REKEY_TIMEOUT <= delay < KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX


def test_rekey_after_time_on_the_initiator_side_only(net, session):
    alice, bob, t0 = session
    net.run(until=t0 + REKEY_AFTER_TIME - 1)
    net.send(bob, alice, b"responder sends")  # the responder never rekeys on time
    net.run(until=t0 + REKEY_AFTER_TIME + 1)
    assert times_of(net, bob, I, since=t0 + 1) == []
    assert times_of(net, alice, I, since=t0 + 1) == []
    net.send(bob, alice, b"responder sends again")
    net.run(until=net.now + 1)
    assert times_of(net, bob, I, since=t0 + 1) == []
    net.send(alice, bob, b"initiator sends")
    net.run(until=net.now + 1)
    assert len(times_of(net, alice, I, since=t0 + 1)) == 1


def test_rekey_on_receive_near_reject_after_time(net, session):
    alice, bob, t0 = session
    net.blocked.add(alice.endpoint)  # keep alice's own sends (keepalives) out of the picture
    net.run(until=t0 + 160)
    bob.device.send_packet(net.packet(bob, alice, b"at 160"), net.now)
    net.run(until=net.now + 0.1)
    assert times_of(net, alice, I, since=t0 + 1) == []
    net.run(until=t0 + REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT + 0.5)
    bob.device.send_packet(net.packet(bob, alice, b"at 165.5"), net.now)
    net.run(until=net.now + 0.1)
    assert len(times_of(net, alice, I, since=t0 + 1)) == 1
    # and bob, the responder, does not do the same when he receives late in a session
    assert times_of(net, bob, I) == []


def test_reject_after_time(net, session):
    alice, bob, t0 = session
    keypair = alice.device.peers[bob.public].keypairs.current
    net.run(until=t0 + REJECT_AFTER_TIME + 1)
    assert SessionExpired(bob.public) in alice.events
    # Data cannot go out under the old keys: it is staged and a handshake starts.
    net.blocked.add(alice.endpoint)
    net.send(alice, bob, b"late")
    net.run(until=net.now + 0.1)
    assert times_of(net, alice, I, since=t0 + REJECT_AFTER_TIME) and not times_of(net, alice, T, since=t0 + REJECT_AFTER_TIME)
    # And bob refuses anything still sent under keys that old.
    late = keypair.encrypt(net.packet(alice, bob, b"too late"))
    bob.device.receive_datagram(late, alice.endpoint, net.now)
    assert bob.device.drops[Drop.KEYPAIR_EXPIRED] == 1


def test_rekey_after_messages(net, session):
    alice, bob, t0 = session
    net.run(until=t0 + REKEY_TIMEOUT + 1)  # initiations are limited to one per REKEY_TIMEOUT
    keypair = alice.device.peers[bob.public].keypairs.current
    keypair.sending_counter = REKEY_AFTER_MESSAGES
    net.send(alice, bob, b"one more")
    net.run(until=net.now + 1)
    assert len(times_of(net, alice, I, since=t0 + 0.5)) == 1


def test_reject_after_messages(net, session):
    alice, bob, t0 = session
    net.run(until=t0 + REKEY_TIMEOUT + 1)  # initiations are limited to one per REKEY_TIMEOUT
    keypair = alice.device.peers[bob.public].keypairs.current
    keypair.sending_counter = REJECT_AFTER_MESSAGES
    net.blocked.add(alice.endpoint)
    net.send(alice, bob, b"no nonce left")
    net.run(until=net.now + 0.1)
    assert times_of(net, alice, T, since=t0 + 0.5) == []
    assert len(times_of(net, alice, I, since=t0 + 0.5)) == 1
    assert alice.device.peers[bob.public].staged  # kept for the next session


def test_persistent_keepalive(net):
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    alice.device.set_persistent_keepalive(alice.device.peers[bob.public], 25, net.now)
    start = net.now
    net.run(until=start + 101)
    keepalives = keepalives_of(net, alice)
    assert len(keepalives) == 5  # at once (after the handshake), then every 25 s
    gaps = [b - a for a, b in zip(keepalives, keepalives[1:])]
    assert all(gap == pytest.approx(25, abs=0.05) for gap in gaps)
    alice.device.set_persistent_keepalive(alice.device.peers[bob.public], 0, net.now)
    net.run(until=net.now + 100)
    assert len(keepalives_of(net, alice)) == 5


def test_all_keys_zeroed_after_three_times_reject_after_time(net, session):
    alice, bob, t0 = session
    peer = alice.device.peers[bob.public]
    index = peer.keypairs.current.local_index
    net.run(until=t0 + 3 * REJECT_AFTER_TIME - 1)
    assert peer.keypairs.current is not None and KeysZeroed(bob.public) not in alice.events
    net.run(until=t0 + 3 * REJECT_AFTER_TIME + 1)
    assert KeysZeroed(bob.public) in alice.events
    assert list(peer.keypairs) == [] and alice.device.indices.lookup(index) is None


def test_one_next_deadline_for_the_whole_device(net, session):
    alice, bob, t0 = session
    deadline = alice.device.next_deadline()
    pending = [d for p in alice.device.peers.values() for d in p.timers.values()]
    assert deadline == min(pending)
    assert alice.device.peers[bob.public].timers[Timer.ZERO_KEY_MATERIAL] == pytest.approx(t0 + 3 * REJECT_AFTER_TIME, abs=0.1)
    alice.device.handle_timer(deadline - 0.001)  # nothing due yet: nothing changes
    assert alice.device.next_deadline() == deadline


def test_the_timer_heap_stays_small_while_timers_move(net):
    """Every packet pushes the persistent keepalive back; the heap must not grow with the traffic."""
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    net.send(alice, bob, b"start")
    net.run(until=net.now + 1)
    for node, other in ((alice, bob), (bob, alice)):
        node.device.set_persistent_keepalive(node.device.peers[other.public], 3600, net.now)
    bob.delivered.clear()
    for n in range(3000):
        net.send(alice, bob, b"%d" % n)
        net.run(until=net.now + 0.001)
    net.run(until=net.now + 1)
    assert len(bob.delivered) == 3000
    assert len(alice.device.schedule) < 50 and len(bob.device.schedule) < 50


def test_the_timer_heap_stays_small_while_data_goes_both_ways(net, session):
    """A transfer with answers: each received packet clears New-Handshake and each sent one sets it again
    (Send-Keepalive the other way round). Each set after a clear files a heap entry; the stale ones must
    not pile up for as long as the traffic lasts (each next_deadline would re-file them all)."""
    alice, bob, t0 = session
    for n in range(2000):
        net.send(alice, bob, b"%d" % n)
        net.send(bob, alice, b"re %d" % n)
        net.run(until=net.now + 0.002)
    net.run(until=net.now + 0.1)
    assert len(bob.delivered) == 2001 and len(alice.delivered) == 2000   # bob's first was "start"
    assert len(alice.device.schedule) < 50 and len(bob.device.schedule) < 50
