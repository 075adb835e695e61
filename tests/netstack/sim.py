"""Two Stacks in memory, the clock in the test's hand: joined by a simulated link, or behind two WireGuard
Devices over tests/netsim.py's Net (the real seam: device.packets_to_deliver / device.send_packets).

    link = Link(seed=1, loss=0.02)            # alice 10.0.0.1 / fd00::1, bob 10.0.0.2 / fd00::2
    sock = link.bob.udp_bind(53)
    link.alice.udp_bind().sendto(b"?", ("10.0.0.2", 53))
    link.run(until=1.0)                       # deliver packets, fire timers, advance the clock

    tunnel = Tunneled(seed=1, loss=0.02)      # the same stacks, each behind a Device; same calls

The link can lose, duplicate and reorder packets (seeded), and records every packet it carried.
"""

from __future__ import annotations

import heapq
import itertools
import random

from wgpy.netstack.stack import Stack

from ..netsim import Net

ALICE = ["10.0.0.1/24", "fd00::1/64"]
BOB = ["10.0.0.2/24", "fd00::2/64"]


class Link:
    """Alice's and Bob's stacks joined by a lossy, duplicating, reordering link of ``latency`` seconds."""

    def __init__(self, seed: int = 0, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
                 latency: float = 0.005, start: float = 1000.0, mtu: int = 1420, **stack_options) -> None:
        self.random = random.Random(seed)
        self.loss, self.duplicate, self.reorder, self.latency = loss, duplicate, reorder, latency
        self.now = start
        self.alice = Stack(ALICE, mtu=mtu, rng=random.Random(seed * 2 + 1).randbytes, **stack_options)
        self.bob = Stack(BOB, mtu=mtu, rng=random.Random(seed * 2 + 2).randbytes, **stack_options)
        self.carried: list[tuple[float, str, bytes]] = []   # (time, "alice" or "bob", packet)
        self.events = {"alice": [], "bob": []}
        self._in_flight: list = []
        self._order = itertools.count()

    def stacks(self):
        return (("alice", self.alice, self.bob), ("bob", self.bob, self.alice))

    def _collect(self) -> None:
        for name, stack, other in self.stacks():
            for packet in stack.packets_to_send():
                self.carried.append((self.now, name, packet))
                if self.random.random() < self.loss:
                    continue
                for _ in range(2 if self.random.random() < self.duplicate else 1):
                    delay = self.latency
                    if self.random.random() < self.reorder:
                        delay += self.random.random() * 3 * self.latency
                    heapq.heappush(self._in_flight, (self.now + delay, next(self._order), other, packet))
            self.events[name].extend(stack.events())

    def run(self, until: float, max_steps: int = 1_000_000, stop=None) -> None:
        """Advance the clock to ``until`` (or until ``stop()`` is true), delivering packets and running timers."""
        for _ in range(max_steps):
            self._collect()
            if stop is not None and stop():
                return
            deadlines = [d for _, stack, _ in self.stacks() if (d := stack.next_deadline()) is not None]
            candidates = [t for t in (min(deadlines, default=None), self._in_flight[0][0] if self._in_flight else None)
                          if t is not None and t <= until]
            if not candidates:
                self.now = max(self.now, until)
                return
            self.now = max(self.now, min(candidates))
            arrivals: dict[int, tuple[Stack, list]] = {}
            while self._in_flight and self._in_flight[0][0] <= self.now:
                _, _, stack, packet = heapq.heappop(self._in_flight)
                arrivals.setdefault(id(stack), (stack, []))[1].append(packet)
            for stack, packets in arrivals.values():
                stack.receive_packets(packets, self.now)
            for _, stack, _ in self.stacks():
                deadline = stack.next_deadline()
                if deadline is not None and deadline <= self.now:
                    stack.poll(self.now)
        raise AssertionError("simulation did not settle within max_steps")


class Tunneled:
    """Alice's and Bob's stacks, each behind a WireGuard Device, the Devices over netsim's Net.

    A packet goes stack -> device.send_packets -> (encrypted datagram over the Net, lossy as asked) ->
    device.packets_to_deliver -> stack.receive_packets. The Net's clock is the clock; it is advanced in
    ``step``-second slices so that each stack answers within a slice of what it was given.
    """

    def __init__(self, seed: int = 0, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
                 latency: float = 0.005, step: float = 0.001, mtu: int = 1420, **stack_options) -> None:
        self.net = Net(seed=seed, loss=loss, duplicate=duplicate, reorder=reorder, latency=latency, batch=True)
        self.step = step
        self.alice_node = self.net.device("192.0.2.1")   # tunnel address 10.0.0.1
        self.bob_node = self.net.device("192.0.2.2")     # tunnel address 10.0.0.2
        self.net.link(self.alice_node, self.bob_node)
        self.alice = Stack(["10.0.0.1/24"], mtu=mtu, rng=random.Random(seed * 2 + 1).randbytes, **stack_options)
        self.bob = Stack(["10.0.0.2/24"], mtu=mtu, rng=random.Random(seed * 2 + 2).randbytes, **stack_options)
        self.events = {"alice": [], "bob": []}
        self.sent = {"alice": 0, "bob": 0}

    @property
    def now(self) -> float:
        return self.net.now

    def pairs(self):
        return (("alice", self.alice, self.alice_node), ("bob", self.bob, self.bob_node))

    def _hand_over(self) -> bool:
        """Give each stack what its device delivered, run its timers, send what it has; whether anything moved."""
        now, moved = self.net.now, False
        for name, stack, node in self.pairs():
            if node.delivered:
                packets, node.delivered[:] = list(node.delivered), []
                stack.receive_packets(packets, now)
                moved = True
            deadline = stack.next_deadline()
            if deadline is not None and deadline <= now:
                stack.poll(now)
            packets = stack.packets_to_send()
            if packets:
                self.sent[name] += len(packets)
                node.device.send_packets(packets, now)
                moved = True
            self.events[name].extend(stack.events())
        return moved

    def run(self, until: float, max_steps: int = 1_000_000, stop=None) -> None:
        quiet = 0   # slices in a row in which nothing moved: the slice doubles with each (bounded by timers)
        for _ in range(max_steps):
            moved = self._hand_over()
            if stop is not None and stop():
                return
            if self.net.now >= until:
                return
            quiet = 0 if moved else min(quiet + 1, 30)
            deadlines = [d for _, stack, _ in self.pairs() if (d := stack.next_deadline()) is not None]
            target = min([until, self.net.now + self.step * (1 << quiet), *deadlines])
            self.net.run(until=max(target, self.net.now))
        raise AssertionError("simulation did not settle within max_steps")
