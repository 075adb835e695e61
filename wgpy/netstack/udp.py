"""UDP (RFC 768): the header, its checksum, and :class:`UdpSocket`.

The checksum covers the pseudo-header (RFC 768, RFC 8200 8.1). In IPv4 a zero checksum means "none was
computed" and is accepted; in IPv6 it is mandatory, so zero is refused (RFC 8200 8.1). A computed
checksum of zero is sent as 0xffff (RFC 768).
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Callable

from .addresses import to_text
from .checksum import checksum, ones_complement_sum, pseudo_header_sum
from .errors import NetDrop
from .ip import UDP

HEADER = struct.Struct("!HHHH")  # source port, destination port, length, checksum
HEADER_LEN = 8

# The receive queue holds at most this many bytes of datagrams (Linux's net.core.rmem_default is 212992,
# counted with its overhead; here only the data counts).
RECEIVE_BUFFER = 212992


def parse(source: bytes, destination: bytes, datagram: memoryview, verify: bool = True) -> tuple[int, int, memoryview] | NetDrop:
    """``(source port, destination port, data)`` of a checked datagram, or why it is refused.
    ``verify=False`` skips the checksum (only the checksum): see ``Stack(verify_checksums=...)``."""
    size = len(datagram)
    if size < HEADER_LEN:
        return NetDrop.BAD_UDP
    source_port, destination_port, length, check = HEADER.unpack_from(datagram)
    # RFC 768: the length counts header and data; what lies past it is not part of the datagram.
    if length < HEADER_LEN or length > size:
        return NetDrop.BAD_UDP
    datagram = datagram[:length]
    if check == 0:
        if len(source) == 16:
            return NetDrop.BAD_UDP
    elif verify and ones_complement_sum(datagram, pseudo_header_sum(source, destination, UDP, length)) != 0xFFFF:
        return NetDrop.BAD_UDP
    return source_port, destination_port, datagram[HEADER_LEN:]


def build(source: bytes, destination: bytes, source_port: int, destination_port: int, data: bytes) -> bytes:
    """A UDP datagram (header and data) with its checksum computed."""
    length = HEADER_LEN + len(data)
    datagram = HEADER.pack(source_port, destination_port, length, 0) + data
    check = checksum(datagram, pseudo_header_sum(source, destination, UDP, length)) or 0xFFFF
    return datagram[:6] + check.to_bytes(2, "big") + datagram[8:]


class UdpSocket:
    """A UDP socket of a :class:`~wgpy.netstack.stack.Stack`, made by ``Stack.udp_bind``.

    ``local`` is ``(address, port)`` as ``socket.getsockname`` writes it (address ``""`` when bound to
    every address of the stack). Datagrams that arrive wait in a queue bounded in bytes; those that do
    not fit are dropped (``NetDrop.UDP_QUEUE_FULL``), as a full socket buffer drops them in Linux.
    """

    def __init__(self, address: bytes | None, port: int, send: Callable, unbind: Callable,
                 receive_buffer: int = RECEIVE_BUFFER) -> None:
        self.address = address          # bytes, or None for every address of the stack
        self.port = port
        self.receive_buffer = receive_buffer
        self.closed = False
        self._queue: deque[tuple[bytes, tuple[str, int]]] = deque()
        self._queued_bytes = 0
        self._send = send
        self._unbind = unbind

    @property
    def local(self) -> tuple[str, int]:
        return (to_text(self.address) if self.address is not None else "", self.port)

    @property
    def pending(self) -> int:
        """How many datagrams wait in ``recvfrom``."""
        return len(self._queue)

    def deliver(self, data: bytes, source: tuple[str, int]) -> NetDrop | None:
        """Queue a datagram that arrived (called by the stack); ``NetDrop.UDP_QUEUE_FULL`` if it does not fit."""
        if self.closed or self._queued_bytes + len(data) > self.receive_buffer:
            return NetDrop.UDP_QUEUE_FULL
        self._queue.append((data, source))
        self._queued_bytes += len(data)
        return None

    def recvfrom(self) -> tuple[bytes, tuple[str, int]] | None:
        """The oldest datagram and its sender ``(address, port)``, or None when none is queued."""
        if not self._queue:
            return None
        data, source = self._queue.popleft()
        self._queued_bytes -= len(data)
        return data, source

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        """Send ``data`` to ``address`` (``(host, port)``, the host as a numeric string). Raises ValueError
        when the stack has no address of that family, when it is bound to another family, when the
        datagram would not fit the MTU (no fragmentation), or when the socket is closed."""
        if self.closed:
            raise ValueError("the socket is closed")
        self._send(self, bytes(data), address)

    def close(self) -> None:
        """Unbind the port; queued datagrams are forgotten."""
        if not self.closed:
            self.closed = True
            self._queue.clear()
            self._queued_bytes = 0
            self._unbind(self)

    def __repr__(self) -> str:
        return f"UdpSocket({self.local[0] or '*'}:{self.port}{' closed' if self.closed else ''})"
