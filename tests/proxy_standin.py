"""A stand-in for ``wgpy.Tunnel`` over the host's loopback, for the proxy's unit tests: the same calls
(``resolve``, ``open_connection``, ``start_server``, ``create_datagram_endpoint``, ``addresses``), made
with asyncio's own sockets. The "tunnel's address" is 127.0.0.2 (Linux routes 127/8 to lo), so what the
proxy serves "on the tunnel" is told apart from what it serves on 127.0.0.1. Names resolve from a table,
as the tunnel's DNS would; anything else is ``socket.gaierror``, as from ``Tunnel.resolve``."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

TUNNEL_ADDRESS = "127.0.0.2"


class LoopbackTunnel:
    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names = dict(names or {})
        self.addresses = [TUNNEL_ADDRESS]
        self.asked: list[str] = []          # names resolved, in order (to show no lookup went elsewhere)
        self.device = None
        self.stack = None

    async def resolve(self, host: str) -> list[str]:
        try:
            ipaddress.ip_address(host)
            return [host]
        except ValueError:
            pass
        self.asked.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: the name does not exist (NXDOMAIN)")
        return list(self.names[host])

    async def open_connection(self, host: str, port: int, **options):
        return await asyncio.open_connection(host, port, **options)

    async def start_server(self, client_connected_cb, host: str | None = None, port: int | None = None, **options):
        return await asyncio.start_server(client_connected_cb, host or TUNNEL_ADDRESS, port)

    async def create_datagram_endpoint(self, protocol_factory, local_addr=None, remote_addr=None):
        loop = asyncio.get_running_loop()
        if local_addr is None and remote_addr is None:
            # The tunnel's stack sends to either family from one endpoint: a dual-stack socket, its
            # IPv4-mapped addresses turned back into IPv4 both ways.
            inner = protocol_factory()
            transport, _ = await loop.create_datagram_endpoint(lambda: _Mapped(inner), local_addr=("::", 0))
            return _MappedTransport(transport), inner
        if local_addr is not None:
            local_addr = (local_addr[0] or TUNNEL_ADDRESS, local_addr[1] or 0)
        return await loop.create_datagram_endpoint(protocol_factory, local_addr=local_addr, remote_addr=remote_addr)


def _unmapped(host: str) -> str:
    return host[len("::ffff:"):] if host.startswith("::ffff:") and "." in host else host


class _Mapped(asyncio.DatagramProtocol):
    def __init__(self, inner) -> None:
        self.inner = inner

    def connection_made(self, transport) -> None:
        self.inner.connection_made(_MappedTransport(transport))

    def datagram_received(self, data, addr) -> None:
        self.inner.datagram_received(data, (_unmapped(addr[0]), addr[1]))

    def error_received(self, exc) -> None:
        self.inner.error_received(exc)

    def connection_lost(self, exc) -> None:
        self.inner.connection_lost(exc)


class _MappedTransport:
    def __init__(self, transport) -> None:
        self.transport = transport

    def sendto(self, data, addr) -> None:
        host = addr[0] if ":" in addr[0] else f"::ffff:{addr[0]}"
        self.transport.sendto(data, (host, addr[1]))

    def get_extra_info(self, name, default=None):
        return self.transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()
