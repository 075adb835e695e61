"""wgpy.Tunnel against the kernel's TCP/IP behind wireguard-go: each call of the library, live.

    ns tnl-a: wireguard-go, interface tnl0 10.77.0.1/24     ns tnl-b: no WireGuard interface, no TUN:
      route 198.18.77.0/24 dev tnl0                            the Tunnel in a Python process, 10.77.0.2
      python3 -m http.server 10.77.0.1:8080 (a 3 MiB blob)     (tests/interop/tunnel_client.py)
      ncat echo 10.77.0.1:7, a UDP echo 10.77.0.1:9999
      veth 192.0.2.1  <--------------- UDP, WireGuard --------------->  veth 192.0.2.2

One check per client run; the http one also as the unprivileged user ``nobody`` (setpriv), which proves
that the library needs no root: the client process has no capability and there is no TUN in tnl-b.
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

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).resolve().parent / "tunnel_client.py"
NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
UDP_ECHO = """
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("10.77.0.1", 9999))
while True:
    data, source = sock.recvfrom(65535)
    sock.sendto(data, source)
"""


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Far:
    """The namespaces, wireguard-go and the kernel's servers; the Tunnel's configuration file."""

    def __init__(self, hosts: Hosts, work: Path) -> None:
        self.hosts, self.work = hosts, work
        self.blob = os.urandom(3 * 1024 * 1024 + 17)
        self.tunnel_key, self.far_key = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom)
        self.config = work / "tnl.conf"

    def start(self) -> None:
        hosts, a = self.hosts, self.hosts.a
        hosts.start_wireguard_go(a, "tnl0", log=self.work / "wireguard-go.log")
        key_file = self.work / "far.key"
        key_file.write_text(b64(self.far_key.private_bytes()))
        key_file.chmod(0o600)
        hosts.wg(a, "set", "tnl0", "private-key", str(key_file), "listen-port", "51877", "peer",
                 b64(self.tunnel_key.public), "allowed-ips", "10.77.0.2/32,198.18.77.0/24")
        hosts.ip(a, "addr", "add", "10.77.0.1/24", "dev", "tnl0")
        hosts.ip(a, "link", "set", "tnl0", "up")
        hosts.ip(a, "route", "add", "198.18.77.0/24", "dev", "tnl0")
        (self.work / "www").mkdir()
        (self.work / "www" / "blob").write_bytes(self.blob)
        hosts.spawn(a, sys.executable, "-m", "http.server", "--bind", "10.77.0.1", "--directory",
                    str(self.work / "www"), "8080")
        hosts.spawn(a, "ncat", "-l", "-k", "10.77.0.1", "7", "--exec", "/bin/cat")
        hosts.spawn(a, sys.executable, "-c", UDP_ECHO)
        for port in ("8080", "7"):
            wait_for(lambda: f"10.77.0.1:{port}" in hosts.run(a, "ss", "-ltn").stdout, f"a server on port {port}")
        self.config.write_text(
            f"[Interface]\nPrivateKey = {b64(self.tunnel_key.private_bytes())}\nAddress = 10.77.0.2/24\n"
            f"[Peer]\nPublicKey = {b64(self.far_key.public)}\nEndpoint = 192.0.2.1:51877\n"
            f"AllowedIPs = 10.77.0.0/24\nPersistentKeepalive = 25\n")
        os.chown(self.config, 65534, 65534)   # nobody's own key file, readable by nobody else
        self.config.chmod(0o600)

    def client(self, check: str, *args: str, as_nobody: bool = False, timeout: float = 90) -> list[dict]:
        command = [*(NOBODY if as_nobody else []), sys.executable, str(CLIENT), str(self.config), check, *args]
        result = self.hosts.run(self.hosts.b, *command, timeout=timeout, check=False,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert result.returncode == 0, f"{check}: {result.stdout}{result.stderr}"
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def far():
    require("ip", "wg", "wireguard-go", "ncat", "ss", "setpriv")
    work = Path(tempfile.mkdtemp(prefix="tnl-"))
    work.chmod(0o755)   # nobody reads the client program's configuration from here
    hosts = Hosts("tnl")
    hosts.a, hosts.b = "tnl-a", "tnl-b"
    try:
        with hosts:
            far = Far(hosts, work)
            far.start()
            yield far
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_http_get_of_a_kernel_server_through_open_connection(far):
    lines = far.client("http", "10.77.0.1", "8080")
    assert lines[-2] == {"status": "200", "size": len(far.blob), "sha256": hashlib.sha256(far.blob).hexdigest()}
    assert lines[-1] == {"bugs": 0}


@pytest.mark.parametrize("check", ["udp", "http"])
def test_as_nobody_without_root(far, check):
    if not _nobody_can_run():
        pytest.fail(f"user nobody cannot run {sys.executable}: the test needs an interpreter it can read")
    if check == "udp":
        lines = far.client("udp", "10.77.0.1", "9999", as_nobody=True)
        assert lines[-2] == {"answered": 5, "all_same": True}
    else:
        lines = far.client("http", "10.77.0.1", "8080", as_nobody=True)
        assert lines[-2]["sha256"] == hashlib.sha256(far.blob).hexdigest()
    assert lines[0]["uid"] == 65534 and lines[-1] == {"bugs": 0}


def _nobody_can_run() -> bool:
    result = subprocess.run([*NOBODY, sys.executable, "-c", "import cryptography"], capture_output=True)
    return result.returncode == 0


def test_echo_through_ncat(far):
    lines = far.client("echo", "10.77.0.1", "7")
    assert lines[-2] == {"sent": 256 * 1024, "received": 256 * 1024, "same": True}


def test_udp_echo(far):
    lines = far.client("udp", "10.77.0.1", "9999")
    assert lines[-2] == {"answered": 5, "all_same": True}


def test_socket_connection_with_http_client(far):
    lines = far.client("socket", "10.77.0.1", "8080")
    assert lines[-2] == {"status": "200", "size": len(far.blob), "sha256": hashlib.sha256(far.blob).hexdigest()}


def test_transparent_server_reached_by_the_kernel_at_any_routed_address(far):
    """The kernel in tnl-a connects to addresses of 198.18.77.0/24, which route into tnl0 and to the
    Tunnel's peer; the Tunnel accepts them all and sees each original destination. The kernel's ping to
    the Tunnel's own address is answered by the stack meanwhile."""
    hosts = far.hosts
    command = ["ip", "netns", "exec", hosts.b, sys.executable, str(CLIENT), str(far.config), "transparent", "3"]
    client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    hosts.processes.append(client)
    try:
        assert json.loads(client.stdout.readline())["started"]
        assert json.loads(client.stdout.readline())["ready"]
        assert hosts.ping(hosts.a, "10.77.0.2", count=2)
        answers = []
        for destination, port in (("198.18.77.5", "4444"), ("198.18.77.200", "80"), ("10.77.0.2", "22")):
            result = hosts.run(hosts.a, "ncat", "-w", "10", destination, port, input="hello from the kernel\n",
                               timeout=30)
            answers.append(result.stdout.strip())
        assert answers == [f"tunnel saw {d} {p} hello from the kernel" for d, p in
                           (("198.18.77.5", 4444), ("198.18.77.200", 80), ("10.77.0.2", 22))]
        out, err = client.communicate(timeout=30)
        assert client.returncode == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert lines[0] == {"seen": [["198.18.77.5", 4444], ["198.18.77.200", 80], ["10.77.0.2", 22]]}
        assert lines[-1] == {"bugs": 0}
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
