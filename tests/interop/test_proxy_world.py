"""``wgpy proxy`` against the real world (issue 13): 50 MiB each way by sha256, a name resolved inside the
tunnel, UDP through SOCKS5, iperf3 through both kinds of forward, the same 50 MiB over a bad network, bad
clients beside a big transfer, and a SYN flood through the tunnel. The far side is wireguard-go, then
wgpy's own TUN daemon (``python -m wgpy -f px2w0``).

    ns px2-a: no WireGuard interface, no TUN                  ns px2-b: FAR (wireguard-go px2g0 | wgpy px2w0)
      wgpy proxy px2.conf as nobody (10.82.0.2):                10.82.0.1/24
        --socks5 127.0.0.1:1080 --http 127.0.0.1:3128            python3 -m http.server 10.82.0.1:8080 (a 50 MiB blob)
        --forward tcp:127.0.0.1:5202:10.82.0.1:5201  -------->   iperf3 -s 10.82.0.1:5201
        --reverse tcp:5203:127.0.0.1:5203            <--------   iperf3 -c 10.82.0.2 -p 5203
        --reverse tcp:8022:127.0.0.1:7007            <--------   a client, and a SYN flood (raw socket)
        --health 127.0.0.1:9100                                  a sink: PUT/POST -> "size sha256"
      iperf3 -s 127.0.0.1:5203, a TCP echo 127.0.0.1:7007        dnsmasq 10.82.0.1:53: files.px2 -> 10.82.0.1
      curl, python clients                                       a UDP echo 10.82.0.1:9999
      veth va 192.0.2.1  <-------- UDP, WireGuard (badnet on both ends' OUTPUT, for one test) -------->  veth vb

Each test prints its figures as ``figure: ...`` lines (pytest -s shows them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from wgpy.core.crypto import PrivateKey

from ..netns import Hosts, require, wait_for
from .proxy_scripts import SOCKS_UDP_CLIENT, TCP_ECHO
from .reliability import bad_network

ROOT = Path(__file__).resolve().parents[2]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
BLOB_SIZE = 50 * 1024 * 1024
FAR, NEAR = "10.82.0.1", "10.82.0.2"

SINK = """
import hashlib, http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        left = length = int(self.headers["Content-Length"])
        digest = hashlib.sha256()
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        body = f"{length - left} {digest.hexdigest()}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_PUT
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Sink).serve_forever()
"""
UDP_ECHO = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, source = sock.recvfrom(65535)
    sock.sendto(b"echo:" + data, source)
"""
# A SOCKS5 client that asks for the blob and then reads nothing: the proxy's buffers toward it fill.
STALLER = """
import socket, sys, time
sock = socket.create_connection(("127.0.0.1", 1080), timeout=10)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
sock.sendall(b"\\x05\\x01\\x00")
assert sock.recv(2) == b"\\x05\\x00"
sock.sendall(b"\\x05\\x01\\x00\\x03\\x09files.px2\\x1f\\x90")
assert sock.recv(10)[:2] == b"\\x05\\x00"
sock.sendall(b"GET /blob HTTP/1.0\\r\\nHost: files.px2\\r\\n\\r\\n")
print("stalling", flush=True)
sys.stdin.read()     # until the test closes our stdin; never a byte read from the proxy
"""
# Bad input, each on its own connection; prints what came back to each.
GARBAGE = """
import json, os, socket
def ask(port, data):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    answer = b""
    try:
        while chunk := sock.recv(4096):
            answer += chunk
    except (socket.timeout, ConnectionError):
        pass
    sock.close()
    return answer.hex()
print(json.dumps({
    "socks4": ask(1080, b"\\x04\\x01\\x00\\x50\\x0a\\x52\\x00\\x01user\\x00"),
    "socks_bind": ask(1080, b"\\x05\\x01\\x00" + b"\\x05\\x02\\x00\\x01\\x0a\\x52\\x00\\x01\\x00\\x50"),
    "socks_bad_atyp": ask(1080, b"\\x05\\x01\\x00" + b"\\x05\\x01\\x00\\x07\\x00\\x50"),
    "http_on_socks": ask(1080, b"GET / HTTP/1.1\\r\\n\\r\\n"),
    "http_garbage": ask(3128, b"\\x00\\xff garbage\\r\\n\\r\\n"),
    "http_bad_field": ask(3128, b"CONNECT files.px2:8080 HTTP/1.1\\r\\nHost : x\\r\\n\\r\\n"),
    "http_random": ask(3128, os.urandom(2000) + b"\\r\\n\\r\\n"),
}))
"""
# SYN segments from spoofed tunnel addresses (inside the peer's allowed IPs, so cryptokey routing lets
# them in); their SYN,ACKs go to addresses nobody holds, so every one stays half-open in the proxy's stack.
SYN_FLOOD = """
import socket, struct, sys, time
destination, port, count, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def checksum(data):
    data += bytes(len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
start = time.monotonic()
for n in range(count):
    source = "10.82.0.%d" % (100 + n % 100)
    tcp = struct.pack("!HHIIBBHHH", 20000 + n // 100, port, n * 7919, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(source) + socket.inet_aton(destination) + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), n & 0xFFFF, 0, 64, 6, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    raw.sendto(header + tcp, (destination, 0))
    time.sleep(max(0.0, start + (n + 1) / rate - time.monotonic()))
print(count, round(time.monotonic() - start, 2), flush=True)
"""
# One ordinary connection from the far kernel to the reverse port: 64 KiB out and back, by sha256.
ECHO_CLIENT = """
import hashlib, os, socket, sys, threading, time
data = os.urandom(64 * 1024)
start = time.monotonic()
connection = socket.create_connection((sys.argv[1], 8022), timeout=float(sys.argv[2]))
threading.Thread(target=lambda: (connection.sendall(data), connection.shutdown(socket.SHUT_WR))).start()
received = b"".join(iter(lambda: connection.recv(65536), b""))
print(len(received), hashlib.sha256(received).digest() == hashlib.sha256(data).digest(),
      round(time.monotonic() - start, 2))
"""


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def figure(text: str) -> None:
    print(f"figure: {text}")


class World:
    def __init__(self, hosts: Hosts, work: Path, far: str) -> None:
        self.hosts, self.work, self.far = hosts, work, far
        self.interface = "px2g0" if far == "wireguard-go" else "px2w0"
        self.blob = work / "www" / "blob"
        self.blob_sha = ""
        self.proxy_key, self.far_key = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom)
        self.config = work / "px2.conf"
        self.proxy: subprocess.Popen | None = None
        self.log = work / "proxy.log"

    def start(self) -> None:
        hosts, a, b, name = self.hosts, self.hosts.a, self.hosts.b, self.interface
        if self.far == "wireguard-go":
            hosts.start_wireguard_go(b, name, log=self.work / "far.log")
        else:
            hosts.start_wgpy(b, name, log=self.work / "far.log")
        key_file = self.work / "far.key"
        key_file.write_text(b64(self.far_key.private_bytes()))
        key_file.chmod(0o600)
        hosts.wg(b, "set", name, "private-key", str(key_file), "listen-port", "51882", "peer",
                 b64(self.proxy_key.public), "allowed-ips", f"{NEAR}/32")
        hosts.ip(b, "addr", "add", f"{FAR}/24", "dev", name)
        hosts.ip(b, "link", "set", name, "up")
        (self.work / "www").mkdir()
        (self.work / "www" / "small").write_bytes(os.urandom(1024))
        digest = hashlib.sha256()
        with open(self.blob, "wb") as file:
            for _ in range(BLOB_SIZE // (1 << 20)):
                chunk = os.urandom(1 << 20)
                digest.update(chunk)
                file.write(chunk)
        self.blob_sha = digest.hexdigest()
        hosts.spawn(b, sys.executable, "-m", "http.server", "--bind", FAR, "--directory", str(self.work / "www"), "8080")
        hosts.spawn(b, sys.executable, "-c", SINK, FAR, "8090")
        hosts.spawn(b, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--bind-interfaces", f"--listen-address={FAR}", f"--address=/files.px2/{FAR}",
                    f"--pid-file={self.work / 'dnsmasq.pid'}", "--log-queries", "--log-facility=-",
                    log=self.work / "dnsmasq.log")
        hosts.spawn(b, sys.executable, "-c", UDP_ECHO, FAR, "9999")
        hosts.spawn(b, "iperf3", "-s", "-B", FAR, "-p", "5201")
        hosts.spawn(a, "iperf3", "-s", "-B", "127.0.0.1", "-p", "5203")
        hosts.spawn(a, sys.executable, "-c", TCP_ECHO)
        wait_for(lambda: all(f"{FAR}:{port}" in hosts.run(b, "ss", "-ltn").stdout for port in (8080, 8090, 5201)),
                 "the far servers")
        wait_for(lambda: f"{FAR}:53" in hosts.run(b, "ss", "-lun").stdout, "dnsmasq")
        self.config.write_text(
            f"[Interface]\nPrivateKey = {b64(self.proxy_key.private_bytes())}\nAddress = {NEAR}/24\n"
            f"DNS = {FAR}\n[Peer]\nPublicKey = {b64(self.far_key.public)}\nEndpoint = 192.0.2.2:51882\n"
            f"AllowedIPs = 10.82.0.0/24\nPersistentKeepalive = 25\n")
        os.chown(self.config, 65534, 65534)
        self.config.chmod(0o600)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("XDG_RUNTIME_DIR", None)
        self.proxy = hosts.spawn(a, *NOBODY, sys.executable, "-m", "wgpy", "proxy", str(self.config), "-v",
                                 "--socks5", "127.0.0.1:1080", "--http", "127.0.0.1:3128", "--health", "127.0.0.1:9100",
                                 "--forward", f"tcp:127.0.0.1:5202:{FAR}:5201", "--reverse", "tcp:5203:127.0.0.1:5203",
                                 "--reverse", "tcp:8022:127.0.0.1:7007", env=env, log=self.log)
        wait_for(lambda: "127.0.0.1:9100" in hosts.run(a, "ss", "-ltn").stdout or self.proxy.poll() is not None,
                 "the proxy's listeners", timeout=20)
        assert self.proxy.poll() is None, self.log.read_text()

    def curl(self, *args: str, max_time: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.hosts.a, "curl", "--silent", "--show-error",
                               "--max-time", str(max_time), *args], capture_output=True, timeout=max_time + 30)

    def in_a(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.hosts.run(self.hosts.a, *command, check=False, timeout=timeout)

    def in_b(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.hosts.run(self.hosts.b, *command, check=False, timeout=timeout)

    def fetch(self, max_time: float = 60, via: str = "socks5") -> tuple[subprocess.CompletedProcess, float]:
        """The blob by name through the proxy, to a file; returns (curl, seconds)."""
        out = self.work / "fetched"
        proxy = ("--socks5-hostname", "127.0.0.1:1080") if via == "socks5" else ("--proxytunnel", "--proxy", "http://127.0.0.1:3128")
        start = time.monotonic()
        result = self.curl(*proxy, "--output", str(out), f"http://files.px2:8080/blob", max_time=max_time)
        return result, time.monotonic() - start

    def fetched_sha(self) -> str:
        digest = hashlib.sha256()
        with open(self.work / "fetched", "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
        (self.work / "fetched").unlink()
        return digest.hexdigest()

    def transfer(self) -> tuple[int, int]:
        """What the far side has received from and sent to the proxy's peer (``wg show IFACE transfer``)."""
        shown = self.hosts.wg(self.hosts.b, "show", self.interface, "transfer").stdout
        line = next(line for line in shown.splitlines() if line.startswith(b64(self.proxy_key.public)))
        return int(line.split()[1]), int(line.split()[2])

    def far_connections(self, port: int) -> int:
        """Established TCP connections to the far namespace's server on ``port``."""
        shown = self.in_b("ss", "-Htn", "state", "established", f"( sport = :{port} )").stdout
        return len(shown.splitlines())

    def proxy_rss(self) -> int:
        status = Path(f"/proc/{self.proxy.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024

    def metrics(self) -> dict[tuple[str, str], int]:
        """``/metrics``' drops: (layer, reason) -> count."""
        text = self.curl("http://127.0.0.1:9100/metrics").stdout.decode()
        return {(m[1], m[2]): int(m[3]) for m in re.finditer(r'wgpy_drops_total\{layer="(\w+)",reason="(\w+)"\} (\d+)', text)}


@pytest.fixture(scope="module", params=["wireguard-go", "wgpy"])
def world(request):
    require("ip", "wg", "wireguard-go", "ss", "setpriv", "curl", "dnsmasq", "iperf3", "iptables")
    work = Path(tempfile.mkdtemp(prefix="px2-"))
    work.chmod(0o755)   # nobody reads its configuration from here
    hosts = Hosts("px2")
    hosts.a, hosts.b = "px2-a", "px2-b"
    try:
        with hosts:
            world = World(hosts, work, request.param)
            world.start()
            yield world
            assert world.proxy.poll() is None, "the proxy died"
            log = world.log.read_text()
            print(f"proxy log (tail):\n{log[-3000:]}")
            # Nothing the tests did was a bug of the proxy's, the tunnel's or the stack's.
            assert "Traceback" not in log and world.metrics().get(("proxy", "internal_error"), 0) == 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rate(size: int, seconds: float) -> str:
    return f"{size / 2**20:.0f} MiB in {seconds:.2f} s ({size * 8 / seconds / 1e6:.1f} Mbit/s)"


def test_no_privilege_no_tun(world):
    pid = world.proxy.pid   # ip netns exec execs setpriv, which execs python: one pid throughout
    status = Path(f"/proc/{pid}/status").read_text()
    assert next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:] == ["65534"] * 4
    assert next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1] == "0" * 16
    assert next(line for line in status.splitlines() if line.startswith("CapPrm:")).split()[1] == "0" * 16
    opened = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert opened and not any("tun" in target for target in opened), opened
    assert "tun" not in world.in_a("ip", "-d", "link").stdout


def test_50_mib_download_by_name_through_socks5(world):
    before = world.transfer()
    result, seconds = world.fetch()
    assert result.returncode == 0, result.stderr
    assert world.fetched_sha() == world.blob_sha
    received, sent = (after - before for after, before in zip(world.transfer(), before))
    assert sent > BLOB_SIZE   # it did come through WireGuard: the far side's counter for the proxy's peer
    assert "files.px2" in (world.work / "dnsmasq.log").read_text()   # asked inside the tunnel
    figure(f"[{world.far}] download, curl --socks5-hostname: {rate(BLOB_SIZE, seconds)}")


def test_50_mib_upload_through_the_http_proxy(world):
    before = world.transfer()
    start = time.monotonic()
    result = world.curl("--proxytunnel", "--proxy", "http://127.0.0.1:3128", "-H", "Expect:", "-T", str(world.blob),
                        f"http://files.px2:8090/upload")
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split() == [str(BLOB_SIZE), world.blob_sha]
    received, sent = (after - before for after, before in zip(world.transfer(), before))
    assert received > BLOB_SIZE
    figure(f"[{world.far}] upload, curl -T through HTTP CONNECT: {rate(BLOB_SIZE, seconds)}")


def test_udp_associate_by_name(world):
    result = world.in_a(*NOBODY, sys.executable, "-c", SOCKS_UDP_CLIENT, "files.px2", "1")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["reply"].startswith("05000001")
    assert [bytes.fromhex(a)[10:] for a in found["answers"]] == [b"echo:datagram %d" % n for n in range(5)]


def test_iperf3_through_forward_and_reverse(world):
    forward = world.in_a("iperf3", "-c", "127.0.0.1", "-p", "5202", "-t", "3", "-J", timeout=40)
    assert forward.returncode == 0, forward.stdout[-2000:] + forward.stderr
    reverse = world.in_b("iperf3", "-c", NEAR, "-p", "5203", "-t", "3", "-J", timeout=40)
    assert reverse.returncode == 0, reverse.stdout[-2000:] + reverse.stderr
    for what, result in (("--forward, near to far", forward), ("--reverse, far to near", reverse)):
        end = json.loads(result.stdout)["end"]
        received = end["sum_received"]
        assert received["bytes"] > 1 << 20
        figure(f"[{world.far}] iperf3 {what}: {received['bytes'] / 2**20:.1f} MiB in {received['seconds']:.1f} s, "
               f"{received['bits_per_second'] / 1e6:.1f} Mbit/s, {end['sum_sent'].get('retransmits', 0)} retransmits")


def test_bad_clients_beside_a_big_transfer(world):
    """While the blob comes down: garbage to both proxies, a client killed mid-transfer, a client that
    reads nothing. Each bad one gets its error (or its close); the blob arrives whole."""
    before, descriptors = world.metrics(), len(os.listdir(f"/proc/{world.proxy.pid}/fd"))
    # Held to 15 MB/s, so that it surely runs through everything below (unlimited, it takes about a second).
    big = subprocess.Popen(["ip", "netns", "exec", world.hosts.a, "curl", "--silent", "--show-error", "--max-time", "90",
                            "--limit-rate", "15M", "--socks5-hostname", "127.0.0.1:1080", "--output", str(world.work / "fetched"),
                            "http://files.px2:8080/blob"], stderr=subprocess.PIPE)
    world.hosts.processes.append(big)
    staller = subprocess.Popen(["ip", "netns", "exec", world.hosts.a, sys.executable, "-c", STALLER],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    world.hosts.processes.append(staller)
    assert staller.stdout.readline().strip() == "stalling"
    start = time.monotonic()
    vanishers = []
    for _ in range(3):
        vanisher = subprocess.Popen(["ip", "netns", "exec", world.hosts.a, "curl", "--silent", "--limit-rate", "1M", "--socks5-hostname",
                                     "127.0.0.1:1080", "--output", "/dev/null", "http://files.px2:8080/blob"])
        world.hosts.processes.append(vanisher)
        vanishers.append(vanisher)
    garbage = world.in_a(sys.executable, "-c", GARBAGE)
    assert garbage.returncode == 0, garbage.stderr
    time.sleep(0.5)
    wait_for(lambda: world.far_connections(8080) == 5, "five transfers from the far server at once", 10)
    for vanisher in vanishers:
        assert vanisher.poll() is None     # still in the middle of its 50 MiB
        vanisher.send_signal(signal.SIGKILL)   # curl gone mid-transfer, its socket reset
        vanisher.wait()
    assert big.poll() is None, "the big transfer ended before the bad clients were done"
    answers = {key: bytes.fromhex(value) for key, value in json.loads(garbage.stdout).items()}
    assert answers["socks4"] in (b"", b"\x05\xff")                     # not SOCKS5: refused, closed
    assert answers["socks_bind"] == b"\x05\x00" + b"\x05\x07\x00\x01" + bytes(6)   # command not supported
    assert answers["socks_bad_atyp"] == b"\x05\x00" + b"\x05\x08\x00\x01" + bytes(6)
    assert answers["http_on_socks"] in (b"", b"\x05\xff")
    for key in ("http_garbage", "http_bad_field", "http_random"):
        assert re.match(rb"HTTP/1\.1 (400|405|431|505) ", answers[key]), (key, answers[key][:200])
    assert big.wait(timeout=100) == 0, big.stderr.read()
    seconds = time.monotonic() - start
    assert world.fetched_sha() == world.blob_sha
    assert world.proxy.poll() is None
    # The staller still holds its connection; the proxy still serves others.
    ok = world.curl("--socks5-hostname", "127.0.0.1:1080", "http://files.px2:8080/small")
    assert ok.returncode == 0 and len(ok.stdout) == 1024, ok.stderr
    # Upstream, through the tunnel: the killed clients' connections are gone, the staller's is held.
    wait_for(lambda: world.far_connections(8080) == 1, "only the staller's connection to the far server", 10)
    rss = world.proxy_rss()
    staller.stdin.close()
    staller.wait(timeout=10)
    wait_for(lambda: world.far_connections(8080) == 0, "the staller's connection to go, upstream too", 10)
    wait_for(lambda: len(os.listdir(f"/proc/{world.proxy.pid}/fd")) == descriptors, "the proxy's descriptors back", 10)
    after = world.metrics()
    grown = {key[1]: count - before.get(key, 0) for key, count in after.items()
             if key[0] == "proxy" and count > before.get(key, 0)}
    assert grown.get("wrong_version", 0) >= 2, grown           # socks4 and HTTP on the SOCKS port
    assert grown.get("command_not_supported", 0) >= 1 and grown.get("address_type_not_supported", 0) >= 1, grown
    assert sum(grown.get(r, 0) for r in ("bad_request_line", "bad_field", "bad_version", "method_not_allowed",
                                          "head_too_large")) >= 3, grown
    figure(f"[{world.far}] 50 MiB beside bad clients (curl --limit-rate 15M): {rate(BLOB_SIZE, seconds)}; proxy refusals counted: {grown}; "
           f"proxy RSS with the staller held: {rss / 2**20:.0f} MiB")


# A thousand clients that connect and say nothing; then one more on each proxy port, answered at once.
SILENT_CROWD = """
import json, socket, sys, time
crowd = [socket.create_connection(("127.0.0.1", 1080), timeout=10) for _ in range(int(sys.argv[1]))]
time.sleep(0.5)
answers = {}
for port, hello in ((1080, b"\\x05\\x01\\x00"), (3128, b"CONNECT files.px2:8080 HTTP/1.1\\r\\n\\r\\n")):
    late = socket.create_connection(("127.0.0.1", port), timeout=10)
    late.sendall(hello)
    answers[port] = late.recv(200).hex()
    late.close()
print(json.dumps(answers), flush=True)
sys.stdin.read()
"""


def test_a_silent_crowd_fills_the_proxy_and_the_next_client_is_told(world):
    """MAX_CLIENTS (1000) connections that send nothing: the next client gets SOCKS5's "no acceptable
    methods" or HTTP 503 at once, not a hang; the forwards, outside that limit, still work; when the
    crowd goes, clients are served again."""
    before = world.metrics()
    crowd = subprocess.Popen(["ip", "netns", "exec", world.hosts.a, sys.executable, "-c", SILENT_CROWD, "1000"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    world.hosts.processes.append(crowd)
    answers = {int(port): bytes.fromhex(value) for port, value in json.loads(crowd.stdout.readline()).items()}
    assert answers[1080] == b"\x05\xff"
    assert answers[3128].startswith(b"HTTP/1.1 503 ")
    forwarded = world.in_a("iperf3", "-c", "127.0.0.1", "-p", "5202", "-t", "1", "-J", timeout=30)
    assert forwarded.returncode == 0, forwarded.stdout[-1000:]
    crowd.stdin.close()
    crowd.wait(timeout=10)
    wait_for(lambda: world.curl("--socks5-hostname", "127.0.0.1:1080", "http://files.px2:8080/small").returncode == 0,
             "the proxy to serve again", 10)
    grown = world.metrics().get(("proxy", "too_many_clients"), 0) - before.get(("proxy", "too_many_clients"), 0)
    assert grown >= 2     # the two above, and any retry of the wait while the crowd was leaving


# From the far namespace: connections to the reverse port, 100 at a time (within the backlog), held open.
TUNNEL_CROWD = """
import json, selectors, socket, sys, time
address, count = sys.argv[1], int(sys.argv[2])
held, selector = [], selectors.DefaultSelector()
for first in range(0, count, 100):
    batch = []
    for _ in range(min(100, count - first)):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((address, 8022))
        selector.register(sock, selectors.EVENT_WRITE)
        batch.append(sock)
    waiting, deadline = len(batch), time.monotonic() + 20
    while waiting and time.monotonic() < deadline:
        for key, _ in selector.select(1):
            selector.unregister(key.fileobj)
            waiting -= 1
    held += batch
connected = sum(1 for sock in held if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
time.sleep(1)
# The proxy closes what it could not admit: those read EOF.
closed = 0
for sock in held:
    try:
        closed += sock.recv(1) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print(json.dumps({"connected": connected, "closed": closed}), flush=True)
sys.stdin.read()
"""


def test_a_crowd_from_the_tunnel_does_not_take_this_hosts_places(world):
    """1050 connections from the far side to a --reverse port, held: the 50 past MAX_CLIENTS are closed
    and counted apart (too_many_tunnel_clients), and this host's SOCKS5 clients are still served."""
    before = world.metrics()
    crowd = subprocess.Popen(["ip", "netns", "exec", world.hosts.b, sys.executable, "-c", TUNNEL_CROWD, NEAR, "1050"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    world.hosts.processes.append(crowd)
    found = json.loads(crowd.stdout.readline())
    result, seconds = world.fetch()
    assert result.returncode == 0, result.stderr
    assert world.fetched_sha() == world.blob_sha
    crowd.stdin.close()
    crowd.wait(timeout=20)
    grown = {key[1]: count - before.get(key, 0) for key, count in world.metrics().items()
             if key[0] == "proxy" and count > before.get(key, 0)}
    assert found == {"connected": 1050, "closed": 50}, found
    assert grown.get("too_many_tunnel_clients") == 50 and "too_many_clients" not in grown, grown
    figure(f"[{world.far}] 1050 connections held from the tunnel; meanwhile 50 MiB by SOCKS5: {rate(BLOB_SIZE, seconds)}")


def test_syn_flood_through_the_tunnel_leaves_the_reverse_port_usable(world):
    """2000 SYNs from spoofed tunnel addresses at 1000/s to the reverse port (whose backlog is 128):
    an ordinary connection made during the flood and one made after it both work."""
    before = world.metrics()
    flood = subprocess.Popen(["ip", "netns", "exec", world.hosts.b, sys.executable, "-c", SYN_FLOOD, NEAR, "8022",
                              "2000", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    world.hosts.processes.append(flood)
    time.sleep(0.5)
    during = world.in_b(sys.executable, "-c", ECHO_CLIENT, NEAR, "10", timeout=30)
    out, err = flood.communicate(timeout=30)
    assert flood.returncode == 0, err
    after = world.in_b(sys.executable, "-c", ECHO_CLIENT, NEAR, "10", timeout=30)
    assert during.stdout.split()[:2] == [str(64 * 1024), "True"], (during.stdout, during.stderr[-500:])
    assert after.stdout.split()[:2] == [str(64 * 1024), "True"], (after.stdout, after.stderr[-500:])
    drops = {key[1]: count - before.get(key, 0) for key, count in world.metrics().items()
             if key[0] == "stack" and count > before.get(key, 0)}
    assert drops.get("SYN_BACKLOG_STALE_DROPPED", 0) > 1500, drops    # the flood did reach the stack
    assert world.proxy.poll() is None
    figure(f"[{world.far}] SYN flood {out.split()[0]} SYNs in {out.split()[1]} s: echo during it took "
           f"{during.stdout.split()[2]} s, after it {after.stdout.split()[2]} s; stack drops {drops}")


def test_50_mib_through_a_bad_network(world):
    """2 % loss, 1 % duplicates, 10 % reordered, 2 ms delay (±1 ms), on what leaves either namespace."""
    impairment = dict(loss=0.02, duplicate=0.01, reorder=0.1, delay=0.002, jitter=0.001)
    with bad_network(world.hosts, world.hosts.a, "va", 27, seed=1, **impairment) as near, \
            bad_network(world.hosts, world.hosts.b, "vb", 28, seed=2, **impairment) as far:
        result, seconds = world.fetch(max_time=100)
    assert result.returncode == 0, result.stderr
    assert world.fetched_sha() == world.blob_sha
    assert far["dropped"] > 0 and near["dropped"] > 0
    figure(f"[{world.far}] download over badnet: {rate(BLOB_SIZE, seconds)}; near side {near}; far side {far}")


def test_upload_through_a_bad_network(world):
    """The same impairment, the other way: the proxy's own TCP (NewReno with SACK, no RACK or TLP:
    docs/netstack.md) sends into the loss. 10 MiB, not 50: 50 MiB took 50 to 80 s here (the kernel's
    TCP brings the 50 MiB down in about 5 s), which would double this file's time."""
    size = 10 * 1024 * 1024
    upload = world.work / "upload"
    with open(world.blob, "rb") as source:
        upload.write_bytes(source.read(size))
    impairment = dict(loss=0.02, duplicate=0.01, reorder=0.1, delay=0.002, jitter=0.001)
    with bad_network(world.hosts, world.hosts.a, "va", 27, seed=3, **impairment) as near, \
            bad_network(world.hosts, world.hosts.b, "vb", 28, seed=4, **impairment) as far:
        start = time.monotonic()
        result = world.curl("--socks5-hostname", "127.0.0.1:1080", "-H", "Expect:", "-T", str(upload),
                            "http://files.px2:8090/upload", max_time=60)
        seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split() == [str(size), sha(upload.read_bytes())]
    assert far["dropped"] > 0 and near["dropped"] > 0
    figure(f"[{world.far}] upload over badnet: {rate(size, seconds)}; near side {near}; far side {far}")
