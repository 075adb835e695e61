"""Real hosts for tests: network namespaces joined by a veth pair (as the kernel's tests/netns.sh does).

    ns "<prefix>a"  veth a: 192.0.2.1/24, 2001:db8::1/64  <---->  ns "<prefix>b"  veth b: 192.0.2.2/24, 2001:db8::2/64

Everything a test makes here is removed when the ``Hosts`` context exits: processes are killed, the
namespaces (and the interfaces in them) deleted, the UAPI sockets removed. Commands a test needs are
checked with :func:`require`: missing ones fail the test in CI and skip it elsewhere.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOCKETS = Path("/var/run/wireguard")
UNDERLAY = {"a": ("192.0.2.1", "2001:db8::1"), "b": ("192.0.2.2", "2001:db8::2")}
TUNNEL = {"a": ("198.18.0.1", "2001:db8:1::1"), "b": ("198.18.0.2", "2001:db8:1::2")}


def require(*commands: str) -> None:
    """Fail (in CI) or skip (elsewhere) unless every command exists and we may create namespaces."""
    missing = [c for c in commands if shutil.which(c) is None]
    problem = ""
    if missing:
        problem = f"missing commands: {', '.join(missing)} (install them: scripts/system-packages.sh)"
    elif os.geteuid() != 0:
        problem = "needs root for network namespaces and TUN devices"
    elif not os.path.exists("/dev/net/tun"):
        problem = "needs /dev/net/tun"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)


def wgpy_command() -> list[str]:
    return [sys.executable, "-m", "wgpy"]


class Hosts:
    """Two namespaces joined by a veth pair; a context manager that cleans up after itself."""

    def __init__(self, tag: str) -> None:
        self.prefix = f"wgpy{tag}{os.getpid() % 10000}"
        self.a, self.b = f"{self.prefix}a", f"{self.prefix}b"
        self.processes: list[subprocess.Popen] = []
        self.interfaces: list[str] = []
        self.extra_namespaces: list[str] = []  # made by a test; removed with the others

    def __enter__(self) -> "Hosts":
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            sh("ip", "netns", "add", ns)
            self.ip(ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "va", "netns", self.a, "type", "veth", "peer", "name", "vb", "netns", self.b)
        for ns, side, veth in ((self.a, "a", "va"), (self.b, "b", "vb")):
            v4, v6 = UNDERLAY[side]
            self.ip(ns, "addr", "add", f"{v4}/24", "dev", veth)
            self.ip(ns, "addr", "add", f"{v6}/64", "dev", veth, "nodad")
            self.ip(ns, "link", "set", veth, "up")
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for ns in (self.a, self.b, *self.extra_namespaces):
            for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for name in self.interfaces:
            subprocess.run(["ip", "link", "del", name], capture_output=True)
            (SOCKETS / f"{name}.sock").unlink(missing_ok=True)

    # ---------------------------------------------------------------------------------------- helpers

    def ip(self, ns: str, *args: str) -> str:
        return sh("ip", "-n", ns, *args)

    def run(self, ns: str, *command: str, check: bool = True, timeout: float = 60, env: dict | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(["ip", "netns", "exec", ns, *command], capture_output=True, text=True,
                                timeout=timeout, env=env, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result

    def spawn(self, ns: str, *command: str, env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
        out = open(log, "w") if log else subprocess.DEVNULL
        process = subprocess.Popen(["ip", "netns", "exec", ns, *command], stdout=out, stderr=subprocess.STDOUT,
                                   env=env, cwd=ROOT)
        self.processes.append(process)
        return process

    def start_wgpy(self, ns: str, name: str, log: Path | None = None, foreground: bool = True) -> subprocess.Popen | None:
        """Run ``wgpy -f NAME`` in ``ns`` and wait for its UAPI socket."""
        self.interfaces.append(name)
        env = dict(os.environ, LOG_LEVEL="verbose", PYTHONPATH=str(ROOT))
        if foreground:
            process = self.spawn(ns, *wgpy_command(), "-f", name, env=env, log=log)
        else:
            # Without LOG_LEVEL the daemon lets go of our stdout, so run() returns when the launcher does.
            env.pop("LOG_LEVEL")
            self.run(ns, *wgpy_command(), name, env=env)
            process = None
        wait_for(lambda: (SOCKETS / f"{name}.sock").exists(), f"UAPI socket of {name}")
        return process

    def start_wireguard_go(self, ns: str, name: str, log: Path | None = None) -> subprocess.Popen:
        self.interfaces.append(name)
        env = dict(os.environ, LOG_LEVEL="verbose")
        process = self.spawn(ns, "wireguard-go", "-f", name, env=env, log=log)
        wait_for(lambda: (SOCKETS / f"{name}.sock").exists(), f"UAPI socket of {name}")
        return process

    def wg(self, ns: str, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(ns, "wg", *args, input=input, check=check)

    def ping(self, ns: str, address: str, count: int = 3, timeout: float = 15) -> bool:
        """True when ``address`` answers within ``timeout`` seconds (retrying while the handshake runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.run(ns, "ping", "-c", "1", "-W", "1", address, check=False)
            if result.returncode == 0:
                return self.run(ns, "ping", "-c", str(count), "-i", "0.2", "-W", "2", address, check=False).returncode == 0
        return False


def sh(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


SINK = """
import hashlib, socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])), family=socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
print("listening", flush=True)
connection, _ = server.accept()
digest, size = hashlib.sha256(), 0
while chunk := connection.recv(1 << 20):
    digest.update(chunk)
    size += len(chunk)
print(size, digest.hexdigest(), flush=True)
"""

SOURCE = """
import hashlib, os, socket, sys, time
size = int(sys.argv[3])
block = os.urandom(1 << 16)
digest = hashlib.sha256()
connection = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
start = time.monotonic()
sent = 0
while sent < size:
    chunk = block[: min(len(block), size - sent)]
    chunk = (sent // len(block)).to_bytes(8, "little") + chunk[8:] if len(chunk) > 8 else chunk
    connection.sendall(chunk)
    digest.update(chunk)
    sent += len(chunk)
connection.shutdown(socket.SHUT_WR)
connection.recv(1)
print(sent, digest.hexdigest(), time.monotonic() - start, flush=True)
"""


def tcp_transfer(hosts: Hosts, sender: str, receiver: str, address: str, size: int, port: int = 5301) -> tuple:
    """Send ``size`` bytes over TCP from namespace ``sender`` to ``address`` in ``receiver``; returns
    (bytes received, sent digest == received digest, seconds, Mbit/s)."""
    sink = subprocess.Popen(["ip", "netns", "exec", receiver, sys.executable, "-c", SINK, address, str(port)],
                            stdout=subprocess.PIPE, text=True)
    hosts.processes.append(sink)
    assert sink.stdout.readline().strip() == "listening"
    source = hosts.run(sender, sys.executable, "-c", SOURCE, address, str(port), str(size), timeout=300)
    received_size, received_digest = sink.communicate(timeout=60)[0].split()
    sent_size, sent_digest, seconds = source.stdout.split()
    seconds = float(seconds)
    return int(received_size), sent_digest == received_digest and int(sent_size) == size, seconds, size * 8 / seconds / 1e6
