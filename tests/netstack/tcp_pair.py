"""Two ``TcpConnection``s joined by a simulated channel, the clock in the test's hand.

    pair = Pair(seed=1, loss=0.02, duplicate=0.01, reorder=0.05)   # client SYN-SENT; server from its SYN
    pair.run(until=lambda: pair.server and pair.server.state is TcpState.ESTABLISHED)
    pair.client.send(b"hello"); pair.run(...)

Every segment is packed on the way out and parsed on the way in (tcp/segment.py), so the codec carries
all the traffic. The channel can lose, duplicate, reorder and delay (seeded). ``run`` moves the clock from
event to event (a delivery or a deadline), bounded in steps and in simulated time.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter

from wgpy.netstack.errors import NetDrop
from wgpy.netstack.tcp.config import TcpConfig, TcpState
from wgpy.netstack.tcp.connection import TcpConnection
from wgpy.netstack.tcp.segment import ACK, RST, SYN, Segment, parse

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 80)
MSS = 1380  # a 1420-byte tunnel MTU less 40


class Pair:
    def __init__(self, seed: int = 0, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0,
                 latency: float = 0.01, config: TcpConfig = TcpConfig(), server_config: TcpConfig | None = None,
                 start: float = 1000.0, client_iss: int = 0xFFFFF000, server_iss: int = 0x7FFFFF00,
                 server_listens: bool = False, simultaneous: bool = False, client_mss: int = MSS,
                 server_mss: int = MSS) -> None:
        self.random = random.Random(seed)
        self.loss, self.duplicate, self.reorder, self.latency = loss, duplicate, reorder, latency
        self.now = start
        self.config, self.server_config = config, server_config or config
        self.server_iss, self.server_mss = server_iss, server_mss
        self.client = TcpConnection.open(CLIENT, SERVER, client_iss, self.now, client_mss, config)
        # server_listens: a fully specified passive open (LISTEN); otherwise made from the first SYN,
        # as the stack's listener does.
        # simultaneous: the server opens actively too (RFC 9293 figure 8).
        self.server: TcpConnection | None = None
        if server_listens:
            self.server = TcpConnection.listen(SERVER, CLIENT, server_iss, self.now, server_mss, self.server_config)
        elif simultaneous:
            self.server = TcpConnection.open(SERVER, CLIENT, server_iss, self.now, server_mss, self.server_config)
        self._flight: list = []
        self._order = itertools.count()
        self.steps = 0
        self.carried: list[tuple[float, str, Segment]] = []  # (time, "c>s" or "s>c", segment)
        self.drops: dict[str, Counter] = {"client": Counter(), "server": Counter()}
        self.states: dict[str, set] = {"client": set(), "server": set()}
        self._note_states()
        self.hold: set[str] = set()  # directions whose segments are lost on purpose ("c>s", "s>c")
        self.inject: list = []  # (side, Segment): delivered with the next step, outside the channel
        self.drop_if = None  # drop_if(direction, segment) -> bool: lose chosen segments on purpose

    def connections(self):
        yield "client", self.client
        if self.server is not None:
            yield "server", self.server

    def _note_states(self) -> None:
        for name, connection in self.connections():
            self.states[name].add(connection.state)

    def flush(self) -> None:
        """Take what both connections send now and put it on the channel."""
        for name, connection in list(self.connections()):
            for segment in connection.segments_to_send(self.now):
                self.transmit(name, segment)
        self._note_states()

    def transmit(self, sender: str, segment: Segment) -> None:
        direction = "c>s" if sender == "client" else "s>c"
        source, destination = (CLIENT, SERVER) if sender == "client" else (SERVER, CLIENT)
        wire = segment.pack(source[0], destination[0])
        self.carried.append((self.now, direction, segment))
        if direction in self.hold or (self.drop_if is not None and self.drop_if(direction, segment)):
            return
        if self.random.random() < self.loss:
            return
        copies = 2 if self.random.random() < self.duplicate else 1
        for _ in range(copies):
            delay = self.latency
            if self.random.random() < self.reorder:
                delay += self.random.uniform(0, 2 * self.latency)
            heapq.heappush(self._flight, (self.now + delay, next(self._order), direction, wire))

    def deliver(self, direction: str, wire: bytes) -> NetDrop | None:
        source, destination = (CLIENT, SERVER) if direction == "c>s" else (SERVER, CLIENT)
        segment = parse(wire, source[0], destination[0])
        assert isinstance(segment, Segment), segment
        return self.deliver_segment("server" if direction == "c>s" else "client", segment)

    def deliver_segment(self, side: str, segment: Segment) -> NetDrop | None:
        if side == "server" and self.server is None:
            if segment.flags & (SYN | ACK | RST) != SYN:
                self.drops["server"][NetDrop.NO_LISTENER] += 1
                return NetDrop.NO_LISTENER
            self.server = TcpConnection.from_syn(SERVER, CLIENT, segment, self.server_iss, self.now,
                                                 self.server_mss, self.server_config)
            self._note_states()
            return None
        connection = self.client if side == "client" else self.server
        result = connection.receive(segment, self.now)
        if result is not None:
            assert isinstance(result, NetDrop), result
            self.drops[side][result] += 1
        self._note_states()
        return result

    def next_event(self) -> float | None:
        times = [connection.next_deadline() for _, connection in self.connections()]
        times = [t for t in times if t is not None]
        if self._flight:
            times.append(self._flight[0][0])
        return min(times) if times else None

    def step(self) -> bool:
        """One event: deliveries due or timers due, then what they make the connections send.
        Returns False when nothing is pending at all."""
        self.steps += 1
        self.flush()
        for side, segment in self.inject:
            self.deliver_segment(side, segment)
        self.inject = []
        self.flush()
        when = self.next_event()
        if when is None:
            return False
        self.now = max(self.now, when)
        while self._flight and self._flight[0][0] <= self.now:
            _, _, direction, wire = heapq.heappop(self._flight)
            self.deliver(direction, wire)
        for _, connection in list(self.connections()):
            deadline = connection.next_deadline()
            if deadline is not None and deadline <= self.now:
                connection.handle_timer(self.now)
        self._note_states()
        self.flush()
        return True

    def run(self, until=lambda: False, max_steps: int = 10_000, max_time: float = 600.0, pump=None) -> bool:
        """Step until ``until()`` holds (True), nothing is pending or a bound is reached (False).
        ``pump()`` runs before each step: the application's reads and writes."""
        deadline = self.now + max_time
        for _ in range(max_steps):
            if pump is not None:
                pump()
            if until():
                return True
            if self.now > deadline or not self.step():
                return until()
        return until()

    def established(self) -> bool:
        return (self.client.state is TcpState.ESTABLISHED and self.server is not None
                and self.server.state is TcpState.ESTABLISHED)


class Transfer:
    """The application on both sides: write ``to_server`` and ``to_client`` as fast as the buffers take
    them, read everything, shut down writing when done (optional)."""

    def __init__(self, pair: Pair, to_server: bytes, to_client: bytes, shutdown: bool = False,
                 chunk: int = 64 * 1024) -> None:
        self.pair = pair
        self.outgoing = {"client": memoryview(to_server), "server": memoryview(to_client)}
        self.sent = {"client": 0, "server": 0}
        self.received = {"client": bytearray(), "server": bytearray()}
        self.shutdown = shutdown
        self.chunk = chunk

    def pump(self) -> None:
        for name, connection in self.pair.connections():
            data = self.outgoing[name]
            offset = self.sent[name]
            if offset < len(data) and connection.writable:
                self.sent[name] += connection.send(data[offset:offset + self.chunk])
            elif offset == len(data) and self.shutdown and not connection.write_shut \
                    and connection.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
                connection.shutdown_write()
            while connection.readable:
                self.received[name] += connection.recv(self.chunk)

    def done(self) -> bool:
        return (len(self.received["server"]) == len(self.outgoing["client"])
                and len(self.received["client"]) == len(self.outgoing["server"]))
