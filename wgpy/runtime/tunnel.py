"""``wgpy.Tunnel``: a WireGuard network reached from an asyncio program, without root and without a TUN.

Issue 13. A wg-quick file gives the keys, the peers, the tunnel's own addresses (``Address``), ``MTU``,
``ListenPort`` and ``DNS``; the tunnel runs a :class:`~wgpy.core.device.Device` over ordinary UDP sockets
and the userspace stack (docs/netstack.md) where a TUN would be, and offers asyncio's own calls::

    async with wgpy.Tunnel.from_file("wg0.conf") as tunnel:
        reader, writer = await tunnel.open_connection("10.0.0.2", 80)
        server = await tunnel.start_server(handle, port=8080)
        any_destination = await tunnel.start_server(handle, port=None, transparent=True)
        transport, protocol = await tunnel.create_datagram_endpoint(factory, remote_addr=("10.0.0.2", 53))
        sock = await tunnel.socket_connection(("10.0.0.2", 443))

docs/library.md has runnable examples. Modules: ``tunnel_engine.py`` drives the device and the stack,
``tunnel_streams.py`` the TCP transport and server, ``tunnel_datagram.py`` the UDP transport,
``tunnel_socket.py`` the socket pair, ``wgpy/netstack/dns.py`` the resolver's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import socket
import ssl as ssl_module
import time
from dataclasses import replace
from typing import Callable

from ..config import InterfaceConfig, load, parse, to_uapi_set
from ..core.constants import DEFAULT_MTU
from ..core.crypto import PrivateKey
from ..core.device import Device
from ..core.encoding import key_to_base64
from ..netstack import dns
from ..uapi import IpcLock, UapiConnection
from .tunnel_datagram import TunnelDatagramTransport
from .tunnel_engine import Engine
from .tunnel_socket import bridge
from .tunnel_streams import ListeningSocket, TcpTransport, TunnelServer
from .udp import Udp

STREAM_LIMIT = 2 ** 16        # asyncio's default StreamReader limit
DNS_PORT = 53
DNS_TIMEOUT = 2.0             # seconds per query and server, as resolv.conf's default is 5 (ours is inside a tunnel)
DNS_ATTEMPTS = 2
UAPI_READ_SIZE = 65536

log = logging.getLogger("wgpy.tunnel")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
        return True
    except ValueError:
        return False


class _Collector(asyncio.DatagramProtocol):
    """The DNS answers arriving on one datagram endpoint."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait((data, addr))


class Tunnel:
    """A WireGuard interface in this process, with a userspace IP stack for its addresses.

    ``Tunnel(config_text=...)``, ``Tunnel(config=InterfaceConfig)`` or ``Tunnel.from_file(path)``; then
    ``async with`` it (or ``await start()`` ... ``await close()``). ``uapi_path`` serves the ``wg`` text
    protocol (wireguard.com/xplatform) on a Unix socket of that name, mode 0600, so peers can be changed
    while it runs. ``tcp_config`` (a ``wgpy.netstack.tcp.config.TcpConfig``) sets the stack's TCP buffers,
    retries and timers. ``rng`` is for tests; keys and ISNs come from ``os.urandom`` otherwise.
    """

    def __init__(self, config_text: str | None = None, *, config: InterfaceConfig | None = None,
                 uapi_path: str | None = None, tcp_config=None, rng: Callable[[int], bytes] = os.urandom) -> None:
        if (config_text is None) == (config is None):
            raise TypeError("give either config_text or config")
        self.config = parse(config_text) if config is None else config
        if self.config.private_key is None:
            raise ValueError("the configuration has no PrivateKey")
        if not self.config.addresses:
            raise ValueError("the configuration has no Address: the tunnel's stack needs its own addresses")
        self.mtu = self.config.mtu or DEFAULT_MTU
        self.uapi_path = uapi_path
        self.tcp_config = tcp_config
        self._rng = rng
        self.device: Device | None = None
        self.stack = None
        self.engine: Engine | None = None
        self._uapi_server: asyncio.AbstractServer | None = None
        self._uapi_lock = IpcLock()
        self._pumps: set[asyncio.Task] = set()
        self._dns_id = int.from_bytes(rng(2), "big")

    @classmethod
    def from_file(cls, path: str, **options) -> "Tunnel":
        """A tunnel for a wg-quick file (warns, as wg-quick does, when others can read it)."""
        return cls(config=load(path), **options)

    @classmethod
    @contextlib.asynccontextmanager
    async def pair(cls, client: str = "10.0.0.1", server: str = "10.0.0.2", *, client_lines: str = "",
                   timeout: float = 10.0):
        """Two tunnels in this process, peers of each other over 127.0.0.1, handshake done: for tests and
        examples without a network. ``client`` and ``server`` are their addresses (one, or several with
        commas: ``"10.0.0.1, fd00::1"``). The client routes every address to the server (``AllowedIPs =
        0.0.0.0/0, ::/0``), the server only the client's addresses back. ``client_lines`` are added to the
        client's ``[Interface]`` (``"DNS = 10.0.0.2"``, say)::

            async with wgpy.Tunnel.pair() as (client, server): ...
        """
        def split(addresses: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
            return [ipaddress.ip_address(text.strip()) for text in addresses.split(",")]

        def subnets(addresses) -> str:
            return ", ".join(f"{a}/{24 if a.version == 4 else 64}" for a in addresses)

        rng = os.urandom
        client_key, server_key = PrivateKey.generate(rng), PrivateKey.generate(rng)
        clients, servers = split(client), split(server)
        first = cls(f"[Interface]\nPrivateKey = {key_to_base64(server_key.private_bytes())}\n"
                    f"Address = {subnets(servers)}\n[Peer]\nPublicKey = {key_to_base64(client_key.public)}\n"
                    f"AllowedIPs = {', '.join(f'{a}/{a.max_prefixlen}' for a in clients)}\n")
        async with first:
            second = cls(f"[Interface]\nPrivateKey = {key_to_base64(client_key.private_bytes())}\n"
                         f"Address = {subnets(clients)}\n{client_lines}\n"
                         f"[Peer]\nPublicKey = {key_to_base64(server_key.public)}\nAllowedIPs = 0.0.0.0/0, ::/0\n"
                         f"Endpoint = 127.0.0.1:{first.listen_port}\nPersistentKeepalive = 25\n")
            async with second:
                # The keepalive PersistentKeepalive sends at once makes the handshake: the server learns
                # where the client is, and can answer before the client says anything.
                loop = asyncio.get_running_loop()
                deadline = loop.time() + timeout
                peer = first.device.peers[client_key.public]
                while peer.endpoint is None or peer.keypairs.current is None:
                    if loop.time() > deadline:
                        raise TimeoutError("the two tunnels did not complete a handshake")
                    await asyncio.sleep(0.005)
                yield second, first

    # ------------------------------------------------------------------------------ what it is

    @property
    def addresses(self) -> list[str]:
        """The tunnel's own addresses (``Address =``), without their prefix lengths."""
        return [str(interface.ip) for interface in self.config.addresses]

    @property
    def public_key(self) -> str:
        return key_to_base64(self.device.private_key.public) if self.device else ""

    @property
    def listen_port(self) -> int:
        """The UDP port the tunnel's WireGuard traffic uses (the one bound, when ``ListenPort`` is absent)."""
        return self.device.listen_port if self.device else 0

    # ------------------------------------------------------------------------------ start and stop

    async def start(self) -> "Tunnel":
        if self.engine is not None:
            raise RuntimeError("the tunnel is already started")
        from ..netstack.stack import Stack   # the stack loads with the first tunnel, not with wgpy

        loop = asyncio.get_running_loop()
        now = loop.time()
        self.device = Device(rng=self._rng, epoch_offset=time.time() - now, mtu=self.mtu)
        # Checksums inside the tunnel are not checked: each packet's Poly1305 tag proved it, as the kernel's
        # WireGuard marks decrypted packets CHECKSUM_UNNECESSARY (receive.c). They are still sent.
        self.stack = Stack(addresses=[str(interface) for interface in self.config.addresses], mtu=self.mtu,
                           rng=self._rng, verify_checksums=False, tcp_config=self.tcp_config,
                           epoch_offset=time.time() - now)
        self.engine = Engine(self.device, self.stack, Udp(), loop)
        try:
            resolved = {}
            for peer in self.config.peers:
                endpoint = peer.endpoint
                if endpoint is not None and endpoint.is_name:
                    infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_DGRAM)
                    resolved[endpoint.host, endpoint.port] = infos[0][4][0]
            # FwMark marks the host's packets for its routing rules: a tunnel in a process has none (and
            # SO_MARK needs CAP_NET_ADMIN), so it is left out, as the other wg-quick keys are.
            operation = to_uapi_set(replace(self.config, fwmark=None), resolve=lambda host, port: resolved[host, port])
            connection = UapiConnection(self.device, bind=self.engine.bind, lock=self._uapi_lock)
            answer = connection.feed(operation.encode(), loop.time())
            if answer != b"errno=0\n\n":
                error = connection.last_error
                raise OSError(f"the configuration was refused: {error or answer.decode().strip()}")
            if self.uapi_path is not None:
                await self._serve_uapi()
        except BaseException:
            self.engine.close()
            self.engine = None
            raise
        self.engine.flush()
        return self

    async def close(self) -> None:
        """Abort the connections (RST), close servers and endpoints, and stop."""
        if self.engine is None:
            return
        if self._uapi_server is not None:
            self._uapi_server.close()
            if os.path.exists(self.uapi_path):
                os.unlink(self.uapi_path)
            self._uapi_server = None
        for task in list(self._pumps):
            task.cancel()
        self.engine.shutdown()
        self.engine.close()
        await asyncio.sleep(0)   # the protocols hear connection_lost

    async def __aenter__(self) -> "Tunnel":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _running(self) -> Engine:
        if self.engine is None or self.engine.closed:
            raise RuntimeError("the tunnel is not running: use 'async with tunnel' or 'await tunnel.start()'")
        return self.engine

    # ------------------------------------------------------------------------------ TCP

    async def create_connection(self, protocol_factory, host: str, port: int, *,
                                local_addr: tuple | None = None) -> tuple[TcpTransport, asyncio.BaseProtocol]:
        """As ``loop.create_connection``, through the tunnel: the first of ``host``'s addresses that
        answers (a host name is resolved by the tunnel's DNS)."""
        engine = self._running()
        loop = engine.loop
        errors: list[OSError] = []
        for address in await self.resolve(host):
            try:
                self._check_route(address)
                try:
                    tcp_socket = self.stack.tcp_connect((address, port), loop.time(), local=local_addr)
                except ValueError as refused:   # no address of that family, the port taken, the stack full
                    raise OSError(errno.EADDRNOTAVAIL, str(refused)) from None
            except OSError as error:
                errors.append(error)
                continue
            transport = TcpTransport(engine, tcp_socket, loop)
            try:
                await transport.wait_connected()
            except OSError as error:
                errors.append(error)
                continue
            protocol = protocol_factory()
            transport.attach(protocol)
            return transport, protocol
        if len(errors) == 1:
            raise errors[0]
        raise OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")

    async def open_connection(self, host: str, port: int, *, limit: int = STREAM_LIMIT,
                              local_addr: tuple | None = None, ssl: ssl_module.SSLContext | bool | None = None,
                              server_hostname: str | None = None
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """As ``asyncio.open_connection``: a TCP connection through the tunnel as a reader and a writer.
        ``ssl`` (a context, or True for the default one) speaks TLS over it (``StreamWriter.start_tls``),
        checking the certificate against ``server_hostname`` or ``host``."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport, _ = await self.create_connection(lambda: protocol, host, port, local_addr=local_addr)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        if ssl:
            context = ssl_module.create_default_context() if ssl is True else ssl
            try:
                await writer.start_tls(context, server_hostname=server_hostname or host)
            except BaseException:
                transport.abort()
                raise
        return reader, writer

    async def create_server(self, protocol_factory, host: str | None = None, port: int | None = None, *,
                            transparent: bool = False, backlog: int = 128) -> TunnelServer:
        """As ``loop.create_server``, on the tunnel's addresses (``host`` one of them, or all). With
        ``transparent=True`` (and neither host nor port) it accepts connections to any address and port
        routed to us; a connection's ``sockname`` is the destination its client chose. A port already
        listened on is ``OSError`` (EADDRINUSE), as with a kernel socket."""
        engine = self._running()
        if transparent and (port is not None or host is not None):
            raise ValueError("a transparent server takes every address and port: give neither host nor port")
        if port is None and not transparent:
            raise ValueError("give a port (port=None is for transparent=True: every port)")
        try:
            listener = self.stack.tcp_listen(port=port, address=host, backlog=backlog, transparent=transparent)
        except ValueError as refused:
            raise OSError(errno.EADDRINUSE, str(refused)) from None
        if transparent:
            names = [ListeningSocket("*", None, True)]
        else:
            names = [ListeningSocket(address, port, False) for address in ([host] if host else self.addresses)]
        return TunnelServer(engine, listener, protocol_factory, engine.loop, names)

    async def start_server(self, client_connected_cb, host: str | None = None, port: int | None = None, *,
                           transparent: bool = False, limit: int = STREAM_LIMIT, backlog: int = 128,
                           ssl: ssl_module.SSLContext | None = None) -> TunnelServer:
        """As ``asyncio.start_server``: ``client_connected_cb(reader, writer)`` for each connection (a
        coroutine function is run as a task). With ``ssl`` each connection's TLS handshake comes first
        (one that fails is closed without calling back)."""
        loop = asyncio.get_running_loop()
        callback = client_connected_cb
        if ssl is not None:
            async def callback(reader, writer):
                try:
                    await writer.start_tls(ssl)
                except (OSError, ssl_module.SSLError):
                    writer.transport.abort()
                    return
                result = client_connected_cb(reader, writer)
                if asyncio.iscoroutine(result):
                    await result

        def factory() -> asyncio.StreamReaderProtocol:
            reader = asyncio.StreamReader(limit=limit, loop=loop)
            return asyncio.StreamReaderProtocol(reader, callback, loop=loop)

        return await self.create_server(factory, host, port, transparent=transparent, backlog=backlog)

    # ------------------------------------------------------------------------------ UDP

    async def create_datagram_endpoint(self, protocol_factory, local_addr: tuple | None = None,
                                       remote_addr: tuple | None = None
                                       ) -> tuple[TunnelDatagramTransport, asyncio.BaseProtocol]:
        """As ``loop.create_datagram_endpoint``, on the tunnel's stack. ``local_addr`` is (address or
        None, port or 0); without it an ephemeral port. ``remote_addr`` may be a host name."""
        engine = self._running()
        if remote_addr is not None:
            remote_addr = ((await self.resolve(remote_addr[0]))[0], remote_addr[1])
        host, port = local_addr if local_addr is not None else (None, None)
        udp_socket = self.stack.udp_bind(port=port or None, address=host or None)
        transport = TunnelDatagramTransport(engine, udp_socket, engine.loop, remote_addr)
        protocol = protocol_factory()
        transport.attach(protocol)
        return transport, protocol

    # ------------------------------------------------------------------------------ a real socket

    async def socket_connection(self, address: tuple, *, limit: int = STREAM_LIMIT) -> socket.socket:
        """A connected, blocking ``socket.socket`` (one end of a socket pair) whose bytes go through a
        tunnel connection to ``address`` (host, port): for ssl, http.client and other blocking code, run
        from another thread (``asyncio.to_thread``). Close it when done; the tunnel side follows."""
        reader, writer = await self.open_connection(address[0], address[1], limit=limit)
        sock, task = await bridge(reader, writer)
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)
        return sock

    # ------------------------------------------------------------------------------ names

    async def resolve(self, host: str) -> list[str]:
        """``host``'s addresses: itself if it is an address, else asked of the configuration's ``DNS =``
        servers through the tunnel (A, then AAAA when the tunnel has an IPv6 address). Raises
        ``socket.gaierror`` as ``getaddrinfo`` would."""
        if _is_address(host):
            return [host]
        if not self.config.dns:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: not an address, and the configuration has no DNS =")
        servers = [str(server) for server in self.config.dns if self.device.allowed_ips.lookup(server.packed)]
        if not servers:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: no peer's AllowedIPs hold a DNS = server")
        kinds = [dns.TYPE_A] if any(a.version == 4 for a in self.config.addresses) else []
        if any(a.version == 6 for a in self.config.addresses):
            kinds.append(dns.TYPE_AAAA)
        names = [host] if "." in host.rstrip(".") or not self.config.dns_search else \
            [f"{host}.{domain}" for domain in self.config.dns_search] + [host]
        transport, collector = await self.create_datagram_endpoint(_Collector)
        try:
            failure = None
            for name in names:
                found: list[str] = []
                for kind in kinds:
                    answer = await self._ask(transport, collector, servers, name, kind)
                    if answer is None:
                        failure = failure or "no DNS server answered"
                        continue
                    if answer.refused is not None:
                        failure = answer.refused.value
                        continue
                    found += [str(ipaddress.ip_address(packed)) for packed in answer.addresses]
                if found:
                    return found
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: {failure or 'no address'}")
        finally:
            transport.close()

    async def _ask(self, transport, collector: _Collector, servers: list[str], name: str,
                   kind: int) -> dns.Answer | None:
        self._dns_id = (self._dns_id + 1) & 0xFFFF
        ident = self._dns_id
        try:
            query = dns.build_query(name, kind, ident)
        except ValueError as error:
            raise socket.gaierror(socket.EAI_NONAME, str(error)) from None
        loop = asyncio.get_running_loop()
        for _ in range(DNS_ATTEMPTS):
            for server in servers:
                transport.sendto(query, (server, DNS_PORT))
                deadline = loop.time() + DNS_TIMEOUT
                while (left := deadline - loop.time()) > 0:
                    try:
                        data, source = await asyncio.wait_for(collector.queue.get(), left)
                    except asyncio.TimeoutError:
                        break
                    if source != (server, DNS_PORT):
                        continue   # only the server asked may answer (RFC 5452 9.1)
                    answer = dns.parse_answer(data, ident, query, kind)
                    if answer.refused is not dns.DnsRefused.NOT_OURS:
                        return answer
        return None

    def _check_route(self, address: str) -> None:
        """asyncio fails at once where no route leads (ENETUNREACH); so does the tunnel where no peer's
        AllowedIPs hold the address (the device would drop every packet)."""
        packed = ipaddress.ip_address(address.partition("%")[0]).packed
        if self.device.allowed_ips.lookup(packed) is None:
            raise OSError(errno.ENETUNREACH, f"Network is unreachable: no peer's AllowedIPs hold {address}")

    # ------------------------------------------------------------------------------ the UAPI

    async def _serve_uapi(self) -> None:
        path = self.uapi_path
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)   # left over from a process that died
            else:
                raise OSError(errno.EADDRINUSE, f"{path} is in use by another process")
            finally:
                probe.close()
        old_umask = os.umask(0o077)   # owner-only from the first moment: the UAPI hands out private keys
        try:
            self._uapi_server = await asyncio.start_unix_server(self._uapi_client, path)
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)

    async def _uapi_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        engine = self.engine
        connection = UapiConnection(self.device, bind=engine.bind, interface_index=socket.if_nametoindex,
                                    lock=self._uapi_lock)
        try:
            while not connection.closed:
                data = await reader.read(UAPI_READ_SIZE)
                now = engine.loop.time()
                answer = connection.feed(data, now) if data else connection.eof(now)
                if connection.last_error is not None:
                    log.error("UAPI: %s", connection.last_error)
                    connection.last_error = None
                engine.flush()   # a set may have staged packets, started keepalives, changed peers
                if answer:
                    writer.write(answer)
                    await writer.drain()
                if not data:
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
