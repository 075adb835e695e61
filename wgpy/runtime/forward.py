"""``wgpy proxy --forward`` and ``--reverse``: fixed port forwards between this host and the tunnel.

    --forward tcp|udp:LOCALADDR:PORT:REMOTEHOST:PORT   a port here to a host inside the tunnel
    --reverse tcp|udp:TUNNELPORT:LOCALHOST:PORT        a port on the tunnel's addresses to a service here

An IPv6 address is written in brackets (``[::1]``), as ssh -L takes it. REMOTEHOST may be a name: the
tunnel's DNS resolves it, for each connection (TCP) or each new client (UDP). UDP keeps one session per
client, forgotten after ``UDP_IDLE`` seconds without traffic, at most ``MAX_UDP_SESSIONS`` at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..proxy.socks5 import Reply
from .proxy import Proxy, UpstreamError, relay

log = logging.getLogger("wgpy.proxy")

UDP_IDLE = 120.0
MAX_UDP_SESSIONS = 256


@dataclass(frozen=True)
class Forward:
    """One ``--forward`` (``reverse=False``: listen here, connect in the tunnel) or ``--reverse``
    (listen on the tunnel's addresses, connect here)."""

    protocol: str          # "tcp" or "udp"
    listen_host: str | None   # None for a reverse: every tunnel address
    listen_port: int
    host: str
    port: int
    reverse: bool = False

    def __str__(self) -> str:
        kind = "reverse" if self.reverse else "forward"
        where = f"tunnel:{self.listen_port}" if self.reverse else f"{_join(self.listen_host, self.listen_port)}"
        return f"{kind} {self.protocol} {where} -> {_join(self.host, self.port)}"


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _fields(text: str) -> list[str]:
    """Split on colons outside brackets; a bracketed field loses its brackets."""
    fields, current, depth = [], "", 0
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == ":" and depth == 0:
            fields.append(current)
            current = ""
        else:
            current += char
    fields.append(current)
    if depth:
        raise ValueError("an unclosed [")
    return [f[1:-1] if f.startswith("[") and f.endswith("]") else f for f in fields]


def _port(text: str, *, zero: bool = False) -> int:
    if not text.isascii() or not text.isdigit() or not (0 if zero else 1) <= int(text) <= 65535:
        raise ValueError(f"{text!r} is not a port (1 to 65535)")
    return int(text)


def parse_forward(text: str, *, reverse: bool = False) -> Forward:
    """``tcp:127.0.0.1:8080:files.tunnel:80`` (or, reverse, ``tcp:8080:127.0.0.1:80``); ValueError says
    what is wrong."""
    fields = _fields(text)
    shape = "tcp|udp:TUNNELPORT:LOCALHOST:PORT" if reverse else "tcp|udp:LOCALADDR:PORT:REMOTEHOST:PORT"
    if len(fields) != (4 if reverse else 5) or fields[0] not in ("tcp", "udp") or not all(fields):
        raise ValueError(f"{text!r} is not {shape}")
    if reverse:
        return Forward(fields[0], None, _port(fields[1]), fields[2], _port(fields[3]), reverse=True)
    return Forward(fields[0], fields[1], _port(fields[2]), fields[3], _port(fields[4]))


async def start(proxy: Proxy, forward: Forward):
    """Listen for ``forward``; returns what to ``close()`` to stop it."""
    loop = asyncio.get_running_loop()
    tunnel = proxy.tunnel
    if forward.protocol == "tcp":
        if forward.reverse:
            async def reverse_tcp(reader, writer) -> None:
                await _tcp(proxy, forward, reader, writer, _open_here)
            return await tunnel.start_server(reverse_tcp, port=forward.listen_port)

        async def forward_tcp(reader, writer) -> None:
            await _tcp(proxy, forward, reader, writer, proxy.connect)
        return await asyncio.start_server(forward_tcp, forward.listen_host, forward.listen_port)
    relay_ = UdpForward(proxy, forward)
    if forward.reverse:
        transport, _ = await tunnel.create_datagram_endpoint(lambda: relay_, local_addr=(None, forward.listen_port))
    else:
        transport, _ = await loop.create_datagram_endpoint(lambda: relay_, local_addr=(forward.listen_host, forward.listen_port))
    return relay_


async def _open_here(host: str, port: int):
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), 15.0)
    except (OSError, asyncio.TimeoutError) as error:
        raise UpstreamError(Reply.GENERAL_FAILURE, 502, "local_connect_failed", f"{_join(host, port)}: {error}") from None


async def _tcp(proxy: Proxy, forward: Forward, reader, writer, connect) -> None:
    if not proxy.admit(writer, from_tunnel=forward.reverse):
        return
    proxy.counts[f"{'reverse' if forward.reverse else 'forward'}_tcp"] += 1
    try:
        try:
            up_reader, up_writer = await connect(forward.host, forward.port)
        except UpstreamError as error:
            proxy.count_refusal(error.reason)
            log.info("%s: %s", forward, error)
            writer.close()
            return
        await relay(reader, writer, up_reader, up_writer)
    except ConnectionError:
        proxy.count_refusal("client_gone")
    finally:
        proxy.release(from_tunnel=forward.reverse)


class UdpForward(asyncio.DatagramProtocol):
    """The listening side of a UDP forward: one session (an endpoint on the other side) per client."""

    def __init__(self, proxy: Proxy, forward: Forward) -> None:
        self.proxy = proxy
        self.forward = forward
        self.transport = None
        self.sessions: dict[tuple, UdpSession] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        client = tuple(addr[:2])
        session = self.sessions.get(client)
        if session is None:
            if len(self.sessions) >= MAX_UDP_SESSIONS:
                self.proxy.count_refusal("udp_too_many_sessions")
                return
            self.proxy.counts[f"{'reverse' if self.forward.reverse else 'forward'}_udp"] += 1
            session = self.sessions[client] = UdpSession(self, client)
            self.proxy.spawn(session.open())
        session.send(data)

    def reply(self, data: bytes, client: tuple) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, client)

    def close(self) -> None:
        for session in list(self.sessions.values()):
            session.close()
        if self.transport is not None:
            self.transport.close()


class UdpSession(asyncio.DatagramProtocol):
    """One client of a UDP forward: its datagrams to the far side, the far side's back to it."""

    def __init__(self, owner: UdpForward, client: tuple) -> None:
        self.owner = owner
        self.client = client
        self.waiting: list[bytes] = []      # until the far side's endpoint exists
        self.transport = None
        self.idle: asyncio.TimerHandle | None = None
        self.closed = False

    async def open(self) -> None:
        forward, proxy = self.owner.forward, self.owner.proxy
        loop = asyncio.get_running_loop()
        try:
            if forward.reverse:
                self.transport, _ = await loop.create_datagram_endpoint(lambda: self, remote_addr=(forward.host, forward.port))
            else:
                address = (await proxy.tunnel.resolve(forward.host))[0]
                self.transport, _ = await proxy.tunnel.create_datagram_endpoint(lambda: self, remote_addr=(address, forward.port))
        except (OSError, ValueError) as error:
            proxy.count_refusal("udp_session_failed")
            log.info("%s: %s", forward, error)
            self.close()
            return
        for data in self.waiting:
            self.transport.sendto(data)
        self.waiting.clear()
        self._touch()

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        if self.transport is None:
            if len(self.waiting) < 64:
                self.waiting.append(data)
            return
        self.transport.sendto(data)
        self._touch()

    def datagram_received(self, data: bytes, addr) -> None:
        self.owner.reply(data, self.client)
        self._touch()

    def error_received(self, exc) -> None:
        log.debug("%s: %s", self.owner.forward, exc)

    def _touch(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(UDP_IDLE, self.close)

    def close(self) -> None:
        self.closed = True
        if self.idle is not None:
            self.idle.cancel()
        if self.transport is not None:
            self.transport.close()
        self.owner.sessions.pop(self.client, None)
