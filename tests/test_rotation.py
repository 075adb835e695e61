"""Key rotation without an outage (docs/rotation.md), in memory with the clock in the test's hand.

    alice (rotates)  <->  bob     a stock-like peer: its entry for alice is replaced mid-flight
          |          <->  carol   a stock-like peer that never switches to alice's new key

Every 0.1 s each of them sends a numbered packet to each of its peers; the network loses nothing, so
every packet not delivered was lost to the rotation.
"""

import itertools

import pytest

from wgpy.core.constants import REKEY_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, REJECT_AFTER_TIME
from wgpy.core.crypto import PrivateKey
from wgpy.core.errors import Drop
from wgpy.core.events import HandshakeCompleted, KeyRotated, PacketDropped, PreviousKeyRetired, PrivateKeyChanged
from wgpy.core.rotation import MAX_ROTATION_GRACE

from .netsim import Net

INTERVAL = 0.1
GRACE = 300.0


def switch_peer(node, old_public, new_public, now):
    """What `wg set IFACE peer OLD remove peer NEW endpoint E allowed-ips ... preshared-key ...` does on a
    stock peer: the entry for the rotating host is replaced, with the same settings."""
    device = node.device
    old = device.peers[old_public]
    endpoint, psk = old.endpoint, old.preshared_key
    prefixes = list(device.allowed_ips.iter_entries(old))
    device.remove_peer(old_public)
    new = device.add_peer(new_public)
    device.set_endpoint(new, endpoint)
    new.preshared_key = psk
    for address, cidr in prefixes:
        device.allowed_ips.insert(address, cidr, new)
    device.send_staged_packets(new, now)


class Traffic:
    """Numbered packets between pairs, every INTERVAL, and what arrived."""

    def __init__(self, net, pairs):
        self.net, self.pairs = net, pairs
        self.sent = {(a.address, b.address): [] for a, b in pairs}   # -> [(time, number)]
        self.numbers = itertools.count()

    def run(self, until, at=None):
        """Send until ``until``; ``at`` maps a time to a callable run once the clock reaches it."""
        pending = sorted((at or {}).items())
        while self.net.now < until:
            while pending and pending[0][0] <= self.net.now:
                pending.pop(0)[1]()
            for a, b in self.pairs:
                number = next(self.numbers)
                self.sent[(a.address, b.address)].append((self.net.now, number))
                self.net.send(a, b, b"n=%d" % number)
            self.net.run(until=self.net.now + INTERVAL)

    def lost(self, a, b, since=-1.0, before=float("inf")):
        """Times of the packets from a to b (sent in [since, before)) that never arrived at b."""
        arrived = {bytes(packet[20:]) for packet in b.delivered}
        return [t for t, n in self.sent[(a.address, b.address)] if since <= t < before and b"n=%d" % n not in arrived]


def mesh(seed=1, prepare=False):
    net = Net(seed=seed, prepare=prepare)
    alice, bob, carol = net.device("192.0.2.1"), net.device("192.0.2.2"), net.device("192.0.2.3")
    psk = bytes(range(32))
    net.link(alice, bob, psk=psk)
    net.link(alice, carol)
    net.link(bob, carol)
    pairs = [(x, y) for x in (alice, bob, carol) for y in (alice, bob, carol) if x is not y]
    # One handshake per pair before the traffic (two peers that initiate at the same instant each answer
    # the other and wait for a retransmission: that is WireGuard's, not the rotation's).
    for x, y in ((alice, bob), (alice, carol), (bob, carol)):
        net.send(x, y, b"hello")
        net.run(until=net.now + 1)
    for node in (alice, bob, carol):
        node.delivered.clear()
    return net, alice, bob, carol, Traffic(net, pairs)


@pytest.mark.parametrize("prepare", [False, True], ids=["computed", "prepared"])
def test_rotation_keeps_every_session_and_loses_only_what_was_in_flight_to_a_switching_peer(prepare):
    net, alice, bob, carol, traffic = mesh(prepare=prepare)
    traffic.run(until=net.now + 5)   # every pair has a session
    old = alice.public
    new_key = PrivateKey.generate(net.rng)
    rotated = net.now
    alice.device.rotate_private_key(new_key, GRACE, net.now)
    switched = rotated + 20
    traffic.run(until=rotated + 60, at={switched: lambda: switch_peer(bob, old, new_key.public, net.now)})
    net.run(until=net.now + 1)

    assert alice.device.private_key == new_key and alice.device.rotation.previous_public == old
    assert KeyRotated(old, new_key.public, rotated + GRACE) in alice.events
    assert PrivateKeyChanged(new_key.public) in alice.events
    # Nothing lost between peers that did not change anything, nor to alice before bob switched.
    for a, b in traffic.pairs:
        if {a.address, b.address} != {alice.address, bob.address}:
            assert traffic.lost(a, b) == [], (a.address, b.address)
    assert traffic.lost(alice, bob, before=switched) == []
    assert traffic.lost(bob, alice) == []   # bob's packets wait for his handshake with the new key
    # alice -> bob: only what alice sent on the old session within one round trip of bob's switch.
    lost = traffic.lost(alice, bob)
    assert len(lost) <= 1 and all(switched <= t < switched + 2 * INTERVAL for t in lost), lost
    # bob now knows alice by her new key; carol still by the old one, and her sessions went on.
    assert bob.device.peers[new_key.public].local_identity == bob.public
    assert alice.device.peers[bob.public].local_identity == new_key.public
    assert alice.device.peers[carol.public].local_identity == old


@pytest.mark.parametrize("prepare", [False, True], ids=["computed", "prepared"])
def test_a_peer_that_never_switches_keeps_working_through_rekeys_until_the_grace_ends(prepare):
    net, alice, bob, carol, traffic = mesh(seed=2, prepare=prepare)
    traffic.run(until=net.now + 5)
    old = alice.public
    new_key = PrivateKey.generate(net.rng)
    rotated = net.now
    alice.device.rotate_private_key(new_key, GRACE, net.now)
    assert alice.device.next_deadline() <= rotated + GRACE
    # Longer than REJECT_AFTER_TIME: the sessions alice and carol had at the rotation were renewed, under
    # the old identity, in either direction.
    traffic.run(until=rotated + GRACE - 5)
    assert traffic.lost(alice, carol) == [] and traffic.lost(carol, alice) == []
    completed = [e for e in alice.events if isinstance(e, HandshakeCompleted) and e.peer == carol.public]
    assert len(completed) >= (GRACE - 5) // REKEY_AFTER_TIME
    assert alice.device.peers[carol.public].local_identity == old

    traffic.run(until=rotated + GRACE + 30)
    assert PreviousKeyRetired(old) in alice.events
    assert alice.device.rotation is None
    # After the grace carol, who never learned the new key, is cut off, by name on each side.
    late = rotated + GRACE + 1
    assert len(traffic.lost(alice, carol, since=late)) >= 0.9 * 29 / INTERVAL
    assert len(traffic.lost(carol, alice, since=late)) >= 0.9 * 29 / INTERVAL
    alice_drops = [e.reason for e in alice.events if isinstance(e, PacketDropped) and e.source == carol.endpoint]
    carol_drops = [e.reason for e in carol.events if isinstance(e, PacketDropped) and e.source == alice.endpoint]
    assert Drop.BAD_MAC1 in alice_drops          # carol's initiations address the retired key
    assert Drop.UNKNOWN_INDEX in alice_drops     # and her sessions with it are gone
    assert Drop.UNKNOWN_PEER in carol_drops      # alice's initiations come from a key carol does not know
    # bob was never switched either: the same. Pairs without alice are untouched.
    assert traffic.lost(bob, carol) == [] and traffic.lost(carol, bob) == []


def test_the_old_key_is_refused_after_the_grace_even_by_a_fresh_initiation():
    net = Net(seed=3)
    alice, dave = net.device("192.0.2.1"), net.device("192.0.2.4")
    net.link(alice, dave)
    old = alice.public
    alice.device.rotate_private_key(PrivateKey.generate(net.rng), 10.0, net.now)
    net.run(until=net.now + 11)
    assert PreviousKeyRetired(old) in alice.events
    net.send(dave, alice, b"late")
    net.run(until=net.now + 1)
    assert alice.delivered == []
    assert any(isinstance(e, PacketDropped) and e.reason is Drop.BAD_MAC1 for e in alice.events)
    assert not any(isinstance(e, HandshakeCompleted) for e in alice.events)


@pytest.mark.parametrize("prepare", [False, True], ids=["computed", "prepared"])
@pytest.mark.parametrize("knows", ["old", "new"])
def test_a_new_connection_waits_at_most_one_retransmission(knows, prepare):
    """alice rotated before ever talking to erin; erin knows alice by the old or the new key. alice
    initiates with the new key first; if erin knows only the old one, the first retransmission (the
    other identity) is answered."""
    net = Net(seed=4, prepare=prepare)
    alice, erin = net.device("192.0.2.1"), net.device("192.0.2.5")
    old = alice.public
    new_key = PrivateKey.generate(net.rng)
    if knows == "new":
        alice.device.rotate_private_key(new_key, GRACE, net.now)
        net.link(alice, erin)
    else:
        net.link(alice, erin)
        alice.device.rotate_private_key(new_key, GRACE, net.now)
    started = net.now
    net.send(alice, erin, b"first")
    net.run(until=started + 2 * REKEY_TIMEOUT)
    assert [bytes(p[20:]) for p in erin.delivered] == [b"first"]
    done = [e for e in alice.events if isinstance(e, HandshakeCompleted)]
    assert len(done) == 1
    assert alice.device.peers[erin.public].local_identity == (new_key.public if knows == "new" else old)
    # When: at once, or one retransmission later. (The time the packet arrived is not in the event; the
    # carried datagrams say when the first transport message left alice.)
    first_data = min(t for t, s, _, d in net.carried if s == alice.endpoint and d[0] == 4)
    bound = 0.1 if knows == "new" else REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX + 0.1
    assert first_data - started < bound


@pytest.mark.parametrize("prepare", [False, True], ids=["computed", "prepared"])
def test_a_switching_peer_that_initiates_is_answered_with_the_new_key(prepare):
    net = Net(seed=5, prepare=prepare)
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    net.send(bob, alice, b"before")
    net.run(until=net.now + 1)
    old = alice.public
    new_key = PrivateKey.generate(net.rng)
    alice.device.rotate_private_key(new_key, GRACE, net.now)
    switch_peer(bob, old, new_key.public, net.now)
    net.send(bob, alice, b"after")
    net.run(until=net.now + 1)
    assert [bytes(p[20:]) for p in alice.delivered] == [b"before", b"after"]
    assert alice.device.peers[bob.public].local_identity == new_key.public


def test_grace_zero_is_an_ordinary_key_change_and_a_stock_private_key_ends_the_grace():
    net = Net(seed=6)
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    old = alice.public
    alice.device.rotate_private_key(PrivateKey.generate(net.rng), 0, net.now)
    assert alice.device.rotation is None and PreviousKeyRetired(old) in alice.device.events()
    alice.device.rotate_private_key(PrivateKey.generate(net.rng), GRACE, net.now)
    assert alice.device.rotation is not None
    alice.device.set_private_key(alice.device.private_key)   # the same key again: nothing changes
    assert alice.device.rotation is not None
    alice.device.set_private_key(PrivateKey.generate(net.rng))
    assert alice.device.rotation is None


@pytest.mark.parametrize("grace", [-1, MAX_ROTATION_GRACE + 1, float("nan")])
def test_a_grace_out_of_range_is_a_caller_mistake(grace):
    net = Net()
    alice = net.device("192.0.2.1")
    with pytest.raises(ValueError):
        alice.device.rotate_private_key(PrivateKey.generate(net.rng), grace, net.now)
    assert alice.device.rotation is None


def test_rotation_state_does_not_print_the_old_key():
    net = Net()
    alice = net.device("192.0.2.1")
    old = alice.device.private_key
    alice.device.rotate_private_key(PrivateKey.generate(net.rng), GRACE, net.now)
    assert old.private_bytes().hex() not in repr(alice.device.rotation)
    assert REJECT_AFTER_TIME < GRACE   # the tests above cross a full session lifetime inside the grace


# ------------------------------------------------------------------------------------ the UAPI extension

def uapi(device, *lines, now=100.0):
    from wgpy.uapi import UapiConnection

    body = "".join(line + "\n" for line in lines).encode()
    return UapiConnection(device).feed(b"set=1\n" + body + b"\n", now=now)


def uapi_get(device):
    from wgpy.uapi import UapiConnection

    return UapiConnection(device).feed(b"get=1\n\n", now=100.0).decode()


def test_uapi_rotation_keeps_sessions_and_get_names_the_previous_public_key_only():
    from wgpy.uapi.set import DEFAULT_ROTATION_GRACE

    net = Net(seed=7)
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    net.send(alice, bob, b"before")
    net.run(until=net.now + 1)
    old_key = alice.device.private_key
    new_key = PrivateKey.generate(net.rng)
    assert uapi(alice.device, "wgpy_rotate_private_key=" + new_key.private_bytes().hex(), now=net.now) == b"errno=0\n\n"
    assert alice.device.private_key == new_key
    assert alice.device.rotation.ends == net.now + DEFAULT_ROTATION_GRACE
    text = uapi_get(alice.device)
    assert "wgpy_previous_public_key=" + old_key.public.hex() + "\n" in text
    assert old_key.private_bytes().hex() not in text
    assert "private_key=" + new_key.private_bytes().hex() in text
    # The session made before the rotation still sends, without a handshake.
    handshakes = len(net.sent_types(alice))
    net.send(alice, bob, b"after")
    net.run(until=net.now + 1)
    assert [bytes(p[20:]) for p in bob.delivered] == [b"before", b"after"]
    assert len(net.sent_types(alice)) == handshakes + 1
    # The grace can be set afterwards, and 0 ends the rotation.
    assert uapi(alice.device, "wgpy_rotation_grace=30", now=net.now) == b"errno=0\n\n"
    assert alice.device.rotation.ends == net.now + 30
    assert uapi(alice.device, "wgpy_rotation_grace=0", now=net.now) == b"errno=0\n\n"
    assert alice.device.rotation is None
    assert "wgpy_previous" not in uapi_get(alice.device)


def test_a_stock_private_key_line_still_expires_every_session_as_wireguard_go_does():
    net = Net(seed=8)
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    net.send(alice, bob, b"before")
    net.run(until=net.now + 1)
    new_key = PrivateKey.generate(net.rng)
    net.run(until=net.now + REKEY_TIMEOUT)   # past the handshake rate limit
    assert uapi(alice.device, "private_key=" + new_key.private_bytes().hex(), now=net.now) == b"errno=0\n\n"
    since = net.now
    net.send(alice, bob, b"after")
    net.run(until=net.now + 2 * REKEY_TIMEOUT)
    # The old session no longer sends: handshakes as the new key, which bob does not know.
    assert {t.name for t in net.sent_types(alice, since=since)} == {"INITIATION"}
    assert [bytes(p[20:]) for p in bob.delivered] == [b"before"]


@pytest.mark.parametrize("lines", [
    ["wgpy_rotation_grace=10"],                                   # no rotation in progress
    ["wgpy_rotate_private_key=" + "00" * 32],                     # rotating to no key
    ["wgpy_rotate_private_key=xyz"],
    ["wgpy_rotate_private_key=" + "11" * 32, "wgpy_rotation_grace=-1"],
    ["wgpy_rotate_private_key=" + "11" * 32, "wgpy_rotation_grace=" + str(int(MAX_ROTATION_GRACE) + 1)],
])
def test_uapi_rotation_mistakes_are_einval(lines):
    net = Net(seed=9)
    alice = net.device("192.0.2.1")
    assert uapi(alice.device, *lines) == b"errno=-22\n\n"


# ------------------------------------------------------------------------------------ garbage during a grace

from hypothesis import given, settings, strategies as st  # noqa: E402


def rotating_pair():
    """alice rotated a moment ago; bob still knows her old key and has just sent her an initiation."""
    net = Net(seed=10)
    alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(alice, bob)
    alice.device.rotate_private_key(PrivateKey.generate(net.rng), GRACE, net.now)
    net.send(bob, alice, b"x")
    (initiation, _), = bob.device.datagrams_to_send()
    alice.device.events()
    return net, alice, bob, initiation


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), flip=st.integers(0, 148 - 16 - 1), bit=st.integers(0, 7))
def test_garbage_and_forged_initiations_during_a_grace_are_dropped_by_name(data, flip, bit):
    net, alice, bob, initiation = rotating_pair()
    forged = bytearray(initiation)
    forged[flip] ^= 1 << bit       # anywhere but MAC2, which is not checked unless under load
    for datagram in (data, bytes(forged)):
        alice.device.receive_datagram(datagram, bob.endpoint, net.now)
    events = alice.device.events()
    assert all(isinstance(e, PacketDropped) for e in events) and len(events) == 2
    assert alice.device.datagrams_to_send() == [] and alice.device.rotation is not None
    # The genuine initiation, addressed to the old key, is still answered.
    alice.device.receive_datagram(initiation, bob.endpoint, net.now)
    assert [d[0][0] for d in alice.device.datagrams_to_send()] == [2]
