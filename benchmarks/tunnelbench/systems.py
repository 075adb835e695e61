"""The systems under test, each started fresh for a session and stopped after it.

Every ``start`` leaves the same state behind: the path from namespace A to ``target`` in namespace B is
ready except that ``link`` in A is down, so the first measurement (link-up to first reply) starts the
clock by bringing it up. ``pids`` are the daemons whose CPU time and memory are read (none for veth).
"""

from __future__ import annotations

import base64
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from . import netns
from .netns import NS, PORT, TUNNEL, TUNNEL_NAMES, UNDERLAY, VETH

ROOT = Path(__file__).resolve().parents[2]
NULL_RELAY = ROOT / "benchmarks" / "null_relay.py"
START_TIMEOUT = 15.0


class Failed(Exception):
    """A system did not start or broke during a session; the session is recorded as failed."""


class Veth:
    """No tunnel: the veth pair itself, the kernel's ceiling."""

    key, label = "veth", "veth"
    target, link = UNDERLAY[1], VETH[0]
    pids: list[int] = []

    def start(self, mtu: int) -> None:
        netns.sh("ip", "-n", NS[0], "link", "set", VETH[0], "down")

    def stop(self) -> None:
        netns.sh("ip", "-n", NS[0], "link", "set", VETH[0], "up")


class Tunnel:
    """A daemon in each namespace, serving interfaces ``wgbench-a`` and ``wgbench-b``."""

    key = label = ""
    target, link = TUNNEL[1], TUNNEL_NAMES[0]
    reports_ready = False  # whether the daemon prints "ready" (else its output goes to the log)

    def __init__(self) -> None:
        self.daemons: list[subprocess.Popen] = []
        self.logs: list = []
        self.pids: list[int] = []

    def command(self, n: int, mtu: int) -> list[str]:
        raise NotImplementedError

    def wait_ready(self, n: int, deadline: float) -> None:
        raise NotImplementedError

    def configure(self) -> None:
        """Anything the daemons need once they run (keys and peers for WireGuard)."""

    def start(self, mtu: int) -> None:
        for n, ns in enumerate(NS):
            log = tempfile.TemporaryFile()
            self.logs.append(log)
            # ip netns exec execs the command, so the Popen's pid is the daemon's.
            daemon = subprocess.Popen(["ip", "netns", "exec", ns, *self.command(n, mtu)],
                                      env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                      stdin=subprocess.DEVNULL, stderr=log,
                                      stdout=subprocess.PIPE if self.reports_ready else log)
            self.daemons.append(daemon)
            self.pids.append(daemon.pid)
        deadline = time.monotonic() + START_TIMEOUT
        for n in range(2):
            self.wait_ready(n, deadline)
        for n, ns in enumerate(NS):
            netns.sh("ip", "-n", ns, "link", "set", TUNNEL_NAMES[n], "mtu", str(mtu))
        self.configure()
        for n, ns in enumerate(NS):
            netns.sh("ip", "-n", ns, "addr", "add", f"{TUNNEL[n]}/24", "dev", TUNNEL_NAMES[n])
        # B is up and listening before A's link comes up, so the first reply never waits on B's start.
        netns.sh("ip", "-n", NS[1], "link", "set", TUNNEL_NAMES[1], "up")
        while not netns.listening(self.pids[1], PORT, "udp"):
            self.check_alive(deadline)
            time.sleep(0.01)

    def check_alive(self, deadline: float) -> None:
        for n, daemon in enumerate(self.daemons):
            if daemon.poll() is not None:
                raise Failed(f"{self.label} in {NS[n]} exited with {daemon.returncode}: {self.log_tail(n)}")
        if time.monotonic() > deadline:
            raise Failed(f"{self.label} did not get ready within {START_TIMEOUT:g} s")

    def log_tail(self, n: int) -> str:
        log = self.logs[n]
        log.seek(0)
        return log.read().decode(errors="replace").strip()[-500:] or "(no output)"

    def stop(self) -> None:
        for daemon in self.daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        for daemon in self.daemons:
            try:
                daemon.wait(5)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait(5)
            if daemon.stdout:
                daemon.stdout.close()
        for ns, name in zip(NS, TUNNEL_NAMES):
            subprocess.run(["ip", "-n", ns, "link", "del", name], capture_output=True)
            Path(f"/var/run/wireguard/{name}.sock").unlink(missing_ok=True)
        for log in self.logs:
            log.close()
        self.daemons, self.logs, self.pids = [], [], []


class WireGuard(Tunnel):
    """A WireGuard daemon serving the UAPI socket, configured with ``wg`` as a user would."""

    def wait_ready(self, n: int, deadline: float) -> None:
        while not Path(f"/var/run/wireguard/{TUNNEL_NAMES[n]}.sock").exists():
            self.check_alive(deadline)
            time.sleep(0.01)

    def configure(self) -> None:
        keys = [X25519PrivateKey.generate() for _ in NS]
        for n, ns in enumerate(NS):
            other = 1 - n
            public = base64.b64encode(keys[other].public_key().public_bytes_raw()).decode()
            private = base64.b64encode(keys[n].private_bytes_raw()).decode()
            subprocess.run(["ip", "netns", "exec", ns, "wg", "set", TUNNEL_NAMES[n], "private-key", "/dev/stdin",
                            "listen-port", str(PORT), "peer", public, "endpoint", f"{UNDERLAY[other]}:{PORT}",
                            "allowed-ips", f"{TUNNEL[other]}/32"],
                           input=private + "\n", check=True, capture_output=True, text=True, timeout=30)


class WireguardGo(WireGuard):
    key = label = "wireguard-go"

    def command(self, n: int, mtu: int) -> list[str]:
        return ["wireguard-go", "-f", TUNNEL_NAMES[n]]


class Wgpy(WireGuard):
    key = label = "wgpy"

    def command(self, n: int, mtu: int) -> list[str]:
        return [sys.executable, "-m", "wgpy", "-f", TUNNEL_NAMES[n]]


class NullRelay(Tunnel):
    """benchmarks/null_relay.py at both ends: wgpy's I/O, no protocol, no crypto."""

    key, label = "null-relay", "null relay"
    reports_ready = True

    def command(self, n: int, mtu: int) -> list[str]:
        return [sys.executable, str(NULL_RELAY), "--interface", TUNNEL_NAMES[n], "--listen-port", str(PORT),
                "--peer", f"{UNDERLAY[1 - n]}:{PORT}", "--mtu", str(mtu)]

    def wait_ready(self, n: int, deadline: float) -> None:
        stdout = self.daemons[n].stdout
        while not select.select([stdout], [], [], 0.05)[0]:
            self.check_alive(deadline)
        if stdout.readline().strip() != b"ready":
            self.check_alive(deadline)
            raise Failed(f"null relay in {NS[n]} did not start: {self.log_tail(n)}")


SYSTEMS = {system.key: system for system in (Veth, NullRelay, WireguardGo, Wgpy)}
