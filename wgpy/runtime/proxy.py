"""``wgpy proxy``'s servers: SOCKS5 (CONNECT, UDP ASSOCIATE) and the HTTP proxy, over a ``wgpy.Tunnel``.

The protocols are parsed by ``wgpy/proxy`` (sans-IO); this module reads the sockets, asks the tunnel for
names (``tunnel.resolve``: the configuration's ``DNS =``, through the tunnel, so no name leaks to the host)
and connections, and relays bytes. Anything with the Tunnel's calls serves: ``open_connection``,
``create_datagram_endpoint``, ``resolve`` (the unit tests use a stand-in over loopback).

Each client is on its own: a malformed request gets its reply code (SOCKS, RFC 1928 6) or status (HTTP
400/502/504) and a close; a client that vanishes ends its own relay and nothing else. Every refusal is
counted by name in ``Proxy.counts`` (``/metrics`` shows them).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import hmac
import logging
import socket
from collections import Counter
from dataclasses import dataclass, field

from ..proxy import http_connect, socks5
from ..proxy.http_connect import HttpRefusal, ProxyRequest
from ..proxy.socks5 import NEED_MORE, Command, Method, Refusal, Reply

log = logging.getLogger("wgpy.proxy")

READ_SIZE = 65536
HANDSHAKE_TIMEOUT = 30.0     # seconds for a client to finish its greeting, credentials and request
CONNECT_TIMEOUT = 15.0       # seconds for a name and a connection through the tunnel
MAX_UDP_PEERS = 64           # destinations of one UDP association, each a datagram endpoint in the tunnel
MAX_CLIENTS = 1000           # clients served at once, all listeners together: each holds two descriptors
# ...and, apart, connections from the tunnel to --reverse ports: the peer cannot take this host's places.


@dataclass(frozen=True)
class Credentials:
    """The one username and password ``--socks5-user`` configures (RFC 1929); the HTTP proxy asks for
    the same ones (``Proxy-Authorization: Basic``, RFC 9110 11.7.1 and RFC 7617)."""

    username: bytes
    password: bytes = field(repr=False)

    def match(self, username: bytes, password: bytes) -> bool:
        # Both compared in constant time, and both always compared, so timing says nothing of which failed.
        user_ok = hmac.compare_digest(username, self.username)
        return hmac.compare_digest(password, self.password) & user_ok


class ClientGone(Exception):
    """The client closed or reset its connection before its request was whole."""


class UpstreamError(Exception):
    """The tunnel could not reach what the client asked for: the SOCKS reply code and HTTP status to
    answer with, and the sentence for the log and the HTTP body."""

    def __init__(self, reply: Reply, status: int, reason: str, sentence: str) -> None:
        super().__init__(sentence)
        self.reply, self.status, self.reason = reply, status, reason


def _upstream_error(error: BaseException, host: str, port: int) -> UpstreamError:
    where = f"{host}:{port}"
    if isinstance(error, socket.gaierror):
        return UpstreamError(Reply.HOST_UNREACHABLE, 502, "name_not_resolved", f"cannot resolve {host}: {error}")
    if isinstance(error, ConnectionRefusedError):
        return UpstreamError(Reply.CONNECTION_REFUSED, 502, "connection_refused", f"{where} refused the connection")
    if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
        return UpstreamError(Reply.HOST_UNREACHABLE, 504, "connect_timeout", f"no answer from {where} in {CONNECT_TIMEOUT:.0f} s")
    if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return UpstreamError(Reply.NETWORK_UNREACHABLE, 502, "network_unreachable", f"{where}: {error.strerror or error}")
    if isinstance(error, OSError) and error.errno == errno.EHOSTUNREACH:
        return UpstreamError(Reply.HOST_UNREACHABLE, 502, "host_unreachable", f"{where}: {error.strerror or error}")
    if isinstance(error, ValueError):   # the stack's "not routable by us"
        return UpstreamError(Reply.NETWORK_UNREACHABLE, 502, "network_unreachable", f"{where}: {error}")
    return UpstreamError(Reply.GENERAL_FAILURE, 502, "connect_failed", f"{where}: {error}")


async def relay(a_reader, a_writer, b_reader, b_writer) -> None:
    """Copy both ways until both sides have finished; a half-close (EOF) is passed on as one (FIN), a
    reset or an error on either side closes both. ``drain`` makes a slow reader slow down the writer
    instead of filling a buffer."""

    async def pipe(reader, writer) -> None:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()

    pipes = [asyncio.ensure_future(pipe(a_reader, b_writer)), asyncio.ensure_future(pipe(b_reader, a_writer))]
    try:
        pending = set(pipes)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(task.exception() is not None for task in done):
                break   # one side broke: the other cannot finish either
    finally:
        for task in pipes:
            task.cancel()
        for writer in (a_writer, b_writer):
            writer.close()
        await asyncio.gather(*pipes, return_exceptions=True)


class Proxy:
    """The SOCKS5 and HTTP handlers over one tunnel. ``credentials`` (or None) guards both."""

    def __init__(self, tunnel, credentials: Credentials | None = None) -> None:
        self.tunnel = tunnel
        self.credentials = credentials
        self.counts: Counter[str] = Counter()     # "refused:REASON", "socks5_connect", ... (for /metrics)
        self.clients = 0                           # served now, from this host
        self.tunnel_clients = 0                    # served now, from the tunnel (--reverse)
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------------------ upstream

    async def connect(self, host: str, port: int):
        """A connection through the tunnel to the first of ``host``'s addresses that answers."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                addresses = await self.tunnel.resolve(host)
                last: BaseException | None = None
                for address in addresses:
                    try:
                        return await self.tunnel.open_connection(address, port)
                    except (OSError, ValueError) as error:
                        last = error
                raise last or socket.gaierror(socket.EAI_NONAME, "no address")
        except (OSError, ValueError, TimeoutError) as error:
            raise _upstream_error(error, host, port) from None
        except Exception as error:
            # A bug below us (the tunnel, the stack): this client gets a failure, the others go on.
            log.error("connecting to %s:%s: %r", host, port, error, exc_info=True)
            raise UpstreamError(Reply.GENERAL_FAILURE, 502, "internal_error", f"internal error: {error!r}") from None

    def count_refusal(self, reason: str) -> None:
        self.counts[f"refused:{reason}"] += 1

    # ------------------------------------------------------------------------------ reading a request

    @staticmethod
    async def _read(reader, buffer: bytearray, parse):
        """Feed ``parse`` until it returns a message or a refusal; the bytes it used leave ``buffer``."""
        while True:
            message, used = parse(bytes(buffer))
            if message is not NEED_MORE and message is not http_connect.NEED_MORE:
                del buffer[:used]
                return message
            try:
                data = await reader.read(READ_SIZE)
            except ConnectionError:
                data = b""
            if not data:
                raise ClientGone()
            buffer += data

    # ------------------------------------------------------------------------------ SOCKS5

    def admit(self, writer, refusal: bytes = b"", from_tunnel: bool = False) -> bool:
        """Room for one more client? If not, it gets ``refusal`` and a close, and is counted. Clients
        from the tunnel have their own MAX_CLIENTS (``release`` with the same ``from_tunnel``)."""
        if (self.tunnel_clients if from_tunnel else self.clients) >= MAX_CLIENTS:
            self.count_refusal("too_many_tunnel_clients" if from_tunnel else "too_many_clients")
            writer.write(refusal)
            writer.close()
            return False
        if from_tunnel:
            self.tunnel_clients += 1
        else:
            self.clients += 1
        return True

    def release(self, from_tunnel: bool = False) -> None:
        """Call me when a client ``admit`` let in is done."""
        if from_tunnel:
            self.tunnel_clients -= 1
        else:
            self.clients -= 1

    async def handle_socks5(self, reader, writer) -> None:
        """One SOCKS5 client (RFC 1928 3, 4, 6; RFC 1929)."""
        # Full: the greeting is answered "no acceptable methods" before it is read (RFC 1928 3).
        if not self.admit(writer, socks5.method_selection(Method.NO_ACCEPTABLE_METHODS)):
            return
        try:
            buffer = bytearray()
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                request = await self._socks5_request(reader, writer, buffer)
            if request is None:
                return
            self.counts[f"socks5_{request.command.name.lower()}"] += 1
            if request.command is Command.CONNECT:
                await self._socks5_connect(reader, writer, request, bytes(buffer))
            else:
                await self._socks5_udp(reader, writer, request)
        except ClientGone:
            self.count_refusal("client_gone")
        except (TimeoutError, asyncio.TimeoutError):
            self.count_refusal("handshake_timeout")
        except ConnectionError:
            self.count_refusal("client_gone")
        except Exception:
            self.count_refusal("internal_error")
            log.error("SOCKS5 client: a bug, this client closed", exc_info=True)
        finally:
            self.release()
            writer.close()

    async def _socks5_request(self, reader, writer, buffer: bytearray) -> socks5.Request | None:
        greeting = await self._read(reader, buffer, socks5.parse_greeting)
        if isinstance(greeting, Refusal):
            self.count_refusal(greeting.name.lower())
            writer.write(socks5.method_selection(Method.NO_ACCEPTABLE_METHODS))
            return None
        method = socks5.choose_method(greeting, self.credentials is not None)
        writer.write(socks5.method_selection(method))
        if method is Method.NO_ACCEPTABLE_METHODS:
            self.count_refusal(Refusal.NO_ACCEPTABLE_METHOD.name.lower())
            return None
        if method is Method.USERNAME_PASSWORD:
            offered = await self._read(reader, buffer, socks5.parse_credentials)
            ok = not isinstance(offered, Refusal) and self.credentials.match(offered.username, offered.password)
            writer.write(socks5.auth_status(ok))
            if not ok:
                self.count_refusal((offered if isinstance(offered, Refusal) else Refusal.AUTH_FAILED).name.lower())
                return None
        request = await self._read(reader, buffer, socks5.parse_request)
        if isinstance(request, Refusal):
            self.count_refusal(request.name.lower())
            writer.write(socks5.reply(request.reply))
            return None
        return request

    async def _socks5_connect(self, reader, writer, request: socks5.Request, early: bytes) -> None:
        try:
            up_reader, up_writer = await self.connect(request.host, request.port)
        except UpstreamError as error:
            self.count_refusal(error.reason)
            log.info("SOCKS5 CONNECT %s:%s: %s", request.host, request.port, error)
            writer.write(socks5.reply(error.reply))
            return
        bound = up_writer.get_extra_info("sockname") or ("0.0.0.0", 0)
        writer.write(socks5.reply(Reply.SUCCEEDED, bound[0], bound[1]))
        if early:
            up_writer.write(early)
        await relay(reader, writer, up_reader, up_writer)

    async def _socks5_udp(self, reader, writer, request: socks5.Request) -> None:
        """RFC 1928 7: a UDP relay on the control connection's address, for as long as it stays open."""
        loop = asyncio.get_running_loop()
        here = writer.get_extra_info("sockname")
        client_host = writer.get_extra_info("peername")[0]
        association = UdpAssociation(self, client_host, request)
        local = None
        try:
            local, _ = await loop.create_datagram_endpoint(lambda: association, local_addr=(here[0], 0))
            tunnel_side, _ = await self.tunnel.create_datagram_endpoint(association.from_tunnel_protocol)
        except (OSError, ValueError) as error:
            self.count_refusal("udp_bind_failed")
            log.info("SOCKS5 UDP ASSOCIATE: %s", error)
            writer.write(socks5.reply(Reply.GENERAL_FAILURE))
            if local is not None:
                local.close()
            return
        association.tunnel_side = tunnel_side
        bound = local.get_extra_info("sockname")
        writer.write(socks5.reply(Reply.SUCCEEDED, bound[0], bound[1]))
        try:
            while await reader.read(READ_SIZE):   # RFC 1928 7: the association ends with the TCP connection
                pass
        except ConnectionError:
            pass
        finally:
            association.close()
            local.close()
            tunnel_side.close()

    # ------------------------------------------------------------------------------ HTTP

    async def handle_http(self, reader, writer) -> None:
        """One HTTP proxy client: CONNECT (RFC 9110 9.3.6) or one request in absolute-form, forwarded."""
        if not self.admit(writer, http_connect.response(503, "the proxy serves as many clients as it can")):
            return
        try:
            buffer = bytearray()
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                request = await self._read(reader, buffer, http_connect.parse_head)
            if isinstance(request, HttpRefusal):
                self.count_refusal(request.name.lower())
                writer.write(http_connect.response(request.status, request.sentence))
                return
            if self.credentials is not None and not self._http_authorized(request):
                self.count_refusal("auth_failed")
                writer.write(http_connect.response(407, "proxy authentication required"))
                return
            self.counts["http_connect" if request.is_connect else "http_forward"] += 1
            try:
                up_reader, up_writer = await self.connect(request.host, request.port)
            except UpstreamError as error:
                self.count_refusal(error.reason)
                log.info("HTTP %s %s:%s: %s", request.method, request.host, request.port, error)
                writer.write(http_connect.response(error.status, str(error)))
                return
            if request.is_connect:
                writer.write(http_connect.response(200))
                if buffer:
                    up_writer.write(bytes(buffer))
                await relay(reader, writer, up_reader, up_writer)
            else:
                await self._forward_one_request(request, buffer, reader, writer, up_reader, up_writer)
        except ClientGone:
            self.count_refusal("client_gone")
        except (TimeoutError, asyncio.TimeoutError):
            self.count_refusal("handshake_timeout")
            writer.write(http_connect.response(408, f"the request head did not arrive in {HANDSHAKE_TIMEOUT:.0f} s"))
        except ConnectionError:
            self.count_refusal("client_gone")
        except Exception:
            self.count_refusal("internal_error")
            log.error("HTTP client: a bug, this client closed", exc_info=True)
        finally:
            self.release()
            writer.close()

    async def _forward_one_request(self, request: ProxyRequest, buffer: bytearray, reader, writer,
                                   up_reader, up_writer) -> None:
        """One request, its body (Content-Length bytes) and the whole response, then both connections
        close: what the client sends after its body is not forwarded, so a second request on the same
        connection cannot reach the first one's origin (the origin was asked to close after answering)."""
        try:
            up_writer.write(http_connect.forwarded_head(request))
            remaining = request.body_length
            body = bytes(buffer[:remaining])
            up_writer.write(body)
            remaining -= len(body)
            while remaining > 0:
                data = await reader.read(min(READ_SIZE, remaining))
                if not data:
                    raise ClientGone()
                up_writer.write(data)
                await up_writer.drain()
                remaining -= len(data)
            while data := await up_reader.read(READ_SIZE):
                writer.write(data)
                await writer.drain()
        finally:
            up_writer.close()

    def _http_authorized(self, request: ProxyRequest) -> bool:
        for name, value in request.fields:
            if name.lower() == b"proxy-authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"basic":
                    return False
                try:
                    decoded = base64.b64decode(token.strip(), validate=True)
                except (binascii.Error, ValueError):
                    return False
                username, colon, password = decoded.partition(b":")
                return bool(colon) and self.credentials.match(username, password)
        return False

    # ------------------------------------------------------------------------------ serving

    def spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class UdpAssociation(asyncio.DatagramProtocol):
    """One UDP ASSOCIATE (RFC 1928 7): datagrams from the client (only from the control connection's host;
    the first port it sends from is then the only one) go into the tunnel without their SOCKS header, and
    answers come back with one naming their source."""

    def __init__(self, proxy: Proxy, client_host: str, request: socks5.Request) -> None:
        self.proxy = proxy
        self.client_host = client_host
        self.client: tuple | None = None
        if request.port and request.host not in ("0.0.0.0", "::"):
            self.client = (request.host, request.port)    # RFC 1928 7: the client said where it sends from
        self.local = None
        self.tunnel_side = None
        self.destinations: set[tuple[str, int]] = set()
        self.closed = False

    def connection_made(self, transport) -> None:
        self.local = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if addr[0] != self.client_host or (self.client is not None and tuple(addr[:2]) != tuple(self.client[:2])):
            self.proxy.count_refusal("udp_foreign_source")
            return
        self.client = tuple(addr[:2])
        datagram = socks5.parse_udp(data)
        if not isinstance(datagram, socks5.UdpDatagram):
            self.proxy.count_refusal("udp_malformed")
            return
        if datagram.fragment:
            self.proxy.count_refusal("udp_fragment")   # RFC 1928 7: fragmentation is optional; we drop them
            return
        self.proxy.spawn(self._send(datagram))

    async def _send(self, datagram: socks5.UdpDatagram) -> None:
        try:
            addresses = await self.proxy.tunnel.resolve(datagram.host)
        except OSError:
            self.proxy.count_refusal("name_not_resolved")
            return
        destination = (addresses[0], datagram.port)
        if destination not in self.destinations and len(self.destinations) >= MAX_UDP_PEERS:
            self.proxy.count_refusal("udp_too_many_destinations")
            return
        self.destinations.add(destination)
        if self.tunnel_side is not None and not self.closed:
            try:
                self.tunnel_side.sendto(datagram.data, destination)
            except (OSError, ValueError):
                self.proxy.count_refusal("network_unreachable")

    def from_tunnel_protocol(self) -> asyncio.DatagramProtocol:
        association = self

        class FromTunnel(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr) -> None:
                association.answer(data, addr)

        return FromTunnel()

    def answer(self, data: bytes, addr) -> None:
        """A datagram from the tunnel: to the client, headed by its source (RFC 1928 7)."""
        source = (addr[0], addr[1])
        if self.closed or self.client is None or source not in self.destinations:
            self.proxy.count_refusal("udp_unasked_source")
            return
        self.local.sendto(socks5.udp_header(*source) + data, self.client)

    def close(self) -> None:
        self.closed = True
