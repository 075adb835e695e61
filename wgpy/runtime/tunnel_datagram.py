"""UDP through the tunnel as asyncio knows it: a ``DatagramTransport`` over a stack ``UdpSocket``.

As with a kernel socket made by ``loop.create_datagram_endpoint``: ``sendto(data, addr)`` (``addr`` may be
left out, or must equal it, when ``remote_addr`` was given), ``datagram_received(data, addr)`` on the
protocol, and with ``remote_addr`` only datagrams from that address are delivered (a connected UDP
socket's filter). An address the tunnel cannot route is ``error_received(OSError(ENETUNREACH))``, as
the kernel reports it on a connected socket, not an exception out of ``sendto`` (EMSGSIZE for a
datagram larger than the MTU allows: the stack does not fragment).
"""

from __future__ import annotations

import asyncio
import errno


class TunnelDatagramTransport(asyncio.DatagramTransport):
    def __init__(self, engine, udp_socket, loop: asyncio.AbstractEventLoop, remote: tuple | None) -> None:
        super().__init__()
        self._engine = engine
        self._socket = udp_socket
        self._loop = loop
        self._remote = remote
        self._protocol: asyncio.DatagramProtocol | None = None
        self._closing = False
        host, port = udp_socket.local
        if not host:   # bound to every address of the stack: named as the kernel names it
            host = "::" if remote is not None and ":" in remote[0] else "0.0.0.0"
        self._extra = {"sockname": (host, port), "peername": remote, "socket": None}
        engine.register(udp_socket, self)

    def attach(self, protocol: asyncio.DatagramProtocol) -> None:
        self._protocol = protocol
        protocol.connection_made(self)
        self._deliver()

    def on_stack_event(self, event) -> None:
        if type(event).__name__ == "DatagramReceived":
            self._deliver()

    def on_tunnel_closed(self) -> None:
        self.close()

    def _deliver(self) -> None:
        while not self._closing and self._protocol is not None:
            item = self._socket.recvfrom()
            if item is None:
                return
            data, address = item
            if self._remote is not None and tuple(address[:2]) != self._remote:
                continue   # a connected socket hears only its peer
            self._protocol.datagram_received(data, tuple(address))

    # ------------------------------------------------------------------------------ asyncio.DatagramTransport

    def sendto(self, data, addr=None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._remote is not None:
            if addr not in (None, self._remote) and tuple(addr[:2]) != self._remote:
                raise ValueError(f"Invalid address: must be None or {self._remote}")
            addr = self._remote
        if addr is None:
            raise ValueError("no address: give addr, or remote_addr when the endpoint is made")
        if self._closing:
            return
        try:
            self._socket.sendto(bytes(data), (addr[0], addr[1]))
        except ValueError as refused:   # too big for the MTU, or no address of that family
            number = errno.EMSGSIZE if "MTU" in str(refused) else errno.ENETUNREACH
            self._protocol.error_received(OSError(number, str(refused)))
            return
        self._engine.kick()

    def get_extra_info(self, name, default=None):
        return self._extra.get(name, default)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._engine.forget(self._socket)
        self._socket.close()
        if self._protocol is not None:
            self._loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol

    def get_protocol(self):
        return self._protocol
