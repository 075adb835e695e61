"""Hours of simulated traffic over a network that loses, duplicates and reorders datagrams.

    two devices:    a <-> b
    three devices:  a <-> b, b <-> c, a <-> c    (full mesh, each pair its own session)

Every packet carries a unique id. The checks: nothing is delivered that was not sent, nothing twice,
most packets arrive despite the losses, and the number of handshakes stays within the whitepaper's
bounds (about one per REKEY_AFTER_TIME per pair, plus retries after losses).
"""

import itertools
import random

import pytest

from wgpy.core.constants import REKEY_AFTER_TIME, MessageType
from wgpy.core.events import HandshakeCompleted

from .netsim import Net

HOURS = 6


def simulate(net, nodes, hours, seed):
    chooser = random.Random(seed)
    pairs = list(itertools.permutations(nodes, 2))
    sent = {}
    ids = itertools.count()
    end = net.now + hours * 3600
    while net.now < end:
        a, b = chooser.choice(pairs)
        packet_id = next(ids)
        payload = b"id=%d" % packet_id
        sent[net.packet(a, b, payload)] = (a, b)
        net.send(a, b, payload)
        net.run(until=net.now + chooser.uniform(0.05, 2.0))
    net.run(until=net.now + 10)
    return sent


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batched"])
@pytest.mark.parametrize("count", [2, 3])
def test_hours_of_lossy_traffic(count, batch):
    net = Net(seed=count, loss=0.05, duplicate=0.03, reorder=0.2, latency=0.02, batch=batch)
    nodes = [net.device(f"192.0.2.{n + 1}") for n in range(count)]
    for a, b in itertools.combinations(nodes, 2):
        net.link(a, b)
    sent = simulate(net, nodes, HOURS, seed=count)

    delivered_total = 0
    for node in nodes:
        assert len(node.delivered) == len(set(node.delivered)), "a packet was delivered twice"
        for packet in node.delivered:
            assert packet in sent and sent[packet][1] is node, "delivered something never sent to it"
        delivered_total += len(node.delivered)
    # 5 % loss on each datagram, plus packets staged while handshakes were retried.
    assert delivered_total >= 0.85 * len(sent), (delivered_total, len(sent))

    pair_count = count * (count - 1) // 2
    completed = sum(isinstance(e, HandshakeCompleted) and e.is_initiator for n in nodes for e in n.events)
    rekey_periods = HOURS * 3600 / REKEY_AFTER_TIME
    assert 0.9 * rekey_periods * pair_count <= completed <= 2.5 * rekey_periods * pair_count, completed
    initiations = net.sent_types().count(MessageType.INITIATION)
    assert initiations <= 3 * completed, (initiations, completed)
    for node in nodes:
        for peer in node.device.peers.values():
            assert peer.keypairs.current is not None  # every session recovered


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batched"])
def test_duplicated_datagrams_are_delivered_once(batch):
    net = Net(seed=5, duplicate=1.0, batch=batch)  # every datagram arrives twice
    a, b = net.device("192.0.2.1"), net.device("192.0.2.2")
    net.link(a, b)
    for n in range(50):
        net.send(a, b, b"%d" % n)
        net.run(until=net.now + 0.1)
    assert len(b.delivered) == 50
    assert b.device.drops  # the copies were refused (replays, stale initiation)
