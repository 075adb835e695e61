"""wgpy.Tunnel end to end in one process: two tunnels, each with its own Device and stack, over loopback UDP.

    client tunnel 10.0.0.1  ---- 127.0.0.1 UDP, WireGuard ----  server tunnel 10.0.0.2
    (AllowedIPs 0.0.0.0/0: every address goes to the server)    (AllowedIPs 10.0.0.1/32)

No root, no TUN, no network namespace: asyncio's loop drives both.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import http.client
import os
import socket
import ssl
import struct

import pytest

import wgpy
from wgpy.netstack import dns
from wgpy.netstack.tcp.config import TcpConfig
from wgpy.runtime.uapi_socket import request

LIMIT = 60.0   # seconds any one test may take


def run(coroutine_function):
    """Run the test's coroutine with both tunnels (client, server), bounded in time."""
    async def main():
        async with wgpy.Tunnel.pair() as (client, server):
            await asyncio.wait_for(coroutine_function(client, server), LIMIT)
            assert not client.engine.bugs and not server.engine.bugs, (client.engine.bugs, server.engine.bugs)

    asyncio.run(main())


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_open_connection_and_start_server_both_ways():
    async def test(client, server):
        async with await server.start_server(echo, port=7) as listening:
            assert [s.getsockname() for s in listening.sockets] == [("10.0.0.2", 7)]
            reader, writer = await client.open_connection("10.0.0.2", 7)
            assert writer.get_extra_info("peername") == ("10.0.0.2", 7)
            assert writer.get_extra_info("sockname")[0] == "10.0.0.1"
            writer.write(b"hello")
            assert await reader.readexactly(5) == b"hello"
            writer.close()
            await writer.wait_closed()
        # The other way: the server's side connects to a server on the client's side.
        await client.start_server(echo, port=8)
        reader, writer = await server.open_connection("10.0.0.1", 8)
        writer.write(b"back")
        assert await reader.readexactly(4) == b"back"
        writer.close()
        await writer.wait_closed()

    run(test)


def test_the_engine_prepares_handshakes_while_idle():
    """The asyncio engine, as the daemon's loop, prepares each peer's next handshake messages between
    I/O (core/prepare.py; tests/test_prepare.py shows them used once each and prepared again)."""
    async def test(client, server):
        devices = (client.engine.device, server.engine.device)
        for _ in range(500):
            if not any(device.to_prepare for device in devices):
                break
            await asyncio.sleep(0.01)
        peers = [peer for device in devices for peer in device.peers.values()]
        assert len(peers) == 2 and not any(device.to_prepare for device in devices)
        assert all(peer.prepared_initiation is not None and peer.prepared_response is not None for peer in peers)

    run(test)


def test_ipv6_inside_the_tunnel_streams_and_datagrams():
    async def main():
        async with wgpy.Tunnel.pair("10.0.0.1, fd00::1", "10.0.0.2, fd00::2") as (client, server):
            listening = await server.start_server(echo, port=7)
            assert {s.getsockname() for s in listening.sockets} == {("10.0.0.2", 7), ("fd00::2", 7)}
            reader, writer = await client.open_connection("fd00::2", 7)
            assert writer.get_extra_info("sockname")[0] == "fd00::1"
            writer.write(b"six")
            assert await reader.readexactly(3) == b"six"
            writer.close()
            server_end, at_server = await server.create_datagram_endpoint(Recorder, local_addr=("fd00::2", 53))
            client_end, _ = await client.create_datagram_endpoint(Recorder, remote_addr=("fd00::2", 53))
            client_end.sendto(b"v6")
            data, source = await asyncio.wait_for(at_server.queue.get(), 5)
            assert data == b"v6" and source[0] == "fd00::1"

    asyncio.run(asyncio.wait_for(main(), LIMIT))


def test_fifty_connections_at_once_and_nothing_left_behind():
    async def test(client, server):
        await server.start_server(echo, port=7)
        baseline = client.engine.registered, server.engine.registered

        async def one(n: int) -> bytes:
            reader, writer = await client.open_connection("10.0.0.2", 7)
            message = b"connection %d " % n + os.urandom(5000)
            writer.write(message)
            writer.write_eof()
            back = await reader.read()
            writer.close()
            await writer.wait_closed()
            return back == message

        assert await asyncio.gather(*(one(n) for n in range(50))) == [True] * 50
        for _ in range(100):   # the server's side closes once it has echoed our FIN
            if (client.engine.registered, server.engine.registered) == baseline:
                break
            await asyncio.sleep(0.01)
        assert (client.engine.registered, server.engine.registered) == baseline == (0, 1)

    run(test)


def test_a_megabyte_each_way_with_a_slow_reader_matches_its_sha256():
    """The reader sleeps before reading: the stack's window closes and drain() waits, nothing is lost."""
    data = os.urandom(1 << 20)

    async def test(client, server):
        got = asyncio.get_running_loop().create_future()

        async def slow(reader, writer):
            await asyncio.sleep(0.3)
            received = bytearray()
            while chunk := await reader.read(7000):
                received += chunk
            writer.write(hashlib.sha256(received).digest() + data)
            await writer.drain()
            writer.close()
            got.set_result(len(received))

        await server.start_server(slow, port=9000)
        reader, writer = await client.open_connection("10.0.0.2", 9000)
        writer.write(data)
        assert writer.transport.get_write_buffer_size() > 0      # more than the stack takes at once
        await writer.drain()
        writer.write_eof()
        digest = await reader.readexactly(32)
        back = await reader.read()
        assert await got == len(data)
        assert digest == hashlib.sha256(data).digest()
        assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
        writer.close()
        await writer.wait_closed()

    run(test)


def test_junk_at_the_udp_port_during_a_transfer_is_dropped_by_name():
    """Random datagrams of every size and first byte at the server's port while a connection carries
    a megabyte: the device counts them as drops, the transfer is intact, the engine has no bug."""
    data = os.urandom(1 << 20)

    async def test(client, server):
        await server.start_server(echo, port=7)
        reader, writer = await client.open_connection("10.0.0.2", 7)
        junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        before = sum(server.device.drops.values())

        async def spray():
            for n in range(3000):
                junk.sendto(bytes([n % 6]) + os.urandom(n % 200), ("127.0.0.1", server.listen_port))
                if n % 100 == 0:
                    await asyncio.sleep(0)

        async def transfer():
            writer.write(data)
            await writer.drain()
            writer.write_eof()

        try:
            results = await asyncio.gather(reader.read(), transfer(), spray())
        finally:
            junk.close()
        assert results[0] == data
        assert sum(server.device.drops.values()) - before >= 2000   # some may be lost in the socket buffer

    run(test)


def test_half_close_lets_the_other_side_answer_after_our_fin():
    async def test(client, server):
        async def answer_after_eof(reader, writer):
            request_body = await reader.read()          # until our FIN
            writer.write(b"got %d bytes" % len(request_body))
            await writer.drain()
            writer.close()

        await server.start_server(answer_after_eof, port=80)
        reader, writer = await client.open_connection("10.0.0.2", 80)
        writer.write(b"x" * 1000)
        writer.write_eof()
        assert await reader.read() == b"got 1000 bytes"
        assert reader.at_eof()
        writer.close()
        await writer.wait_closed()

    run(test)


def test_errors_are_asyncios():
    async def test(client, server):
        with pytest.raises(ConnectionRefusedError):
            await client.open_connection("10.0.0.2", 9)          # no listener: RST
        with pytest.raises(OSError) as unreachable:
            await server.open_connection("10.0.0.99", 80)        # no peer's AllowedIPs hold it
        assert unreachable.value.errno == 101
        with pytest.raises(socket.gaierror):
            await client.open_connection("no-dns-configured.example", 80)

        # A reset in the middle of a connection reaches the reader.
        async def reset(reader, writer):
            await reader.readexactly(1)
            writer.transport.abort()

        await server.start_server(reset, port=81)
        reader, writer = await client.open_connection("10.0.0.2", 81)
        writer.write(b"!")
        with pytest.raises(ConnectionResetError):
            while await reader.read(100):
                pass

    run(test)


def test_a_peer_that_never_answers_is_a_timeout_error():
    """The server's tunnel is gone: the SYN and its retransmissions (one, with this TcpConfig) go
    unanswered, and the connection fails as asyncio's would, with TimeoutError."""
    async def main():
        async with wgpy.Tunnel.pair() as (client, server):
            await server.close()
            quick = wgpy.Tunnel(config=client.config, tcp_config=TcpConfig(initial_rto=0.3, max_syn_retransmissions=1))
            async with quick:
                loop = asyncio.get_running_loop()
                began = loop.time()
                with pytest.raises(TimeoutError):
                    await quick.open_connection("10.0.0.2", 80)
                assert 0.8 < loop.time() - began < 5      # 0.3 s, then 0.6 s backed off

    asyncio.run(asyncio.wait_for(main(), LIMIT))


def test_a_closed_server_refuses_new_connections():
    async def test(client, server):
        listening = await server.start_server(echo, port=7)
        reader, writer = await client.open_connection("10.0.0.2", 7)
        writer.write(b"!")
        assert await reader.readexactly(1) == b"!"   # accepted (one not yet accepted is reset, as in Linux)
        listening.close()
        await listening.wait_closed()
        assert not listening.is_serving() and listening.sockets == ()
        with pytest.raises(ConnectionRefusedError):
            await client.open_connection("10.0.0.2", 7)
        writer.write(b"still here")                               # the connection made before goes on
        assert await reader.readexactly(10) == b"still here"
        writer.close()

    run(test)


def test_transparent_server_accepts_any_destination_and_tells_it():
    async def test(client, server):
        async def where(reader, writer):
            host, port = writer.get_extra_info("sockname")
            writer.write(f"{host} {port}".encode())
            writer.close()

        await server.start_server(where, port=None, transparent=True)
        for destination in (("198.51.100.7", 443), ("203.0.113.9", 8080), ("10.0.0.2", 22)):
            reader, writer = await client.open_connection(*destination)
            assert await reader.read() == f"{destination[0]} {destination[1]}".encode()
            writer.close()

    run(test)


class Recorder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.queue.put_nowait((data, addr))


def test_datagram_endpoints_both_ways():
    async def test(client, server):
        server_end, at_server = await server.create_datagram_endpoint(Recorder, local_addr=("10.0.0.2", 5000))
        client_end, at_client = await client.create_datagram_endpoint(Recorder, remote_addr=("10.0.0.2", 5000))
        assert server_end.get_extra_info("sockname") == ("10.0.0.2", 5000)
        client_end.sendto(b"one")
        data, source = await asyncio.wait_for(at_server.queue.get(), 5)
        assert data == b"one" and source[0] == "10.0.0.1"
        assert source[1] == client_end.get_extra_info("sockname")[1]
        server_end.sendto(b"two", source)
        assert await asyncio.wait_for(at_client.queue.get(), 5) == (b"two", ("10.0.0.2", 5000))
        with pytest.raises(ValueError):
            client_end.sendto(b"elsewhere", ("10.0.0.2", 5001))    # a connected endpoint
        client_end.close()
        server_end.close()

    run(test)


def test_socket_connection_serves_http_client_in_a_thread():
    body = os.urandom(200_000)

    async def test(client, server):
        async def serve_file(reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"GET /file HTTP/1.1\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            await writer.drain()
            writer.close()

        await server.start_server(serve_file, port=80)
        sock = await client.socket_connection(("10.0.0.2", 80))

        def get():
            connection = http.client.HTTPConnection("10.0.0.2")
            connection.sock = sock
            connection.request("GET", "/file")
            response = connection.getresponse()
            return response.status, response.read()

        with sock:
            status, got = await asyncio.to_thread(get)
        assert status == 200 and hashlib.sha256(got).digest() == hashlib.sha256(body).digest()

    run(test)


def certificate(tmp_path, name: str = "web.wg") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for ``name``: the server's context and a client's that trusts it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return server, ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))


def test_tls_on_both_paths_asyncios_start_tls_and_ssl_over_socket_connection(tmp_path):
    server_context, client_context = certificate(tmp_path)

    async def test(client, server):
        async def hello(reader, writer):
            line = await reader.readline()
            writer.write(b"over TLS: " + line)
            await writer.drain()
            writer.close()

        await server.start_server(hello, port=443, ssl=server_context)
        reader, writer = await client.open_connection("10.0.0.2", 443, ssl=client_context, server_hostname="web.wg")
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        writer.write(b"asyncio\n")
        assert await reader.read() == b"over TLS: asyncio\n"
        writer.close()

        sock = await client.socket_connection(("10.0.0.2", 443))

        def blocking():
            with client_context.wrap_socket(sock, server_hostname="web.wg") as tls:
                tls.sendall(b"ssl module\n")
                data = b""
                while chunk := tls.recv(100):
                    data += chunk
                return data

        assert await asyncio.to_thread(blocking) == b"over TLS: ssl module\n"

        with pytest.raises(ssl.SSLCertVerificationError):   # the name is checked
            await client.open_connection("10.0.0.2", 443, ssl=client_context, server_hostname="other.wg")

    run(test)


def test_names_resolve_through_the_tunnels_dns():
    """A DNS server on the server tunnel (10.0.0.2:53) answers; the client's ``DNS = 10.0.0.2`` asks it."""
    async def main():
        async with wgpy.Tunnel.pair(client_lines="DNS = 10.0.0.2") as (client, server):
            class Server(asyncio.DatagramProtocol):
                def connection_made(self, transport):
                    self.transport = transport

                def datagram_received(self, data, addr):
                    ident, _, _, _, _, _ = struct.unpack_from("!HHHHHH", data)
                    question = data[12:]
                    name_end = question.index(b"\0") + 1
                    name = question[:name_end]
                    kind = struct.unpack_from("!H", question, name_end)[0]
                    records = []
                    if name == dns.encode_name("web.wg") and kind == dns.TYPE_A:
                        records = [struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + bytes([10, 0, 0, 2])]
                    rcode = 0 if records or name == dns.encode_name("web.wg") else 3
                    header = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(records), 0, 0)
                    self.transport.sendto(header + question[:name_end + 4] + b"".join(records), addr)

            await server.create_datagram_endpoint(Server, local_addr=("10.0.0.2", 53))
            await server.start_server(echo, port=7)
            assert await client.resolve("web.wg") == ["10.0.0.2"]
            reader, writer = await client.open_connection("web.wg", 7)
            writer.write(b"named")
            assert await reader.readexactly(5) == b"named"
            writer.close()
            with pytest.raises(socket.gaierror):
                await client.resolve("nowhere.wg")

    asyncio.run(asyncio.wait_for(main(), LIMIT))


def test_uapi_socket_is_owner_only_and_changes_peers_at_run_time(tmp_path):
    async def main():
        async with wgpy.Tunnel.pair() as (client, server):
            path = str(tmp_path / "tnl.sock")
            async with wgpy.Tunnel(config=server.config, uapi_path=path) as other:
                assert os.stat(path).st_mode & 0o777 == 0o600
                get = await asyncio.to_thread(request, "tnl", "get=1\n\n", directory=str(tmp_path))
                assert f"listen_port={other.listen_port}\n" in get and get.endswith("errno=0\n\n")
                assert get.count("public_key=") == 1
                public = get.split("public_key=")[1].split("\n")[0]
                answer = await asyncio.to_thread(request, "tnl", f"set=1\npublic_key={public}\nremove=true\n\n",
                                                 directory=str(tmp_path))
                assert answer == "errno=0\n\n"
                assert other.device.peers == {}
                with pytest.raises(OSError):
                    await other.open_connection("10.0.0.1", 80)     # no peer routes it any more
            assert not os.path.exists(path)

    asyncio.run(asyncio.wait_for(main(), LIMIT))


def test_the_hosts_keys_are_read_and_left_alone(tmp_path):
    """FwMark, Table and the hooks concern the host's routing: a tunnel in a process ignores them (SO_MARK
    would need CAP_NET_ADMIN), and runs no command."""
    marker = tmp_path / "hook-ran"
    key = base64.b64encode(wgpy.PrivateKey.generate(os.urandom).private_bytes()).decode()
    text = (f"[Interface]\nPrivateKey = {key}\nAddress = 10.9.0.1/24\nFwMark = 0x1234\nTable = off\n"
            f"PostUp = touch {marker}\n")

    async def main():
        async with wgpy.Tunnel(text) as tunnel:
            assert tunnel.device.fwmark == 0 and tunnel.listen_port

    asyncio.run(asyncio.wait_for(main(), LIMIT))
    assert not marker.exists()


def test_a_dns_server_no_peer_routes_fails_at_once():
    key = base64.b64encode(wgpy.PrivateKey.generate(os.urandom).private_bytes()).decode()

    async def main():
        async with wgpy.Tunnel(f"[Interface]\nPrivateKey = {key}\nAddress = 10.9.0.1/24\nDNS = 10.9.0.53\n") as tunnel:
            loop = asyncio.get_running_loop()
            began = loop.time()
            with pytest.raises(socket.gaierror, match="AllowedIPs"):
                await tunnel.resolve("web.wg")
            assert loop.time() - began < 0.5

    asyncio.run(asyncio.wait_for(main(), LIMIT))


def test_an_exception_in_the_applications_protocol_is_the_applications():
    """It goes to the loop's exception handler, resets that connection, and is no bug of the tunnel's."""
    async def test(client, server):
        loop = asyncio.get_running_loop()
        reported, lost = [], loop.create_future()

        class Faulty(asyncio.Protocol):
            def data_received(self, data):
                raise ZeroDivisionError("the application's own bug")

            def connection_lost(self, exc):
                lost.set_result(exc)

        loop.set_exception_handler(lambda loop, context: reported.append(context["exception"]))
        await server.create_server(Faulty, port=7)
        reader, writer = await client.open_connection("10.0.0.2", 7)
        writer.write(b"boom")
        assert isinstance(await lost, ZeroDivisionError)
        assert [type(e) for e in reported] == [ZeroDivisionError]
        with pytest.raises(ConnectionResetError):
            await reader.read()

    run(test)


def test_closing_the_tunnel_aborts_its_connections():
    async def main():
        async with wgpy.Tunnel.pair() as (client, server):
            await server.start_server(echo, port=7)
            reader, writer = await client.open_connection("10.0.0.2", 7)
            await client.close()
            with pytest.raises(ConnectionError):
                await reader.read()
            with pytest.raises(RuntimeError):
                await client.open_connection("10.0.0.2", 7)

    asyncio.run(asyncio.wait_for(main(), LIMIT))
