"""The userspace stack: one interface (the tunnel), its addresses, its sockets (docs/netstack.md).

Shaped like smoltcp's interface and like ``wgpy.core.Device``: IP packets and ``now`` go in
(``receive_packets``), IP packets (``packets_to_send``), the next deadline and socket events come out.
Every packet taken in is either used or counted once in ``drops`` under its :class:`NetDrop`; nothing
raises on input from the network.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from typing import Callable, Iterable

from . import icmp, ip, udp
from .addresses import InterfaceAddress, from_text, interface_address, is_unusable_source, to_text
from .errors import NetDrop
from .events import DatagramReceived, Incoming, SocketEvent
from .icmp import TokenBucket
from .ports import PortChooser, check_port, choose_port
from .sockets import SYNCHRONIZED, TcpListener, TcpSocket
from .tcp import segment as tcp_segment
from .tcp.config import TcpConfig, TcpState
from .tcp.connection import TcpConnection
from .tcp.isn import IsnGenerator
from .tcp.segment import ACK, RST, SYN, Segment
from .udp import UdpSocket

DEFAULT_MTU = 1420  # wg-quick's default for the tunnel
# Connections a stack holds at most, every state counted (a SYN flood through the tunnel fills a
# listener's backlog first; this bounds the whole stack).
MAX_CONNECTIONS = 4096
DEFAULT_BACKLOG = 128   # Linux's SOMAXCONN before 5.4 (4096 since)


class Stack:
    """A sans-IO IP stack for one tunnel. ``addresses`` are ``"10.0.0.2/24"`` strings (IPv4 and/or
    IPv6); ``rng(n) -> bytes`` gives the randomness (ephemeral ports, ISN secret).

    ``epoch_offset`` (wall-clock seconds minus ``now``, as the Device's) sets the TCP timestamp clock to
    wall-clock milliseconds, so a later process's TSvals continue an earlier one's and a Linux peer takes
    its SYN for a four-tuple still in TIME-WAIT there (RFC 6191, Linux's tcp_timewait_state_process);
    without it each connection's clock starts at a random offset (RFC 7323 5.4), which a new process
    draws anew."""

    def __init__(self, addresses: Iterable[str], mtu: int = DEFAULT_MTU, rng: Callable[[int], bytes] | None = None,
                 icmp_rate: TokenBucket | None = None, tcp_config: TcpConfig | None = None,
                 max_connections: int = MAX_CONNECTIONS, verify_checksums: bool = True,
                 epoch_offset: float | None = None) -> None:
        if rng is None:
            raise ValueError("a Stack needs an rng(n) -> bytes (os.urandom in a runtime, a seeded one in tests)")
        self.addresses: list[InterfaceAddress] = [interface_address(text) for text in addresses]
        if not self.addresses:
            raise ValueError("a Stack needs at least one address")
        if not 1280 <= mtu <= 65535:
            raise ValueError(f"MTU {mtu} is outside 1280..65535 (IPv6 needs 1280: RFC 8200 5)")
        self.mtu = mtu
        self.rng = rng
        self.drops: Counter[NetDrop] = Counter()
        self.taken = 0   # packets used (answered, delivered, or given to a connection); the rest are in drops
        self.icmp_errors = icmp_rate or TokenBucket()
        self._local = frozenset(entry.address for entry in self.addresses)
        self._udp: dict[tuple[bytes | None, int], UdpSocket] = {}
        self.tcp_config = tcp_config or TcpConfig()
        self.max_connections = max_connections
        # False: TCP and UDP checksums are not checked (the IPv4 header's still is). For packets that come
        # out of a WireGuard Device: their Poly1305 tag proved them, and Linux's WireGuard marks them
        # CHECKSUM_UNNECESSARY likewise (receive.c, wg_packet_consume_data_done). Checksums are always sent.
        self.verify_checksums = verify_checksums
        self._isn = IsnGenerator(rng)
        self.epoch_offset = epoch_offset
        self._ports = PortChooser(rng)
        # Connections by four-tuple (local address, local port, remote address, remote port), all bytes/int.
        self._tcp: dict[tuple[bytes, int, bytes, int], TcpSocket] = {}
        self._listeners: dict[tuple[bytes | None, int], TcpListener] = {}
        self._transparent: TcpListener | None = None
        self._dirty: dict[TcpSocket, None] = {}       # sockets whose connection may have segments or events
        # The connections' deadlines, in a heap with stale entries left in it: an entry counts only while
        # it is still its connection's next deadline. Every change of a deadline passes through _settle,
        # which pushes the new one, so poll and next_deadline never look at every connection.
        self._timers: list[tuple[float, int, TcpSocket]] = []
        self._timer_order = itertools.count()
        self._out: list[bytes] = []
        self._events: dict[SocketEvent, None] = {}   # ordered, each event once until pulled
        self._now = 0.0

    # ------------------------------------------------------------------ the seam to the Device

    def receive_packets(self, packets: Iterable[bytes], now: float) -> None:
        """Take IP packets from the tunnel (``device.packets_to_deliver()``). Never raises on their content."""
        self._now = now
        drops, taken = self.drops, 0
        for packet in packets:
            reason = self._receive(packet, now)
            if reason is None:
                taken += 1
            else:
                drops[reason] += 1
        self.taken += taken
        if self._dirty:
            self._settle(now)

    def receive_packet(self, packet: bytes, now: float) -> None:
        """One packet: a batch of one."""
        self.receive_packets([packet], now)

    def packets_to_send(self) -> list[bytes]:
        """Whole IP packets for the tunnel (``device.send_packets()``), oldest first. What the user's calls
        since the last ``receive_packets``/``poll`` made due leaves here, timed at the latest ``now`` seen."""
        if self._dirty:
            self._settle(self._now)
        out, self._out = self._out, []
        return out

    def poll(self, now: float) -> None:
        """Run the timers that are due at ``now``."""
        self._now = now
        timers, dirty = self._timers, self._dirty
        while timers and timers[0][0] <= now:
            deadline, _, sock = heapq.heappop(timers)
            if sock not in dirty and self._current(deadline, sock):
                sock.connection.handle_timer(now)
                dirty[sock] = None
        if dirty:
            self._settle(now)

    def next_deadline(self) -> float | None:
        """When ``poll`` must be called next; None when nothing is pending."""
        if self._dirty:
            return self._now
        timers = self._timers
        while timers and not self._current(timers[0][0], timers[0][2]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def _current(self, deadline: float, sock: TcpSocket) -> bool:
        """Whether a timer entry is still its connection's next deadline (and the connection still held)."""
        connection = sock.connection
        (local, local_port), (remote, remote_port) = connection.local, connection.remote
        return connection.next_deadline() == deadline and self._tcp.get((local, local_port, remote, remote_port)) is sock

    def events(self) -> list[SocketEvent]:
        """What changed since the last call, each kind of change of each socket once."""
        if self._dirty:
            self._settle(self._now)
        events, self._events = list(self._events), {}
        return events

    @property
    def connections(self) -> int:
        """TCP connections the stack holds (TIME-WAIT and not yet accepted ones included)."""
        return len(self._tcp)

    # ------------------------------------------------------------------ TCP: the user's calls

    def tcp_connect(self, address: tuple[str, int], now: float, local: tuple[str, int] | None = None) -> TcpSocket:
        """Open a connection to ``address`` (``(host, port)``); the SYN leaves with the next
        ``packets_to_send``. ``local`` is ``(host, port)``, port 0 for an ephemeral one (the default).
        ValueError when the address is not routable by the stack, the port is taken, or the stack is full."""
        host, port = address
        remote = from_text(host)
        check_port(port)
        bound = self._own_address(local[0]) if local else None
        source = self._source_for(remote, bound)
        if len(self._tcp) >= self.max_connections:
            raise ValueError(f"the stack holds {len(self._tcp)} connections, its limit")
        if local and local[1]:
            local_port = check_port(local[1])
            if (source, local_port, remote, port) in self._tcp:
                raise ValueError(f"{to_text(source)}:{local_port} is already connected to {host}:{port}")
        else:
            local_port = self._ports.choose(source, remote, port, lambda candidate: (source, candidate, remote, port)
                                            in self._tcp or (source, candidate) in self._listeners
                                            or (None, candidate) in self._listeners)
            if local_port is None:
                raise ValueError(f"no ephemeral port is free towards {host}:{port}")
        self._now = max(self._now, now)
        local_end, remote_end = (source, local_port), (remote, port)
        connection = TcpConnection.open(local_end, remote_end, self._isn.isn(local_end, remote_end, now), now,
                                        self._mss(remote), self.tcp_config, self._ts_offset(local_end, remote_end))
        sock = TcpSocket(connection, self._touch)
        self._tcp[(source, local_port, remote, port)] = sock
        self._dirty[sock] = None
        return sock

    def tcp_listen(self, port: int | None = None, address: str | None = None, backlog: int = DEFAULT_BACKLOG,
                   transparent: bool = False) -> TcpListener:
        """Listen on ``port`` at ``address`` (None: every address of the stack). ``transparent=True`` with
        ``port=None``: take connections to every address and every port, each connection's ``local`` being
        the destination its SYN was sent to. ValueError if taken."""
        if backlog < 1:
            raise ValueError("a backlog of at least one")
        if transparent:
            if port is not None or address is not None:
                raise ValueError("a transparent listener takes every address and port: give neither")
            if self._transparent is not None:
                raise ValueError("there is a transparent listener already")
            self._transparent = TcpListener(None, None, backlog, True, self._unlisten)
            return self._transparent
        if port is None:
            raise ValueError("a port to listen on (or transparent=True)")
        local = self._own_address(address)
        check_port(port)
        if (local, port) in self._listeners or (local is None and any(key[1] == port for key in self._listeners)) \
                or (None, port) in self._listeners:
            raise ValueError(f"TCP port {port} is already listened on")
        listener = TcpListener(local, port, backlog, False, self._unlisten)
        self._listeners[(local, port)] = listener
        return listener

    def _unlisten(self, listener: TcpListener) -> None:
        if listener is self._transparent:
            self._transparent = None
        elif self._listeners.get((listener.address, listener.port)) is listener:
            del self._listeners[(listener.address, listener.port)]

    def _touch(self, sock: TcpSocket) -> None:
        self._dirty[sock] = None

    def _ts_offset(self, local_end: tuple[bytes, int], remote_end: tuple[bytes, int]) -> int:
        """Where a connection's timestamp clock starts (see the class docstring)."""
        if self.epoch_offset is not None:
            return int(self.epoch_offset * 1000)
        return self._isn.timestamp_offset(local_end, remote_end)

    def _mss(self, remote: bytes) -> int:
        """The MSS to offer: the tunnel MTU less the IP and TCP headers (docs/netstack.md)."""
        return self.mtu - (40 if len(remote) == 4 else 60)

    # ------------------------------------------------------------------ TCP: segments

    def _receive_tcp(self, parsed: ip.Packet, now: float) -> NetDrop | None:
        source, destination = parsed.source, parsed.destination
        segment = tcp_segment.parse(parsed.payload, source, destination, self.verify_checksums)
        if isinstance(segment, NetDrop):
            return segment
        key = (destination, segment.destination_port, source, segment.source_port)
        sock = self._tcp.get(key)
        after = None    # the old incarnation's last sequence number, when a SYN reopens a TIME-WAIT
        if sock is not None:
            connection = sock.connection
            if not connection.reopens_with(segment):
                self._dirty[sock] = None
                return connection.receive(segment, now)
            # RFC 1122 4.2.2.13, RFC 6191: a new SYN beyond the old incarnation ends its TIME-WAIT.
            del self._tcp[key]
            after = connection.snd_max & 0xFFFFFFFF
        flags = segment.flags
        if flags & RST:
            return NetDrop.STRAY_RST   # RFC 9293 3.10.7.1: an incoming RST is discarded
        if destination in self._local:
            listener = (self._listeners.get((destination, segment.destination_port))
                        or self._listeners.get((None, segment.destination_port)) or self._transparent)
        else:
            listener = self._transparent
        if listener is None:
            self._reset(parsed, segment)
            return NetDrop.NO_LISTENER
        if flags & ACK:
            # RFC 9293 3.10.7.2: in LISTEN, any acknowledgment is bad: <SEQ=SEG.ACK><CTL=RST>.
            self._reset(parsed, segment)
            return NetDrop.UNEXPECTED_SEGMENT
        if not flags & SYN:
            return NetDrop.UNEXPECTED_SEGMENT
        if listener.full:
            if not listener.drop_stale_half_open(now):
                return NetDrop.SYN_BACKLOG_FULL   # the client's SYN retransmission will try again
            self.drops[NetDrop.SYN_BACKLOG_STALE_DROPPED] += 1
        if len(self._tcp) >= self.max_connections:
            return NetDrop.TOO_MANY_CONNECTIONS
        local_end, remote_end = (destination, segment.destination_port), (source, segment.source_port)
        iss = self._isn.isn(local_end, remote_end, now)
        if after is not None and not 0 < (iss - after) & 0xFFFFFFFF < 1 << 31:
            iss = (after + 64000) & 0xFFFFFFFF   # beyond every number the old incarnation used
        connection = TcpConnection.from_syn(local_end, remote_end, segment, iss, now, self._mss(source),
                                            self.tcp_config, self._ts_offset(local_end, remote_end))
        sock = TcpSocket(connection, self._touch, listener)
        listener.half_open[sock] = now
        self._tcp[(destination, segment.destination_port, source, segment.source_port)] = sock
        self._dirty[sock] = None
        return None

    def _reset(self, parsed: ip.Packet, segment: Segment) -> None:
        """The RST answering a segment that has no connection (RFC 9293 3.10.7.1); never for a RST."""
        if segment.flags & ACK:
            reply = Segment(segment.destination_port, segment.source_port, segment.ack, 0, RST, 0)
        else:
            reply = Segment(segment.destination_port, segment.source_port, 0,
                            (segment.seq + segment.length) & 0xFFFFFFFF, RST | ACK, 0)
        ours, theirs = parsed.destination, parsed.source
        self._out.append(ip.build(ours, theirs, ip.TCP, reply.pack(ours, theirs)))

    def _settle(self, now: float) -> None:
        """For every socket touched: send what its connection has, note its events, forget it when closed."""
        dirty, self._dirty = self._dirty, {}
        out, events, build = self._out, self._events, ip.build
        for sock in dirty:
            connection = sock.connection
            local, remote = connection.local[0], connection.remote[0]
            for segment in connection.segments_to_send(now):
                out.append(build(local, remote, ip.TCP, segment.pack(local, remote)))
            listener = sock.listener
            state = connection.state
            if listener is not None and sock in listener.half_open and state is not TcpState.SYN_RECEIVED:
                if state in SYNCHRONIZED:
                    listener.established(sock, now)
                    events[Incoming(listener)] = None
                else:
                    del listener.half_open[sock]
                    sock.listener = None   # reset or timed out before it was established: never accepted
            for event in sock.changes():
                events[event] = None
            if state is TcpState.CLOSED:
                key = (local, connection.local[1], remote, connection.remote[1])
                if self._tcp.get(key) is sock:
                    del self._tcp[key]
            elif (deadline := connection.next_deadline()) is not None:
                heapq.heappush(self._timers, (deadline, next(self._timer_order), sock))
        if len(self._timers) > 4 * len(self._tcp) + 64:
            # Mostly stale entries: keep one per connection.
            self._timers = [(d, next(self._timer_order), sock) for sock in self._tcp.values()
                            if (d := sock.connection.next_deadline()) is not None]
            heapq.heapify(self._timers)

    # ------------------------------------------------------------------ UDP

    def udp_bind(self, port: int | None = None, address: str | None = None) -> UdpSocket:
        """A UDP socket on ``port`` (None: an ephemeral one) and ``address`` (one of ours; None: all).
        ValueError if the port is taken or the address is not the stack's."""
        local = self._own_address(address)
        if port is None:
            port = choose_port(self.rng, lambda candidate: self._udp_port_taken(local, candidate))
            if port is None:
                raise ValueError("every ephemeral UDP port is in use")
        elif self._udp_port_taken(local, check_port(port)):
            raise ValueError(f"UDP port {port} is in use")
        sock = UdpSocket(local, port, self._udp_send, self._udp_unbind)
        self._udp[(local, port)] = sock
        return sock

    def _udp_port_taken(self, address: bytes | None, port: int) -> bool:
        if address is None:
            return any(key[1] == port for key in self._udp)
        return (address, port) in self._udp or (None, port) in self._udp

    def _udp_unbind(self, sock: UdpSocket) -> None:
        if self._udp.get((sock.address, sock.port)) is sock:
            del self._udp[(sock.address, sock.port)]

    def _udp_send(self, sock: UdpSocket, data: bytes, address: tuple[str, int]) -> None:
        host, port = address
        destination = from_text(host)
        check_port(port)
        source = self._source_for(destination, sock.address)
        if ip.header_overhead(4 if len(source) == 4 else 6) + udp.HEADER_LEN + len(data) > self.mtu:
            raise ValueError(f"a datagram of {len(data)} bytes does not fit the MTU of {self.mtu} (no fragmentation)")
        self._out.append(ip.build(source, destination, ip.UDP, udp.build(source, destination, sock.port, port, data)))

    def _receive_udp(self, packet: bytes, parsed: ip.Packet, now: float) -> NetDrop | None:
        fields = udp.parse(parsed.source, parsed.destination, parsed.payload, self.verify_checksums)
        if isinstance(fields, NetDrop):
            return fields
        source_port, destination_port, data = fields
        sock = self._udp.get((parsed.destination, destination_port)) or self._udp.get((None, destination_port))
        if sock is None:
            return self._port_unreachable(packet, parsed, now)
        reason = sock.deliver(bytes(data), (to_text(parsed.source), source_port))
        if reason is None:
            self._events[DatagramReceived(sock)] = None
        return reason

    # ------------------------------------------------------------------ ICMP

    def _receive_icmp(self, parsed: ip.Packet) -> NetDrop | None:
        version = parsed.version
        fields = icmp.parse(version, parsed.source, parsed.destination, parsed.payload)
        if isinstance(fields, NetDrop):
            return fields
        kind, code = fields
        if icmp.is_echo_request(version, kind, code):
            if ip.header_overhead(version) + len(parsed.payload) > self.mtu:
                return NetDrop.ECHO_TOO_BIG
            reply = icmp.echo_reply(version, parsed.destination, parsed.source, parsed.payload)
            self._out.append(ip.build(parsed.destination, parsed.source, parsed.protocol, reply))
            return None
        if icmp.is_error(version, kind):
            return self._icmp_error(parsed, kind, code)
        return NetDrop.ICMP_IGNORED

    def _icmp_error(self, parsed: ip.Packet, kind: int, code: int) -> NetDrop | None:
        """RFC 1122 3.2.2.1, 4.2.3.9: a destination unreachable for a connection attempt of ours ends it,
        as Linux's tcp_v4_err/tcp_v6_err do in SYN-SENT, when the quoted sequence number is our ISS (RFC
        5927 4.1: the check that makes a blind forgery guess 32 bits). Established connections treat such
        errors as soft (Linux, RFC 5461): they are noted only; so is every error for UDP, whose sockets
        have no error to report in this API."""
        error = icmp.unreachable_error(parsed.version, kind, code)
        flow = icmp.quoted_flow(parsed.version, parsed.payload) if error else None
        if flow is None or flow[0] != ip.TCP:
            return NetDrop.ICMP_ERROR_RECEIVED
        _, source, destination, source_port, destination_port, seq = flow
        sock = self._tcp.get((source, source_port, destination, destination_port))
        if sock is None or sock.state is not TcpState.SYN_SENT or seq != sock.connection.iss:
            return NetDrop.ICMP_ERROR_RECEIVED
        sock.unreachable(error)
        return None

    def _port_unreachable(self, packet: bytes, parsed: ip.Packet, now: float) -> NetDrop:
        """Answer a datagram to a closed port (RFC 1122 4.1.3.1, RFC 4443 3.1), within the rate limit."""
        if not self.icmp_errors.take(now):
            return NetDrop.ICMP_RATE_LIMITED
        version = parsed.version
        message = icmp.port_unreachable(version, parsed.destination, parsed.source, packet, self.mtu)
        self._out.append(ip.build(parsed.destination, parsed.source, icmp.protocol(version), message))
        return NetDrop.PORT_UNREACHABLE

    # ------------------------------------------------------------------ IP

    def _receive(self, packet: bytes, now: float) -> NetDrop | None:
        parsed = ip.parse(packet)
        if isinstance(parsed, NetDrop):
            return parsed
        if is_unusable_source(parsed.source):
            return NetDrop.BAD_SOURCE
        protocol = parsed.protocol
        if protocol == ip.TCP:
            if parsed.destination in self._local or self._transparent is not None:
                return self._receive_tcp(parsed, now)
            return NetDrop.NOT_FOR_US
        if parsed.destination not in self._local:
            return NetDrop.NOT_FOR_US
        if protocol == ip.UDP:
            return self._receive_udp(packet, parsed, now)
        if protocol == (ip.ICMP if parsed.version == 4 else ip.ICMPV6):
            return self._receive_icmp(parsed)
        return NetDrop.UNKNOWN_PROTOCOL

    def _own_address(self, address: str | None) -> bytes | None:
        """``address`` as bytes if it is one of the stack's (None stays None); ValueError otherwise."""
        if address is None or address in ("", "0.0.0.0", "::"):
            return None
        packed = from_text(address)
        if packed not in self._local:
            raise ValueError(f"{address} is not an address of this stack")
        return packed

    def _source_for(self, destination: bytes, bound: bytes | None) -> bytes:
        """The source address for a packet to ``destination``: the bound one, else ours of the same family
        whose prefix holds the destination, else the first of the family. ValueError if there is none."""
        if bound is not None:
            if len(bound) != len(destination):
                raise ValueError("the socket is bound to an address of the other family")
            return bound
        family = [entry for entry in self.addresses if len(entry.address) == len(destination)]
        if not family:
            raise ValueError(f"the stack has no IPv{4 if len(destination) == 4 else 6} address")
        for entry in family:
            if entry.contains(destination):
                return entry.address
        return family[0].address

    def __repr__(self) -> str:
        names = ", ".join(f"{to_text(entry.address)}/{entry.prefix_length}" for entry in self.addresses)
        return f"Stack({names}, mtu={self.mtu}, {len(self._tcp)} TCP, {len(self._udp)} UDP)"
