"""wgpy proxy, run by nobody, against wireguard-go and the kernel's servers: real clients, live.

    ns prx-a: no WireGuard interface, no TUN                ns prx-b: wireguard-go, prx0 10.78.0.1/24 fd78::1/64
      wgpy proxy prx.conf as nobody (10.78.0.2, fd78::2):     python3 -m http.server on both, port 8080 (a blob)
        --socks5 127.0.0.1:1080 --http 127.0.0.1:3128          dnsmasq 10.78.0.1:53: files.prx -> 10.78.0.1,
                                                                 six.prx -> fd78::1 (AAAA only)
        --forward tcp:127.0.0.1:8081:files.prx:8080            a UDP echo 10.78.0.1:9999
        --reverse tcp:8022:127.0.0.1:7007                      (the kernel connects to 10.78.0.2:8022)
        --forward udp:127.0.0.1:9998:files.prx:9999            (and sends to 10.78.0.2:5300)
        --reverse udp:5300:127.0.0.1:7008
        --health 127.0.0.1:9100
      a TCP echo 127.0.0.1:7007, a UDP echo 127.0.0.1:7008 (the reverses' local services)
      curl, python clients
      veth 192.0.2.1  <--------------- UDP, WireGuard --------------->  veth 192.0.2.2

The proxy process is uid 65534 with no capability and there is no TUN in prx-a: everything it does is
an ordinary user's. Names are asked of dnsmasq through the tunnel (curl --socks5-hostname leaves them
to the proxy); the host's resolver never sees files.prx.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from wgpy.core.crypto import PrivateKey

from ..netns import Hosts, require, wait_for
from .proxy_scripts import SOCKS_UDP_CLIENT, TCP_ECHO

ROOT = Path(__file__).resolve().parents[2]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
UDP_ECHO = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], int(sys.argv[2])))
while True:
    data, source = sock.recvfrom(65535)
    sock.sendto(b"echo:" + data, source)
"""
UDP_CLIENT = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(1)
sock.connect((sys.argv[1], int(sys.argv[2])))
answers = []
for n in range(5):
    for attempt in range(5):
        sock.send(b"u%d" % n)
        try:
            answers.append(sock.recv(100).decode())
            break
        except socket.timeout:
            pass
print(" ".join(answers))
"""
# 256 KiB to the reverse port and back; the client half-closes at once (ncat --exec cat would drop the answer).
REVERSE_CLIENT = """
import hashlib, os, socket, threading
data = os.urandom(256 * 1024)
connection = socket.create_connection(("10.78.0.2", 8022), timeout=30)
threading.Thread(target=lambda: (connection.sendall(data), connection.shutdown(socket.SHUT_WR))).start()
received = b"".join(iter(lambda: connection.recv(65536), b""))
print(len(received), hashlib.sha256(received).hexdigest() == hashlib.sha256(data).hexdigest())
"""


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Setup:
    def __init__(self, hosts: Hosts, work: Path) -> None:
        self.hosts, self.work = hosts, work
        self.blob = os.urandom(16 * 1024 * 1024 + 7)
        self.proxy_key, self.far_key = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom)
        self.config = work / "prx.conf"
        self.proxy: subprocess.Popen | None = None
        self.log = work / "proxy.log"

    def start(self) -> None:
        hosts, a, b = self.hosts, self.hosts.a, self.hosts.b
        hosts.start_wireguard_go(b, "prx0", log=self.work / "wireguard-go.log")
        key_file = self.work / "far.key"
        key_file.write_text(b64(self.far_key.private_bytes()))
        key_file.chmod(0o600)
        hosts.wg(b, "set", "prx0", "private-key", str(key_file), "listen-port", "51878", "peer",
                 b64(self.proxy_key.public), "allowed-ips", "10.78.0.2/32,fd78::2/128")
        hosts.ip(b, "addr", "add", "10.78.0.1/24", "dev", "prx0")
        hosts.ip(b, "addr", "add", "fd78::1/64", "dev", "prx0", "nodad")
        hosts.ip(b, "link", "set", "prx0", "up")
        (self.work / "www").mkdir()
        (self.work / "www" / "blob").write_bytes(self.blob)
        for address in ("10.78.0.1", "fd78::1"):
            hosts.spawn(b, sys.executable, "-m", "http.server", "--bind", address, "--directory",
                        str(self.work / "www"), "8080")
        hosts.spawn(b, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                    "--bind-interfaces", "--listen-address=10.78.0.1", "--address=/files.prx/10.78.0.1", "--address=/six.prx/fd78::1",
                    f"--pid-file={self.work / 'dnsmasq.pid'}", "--log-queries", "--log-facility=-",
                    log=self.work / "dnsmasq.log")
        hosts.spawn(b, sys.executable, "-c", UDP_ECHO, "10.78.0.1", "9999")
        hosts.spawn(a, sys.executable, "-c", UDP_ECHO, "127.0.0.1", "7008")
        hosts.spawn(a, sys.executable, "-c", TCP_ECHO)
        wait_for(lambda: "10.78.0.1:8080" in hosts.run(b, "ss", "-ltn").stdout, "the http server")
        wait_for(lambda: "[fd78::1]:8080" in hosts.run(b, "ss", "-ltn").stdout, "the IPv6 http server")
        wait_for(lambda: "10.78.0.1:53" in hosts.run(b, "ss", "-lun").stdout, "dnsmasq")
        self.config.write_text(
            f"[Interface]\nPrivateKey = {b64(self.proxy_key.private_bytes())}\nAddress = 10.78.0.2/24, fd78::2/64\n"
            f"DNS = 10.78.0.1\n[Peer]\nPublicKey = {b64(self.far_key.public)}\nEndpoint = 192.0.2.2:51878\n"
            f"AllowedIPs = 10.78.0.0/24, fd78::/64\nPersistentKeepalive = 25\n")
        os.chown(self.config, 65534, 65534)   # nobody's own key file, readable by nobody else
        self.config.chmod(0o600)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("XDG_RUNTIME_DIR", None)
        self.proxy = hosts.spawn(a, *NOBODY, sys.executable, "-m", "wgpy", "proxy", str(self.config), "-v",
                                 "--socks5", "127.0.0.1:1080", "--http", "127.0.0.1:3128", "--health", "127.0.0.1:9100",
                                 "--forward", "tcp:127.0.0.1:8081:files.prx:8080", "--reverse", "tcp:8022:127.0.0.1:7007",
                                 "--forward", "udp:127.0.0.1:9998:files.prx:9999", "--reverse", "udp:5300:127.0.0.1:7008",
                                 env=env, log=self.log)
        wait_for(lambda: "127.0.0.1:9100" in hosts.run(a, "ss", "-ltn").stdout or self.proxy.poll() is not None,
                 "the proxy's listeners", timeout=20)
        assert self.proxy.poll() is None, self.log.read_text()

    def in_a(self, *command: str, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        return self.hosts.run(self.hosts.a, *command, check=False, timeout=timeout, input=input)

    def wgpy_show(self) -> subprocess.CompletedProcess:
        # sys.executable directly after setpriv: nobody cannot exec it by itself (env, sh), since the
        # venv's interpreter is a link into /root, mode 0700; setpriv still holds its capabilities at exec.
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("XDG_RUNTIME_DIR", None)
        return self.hosts.run(self.hosts.a, *NOBODY, sys.executable, "-m", "wgpy", "show", "prx", check=False,
                              timeout=30, env=env)

    def curl(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(["ip", "netns", "exec", self.hosts.a, "curl", "--silent", "--show-error",
                                 "--max-time", "60", *args], capture_output=True, timeout=90)
        return result


@pytest.fixture(scope="module")
def setup():
    require("ip", "wg", "wireguard-go", "ncat", "ss", "setpriv", "curl", "dnsmasq")
    work = Path(tempfile.mkdtemp(prefix="prx-"))
    work.chmod(0o755)   # nobody reads its configuration from here
    hosts = Hosts("prx")
    hosts.a, hosts.b = "prx-a", "prx-b"
    try:
        with hosts:
            setup = Setup(hosts, work)
            setup.start()
            yield setup
            print(f"proxy log:\n{setup.log.read_text()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_proxy_runs_as_nobody_without_a_tun(setup):
    status = Path(f"/proc/{setup.proxy.pid}/status").read_text()
    # ip netns exec execs setpriv, which execs python: the same pid throughout.
    assert next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:] == ["65534"] * 4
    assert next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1] == "0" * 16
    assert "prx0" not in setup.in_a("ip", "link").stdout and "tun" not in setup.in_a("ip", "-d", "link").stdout


def test_udp_associate_by_name_through_the_tunnel(setup):
    result = setup.in_a(*NOBODY, sys.executable, "-c", SOCKS_UDP_CLIENT, "files.prx", "2", timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["reply"].startswith("05000001")
    answers = [bytes.fromhex(a) for a in found["answers"]]
    assert [a[10:] for a in answers] == [b"echo:datagram %d" % n for n in range(5)]
    assert all(a[:10] == bytes([0, 0, 0, 1, 10, 78, 0, 1]) + (9999).to_bytes(2, "big") for a in answers)
    assert "files.prx" in (setup.work / "dnsmasq.log").read_text()


def sent_to_proxy(setup) -> int:
    """What wireguard-go has sent the proxy's peer (wg show prx0 transfer: key, received, sent)."""
    shown = setup.hosts.wg(setup.hosts.b, "show", "prx0", "transfer").stdout
    return next(int(line.split()[2]) for line in shown.splitlines() if line.startswith(b64(setup.proxy_key.public)))


def test_curl_socks5_hostname_fetches_the_blob_with_its_sha256(setup):
    before = sent_to_proxy(setup)
    start = time.monotonic()
    result = setup.curl("--socks5-hostname", "127.0.0.1:1080", "http://files.prx:8080/blob")
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert sha(result.stdout) == sha(setup.blob)
    assert sent_to_proxy(setup) - before > len(setup.blob)     # it did come through WireGuard
    print(f"figure: curl --socks5-hostname through wgpy proxy: {len(setup.blob)} bytes in {seconds:.2f} s "
          f"({len(setup.blob) * 8 / seconds / 1e6:.1f} Mbit/s)")


def test_ipv6_inside_the_tunnel_by_name_and_by_address(setup):
    for url in ("http://six.prx:8080/blob", "http://[fd78::1]:8080/blob"):
        result = setup.curl("--socks5-hostname", "127.0.0.1:1080", url)
        assert result.returncode == 0 and sha(result.stdout) == sha(setup.blob), (url, result.stderr)
    connect = setup.curl("--proxytunnel", "--proxy", "http://127.0.0.1:3128", "http://[fd78::1]:8080/blob")
    assert connect.returncode == 0 and sha(connect.stdout) == sha(setup.blob), connect.stderr


def test_curl_through_the_http_proxy_with_connect(setup):
    result = setup.curl("--proxytunnel", "--proxy", "http://127.0.0.1:3128", "http://files.prx:8080/blob")
    assert result.returncode == 0, result.stderr
    assert sha(result.stdout) == sha(setup.blob)


def test_forward_and_reverse(setup):
    forwarded = setup.curl("http://127.0.0.1:8081/blob")
    assert forwarded.returncode == 0 and sha(forwarded.stdout) == sha(setup.blob), forwarded.stderr
    # The kernel in prx-b connects to the proxy's tunnel address; the proxy connects to ncat in prx-a.
    echoed = setup.hosts.run(setup.hosts.b, sys.executable, "-c", REVERSE_CLIENT, check=False, timeout=60)
    assert echoed.stdout.split() == [str(256 * 1024), "True"], echoed.stderr


def test_udp_forward_and_reverse(setup):
    forwarded = setup.in_a(sys.executable, "-c", UDP_CLIENT, "127.0.0.1", "9998", timeout=60)
    assert forwarded.stdout.split() == [f"echo:u{n}" for n in range(5)], forwarded.stderr
    reversed_ = setup.hosts.run(setup.hosts.b, sys.executable, "-c", UDP_CLIENT, "10.78.0.2", "5300", check=False,
                                timeout=60)
    assert reversed_.stdout.split() == [f"echo:u{n}" for n in range(5)], reversed_.stderr


def test_health_and_show_after_traffic(setup):
    ready = setup.curl("--write-out", "%{http_code}", "--output", "/dev/null", "http://127.0.0.1:9100/readyz")
    assert ready.stdout == b"200"
    metrics = setup.curl("http://127.0.0.1:9100/metrics").stdout.decode()
    peer = b64(setup.far_key.public)
    rx = next(int(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
              if line.startswith(f'wgpy_peer_receive_bytes_total{{public_key="{peer}"}}'))
    assert rx > 0
    shown = setup.wgpy_show()
    assert shown.returncode == 0, shown.stderr
    assert f"peer: {peer}" in shown.stdout and "latest handshake:" in shown.stdout
    assert "allowed ips: 10.78.0.0/24" in shown.stdout


def test_the_uapi_changes_peers_at_run_time_as_nobody(setup):
    new_peer = PrivateKey.generate(os.urandom).public
    socket_path = "/tmp/wgpy-65534/prx.sock"
    mode = os.stat(socket_path).st_mode & 0o777, os.stat(os.path.dirname(socket_path)).st_mode & 0o777
    assert mode == (0o600, 0o700)
    operation = f"set=1\npublic_key={new_peer.hex()}\nallowed_ip=10.79.0.0/24\n\n"
    answer = setup.in_a(*NOBODY, "ncat", "-U", socket_path, input=operation, timeout=10)
    assert answer.stdout == "errno=0\n\n", answer
    shown = setup.wgpy_show()
    assert f"peer: {b64(new_peer)}\n  allowed ips: 10.79.0.0/24" in shown.stdout


def test_the_tun_daemon_serves_the_same_health(setup):
    """``wgpy -f --health ADDR:PORT IFACE``: the poll-loop daemon answers /readyz and /metrics from its
    device: 503 before the first handshake, 200 after a ping through prx1 (10.78.0.3) to prx0."""
    hosts, a, b = setup.hosts, setup.hosts.a, setup.hosts.b
    key = PrivateKey.generate(os.urandom)
    key_file = setup.work / "daemon.key"
    key_file.write_text(b64(key.private_bytes()))
    key_file.chmod(0o600)
    hosts.interfaces.append("prx1")
    hosts.spawn(a, sys.executable, "-m", "wgpy", "-f", "--health", "127.0.0.1:9101", "prx1",
                env=dict(os.environ, PYTHONPATH=str(ROOT)), log=setup.work / "daemon.log")
    wait_for(lambda: Path("/var/run/wireguard/prx1.sock").exists(), "the daemon's UAPI socket")
    hosts.wg(a, "set", "prx1", "private-key", str(key_file), "peer", b64(setup.far_key.public),
             "endpoint", "192.0.2.2:51878", "allowed-ips", "10.78.0.1/32")
    hosts.wg(b, "set", "prx0", "peer", b64(key.public), "allowed-ips", "10.78.0.3/32")
    hosts.ip(a, "addr", "add", "10.78.0.3/32", "dev", "prx1")
    hosts.ip(a, "link", "set", "prx1", "up")
    hosts.ip(a, "route", "add", "10.78.0.1/32", "dev", "prx1")
    before = setup.curl("--write-out", "%{http_code}", "--output", "/dev/null", "http://127.0.0.1:9101/readyz")
    assert before.stdout == b"503", (before, (setup.work / "daemon.log").read_text())
    assert hosts.ping(a, "10.78.0.1")
    after = setup.curl("--write-out", "%{http_code}", "--output", "/dev/null", "http://127.0.0.1:9101/readyz")
    metrics = setup.curl("http://127.0.0.1:9101/metrics").stdout.decode()
    assert after.stdout == b"200"
    line = next(l for l in metrics.splitlines()
                if l.startswith(f'wgpy_peer_receive_bytes_total{{public_key="{b64(setup.far_key.public)}"}}'))
    assert int(line.rsplit(" ", 1)[1]) > 0
