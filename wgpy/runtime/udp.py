"""The network side: one UDP socket for IPv4 and one for IPv6 on the same port (wireguard-go's StdNetBind).

Endpoints are ``(host, port)`` tuples, ``(host, port, 0, scope_id)`` for scoped IPv6 addresses. Replies
leave from the local address the peer last reached us on ("sticky sockets", as the kernel and
wireguard-go do): each datagram's destination address is read from ``IP_PKTINFO``/``IPV6_PKTINFO`` and
travels with the datagram, as the control message that would send from that address, into the device.
The device keeps it for a peer only when that datagram proved authentic, and ``send_many`` asks it
(``reply_source``) where to send from; an address that has since disappeared is forgotten and routing
chooses. So a spoofed datagram can never choose the address we answer a peer from.
"""

from __future__ import annotations

import _socket  # socket.socket's C type, without socket.py: see docs/performance.md, "Start-up"
import errno
import struct

from . import steering

SO_MARK = 36
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
MAX_LOCAL_ADDRESSES = 256  # control messages kept for our own addresses (one each; more only if we have more)
SOCKET_BUFFER = 7 << 20  # 7 MiB each way, as wireguard-go asks: bursts of large datagrams are not dropped
# Under load (a handshake flood) the receive buffer shrinks to this: what the kernel queues in front of the
# tunnel's transport packets is then a few milliseconds of flood, not the best part of a second
# (benchmarks/bench_flood.py measures both); it grows back when the load ends.
UNDER_LOAD_RECEIVE_BUFFER = 256 << 10
# The steered handshake sockets' receive buffers (steering.py): a backlog deeper than the device's own
# handshake queue helps nobody; the kernel drops the rest of a flood for free.
HANDSHAKE_RECEIVE_BUFFER = 256 << 10
SOL_UDP = 17
UDP_SEGMENT = 103        # send: one sendmsg carries many equal-sized datagrams (GSO)
UDP_GRO = 104            # receive: the kernel hands us many datagrams of one flow at once
GSO_MAX_SEGMENTS = 64    # the kernel's UDP_MAX_SEGMENTS on older kernels
GSO_MAX_BYTES = 65000    # a GSO send is one IP datagram before segmentation: < 64 KiB
IP_PKTINFO = 8
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
MAX_DATAGRAM = 65535
_IN_PKTINFO = struct.Struct("=i4s4s")      # ifindex, spec_dst, addr
_IN6_PKTINFO = struct.Struct("=16si")      # addr, ifindex
_ANCILLARY = _socket.CMSG_SPACE(_IN6_PKTINFO.size) + _socket.CMSG_SPACE(4)
_SOURCE_GONE = (errno.EINVAL, errno.EADDRNOTAVAIL, errno.ENETUNREACH)  # sendmsg from an address we lost
_GRO_SIZE = struct.Struct("=i")
_GSO_SIZE = struct.Struct("=H")
_MARK = struct.Struct("=I")  # SO_MARK is a u32: an int above 2**31-1 would not pack as the C int setsockopt makes of it


def normalize(address: tuple) -> tuple:
    """The endpoint form the device sees: (host, port), plus (0, scope) for a scoped IPv6 address."""
    if len(address) == 4 and address[3]:
        return (address[0], address[1], 0, address[3])
    return (address[0], address[1])


def _set_buffer(sock: _socket.socket, forced: int, plain: int, size: int) -> None:
    try:
        sock.setsockopt(_socket.SOL_SOCKET, forced, size)
    except OSError:
        try:
            sock.setsockopt(_socket.SOL_SOCKET, plain, size)
        except OSError:
            pass


def _free_port(family: int, address: str, port: int) -> int:
    """``port`` (or, for 0, a port the kernel picks) if no socket holds it; raises OSError (EADDRINUSE)."""
    probe = _socket.socket(family, _socket.SOCK_DGRAM)
    try:
        if family == _socket.AF_INET6:
            probe.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
        probe.bind((address, port))
        return probe.getsockname()[1]
    finally:
        probe.close()


class NoReplySources:
    """Where replies leave from when nothing keeps track (the null relay): routing always chooses."""

    @staticmethod
    def reply_source(endpoint: tuple) -> None:
        return None

    @staticmethod
    def forget_reply_source(endpoint: tuple) -> None:
        pass


class Udp:
    """The device's UDP sockets; ``bind`` (re)opens them on a port, 0 for a random one. ``reply_sources``
    (the Device) says which local address to send to an endpoint from."""

    def __init__(self, offload: bool = True, reply_sources=NoReplySources, steer: bool = True) -> None:
        self.sockets: list[_socket.socket] = []
        self.port = 0
        self.fwmark = 0
        self.reply_sources = reply_sources
        self.under_load = False
        self.steer = steer   # turned off for good the first time the kernel refuses the steered group
        self._roles: dict[int, int] = {}
        self._priority: tuple[bytes, ...] = ()   # peers' addresses whose handshakes take the priority lane
        self._locals: dict[bytes, tuple] = {}  # pktinfo as received -> the control message to send from it
        self.gso = offload   # turned off for good the first time the kernel refuses UDP_SEGMENT
        self.gro = offload
        self._buffer = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buffer)   # slices of it copy once (a bytearray slice is a copy itself)

    def bind(self, port: int, fwmark: int = 0) -> int:
        """Open the sockets on ``port`` (0: any free port, the same for both families). Raises OSError
        (EADDRINUSE) and keeps the old sockets if the port is taken."""
        if port == self.port and self.sockets and fwmark == self.fwmark:
            return self.port
        if port == self.port and self.sockets:
            self.set_fwmark(fwmark)
            return self.port
        for _ in range(100 if port == 0 else 1):
            try:
                sockets, bound = self._open(port, fwmark)
                break
            except OSError as err:
                if port != 0 or err.errno != errno.EADDRINUSE:
                    raise
        else:
            raise OSError(errno.EADDRINUSE, "no free port for both IPv4 and IPv6")
        self.close()
        self.sockets, self.port, self.fwmark = sockets, bound, fwmark
        self._roles = {}
        for family in (_socket.AF_INET, _socket.AF_INET6):
            group = [s for s in sockets if s.family == family]
            if len(group) == 3:
                for role, sock in zip((steering.TRANSPORT, steering.HANDSHAKE, steering.PRIORITY), group):
                    self._roles[sock.fileno()] = role
        if self.under_load:
            self.set_under_load(True)
        return bound

    def _open(self, port: int, fwmark: int) -> tuple[list[_socket.socket], int]:
        """The sockets on ``port``: for IPv4, then IPv6 (where the host has it), a steered group of three
        (steering.py), or one socket where the kernel refuses the group."""
        sockets = self._open_family(_socket.AF_INET, "0.0.0.0", port, fwmark)
        port = sockets[0].getsockname()[1]
        try:
            sockets += self._open_family(_socket.AF_INET6, "::", port, fwmark)
        except OSError as err:
            if err.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):  # else IPv4 alone, as wireguard-go
                for sock in sockets:
                    sock.close()
                raise
        return sockets, port

    def _open_family(self, family: int, address: str, port: int, fwmark: int) -> list[_socket.socket]:
        if self.steer:
            # A SO_REUSEPORT socket could join a group another daemon of ours already holds on the port:
            # claim the port with a plain socket first, so a port in use is EADDRINUSE as without steering.
            port = _free_port(family, address, port)
        transport = self._socket(family, fwmark, SOCKET_BUFFER)
        try:
            if self.steer:
                steering.join_group(transport)
            transport.bind((address, port))
        except OSError:
            transport.close()
            raise
        if not self.steer:
            return [transport]
        port = transport.getsockname()[1]
        group = [transport]
        try:
            for _ in (steering.HANDSHAKE, steering.PRIORITY):
                group.append(self._socket(family, fwmark, HANDSHAKE_RECEIVE_BUFFER))
                steering.join_group(group[-1])
                group[-1].bind((address, port))
            steering.attach(transport, self._priority)
        except OSError:   # no steering here: the transport socket takes everything, as without it
            for sock in group[1:]:
                sock.close()
            self.steer = False
            return [transport]
        return group

    def _socket(self, family: int, fwmark: int, receive_buffer: int) -> _socket.socket:
        sock = _socket.socket(family, _socket.SOCK_DGRAM)
        try:
            if family == _socket.AF_INET:
                sock.setsockopt(_socket.IPPROTO_IP, IP_PKTINFO, 1)
            else:
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
                sock.setsockopt(_socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            if fwmark:
                sock.setsockopt(_socket.SOL_SOCKET, SO_MARK, _MARK.pack(fwmark))
            sock.setblocking(False)
            _set_buffer(sock, SO_SNDBUFFORCE, _socket.SO_SNDBUF, SOCKET_BUFFER)
            _set_buffer(sock, SO_RCVBUFFORCE, _socket.SO_RCVBUF, receive_buffer)
            self._enable_gro(sock)
        except OSError:
            sock.close()
            raise
        return sock

    def set_priority_addresses(self, addresses: set[bytes]) -> None:
        """The packed addresses of the configured peers' endpoints: their handshake messages take the
        priority lane (steering.py). Reprograms the groups only when the set changed."""
        ordered = tuple(sorted(addresses))
        if ordered == self._priority:
            return
        self._priority = ordered
        for sock in self.sockets:
            if self._roles.get(sock.fileno()) == steering.TRANSPORT:
                try:
                    steering.attach(sock, ordered)
                except OSError:
                    pass   # the old program stays: steering without priority for the new addresses

    def role(self, sock: _socket.socket) -> int:
        """Which datagrams ``sock`` receives: steering.TRANSPORT (all of them, without steering),
        steering.HANDSHAKE or steering.PRIORITY."""
        return self._roles.get(sock.fileno(), steering.TRANSPORT)

    def set_under_load(self, active: bool) -> None:
        """The device is (or is no longer) under load. Without steering the one socket per family carries
        the flood too: shrink its receive buffer so that transport waits behind milliseconds of it, not
        most of a second (benchmarks/bench_flood.py); restore it when the load ends."""
        self.under_load = active
        if not self.steer:
            for sock in self.sockets:
                _set_buffer(sock, SO_RCVBUFFORCE, _socket.SO_RCVBUF, UNDER_LOAD_RECEIVE_BUFFER if active else SOCKET_BUFFER)

    def _enable_gro(self, sock: _socket.socket) -> None:
        if self.gro:
            try:
                sock.setsockopt(SOL_UDP, UDP_GRO, 1)
            except OSError:  # an older kernel: one datagram per read
                self.gro = False

    def set_fwmark(self, fwmark: int) -> None:
        for s in self.sockets:
            s.setsockopt(_socket.SOL_SOCKET, SO_MARK, _MARK.pack(fwmark))
        self.fwmark = fwmark

    def receive(self, sock: _socket.socket, out: list, limit: int) -> int:
        """Append up to about ``limit`` received ``(datagram, source, local)`` triples to ``out``, where
        ``local`` is the control message that sends from the address the datagram reached (None if the
        kernel did not say); returns how many reads were made (0 when nothing was waiting). With UDP_GRO
        one read may carry many datagrams of one source, ``gso_size`` bytes each (the last one shorter),
        which are split here."""
        buffer, view, reads = self._buffer, self._view, 0
        while len(out) < limit:
            try:
                size, ancillary, _, address = sock.recvmsg_into([buffer], _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # an ICMP error queued on the socket: nothing to read this time
                reads += 1
                continue
            reads += 1
            endpoint = normalize(address)
            segment, local = 0, None
            for level, kind, value in ancillary:
                if level == SOL_UDP and kind == UDP_GRO:
                    segment = _GRO_SIZE.unpack_from(value)[0]
                else:
                    local = self._locals.get(value) or self._local(level, kind, value)
            if segment and segment < size:
                data = view[:size]
                for start in range(0, size, segment):
                    out.append((bytes(data[start : start + segment]), endpoint, local))   # the last one shorter
            else:
                out.append((bytes(view[:size]), endpoint, local))
        return reads

    def _local(self, level: int, kind: int, value: bytes) -> tuple | None:
        """The control message that sends from the address a packet-info message names (kept: we have
        few addresses, and the same one comes with every datagram)."""
        control = None
        if level == _socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= _IN_PKTINFO.size:
            _, _, local = _IN_PKTINFO.unpack_from(value)
            control = (_socket.IPPROTO_IP, IP_PKTINFO, _IN_PKTINFO.pack(0, local, bytes(4)))
        elif level == _socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(value) >= _IN6_PKTINFO.size:
            local, ifindex = _IN6_PKTINFO.unpack_from(value)
            scoped = ifindex if local[:2] == b"\xfe\x80" else 0
            control = (_socket.IPPROTO_IPV6, IPV6_PKTINFO, _IN6_PKTINFO.pack(local, scoped))
        if control is not None and len(self._locals) < MAX_LOCAL_ADDRESSES:
            self._locals[bytes(value)] = control
        return control

    def send_many(self, datagrams: list[tuple[bytes, tuple]]) -> None:
        """Send datagrams in order. Runs of equal-sized datagrams to one endpoint (the last may be shorter)
        go out as one ``sendmsg`` with UDP_SEGMENT (GSO), up to 64 datagrams or 64 KB at a time."""
        if not self.gso:
            for datagram, endpoint in datagrams:
                self.send(datagram, endpoint)
            return
        i, count = 0, len(datagrams)
        while i < count:
            datagram, endpoint = datagrams[i]
            size = len(datagram)
            j, total = i + 1, size
            while j < count and j - i < GSO_MAX_SEGMENTS:
                following, where = datagrams[j]
                if where != endpoint or len(following) > size or total + len(following) > GSO_MAX_BYTES:
                    break
                total += len(following)
                j += 1
                if len(following) < size:
                    break  # only the last segment may be shorter
            if j - i == 1:
                self.send(datagram, endpoint)
            else:
                self._send_segments([d for d, _ in datagrams[i:j]], size, endpoint)
            i = j

    def _send_segments(self, segments: list[bytes], size: int, endpoint: tuple) -> None:
        sock = self._socket_for(endpoint)
        if sock is None:
            return
        control = [(SOL_UDP, UDP_SEGMENT, _GSO_SIZE.pack(size))]
        source = self.reply_sources.reply_source(endpoint)
        if source is not None:
            control.append(source)
        try:
            sock.sendmsg(segments, control, 0, endpoint)
            return
        except (BlockingIOError, InterruptedError):
            return  # the socket buffer is full: drop, as a router would
        except OSError as err:
            if err.errno in (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP) and source is None:
                self.gso = False  # this kernel or route cannot segment: send one by one from now on
            elif source is not None and err.errno in _SOURCE_GONE:
                self.reply_sources.forget_reply_source(endpoint)
        for segment in segments:
            self.send(segment, endpoint)

    def send(self, datagram: bytes, endpoint: tuple) -> bool:
        """Send to ``endpoint`` from the address it last reached us on; False if the kernel refused."""
        sock = self._socket_for(endpoint)
        if sock is None:
            return False
        source = self.reply_sources.reply_source(endpoint)
        try:
            if source is not None:
                try:
                    sock.sendmsg([datagram], [source], 0, endpoint)
                    return True
                except OSError as err:
                    if err.errno not in _SOURCE_GONE:
                        raise
                    # The address we replied from is gone: forget it and let routing choose (kernel).
                    self.reply_sources.forget_reply_source(endpoint)
            sock.sendto(datagram, endpoint)
            return True
        except (BlockingIOError, InterruptedError):
            return False  # the socket buffer is full: drop, as a router would
        except OSError:
            return False

    def _socket_for(self, endpoint: tuple) -> _socket.socket | None:
        family = _socket.AF_INET6 if ":" in endpoint[0] else _socket.AF_INET
        for s in self.sockets:
            if s.family == family:
                return s
        return None

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        self.sockets = []
        self._roles = {}

