"""Devices in memory joined by a simulated network, with the clock in the test's hand.

    net = Net(seed=1)
    alice = net.device("192.0.2.1")          # a Device listening at ("192.0.2.1", 51820)
    net.link(alice, bob)                     # peers of each other, 10.0.0.N/32 each
    alice.send_packet(ip_packet(alice, bob, b"hi"), net.now)
    net.run(until=1.0)                       # deliver datagrams, fire timers, advance the clock

The network can lose, duplicate and reorder datagrams (seeded), and records every datagram it carried.
"""

from __future__ import annotations

import heapq
import itertools
import random
import struct
from dataclasses import dataclass, field

from wgpy.core.constants import MessageType
from wgpy.core.crypto import PrivateKey
from wgpy.core.device import Device

PORT = 51820


def ipv4_packet(source: bytes, destination: bytes, payload: bytes, protocol: int = 17) -> bytes:
    """A minimal IPv4 packet (no options; the checksum is not checked by WireGuard)."""
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, protocol, 0, source, destination)
    return header + payload


@dataclass
class Node:
    device: Device
    address: str
    tunnel_ip: bytes
    delivered: list = field(default_factory=list)
    events: list = field(default_factory=list)

    @property
    def endpoint(self) -> tuple:
        return (self.address, PORT)

    @property
    def public(self) -> bytes:
        return self.device.private_key.public


class Net:
    def __init__(self, seed: int = 0, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
                 latency: float = 0.01, start: float = 1000.0, batch: bool = False, prepare: bool = False) -> None:
        self.random = random.Random(seed)
        self.batch = batch  # deliver with Device.receive_datagrams (the fast path) instead of one by one
        # Between steps, every device prepares its next handshakes (Device.prepare_handshakes), as an idle
        # runtime does; otherwise nothing is prepared and every handshake is computed when it is due.
        self.prepare = prepare
        self.loss, self.duplicate, self.reorder, self.latency = loss, duplicate, reorder, latency
        self.now = start
        self.nodes: dict[tuple, Node] = {}
        self._in_flight: list = []
        self._order = itertools.count()
        self.carried: list[tuple[float, tuple, tuple, bytes]] = []  # (time, from, to, datagram)
        self.blocked: set[tuple] = set()  # endpoints whose outgoing datagrams vanish

    def rng(self, n: int) -> bytes:
        return self.random.randbytes(n)

    def device(self, address: str, *, key: PrivateKey | None = None) -> Node:
        n = len(self.nodes) + 1
        device = Device(key or PrivateKey.generate(self.rng), rng=self.rng, epoch_offset=1.7e9)
        node = Node(device, address, bytes([10, 0, 0, n]))
        self.nodes[node.endpoint] = node
        return node

    def link(self, a: Node, b: Node, *, psk: bytes | None = None, keepalive: int = 0) -> None:
        for x, y in ((a, b), (b, a)):
            peer = x.device.add_peer(y.public)
            peer.endpoint = y.endpoint
            peer.preshared_key = psk
            x.device.allowed_ips.insert(y.tunnel_ip, 32, peer)
            if keepalive:
                x.device.set_persistent_keepalive(peer, keepalive, self.now)

    def move(self, node: Node, address: str) -> None:
        """The node now sends and receives at a new address (it roams); its peers are not told."""
        del self.nodes[node.endpoint]
        node.address = address
        self.nodes[node.endpoint] = node

    def packet(self, a: Node, b: Node, payload: bytes) -> bytes:
        return ipv4_packet(a.tunnel_ip, b.tunnel_ip, payload)

    def send(self, a: Node, b: Node, payload: bytes) -> None:
        if self.batch:
            a.device.send_packets([self.packet(a, b, payload)], self.now)
        else:
            a.device.send_packet(self.packet(a, b, payload), self.now)

    def _collect(self) -> None:
        for node in list(self.nodes.values()):
            if self.prepare:
                node.device.prepare_handshakes(len(node.device.to_prepare))
            for datagram, destination in node.device.datagrams_to_send():
                self.carried.append((self.now, node.endpoint, destination, datagram))
                if node.endpoint in self.blocked:
                    continue
                if self.random.random() < self.loss:
                    continue
                copies = 2 if self.random.random() < self.duplicate else 1
                for _ in range(copies):
                    delay = self.latency
                    if self.random.random() < self.reorder:
                        delay += self.random.random() * 5 * self.latency
                    heapq.heappush(self._in_flight, (self.now + delay, next(self._order), node.endpoint, destination, datagram))
            node.delivered.extend(node.device.packets_to_deliver())
            node.events.extend(node.device.events())

    def run(self, until: float, max_steps: int = 2_000_000) -> None:
        """Advance the clock to ``until``, delivering datagrams and firing timers in time order."""
        for _ in range(max_steps):
            self._collect()
            deadlines = [d for node in self.nodes.values() if (d := node.device.next_deadline()) is not None]
            next_timer = min(deadlines, default=None)
            next_arrival = self._in_flight[0][0] if self._in_flight else None
            candidates = [t for t in (next_timer, next_arrival) if t is not None and t <= until]
            if not candidates:
                self.now = max(self.now, until)
                self._collect()
                return
            self.now = max(self.now, min(candidates))
            arrivals: dict[tuple, list] = {}
            while self._in_flight and self._in_flight[0][0] <= self.now:
                _, _, source, destination, datagram = heapq.heappop(self._in_flight)
                arrivals.setdefault(destination[:2], []).append((datagram, source))
            for destination, datagrams in arrivals.items():
                node = self.nodes.get(destination)
                if node is None:
                    continue
                if self.batch:
                    node.device.receive_datagrams([(d, s, None) for d, s in datagrams], self.now)
                else:
                    for datagram, source in datagrams:
                        node.device.receive_datagram(datagram, source, self.now)
            for node in self.nodes.values():
                deadline = node.device.next_deadline()
                if deadline is not None and deadline <= self.now:
                    node.device.handle_timer(self.now)
        raise AssertionError("simulation did not settle within max_steps")

    def sent_types(self, source: Node | None = None, since: float = -1.0) -> list[MessageType]:
        return [MessageType(d[0]) for t, s, _, d in self.carried if t >= since and (source is None or s == source.endpoint)]
