"""The rig the reliability tests share: two WireGuard daemons in two namespaces, an attacker's namespace,
a bad network, numbered streams, packet captures and the daemon's resident memory.

    ns A: wgpy, wgra               ns B: wireguard-go or wgpy, wgrb
      tunnel 198.18.0.1              tunnel 198.18.0.2
      va 192.0.2.1  <---- veth ---->  vb 192.0.2.2
      vc 203.0.113.1
          ^
          | veth (only when a test asks for the attacker)
          v
      vx 203.0.113.2   ns C: the attacker; 10.77.0.0/16 is local here, so it can send from any of those
                       addresses and the answers sent to them come back to it

Interface names start with "wgr" (the UAPI sockets in /var/run/wireguard are shared by every namespace,
so they must not collide with other tests running at the same time), and Hosts' tag is "r".
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from wgpy.core.crypto import PrivateKey
from wgpy.study.capture import datagrams, read_capture

from ..netns import ROOT, SINK, SOCKETS, SOURCE, TUNNEL, UNDERLAY, Hosts, wait_for

TAG = "r"
PORTS = {"a": 51820, "b": 51821}
ATTACKER = {"a": "203.0.113.1", "c": "203.0.113.2", "sources": "10.77.0.0/16"}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Side:
    """One end of the tunnel: a daemon in a namespace, its key, its log, and how to start it again."""

    def __init__(self, hosts: Hosts, letter: str, kind: str, tmp_path: Path, launcher: str | None = None,
                 prefix: str = "wgr") -> None:
        self.hosts, self.letter, self.kind = hosts, letter, kind
        self.ns = hosts.a if letter == "a" else hosts.b
        self.name = f"{prefix}{letter}"
        self.port = PORTS[letter]
        self.key = PrivateKey.generate(os.urandom)
        self.launcher = launcher   # a module run instead of wgpy (tests/interop/fast_timers.py)
        self.tmp_path = tmp_path
        self.log = tmp_path / f"{self.name}.log"
        self.process: subprocess.Popen | None = None
        self.log_level = "verbose"   # every handshake and every drop, with its reason

    @property
    def underlay(self) -> str:
        return UNDERLAY[self.letter][0]

    @property
    def address(self) -> str:
        return TUNNEL[self.letter][0]

    def wg(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.hosts.wg(self.ns, *args, check=check)

    def show(self, what: str) -> str:
        return self.wg("show", self.name, what).stdout

    def latest_handshake(self) -> int:
        fields = self.show("latest-handshakes").split()
        return int(fields[1]) if len(fields) > 1 else 0

    def start(self) -> subprocess.Popen:
        """Start the daemon in the foreground, its log in ``self.log`` (appended on each start), and wait
        until its UAPI socket answers (a stale socket file left by a killed daemon does not count)."""
        if self.name not in self.hosts.interfaces:
            self.hosts.interfaces.append(self.name)
        env = dict(os.environ, LOG_LEVEL=self.log_level, PYTHONPATH=str(ROOT))
        if self.kind == "wireguard-go":
            command = ["wireguard-go", "-f", self.name]
        elif self.launcher:
            command = [sys.executable, "-m", self.launcher, "-f", self.name]
        else:
            command = [sys.executable, "-m", "wgpy", "-f", self.name]
        log = open(self.log, "a")
        self.process = subprocess.Popen(["ip", "netns", "exec", self.ns, *command], stdout=log, stderr=subprocess.STDOUT,
                                        env=env, cwd=ROOT)
        log.close()
        self.hosts.processes.append(self.process)
        wait_for(lambda: uapi_answers(self.name) or self.process.poll() is not None, f"UAPI socket of {self.name}")
        assert self.process.poll() is None, f"{self.kind} {self.name} exited: {self.log.read_text()[-2000:]}"
        return self.process

    def kill(self) -> None:
        """SIGKILL, as a crash: no clean-up, the socket file stays behind, the TUN goes with the process."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def configure(self, other: "Side") -> None:
        """Keys, port and the one peer through ``wg setconf`` (kept in a file, so a restart reuses it),
        then the tunnel address and the link up."""
        conf = self.tmp_path / f"{self.name}.conf"
        if not conf.exists():
            conf.write_text(
                f"[Interface]\nPrivateKey = {b64(self.key.private_bytes())}\nListenPort = {self.port}\n\n"
                f"[Peer]\nPublicKey = {b64(other.key.public)}\nEndpoint = {other.underlay}:{other.port}\n"
                f"AllowedIPs = {other.address}/32\n")
        self.wg("setconf", self.name, str(conf))
        self.hosts.ip(self.ns, "addr", "add", f"{self.address}/24", "dev", self.name)
        self.hosts.ip(self.ns, "link", "set", self.name, "up")

    def restart(self, other: "Side") -> None:
        self.start()
        self.configure(other)

    def rss_kib(self) -> int:
        return status_kib(self.process.pid, "VmRSS")

    def log_count(self, text: str) -> int:
        return sum(line.count(text) for line in self.log.read_text(errors="replace").splitlines())


def uapi_answers(name: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(SOCKETS / f"{name}.sock"))
            s.sendall(b"get=1\n\n")
            answer = b""
            while not answer.endswith(b"\n\n"):
                chunk = s.recv(65536)
                if not chunk:
                    return False
                answer += chunk
            return answer.endswith(b"errno=0\n\n")
    except OSError:
        return False


def tunnel(hosts: Hosts, tmp_path: Path, far: str = "wireguard-go", launcher: str | None = None,
           far_launcher: str | None = None, log_level: str = "verbose",
           prefix: str = "wgr") -> tuple[Side, Side]:
    """wgpy in A (logging at ``log_level``), ``far`` in B, each configured for the other, links up; not
    yet handshaken. The interfaces are ``prefix`` + a and b."""
    a = Side(hosts, "a", "wgpy", tmp_path, launcher, prefix)
    b = Side(hosts, "b", far, tmp_path, far_launcher, prefix)
    a.log_level = log_level
    a.start()
    b.start()
    a.configure(b)
    b.configure(a)
    return a, b


def status_kib(pid: int, field: str) -> int:
    """A memory figure of a process from /proc/PID/status, in KiB (VmRSS: resident now; VmHWM: its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def udp_counters(hosts: Hosts, ns: str) -> dict[str, int]:
    """The namespace's UDP counters from /proc/net/snmp (RcvbufErrors: datagrams the kernel dropped because
    a socket's receive buffer was full)."""
    text = hosts.run(ns, "cat", "/proc/net/snmp").stdout.splitlines()
    names, values = [line.split()[1:] for line in text if line.startswith("Udp:")][:2]
    return dict(zip(names, map(int, values)))


def add_attacker(hosts: Hosts) -> str:
    """Namespace C, joined to A by a second veth; A routes the spoofed sources back to C."""
    c = f"{hosts.prefix}c"
    subprocess.run(["ip", "netns", "del", c], capture_output=True)
    hosts.extra_namespaces.append(c)
    subprocess.run(["ip", "netns", "add", c], check=True)
    subprocess.run(["ip", "link", "add", "vc", "netns", hosts.a, "type", "veth", "peer", "name", "vx", "netns", c], check=True)
    hosts.ip(c, "link", "set", "lo", "up")
    hosts.ip(hosts.a, "addr", "add", f"{ATTACKER['a']}/24", "dev", "vc")
    hosts.ip(hosts.a, "link", "set", "vc", "up")
    hosts.ip(c, "addr", "add", f"{ATTACKER['c']}/24", "dev", "vx")
    hosts.ip(c, "link", "set", "vx", "up")
    hosts.ip(c, "route", "add", "local", ATTACKER["sources"], "dev", "lo")
    hosts.ip(c, "route", "add", "192.0.2.0/24", "via", ATTACKER["a"])
    hosts.ip(hosts.a, "route", "add", ATTACKER["sources"], "via", ATTACKER["c"])
    return c


def python_in(hosts: Hosts, ns: str, module: str, *args: str) -> subprocess.Popen:
    """``python3 -m module args`` in ``ns``, output piped; the caller reads its JSON line."""
    process = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", module, *args], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)))
    hosts.processes.append(process)
    return process


def expect_line(process: subprocess.Popen, line: str) -> None:
    got = process.stdout.readline().strip()
    assert got == line, f"expected {line!r}, got {got!r}: {process.stderr.read() if process.poll() is not None else ''}"


def result_of(process: subprocess.Popen, timeout: float = 120) -> dict:
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"no result (exit {process.returncode}): {out[-1000:]} {err[-2000:]}"
    return json.loads(lines[-1])


def stop(process: subprocess.Popen, timeout: float = 30) -> dict:
    process.send_signal(signal.SIGTERM)
    return result_of(process, timeout)


@contextmanager
def bad_network(hosts: Hosts, ns: str, veth: str, queue: int, **impairment: float):
    """Impair what leaves ``ns`` through ``veth`` (tests/interop/badnet.py): UDP only, so a test's own
    set-up traffic is untouched. Yields a dict filled, on exit, with what the impairment did."""
    rule = ["OUTPUT", "-o", veth, "-p", "udp", "-m", "mark", "!", "--mark", "0x7e57",
            "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]
    hosts.run(ns, "iptables", "-A", *rule)
    args = [f"--{key}={value}" for key, value in impairment.items()]
    process = python_in(hosts, ns, "tests.interop.badnet", "--queue", str(queue), *args)
    expect_line(process, "ready")
    counts: dict = {}
    try:
        yield counts
    finally:
        counts.update(stop(process))
        hosts.run(ns, "iptables", "-D", *rule, check=False)


# ------------------------------------------------------------------------------------------ captures

@contextmanager
def capture(hosts: Hosts, ns: str, interface: str, expression: str, path: Path):
    """tcpdump on ``interface`` while the block runs; yields a list filled, on exit, with each captured UDP
    datagram (``wgpy.study.capture.Datagram``: source, destination, payload)."""
    process = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", interface, "-n", "-U", "--immediate-mode", "-s", "0", "-w",
                                str(path), expression], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    hosts.processes.append(process)
    # tcpdump says "listening on ..." once its filter is attached (after any warnings).
    lines = [process.stderr.readline()]
    while "listening" not in lines[-1] and lines[-1] and len(lines) < 10:
        lines.append(process.stderr.readline())
    assert "listening" in lines[-1], "".join(lines)
    packets: list[bytes] = []
    try:
        yield packets
    finally:
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        process.wait(10)
        frames, _ = read_capture(path.read_bytes())
        packets.extend(datagrams(frames))


# ------------------------------------------------------------------------------------------ transfers

class Transfer:
    """A TCP transfer (tests/netns.py's sink and source, sha256 at both ends) running in the background."""

    def __init__(self, hosts: Hosts, sender: str, receiver: str, address: str, size: int, port: int) -> None:
        self.size = size
        self.sink = subprocess.Popen(["ip", "netns", "exec", receiver, sys.executable, "-c", SINK, address, str(port)],
                                     stdout=subprocess.PIPE, text=True)
        hosts.processes.append(self.sink)
        assert self.sink.stdout.readline().strip() == "listening"
        self.source = subprocess.Popen(["ip", "netns", "exec", sender, sys.executable, "-c", SOURCE, address, str(port), str(size)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        hosts.processes.append(self.source)

    def finish(self, timeout: float) -> tuple[int, bool]:
        """(bytes received, whether all of it arrived and the digests match); the source gives up after
        60 s without progress (its socket timeout)."""
        try:
            out, _ = self.source.communicate(timeout=timeout)
            received = self.sink.communicate(timeout=10)[0].split()
        except subprocess.TimeoutExpired:
            return -1, False
        if self.source.returncode != 0 or len(received) != 2 or not out.split():
            return int(received[0]) if received else 0, False
        sent_size, sent_digest, _ = out.split()
        return int(received[0]), int(sent_size) == self.size == int(received[0]) and sent_digest == received[1]


def first_ping(hosts: Hosts, ns: str, address: str, timeout: float) -> float | None:
    """Seconds until one ping to ``address`` is answered (each try waits up to 0.5 s); None if none is."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if hosts.run(ns, "ping", "-c", "1", "-W", "0.5", address, check=False).returncode == 0:
            return time.monotonic() - start
    return None


class Ping:
    """``ping -q`` in the background; ``result()`` gives what it sent and what came back."""

    def __init__(self, hosts: Hosts, ns: str, address: str, count: int, interval: float) -> None:
        self.process = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-q", "-n", "-c", str(count), "-i", str(interval),
                                         "-W", "1", address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        hosts.processes.append(self.process)

    def result(self, timeout: float = 120) -> dict:
        out = self.process.communicate(timeout=timeout)[0]
        summary = next(line for line in out.splitlines() if "transmitted" in line)
        sent, received = (int(field.split()[0]) for field in summary.split(",")[:2])
        return {"sent": sent, "received": received, "lost": sent - received}


class Answers:
    """iptables counters in the attacker's namespace for what the victim sends to the spoofed sources:
    cookie replies are 64 bytes of UDP (92 of IPv4), handshake responses 92 (120), the rest apart."""

    COOKIE_REPLY_IP, RESPONSE_IP = 92, 120   # IPv4 lengths: 20 + 8 + 64 and 20 + 8 + 92

    def __init__(self, hosts: Hosts, ns: str, port: int) -> None:
        self.hosts, self.ns = hosts, ns
        for length in (str(self.COOKIE_REPLY_IP), str(self.RESPONSE_IP), "0:65535"):
            hosts.run(ns, "iptables", "-t", "raw", "-A", "PREROUTING", "-i", "vx", "-p", "udp", "--sport", str(port),
                      "-m", "length", "--length", length, "-j", "DROP")

    def read(self) -> tuple[int, int, int]:
        """(cookie replies, handshake responses, other datagrams) so far."""
        lines = self.hosts.run(self.ns, "iptables", "-t", "raw", "-L", "PREROUTING", "-v", "-n", "-x").stdout.splitlines()[2:]
        cookie_replies, responses, other = (int(line.split()[0]) for line in lines if line.strip())
        return cookie_replies, responses, other
