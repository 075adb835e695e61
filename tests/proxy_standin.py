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
        if local_addr is not None:
            local_addr = (local_addr[0] or TUNNEL_ADDRESS, local_addr[1] or 0)
        elif remote_addr is None:
            local_addr = (TUNNEL_ADDRESS, 0)
        return await loop.create_datagram_endpoint(protocol_factory, local_addr=local_addr, remote_addr=remote_addr)
