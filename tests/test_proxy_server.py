"""wgpy proxy's servers (wgpy/runtime/proxy.py, forward.py, health.py) over a stand-in tunnel on loopback
(tests/proxy_standin.py), with raw clients and real ones (curl, ncat).

    client ──► 127.0.0.1:P (SOCKS5 / HTTP / forward) ──► stand-in "tunnel" ──► servers on 127.0.0.1, ::1
    127.0.0.2:T (the "tunnel's address", reverse) ──► services on 127.0.0.1
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.proxy_standin import TUNNEL_ADDRESS, LoopbackTunnel
from wgpy.runtime import health
from wgpy.runtime.forward import parse_forward
from wgpy.runtime.proxy import Credentials
from wgpy.runtime.proxy_command import Options, read_password, serve

ROOT = Path(__file__).resolve().parent.parent
BLOB = hashlib.sha256(b"seed").digest() * 8192      # 256 KiB
NAMES = {"files.tunnel": ["127.0.0.1"], "six.tunnel": ["::1"], "dead.tunnel": ["127.0.0.1"]}


def run(coroutine, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(f"needs {tool}")


def port_of(listener) -> int:
    if hasattr(listener, "sockets"):
        return listener.sockets[0].getsockname()[1]
    return listener.transport.get_extra_info("sockname")[1]


# ---------------------------------------------------------------------------------------------- servers


async def echo_server(host: str = "127.0.0.1"):
    async def echo(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
    return await asyncio.start_server(echo, host, 0)


async def file_server():
    """HTTP/1.1: any GET gets BLOB; the request heads are kept."""
    heads = []

    async def serve_file(reader, writer):
        try:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(BLOB) + BLOB)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
    server = await asyncio.start_server(serve_file, "127.0.0.1", 0)
    server.heads = heads
    return server


class Streamer:
    """Sends 16 KiB chunks until its client goes; counts what it sent and sees the end."""

    def __init__(self) -> None:
        self.sent = 0
        self.ended = asyncio.Event()

    async def handle(self, reader, writer) -> None:
        try:
            while True:
                writer.write(bytes(16384))
                await writer.drain()
                self.sent += 16384
        except (ConnectionError, OSError):
            pass
        finally:
            self.ended.set()
            writer.close()


async def socks_handshake(port: int, request: bytes, *, credentials: tuple[bytes, bytes] | None = None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x05\x01\x02" if credentials else b"\x05\x01\x00")
    assert await reader.readexactly(2) == (b"\x05\x02" if credentials else b"\x05\x00")
    if credentials:
        user, password = credentials
        writer.write(bytes([1, len(user)]) + user + bytes([len(password)]) + password)
        status = await reader.readexactly(2)
        if status != b"\x01\x00":
            return reader, writer, status
    writer.write(request)
    head = await reader.readexactly(4)
    rest = {1: 6, 4: 18}[head[3]]
    return reader, writer, head + await reader.readexactly(rest)


def connect_request(host: str, port: int) -> bytes:
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        kind = b"\x04" if len(packed) == 16 else b"\x01"
        return b"\x05\x01\x00" + kind + packed + struct.pack("!H", port)
    except OSError:
        return b"\x05\x01\x00\x03" + bytes([len(host)]) + host.encode() + struct.pack("!H", port)


# ---------------------------------------------------------------------------------------------- SOCKS5


@pytest.mark.parametrize("host, server_host", [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("files.tunnel", "127.0.0.1"),
                                               ("six.tunnel", "::1")])
def test_socks5_connect_ipv4_ipv6_and_domain(host, server_host):
    async def main():
        tunnel = LoopbackTunnel(NAMES)
        echo = await echo_server(server_host)
        serving = await serve(tunnel, Options(socks5=("127.0.0.1", 0)))
        reader, writer, reply = await socks_handshake(port_of(serving.listeners[0]), connect_request(host, port_of(echo)))
        assert reply[:3] == b"\x05\x00\x00"
        writer.write(BLOB)
        assert await reader.readexactly(len(BLOB)) == BLOB
        writer.close()
        await serving.close()
        echo.close()
        return tunnel.asked
    asked = run(main())
    assert asked == ([host] if host.endswith(".tunnel") else [])   # names go to the tunnel's DNS, addresses nowhere


@pytest.mark.parametrize("request_bytes, code", [
    (b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", 7),     # BIND
    (b"\x05\x01\x00\x02\x7f\x00\x00\x01\x00\x50", 8),     # unknown address type
    (b"\x05\x01\x07\x01\x7f\x00\x00\x01\x00\x50", 1),     # reserved octet set
    (connect_request("nowhere.tunnel", 80), 4),            # NXDOMAIN in the tunnel's DNS
    (connect_request("127.0.0.1", 1), 5),                   # refused
])
def test_a_malformed_or_failed_request_gets_its_reply_code_while_another_connection_keeps_streaming(request_bytes, code):
    async def main():
        streamer = Streamer()
        stream_server = await asyncio.start_server(streamer.handle, "127.0.0.1", 0)
        serving = await serve(LoopbackTunnel(NAMES), Options(socks5=("127.0.0.1", 0)))
        port = port_of(serving.listeners[0])
        reader, writer, reply = await socks_handshake(port, connect_request("127.0.0.1", port_of(stream_server)))
        assert reply[1] == 0
        await reader.readexactly(1 << 20)
        bad_reader, bad_writer, bad_reply = await socks_handshake(port, request_bytes)
        assert bad_reply[:2] == bytes([5, code]) and await bad_reader.read() == b""   # replied, then closed
        got = len(await reader.readexactly(1 << 20))      # the first connection still streams
        writer.close()
        await asyncio.wait_for(streamer.ended.wait(), 10)
        await serving.close()
        stream_server.close()
        return got, serving.proxy.counts
    got, counts = run(main())
    assert got == 1 << 20 and sum(v for k, v in counts.items() if k.startswith("refused:")) == 1


def test_greetings_that_offer_nothing_acceptable_are_answered_ff():
    async def main():
        serving = await serve(LoopbackTunnel(), Options(socks5=("127.0.0.1", 0)))
        port = port_of(serving.listeners[0])
        answers = []
        for greeting in (b"\x05\x01\x02", b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", b"\x05\x00"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(greeting)
            answers.append(await reader.read())
            writer.close()
        await serving.close()
        return answers, serving.proxy.counts
    answers, counts = run(main())
    assert answers == [b"\x05\xff"] * 3
    assert counts["refused:no_acceptable_method"] == 1 and counts["refused:wrong_version"] == 1 and counts["refused:no_methods"] == 1


def test_username_password_success_and_failure():
    async def main():
        echo = await echo_server()
        credentials = Credentials(b"alice", b"s3cret")
        serving = await serve(LoopbackTunnel(), Options(socks5=("127.0.0.1", 0), credentials=credentials))
        port = port_of(serving.listeners[0])
        request = connect_request("127.0.0.1", port_of(echo))
        reader, writer, reply = await socks_handshake(port, request, credentials=(b"alice", b"s3cret"))
        writer.write(b"ping")
        ok = reply[1] == 0 and await reader.readexactly(4) == b"ping"
        writer.close()
        failures = []
        for user, password in ((b"alice", b"wrong"), (b"bob", b"s3cret")):
            reader, writer, status = await socks_handshake(port, request, credentials=(user, password))
            failures.append((status, await reader.read()))
            writer.close()
        # No method offered but "no authentication": refused with FF.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x05\x01\x00")
        unauthenticated = await reader.read()
        await serving.close()
        echo.close()
        return ok, failures, unauthenticated, serving.proxy.counts
    ok, failures, unauthenticated, counts = run(main())
    assert ok and failures == [(b"\x01\x01", b"")] * 2 and unauthenticated == b"\x05\xff"
    assert counts["refused:auth_failed"] == 2


def test_udp_associate_round_trip_ipv4_and_domain():
    async def main():
        loop = asyncio.get_running_loop()

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(data.upper(), addr)
        echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        echo_port = echo.get_extra_info("sockname")[1]
        serving = await serve(LoopbackTunnel(NAMES), Options(socks5=("127.0.0.1", 0)))
        reader, writer, reply = await socks_handshake(port_of(serving.listeners[0]), b"\x05\x03\x00\x01\0\0\0\0\0\0")
        assert reply[:4] == b"\x05\x00\x00\x01"
        relay = (socket.inet_ntoa(reply[4:8]), struct.unpack("!H", reply[8:10])[0])
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        client.bind(("127.0.0.1", 0))
        answers = []
        for header in (b"\0\0\0\x01\x7f\0\0\x01", b"\0\0\0\x03\x0cfiles.tunnel"):
            await loop.sock_sendto(client, header + struct.pack("!H", echo_port) + b"hello", relay)
            answers.append(await asyncio.wait_for(loop.sock_recv(client, 2048), 5))
        # A fragment (FRAG != 0) is dropped, as RFC 1928 7 allows; the association keeps working.
        await loop.sock_sendto(client, b"\0\0\x01\x01\x7f\0\0\x01" + struct.pack("!H", echo_port) + b"frag", relay)
        await loop.sock_sendto(client, b"\0\0\0\x01\x7f\0\0\x01" + struct.pack("!H", echo_port) + b"again", relay)
        answers.append(await asyncio.wait_for(loop.sock_recv(client, 2048), 5))
        writer.close()                                    # the association ends with its TCP connection
        await asyncio.sleep(0.2)
        await loop.sock_sendto(client, b"\0\0\0\x01\x7f\0\0\x01" + struct.pack("!H", echo_port) + b"late", relay)
        try:
            late = await asyncio.wait_for(loop.sock_recv(client, 2048), 0.5)
        except (asyncio.TimeoutError, ConnectionRefusedError):
            late = None
        client.close()
        echo.close()
        await serving.close()
        return answers, late, serving.proxy.counts
    answers, late, counts = run(main())
    header = b"\0\0\0\x01\x7f\0\0\x01"
    assert [a[:8] for a in answers] == [header] * 3
    assert [a[10:] for a in answers] == [b"HELLO", b"HELLO", b"AGAIN"]
    assert late is None and counts["refused:udp_fragment"] == 1


def test_a_client_vanishing_mid_transfer_ends_only_its_own_relay():
    async def main():
        streamer = Streamer()
        stream_server = await asyncio.start_server(streamer.handle, "127.0.0.1", 0)
        echo = await echo_server()
        serving = await serve(LoopbackTunnel(), Options(socks5=("127.0.0.1", 0), http=("127.0.0.1", 0)))
        socks_port, http_port = port_of(serving.listeners[0]), port_of(serving.listeners[1])
        other_reader, other_writer, _ = await socks_handshake(socks_port, connect_request("127.0.0.1", port_of(echo)))
        reader, writer, _ = await socks_handshake(socks_port, connect_request("127.0.0.1", port_of(stream_server)))
        await reader.readexactly(256 * 1024)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # close = RST
        writer.transport.abort()
        await asyncio.wait_for(streamer.ended.wait(), 10)   # the far side's connection is closed too
        other_writer.write(b"still here")
        still = await asyncio.wait_for(other_reader.readexactly(10), 5)
        # And through the HTTP proxy: a client that sends half a head and leaves.
        r, w = await asyncio.open_connection("127.0.0.1", http_port)
        w.write(b"CONNECT 127.0.0.1:1 HTT")
        await w.drain()
        w.transport.abort()
        await asyncio.sleep(0.2)
        other_writer.close()
        await serving.close()
        stream_server.close()
        echo.close()
        return still, serving.proxy.counts
    still, counts = run(main())
    assert still == b"still here" and counts["refused:client_gone"] >= 1


# ---------------------------------------------------------------------------------------------- HTTP


@pytest.mark.parametrize("head, status", [
    (b"CONNECT nowhere HTTP/1.1\r\n\r\n", 400),
    (b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"CONNECT a:1 HTTP/1.1\r\nBad Field: x\r\n\r\n", 400),
    (b"CONNECT nowhere.tunnel:80 HTTP/1.1\r\n\r\n", 502),
    (b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n\r\n", 502),
    (b"OPTIONS * HTTP/1.1\r\n\r\n", 405),
    (b"CONNECT a:1 HTTP/1.1\r\nX: " + b"y" * 20000, 431),     # the head overflows its buffer, unfinished
])
def test_http_refusals_have_their_status_and_a_reason(head, status):
    async def main():
        serving = await serve(LoopbackTunnel(NAMES), Options(http=("127.0.0.1", 0)))
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(serving.listeners[0]))
        writer.write(head)
        answer = await reader.read()
        writer.close()
        await serving.close()
        return answer
    answer = run(main())
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()) and answer.split(b"\r\n\r\n", 1)[1].strip()


def test_http_connect_timeout_is_504(monkeypatch):
    from wgpy.runtime import proxy as proxy_module
    monkeypatch.setattr(proxy_module, "CONNECT_TIMEOUT", 0.3)

    class SlowTunnel(LoopbackTunnel):
        async def open_connection(self, host, port, **options):
            await asyncio.sleep(5)

    async def main():
        serving = await serve(SlowTunnel(), Options(http=("127.0.0.1", 0)))
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(serving.listeners[0]))
        writer.write(b"CONNECT 10.9.9.9:80 HTTP/1.1\r\n\r\n")
        answer = await reader.read()
        await serving.close()
        return answer
    assert run(main()).startswith(b"HTTP/1.1 504 Gateway Timeout\r\n")


# ---------------------------------------------------------------------------------------------- real clients


async def curl(*args: str) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec("curl", "--silent", "--show-error", "--max-time", "20", *args,
                                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await process.communicate()
    return process.returncode, out, err


@pytest.mark.parametrize("proxy_flag", ["--socks5-hostname", "--proxy-socks5-user", "http-connect", "http-forward"])
def test_curl_fetches_a_file_by_a_tunnel_name(proxy_flag):
    need("curl")

    async def main():
        files = await file_server()
        tunnel = LoopbackTunnel(NAMES)
        credentials = Credentials(b"u", b"p w") if proxy_flag == "--proxy-socks5-user" else None
        serving = await serve(tunnel, Options(socks5=("127.0.0.1", 0), http=("127.0.0.1", 0), credentials=credentials))
        socks, http = port_of(serving.listeners[0]), port_of(serving.listeners[1])
        url = f"http://files.tunnel:{port_of(files)}/blob"
        if proxy_flag == "--socks5-hostname":
            result = await curl("--socks5-hostname", f"127.0.0.1:{socks}", url)
        elif proxy_flag == "--proxy-socks5-user":
            wrong = await curl("--proxy", f"socks5h://u:nope@127.0.0.1:{socks}", url)
            assert wrong[0] != 0
            result = await curl("--proxy", f"socks5h://u:p%20w@127.0.0.1:{socks}", url)
            denied = await curl("--proxy", f"http://127.0.0.1:{http}", "--write-out", "%{http_code}", url)
            assert denied[1].endswith(b"407"), denied
        elif proxy_flag == "http-connect":
            result = await curl("--proxytunnel", "--proxy", f"http://127.0.0.1:{http}", url)
        else:
            result = await curl("--proxy", f"http://127.0.0.1:{http}", url)
        await serving.close()
        files.close()
        return result, files.heads, tunnel.asked
    (code, out, err), heads, asked = run(main())
    assert code == 0, err
    assert hashlib.sha256(out).digest() == hashlib.sha256(BLOB).digest()
    assert "files.tunnel" in asked                       # resolved by the tunnel, not by curl or the host
    if proxy_flag == "http-forward":
        assert heads[0].startswith(b"GET /blob HTTP/1.1\r\n") and b"Connection: close" in heads[0]


def test_ncat_through_socks5():
    need("ncat")

    async def main():
        echo = await echo_server()
        serving = await serve(LoopbackTunnel(NAMES), Options(socks5=("127.0.0.1", 0)))
        process = await asyncio.create_subprocess_exec(
            "ncat", "--proxy-type", "socks5", "--proxy", f"127.0.0.1:{port_of(serving.listeners[0])}",
            "127.0.0.1", str(port_of(echo)), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        process.stdin.write(b"through ncat\n")
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        process.stdin.close()
        await asyncio.wait_for(process.wait(), 10)
        await serving.close()
        echo.close()
        return line
    assert run(main()) == b"through ncat\n"


# ---------------------------------------------------------------------------------------------- forwards


def test_forward_and_reverse_tcp_and_udp():
    async def main():
        loop = asyncio.get_running_loop()
        echo = await echo_server()
        echo_port = port_of(echo)

        class UdpEcho(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(b"echo:" + data, addr)
        udp_echo, _ = await loop.create_datagram_endpoint(UdpEcho, local_addr=("127.0.0.1", 0))
        udp_port = udp_echo.get_extra_info("sockname")[1]
        free = [free_port(kind) for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM)]
        here = [free_port(kind, "127.0.0.1") for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM)]
        forwards = [parse_forward(f"tcp:127.0.0.1:{here[0]}:files.tunnel:{echo_port}"),
                    parse_forward(f"udp:127.0.0.1:{here[1]}:files.tunnel:{udp_port}"),
                    parse_forward(f"tcp:{free[0]}:127.0.0.1:{echo_port}", reverse=True),
                    parse_forward(f"udp:{free[1]}:127.0.0.1:{udp_port}", reverse=True)]
        serving = await serve(LoopbackTunnel(NAMES), Options(forwards=forwards))
        tcp_port, udp_forward_port = port_of(serving.listeners[0]), port_of(serving.listeners[1])
        results = {}
        for name, (host, port) in {"forward": ("127.0.0.1", tcp_port), "reverse": (TUNNEL_ADDRESS, free[0])}.items():
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(BLOB)
            writer.write_eof()
            results[f"{name} tcp"] = await reader.read() == BLOB    # the half-close passed through
            writer.close()
        for name, (host, port) in {"forward": ("127.0.0.1", udp_forward_port), "reverse": (TUNNEL_ADDRESS, free[1])}.items():
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.setblocking(False)
            client.connect((host, port))
            answers = []
            for n in range(3):
                await loop.sock_sendall(client, b"d%d" % n)
                answers.append(await asyncio.wait_for(loop.sock_recv(client, 2048), 5))
            results[f"{name} udp"] = answers == [b"echo:d0", b"echo:d1", b"echo:d2"]
            client.close()
        await serving.close()
        echo.close()
        udp_echo.close()
        return results
    assert run(main()) == {"forward tcp": True, "reverse tcp": True, "forward udp": True, "reverse udp": True}


def free_port(kind: int, host: str = TUNNEL_ADDRESS) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("text, reverse", [
    ("tcp:127.0.0.1:80:host", False), ("sctp:127.0.0.1:80:host:1", False), ("tcp:127.0.0.1:0:host:1", False),
    ("tcp:[::1:80:host:1", False), ("tcp:80:host", True), ("udp:70000:host:1", True), ("tcp::80:host:1", False),
])
def test_malformed_forward_specs_are_value_errors(text, reverse):
    with pytest.raises(ValueError):
        parse_forward(text, reverse=reverse)


def test_forward_specs_with_ipv6():
    forward = parse_forward("tcp:[::1]:8080:[fd00::2]:80")
    assert (forward.listen_host, forward.listen_port, forward.host, forward.port) == ("::1", 8080, "fd00::2", 80)
    assert str(forward) == "forward tcp [::1]:8080 -> [fd00::2]:80"


# ---------------------------------------------------------------------------------------------- health


def test_health_endpoints():
    now = time.time()
    snapshots = {"peers": (health.PeerHealth(bytes(range(32)), 10, 20, None),)}

    async def get(port: int, path: str) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
        return answer

    async def main():
        server = await health.serve(lambda: health.Health(snapshots["peers"], (("device", "DECRYPTION_FAILED", 3),)),
                                    "127.0.0.1", 0)
        port = port_of(server)
        answers = [await get(port, "/readyz")]
        snapshots["peers"] += (health.PeerHealth(bytes(32), 1, 2, now - 179),)
        answers += [await get(port, "/readyz"), await get(port, "/metrics"), await get(port, "/nothing")]
        server.close()
        return answers
    not_ready, ready, metrics, missing = run(main())
    assert not_ready.startswith(b"HTTP/1.1 503 ") and ready.startswith(b"HTTP/1.1 200 ")
    assert missing.startswith(b"HTTP/1.1 404 ")
    assert b"Content-Type: text/plain; version=0.0.4" in metrics
    body = metrics.split(b"\r\n\r\n", 1)[1].decode()
    assert 'wgpy_peer_receive_bytes_total{public_key="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="} 10' in body
    assert 'wgpy_peer_transmit_bytes_total{public_key="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="} 2' in body
    assert f'wgpy_peer_latest_handshake_seconds{{public_key="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}} {int(now - 179)}' in body
    assert 'wgpy_drops_total{layer="device",reason="DECRYPTION_FAILED"} 3' in body and "wgpy_up 1" in body
    # 180 seconds after the handshake, the peer no longer counts (REJECT_AFTER_TIME).
    assert not health.is_ready(health.Health((health.PeerHealth(bytes(32), 0, 0, now - 180),)), now)


def test_health_from_a_device_counts_its_peers_and_drops():
    from wgpy.core.device import Device
    from wgpy.core.crypto import PrivateKey
    device = Device(PrivateKey.generate(os.urandom), rng=os.urandom)
    device.add_peer(bytes(range(32)))
    device.receive_datagrams([(b"\x09junk", ("192.0.2.1", 1), None)], 1.0)
    snapshot = health.device_health(device, proxy_counts={"refused:auth_failed": 2, "socks5_connect": 5})
    assert [p.public_key for p in snapshot.peers] == [bytes(range(32))]
    assert ("proxy", "auth_failed", 2) in snapshot.drops and any(layer == "device" for layer, _, _ in snapshot.drops)


# ---------------------------------------------------------------------------------------------- the password


def test_the_password_comes_from_an_owner_only_file_or_the_environment(tmp_path):
    secret = tmp_path / "password"
    secret.write_bytes(b"hunter2\n")
    secret.chmod(0o600)
    assert read_password(str(secret)) == b"hunter2"
    secret.chmod(0o640)
    with pytest.raises(PermissionError):
        read_password(str(secret))
    assert read_password(None, environ={"WGPY_PROXY_PASSWORD": "x"}) == b"x"
    with pytest.raises(ValueError):
        read_password(None, environ={})


# ---------------------------------------------------------------------------------------------- no privilege

NOBODY_SCRIPT = """
import asyncio, sys
sys.path.insert(0, {root!r})
from tests.proxy_standin import LoopbackTunnel
from wgpy.runtime.proxy_command import Options, serve

async def main():
    serving = await serve(LoopbackTunnel({names!r}), Options(socks5=("127.0.0.1", 0)))
    print(serving.listeners[0].sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(30)

asyncio.run(main())
"""


def test_the_proxy_serves_as_nobody():
    """The proxy's own code needs no privilege: run as uid 65534 (setpriv), curl fetches through it."""
    need("setpriv", "curl")
    if os.geteuid() != 0:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("needs root to become nobody")

    async def main():
        files = await file_server()
        script = NOBODY_SCRIPT.format(root=str(ROOT), names=NAMES)
        process = await asyncio.create_subprocess_exec(
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", sys.executable, "-c", script,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 20)
            assert line.strip().isdigit(), (line, await process.stderr.read())
            status = Path(f"/proc/{process.pid}/status").read_text()
            uid_line = next(l for l in status.splitlines() if l.startswith("Uid:"))
            result = await curl("--socks5-hostname", f"127.0.0.1:{int(line)}", f"http://files.tunnel:{port_of(files)}/")
        finally:
            process.kill()
            await process.wait()
            files.close()
        return uid_line, result
    uid_line, (code, out, err) = run(main())
    assert uid_line.split()[1:] == ["65534"] * 4 and code == 0, err
    assert out == BLOB


def test_a_bug_in_the_tunnel_fails_only_its_client(caplog):
    """The proxy survives a bug below it (STYLE.md): that client gets GENERAL_FAILURE / 502, the
    traceback is logged and counted, and the next client is served."""

    class BuggyTunnel(LoopbackTunnel):
        async def open_connection(self, host, port, **options):
            if port == 9:
                raise AttributeError("'Stack' object has no attribute 'tcp_connect'")
            return await super().open_connection(host, port, **options)

    async def main():
        echo = await echo_server()
        serving = await serve(BuggyTunnel(), Options(socks5=("127.0.0.1", 0), http=("127.0.0.1", 0)))
        socks, http = port_of(serving.listeners[0]), port_of(serving.listeners[1])
        _, writer, failed = await socks_handshake(socks, connect_request("127.0.0.1", 9))
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", http)
        writer.write(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n")
        answer = await reader.read()
        reader, writer, ok = await socks_handshake(socks, connect_request("127.0.0.1", port_of(echo)))
        writer.close()
        await serving.close()
        echo.close()
        return failed, answer, ok, serving.proxy.counts
    failed, answer, ok, counts = run(main())
    assert failed[1] == 1 and answer.startswith(b"HTTP/1.1 502 ") and ok[1] == 0
    assert counts["refused:internal_error"] == 2 and "AttributeError" in caplog.text


def test_a_client_that_does_not_read_holds_a_bounded_amount_and_delays_no_one():
    """Back-pressure: the far side is slowed to what the client takes (the relay drains before it
    reads more), so the proxy holds a bounded amount for a client that reads nothing."""

    async def main():
        streamer = Streamer()
        stream_server = await asyncio.start_server(streamer.handle, "127.0.0.1", 0)
        echo = await echo_server()
        serving = await serve(LoopbackTunnel(), Options(socks5=("127.0.0.1", 0)))
        port = port_of(serving.listeners[0])
        _, stalled_writer, _ = await socks_handshake(port, connect_request("127.0.0.1", port_of(stream_server)))
        await asyncio.sleep(1.0)
        plateau = streamer.sent
        await asyncio.sleep(1.0)
        grew = streamer.sent - plateau
        reader, writer, _ = await socks_handshake(port, connect_request("127.0.0.1", port_of(echo)))
        start = time.monotonic()
        writer.write(BLOB)
        echoed = await reader.readexactly(len(BLOB))
        took = time.monotonic() - start
        writer.close()
        stalled_writer.close()
        await serving.close()
        stream_server.close()
        echo.close()
        return plateau, grew, echoed == BLOB, took
    plateau, grew, echoed, took = run(main())
    print(f"figure: a client reading nothing held {plateau / 2**20:.1f} MiB in flight (kernel buffers and the relay's)")
    assert grew == 0 and plateau < 64 * 2**20 and echoed and took < 5


def test_the_poll_loop_health_server_answers_without_blocking():
    """PollHealthServer, as the TUN daemon's loop drives it: a client that sends half a request and stays
    does not keep the next one from its answer."""
    import select
    import threading

    snapshot = health.Health((health.PeerHealth(bytes(32), 5, 6, time.time() - 1),))
    server = health.PollHealthServer("127.0.0.1", 0, lambda: snapshot)
    poll = select.poll()
    server.register(poll)
    port = server.listener.getsockname()[1]
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            for fd, event in poll.poll(50):
                if server.owns(fd):
                    server.ready(fd, event, time.monotonic())
    thread = threading.Thread(target=loop)
    thread.start()
    try:
        lingering = socket.create_connection(("127.0.0.1", port), timeout=5)
        lingering.sendall(b"GET /readyz HTTP/1.1\r\n")
        answers = []
        for path in ("/readyz", "/metrics"):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                client.sendall(f"GET {path} HTTP/1.1\r\n\r\n".encode())
                answers.append(b"".join(iter(lambda: client.recv(65536), b"")))
        lingering.close()
    finally:
        stop.set()
        thread.join(5)
        server.close()
    assert answers[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b'wgpy_peer_transmit_bytes_total{public_key="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="} 6' in answers[1]


@pytest.mark.parametrize("text, expected", [("9100", ("127.0.0.1", 9100)), ("0.0.0.0:80", ("0.0.0.0", 80)),
                                            ("[::1]:9100", ("::1", 9100))])
def test_listen_addresses(text, expected):
    assert health.parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "host", ":80", "h:0", "h:65536", "[::1]9100", "h:８０"])
def test_bad_listen_addresses(text):
    with pytest.raises(ValueError):
        health.parse_address(text)


def test_the_command_refuses_bad_options_in_one_line(tmp_path):
    for args, words in ((["--socks5", "nowhere"], "is not ADDR:PORT"), (["--forward", "tcp:1:2"], "is not tcp|udp"),
                        (["--socks5", "1080", "--socks5-user", "u"], "WGPY_PROXY_PASSWORD"), ([], "nothing to serve")):
        env = {k: v for k, v in os.environ.items() if k != "WGPY_PROXY_PASSWORD"}
        result = subprocess.run([sys.executable, "-m", "wgpy", "proxy", str(tmp_path / "none.conf"), *args],
                                capture_output=True, text=True, cwd=ROOT, env=env, timeout=30)
        assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_forwarded_request_carries_its_body_and_nothing_after_it():
    """Plain forwarding relays one request: its Content-Length body goes to the origin; a second request
    pipelined behind it does not (it would reach the first request's origin)."""

    async def main():
        heads = []

        async def origin(reader, writer):
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            heads.append(await reader.readexactly(5))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            try:                                    # nothing more comes from the proxy
                heads.append(await asyncio.wait_for(reader.read(100), 0.5))
            except asyncio.TimeoutError:
                heads.append(b"")
            writer.close()                          # Connection: close, as the proxy asked
        server = await asyncio.start_server(origin, "127.0.0.1", 0)
        serving = await serve(LoopbackTunnel(NAMES), Options(http=("127.0.0.1", 0)))
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(serving.listeners[0]))
        url = f"http://files.tunnel:{port_of(server)}/upload"
        writer.write(f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".encode()
                     + f"GET http://elsewhere.tunnel/ HTTP/1.1\r\n\r\n".encode())
        answer = await reader.read()
        await asyncio.sleep(0.1)
        writer.close()
        await serving.close()
        server.close()
        return heads, answer
    heads, answer = run(main())
    assert heads[0].startswith(b"POST /upload HTTP/1.1\r\n") and heads[1] == b"hello" and heads[2] == b""
    assert answer.endswith(b"\r\n\r\nok")


def test_clients_beyond_the_limit_are_refused_in_their_protocol(monkeypatch):
    from wgpy.runtime import proxy as proxy_module
    monkeypatch.setattr(proxy_module, "MAX_CLIENTS", 2)

    async def main():
        serving = await serve(LoopbackTunnel(), Options(socks5=("127.0.0.1", 0), http=("127.0.0.1", 0)))
        socks, http = port_of(serving.listeners[0]), port_of(serving.listeners[1])
        held = [await asyncio.open_connection("127.0.0.1", port) for port in (socks, http)]   # greeting unsent
        await asyncio.sleep(0.1)
        answers = []
        for port in (socks, http):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answers.append(await reader.read())
            writer.close()
        held[0][1].close()
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", socks)    # room again
        writer.write(b"\x05\x01\x00")
        again = await reader.readexactly(2)
        writer.close()
        held[1][1].close()
        await serving.close()
        return answers, again, serving.proxy.counts
    answers, again, counts = run(main())
    assert answers[0] == b"\x05\xff" and answers[1].startswith(b"HTTP/1.1 503 ")
    assert again == b"\x05\x00" and counts["refused:too_many_clients"] == 2


def test_connections_from_the_tunnel_have_their_own_limit(monkeypatch):
    """Two held connections to a --reverse port fill the tunnel's places, not this host's: a third from
    the tunnel is closed (too_many_tunnel_clients), a SOCKS5 client is still answered."""
    from wgpy.runtime import proxy as proxy_module
    monkeypatch.setattr(proxy_module, "MAX_CLIENTS", 2)

    async def main():
        echo = await echo_server()
        reverse_port = free_port(socket.SOCK_STREAM)
        serving = await serve(LoopbackTunnel(), Options(socks5=("127.0.0.1", 0), forwards=[
            parse_forward(f"tcp:{reverse_port}:127.0.0.1:{port_of(echo)}", reverse=True)]))
        held = [await asyncio.open_connection(TUNNEL_ADDRESS, reverse_port) for _ in range(2)]
        for reader, writer in held:
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
        reader, writer = await asyncio.open_connection(TUNNEL_ADDRESS, reverse_port)
        third = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(serving.listeners[0]))
        writer.write(b"\x05\x01\x00")
        socks = await reader.readexactly(2)
        writer.close()
        for _, held_writer in held:
            held_writer.close()
        await serving.close()
        echo.close()
        return third, socks, serving.proxy.counts
    third, socks, counts = run(main())
    assert third == b"" and socks == b"\x05\x00"
    assert counts["refused:too_many_tunnel_clients"] == 1 and counts["refused:too_many_clients"] == 0


def test_listeners_open_to_the_network_without_a_password_are_named():
    from wgpy.runtime.proxy_command import open_to_others
    assert open_to_others(Options(socks5=("127.0.0.1", 1080), http=("::1", 3128),
                                  forwards=[parse_forward("tcp:127.0.0.2:80:a:80")])) == []
    warnings = open_to_others(Options(socks5=("0.0.0.0", 1080), http=("192.0.2.1", 3128),
                                      forwards=[parse_forward("udp:[::]:53:a:53"), parse_forward("tcp:80:b:80", reverse=True)]))
    assert len(warnings) == 3 and "0.0.0.0:1080" in warnings[0] and "[::]:53" in warnings[2]
    assert open_to_others(Options(socks5=("0.0.0.0", 1080), credentials=Credentials(b"u", b"p"))) == []


def test_udp_associate_over_ipv6():
    async def main():
        loop = asyncio.get_running_loop()

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(data[::-1], addr)
        echo, _ = await loop.create_datagram_endpoint(Echo, local_addr=("::1", 0))
        echo_port = echo.get_extra_info("sockname")[1]
        serving = await serve(LoopbackTunnel(NAMES), Options(socks5=("::1", 0)))
        reader, writer = await asyncio.open_connection("::1", port_of(serving.listeners[0]))
        writer.write(b"\x05\x01\x00")
        assert await reader.readexactly(2) == b"\x05\x00"
        writer.write(b"\x05\x03\x00\x04" + bytes(18))
        reply = await reader.readexactly(22)
        relay = (socket.inet_ntop(socket.AF_INET6, reply[4:20]), struct.unpack("!H", reply[20:22])[0])
        client = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        client.setblocking(False)
        client.bind(("::1", 0))
        header = b"\0\0\0\x04" + socket.inet_pton(socket.AF_INET6, "::1") + struct.pack("!H", echo_port)
        await loop.sock_sendto(client, header + b"abc", relay)
        answer = await asyncio.wait_for(loop.sock_recv(client, 2048), 5)
        client.close()
        writer.close()
        echo.close()
        await serving.close()
        return reply, relay, header, answer
    reply, relay, header, answer = run(main())
    assert reply[:4] == b"\x05\x00\x00\x04" and relay[0] == "::1"
    assert answer == header + b"cba"


def test_the_command_serves_its_uapi_socket_and_stops_cleanly_on_sigterm(tmp_path):
    """``wgpy proxy`` on the real wgpy.Tunnel (its peer never answers): the UAPI socket is in
    $XDG_RUNTIME_DIR/wgpy (root: /var/run/wireguard, as wireguard-go's), owner-only; ``wgpy show`` reads
    it; SIGTERM stops it with 0 and removes it."""
    import signal
    from wgpy.core.crypto import PrivateKey
    config = tmp_path / "prx9.conf"
    keys = [PrivateKey.generate(os.urandom) for _ in range(2)]
    config.write_text(f"[Interface]\nPrivateKey = {base64.b64encode(keys[0].private_bytes()).decode()}\n"
                      f"Address = 10.99.0.2/24\n[Peer]\nPublicKey = {base64.b64encode(keys[1].public).decode()}\n"
                      f"Endpoint = 127.0.0.1:9\nAllowedIPs = 10.99.0.0/24\n")
    config.chmod(0o600)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))
    port = free_port(socket.SOCK_STREAM, "127.0.0.1")
    process = subprocess.Popen([sys.executable, "-m", "wgpy", "proxy", str(config), "--socks5", f"127.0.0.1:{port}"],
                               cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("SOCKS5 on" in line for line in lines):
            lines.append(process.stderr.readline())
        path = (Path("/var/run/wireguard") if os.geteuid() == 0 else tmp_path / "wgpy") / "prx9.sock"
        assert path.exists(), lines
        assert (os.stat(path).st_mode & 0o777, os.stat(path.parent).st_mode & 0o777) == (0o600, 0o700)
        shown = subprocess.run([sys.executable, "-m", "wgpy", "show", "prx9"], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=20)
        assert shown.stdout.startswith("interface: prx9\n  public key: ") and "endpoint: 127.0.0.1:9" in shown.stdout
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert not path.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
