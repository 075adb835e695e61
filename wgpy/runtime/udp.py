"""The network side: one UDP socket for IPv4 and one for IPv6 on the same port (wireguard-go's StdNetBind).

Endpoints are ``(host, port)`` tuples, ``(host, port, 0, scope_id)`` for scoped IPv6 addresses. Replies
leave from the local address the peer last reached us on ("sticky sockets", as the kernel and
wireguard-go do): each datagram's destination address is read from ``IP_PKTINFO``/``IPV6_PKTINFO`` and
used as the source of what we send back to that endpoint, unless that address has since disappeared.
"""

from __future__ import annotations

import errno
import socket
import struct

SO_MARK = 36
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
MAX_STICKY_SOURCES = 4096  # endpoints whose reply address we remember; before authentication, so bounded
SOCKET_BUFFER = 7 << 20  # 7 MiB each way, as wireguard-go asks: bursts of large datagrams are not dropped
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
_ANCILLARY = socket.CMSG_SPACE(_IN6_PKTINFO.size) + socket.CMSG_SPACE(4)
_GRO_SIZE = struct.Struct("=i")
_GSO_SIZE = struct.Struct("=H")
_MARK = struct.Struct("=I")  # SO_MARK is a u32: an int above 2**31-1 would not pack as the C int setsockopt makes of it


def normalize(address: tuple) -> tuple:
    """The endpoint form the device sees: (host, port), plus (0, scope) for a scoped IPv6 address."""
    if len(address) == 4 and address[3]:
        return (address[0], address[1], 0, address[3])
    return (address[0], address[1])


class Udp:
    """The device's UDP sockets; ``bind`` (re)opens them on a port, 0 for a random one."""

    def __init__(self, offload: bool = True) -> None:
        self.sockets: list[socket.socket] = []
        self.port = 0
        self.fwmark = 0
        self._source: dict[tuple, tuple] = {}  # endpoint -> (socket level, option, pktinfo) to reply from
        self.gso = offload   # turned off for good the first time the kernel refuses UDP_SEGMENT
        self.gro = offload
        self._buffer = bytearray(MAX_DATAGRAM)

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
        self._source.clear()
        return bound

    def _open(self, port: int, fwmark: int) -> tuple[list[socket.socket], int]:
        v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            v4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            if fwmark:
                v4.setsockopt(socket.SOL_SOCKET, SO_MARK, _MARK.pack(fwmark))
            v4.bind(("0.0.0.0", port))
            v4.setblocking(False)
            self._size_buffers(v4)
            self._enable_gro(v4)
            port = v4.getsockname()[1]
        except OSError:
            v4.close()
            raise
        sockets = [v4]
        try:
            v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        except OSError:  # no IPv6 on this host: IPv4 alone, as wireguard-go does
            return sockets, port
        try:
            v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            v6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            if fwmark:
                v6.setsockopt(socket.SOL_SOCKET, SO_MARK, _MARK.pack(fwmark))
            v6.bind(("::", port))
        except OSError as err:
            v6.close()
            if err.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                return sockets, port
            v4.close()
            raise
        v6.setblocking(False)
        self._size_buffers(v6)
        self._enable_gro(v6)
        return [v4, v6], port

    @staticmethod
    def _size_buffers(sock: socket.socket) -> None:
        """Large socket buffers, past the sysctl limits when we may (root), else as large as allowed."""
        for forced, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, forced, SOCKET_BUFFER)
            except OSError:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)
                except OSError:
                    pass

    def _enable_gro(self, sock: socket.socket) -> None:
        if self.gro:
            try:
                sock.setsockopt(SOL_UDP, UDP_GRO, 1)
            except OSError:  # an older kernel: one datagram per read
                self.gro = False

    def set_fwmark(self, fwmark: int) -> None:
        for s in self.sockets:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, _MARK.pack(fwmark))
        self.fwmark = fwmark

    def receive(self, sock: socket.socket, out: list, limit: int) -> int:
        """Append up to about ``limit`` received ``(datagram, source)`` pairs to ``out``; returns how
        many reads were made (0 when nothing was waiting). With UDP_GRO one read may carry many datagrams
        of one source, ``gso_size`` bytes each (the last one shorter), which are split here."""
        buffer, reads = self._buffer, 0
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
            segment = 0
            for level, kind, value in ancillary:
                if level == SOL_UDP and kind == UDP_GRO:
                    segment = _GRO_SIZE.unpack_from(value)[0]
                elif level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= _IN_PKTINFO.size:
                    _, _, local = _IN_PKTINFO.unpack_from(value)
                    self._remember(endpoint, (socket.IPPROTO_IP, IP_PKTINFO, _IN_PKTINFO.pack(0, local, bytes(4))))
                elif level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(value) >= _IN6_PKTINFO.size:
                    local, ifindex = _IN6_PKTINFO.unpack_from(value)
                    scoped = ifindex if local[:2] == b"\xfe\x80" else 0
                    self._remember(endpoint, (socket.IPPROTO_IPV6, IPV6_PKTINFO, _IN6_PKTINFO.pack(local, scoped)))
            if segment and segment < size:
                view = memoryview(buffer)
                for start in range(0, size, segment):
                    out.append((bytes(view[start : min(start + segment, size)]), endpoint))
            else:
                out.append((bytes(buffer[:size]), endpoint))
        return reads

    def _remember(self, endpoint: tuple, control: tuple) -> None:
        """Note the address ``endpoint`` reached us on. Any datagram does this, authentic or not, so the
        table is bounded: past MAX_STICKY_SOURCES the oldest entry goes (a real peer's comes back with its
        next datagram; meanwhile routing picks the source address)."""
        sources = self._source
        if sources.get(endpoint) != control:
            sources.pop(endpoint, None)
            sources[endpoint] = control
            if len(sources) > MAX_STICKY_SOURCES:
                del sources[next(iter(sources))]

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
        source = self._source.get(endpoint)
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
            elif source is not None and err.errno in (errno.EINVAL, errno.EADDRNOTAVAIL, errno.ENETUNREACH):
                del self._source[endpoint]
        for segment in segments:
            self.send(segment, endpoint)

    def send(self, datagram: bytes, endpoint: tuple) -> bool:
        """Send to ``endpoint`` from the address it last reached us on; False if the kernel refused."""
        sock = self._socket_for(endpoint)
        if sock is None:
            return False
        source = self._source.get(endpoint)
        try:
            if source is not None:
                try:
                    sock.sendmsg([datagram], [source], 0, endpoint)
                    return True
                except OSError as err:
                    if err.errno not in (errno.EINVAL, errno.EADDRNOTAVAIL, errno.ENETUNREACH):
                        raise
                    # The address we replied from is gone: forget it and let routing choose.
                    del self._source[endpoint]
            sock.sendto(datagram, endpoint)
            return True
        except (BlockingIOError, InterruptedError):
            return False  # the socket buffer is full: drop, as a router would
        except OSError:
            return False

    def _socket_for(self, endpoint: tuple) -> socket.socket | None:
        family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
        for s in self.sockets:
            if s.family == family:
                return s
        return None

    def forget_source(self, endpoint: tuple) -> None:
        """Let routing choose the source address again (after a handshake gave no answer)."""
        self._source.pop(endpoint, None)

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        self.sockets = []

