"""The userspace stack: one interface (the tunnel), its addresses, its sockets (docs/netstack.md).

Shaped like smoltcp's interface and like ``wgpy.core.Device``: IP packets and ``now`` go in
(``receive_packets``), IP packets (``packets_to_send``), the next deadline and socket events come out.
Every packet taken in is either used or counted once in ``drops`` under its :class:`NetDrop`; nothing
raises on input from the network.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable

from . import icmp, ip, udp
from .addresses import InterfaceAddress, from_text, interface_address, is_unusable_source, to_text
from .errors import NetDrop
from .events import DatagramReceived, SocketEvent
from .icmp import TokenBucket
from .ports import check_port, choose_port
from .udp import UdpSocket

DEFAULT_MTU = 1420  # wg-quick's default for the tunnel


class Stack:
    """A sans-IO IP stack for one tunnel. ``addresses`` are ``"10.0.0.2/24"`` strings (IPv4 and/or
    IPv6); ``rng(n) -> bytes`` gives the randomness (ephemeral ports, ISN secret)."""

    def __init__(self, addresses: Iterable[str], mtu: int = DEFAULT_MTU, rng: Callable[[int], bytes] | None = None,
                 icmp_rate: TokenBucket | None = None) -> None:
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
        self.icmp_errors = icmp_rate or TokenBucket()
        self._local = frozenset(entry.address for entry in self.addresses)
        self._udp: dict[tuple[bytes | None, int], UdpSocket] = {}
        self._out: list[bytes] = []
        self._events: dict[SocketEvent, None] = {}   # ordered, each event once until pulled
        self._now = 0.0

    # ------------------------------------------------------------------ the seam to the Device

    def receive_packets(self, packets: Iterable[bytes], now: float) -> None:
        """Take IP packets from the tunnel (``device.packets_to_deliver()``). Never raises on their content."""
        self._now = now
        drops = self.drops
        for packet in packets:
            reason = self._receive(packet, now)
            if reason is not None:
                drops[reason] += 1

    def receive_packet(self, packet: bytes, now: float) -> None:
        """One packet: a batch of one."""
        self.receive_packets([packet], now)

    def packets_to_send(self) -> list[bytes]:
        """Whole IP packets for the tunnel (``device.send_packets()``), oldest first."""
        out, self._out = self._out, []
        return out

    def poll(self, now: float) -> None:
        """Run the timers that are due at ``now``."""
        self._now = now

    def next_deadline(self) -> float | None:
        """When ``poll`` must be called next; None when nothing is pending."""
        return None

    def events(self) -> list[SocketEvent]:
        """What changed since the last call, each kind of change of each socket once."""
        events, self._events = list(self._events), {}
        return events

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
        fields = udp.parse(parsed.source, parsed.destination, parsed.payload)
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
            reply = icmp.echo_reply(version, parsed.destination, parsed.source, parsed.payload)
            self._out.append(ip.build(parsed.destination, parsed.source, parsed.protocol, reply))
            return None
        if icmp.is_error(version, kind):
            # RFC 1122 3.2.2.1, 4.1.3.3: an error could be handed to the socket it concerns; UDP sockets
            # have no error to report in this API, so it is noted and dropped.
            return NetDrop.ICMP_ERROR_RECEIVED
        return NetDrop.ICMP_IGNORED

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
        return f"Stack({names}, mtu={self.mtu}, {len(self._udp)} UDP)"
