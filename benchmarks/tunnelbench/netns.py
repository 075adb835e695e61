"""Two network namespaces joined by a veth pair, and the few ways the benchmark reaches into them.

    wgpy-bench-a                                       wgpy-bench-b
      wgpyb0 192.0.2.1/24  <------- veth ------->  wgpyb1 192.0.2.2/24
      tunnel 198.18.0.1/24  (wgbench-a)             tunnel 198.18.0.2/24  (wgbench-b, iperf3 server)

The underlay's MTU is the tunnel's plus 100 (room for WireGuard's 32 bytes and the outer IP and UDP
headers), at least 1500.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
from contextlib import contextmanager
from pathlib import Path

NS = ("wgpy-bench-a", "wgpy-bench-b")
VETH = ("wgpyb0", "wgpyb1")
UNDERLAY = ("192.0.2.1", "192.0.2.2")
TUNNEL = ("198.18.0.1", "198.18.0.2")
TUNNEL_NAMES = ("wgbench-a", "wgbench-b")
PORT = 51820

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ_FLAGS = struct.Struct("16sh22x")


def sh(*command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)


def in_ns(ns: str, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, *command, timeout=timeout)


def underlay_mtu(tunnel_mtu: int) -> int:
    return max(1500, tunnel_mtu + 100)


def setup() -> None:
    """Create the namespaces and the veth pair (removing leftovers of an interrupted run first)."""
    teardown()
    for ns in NS:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", VETH[0], "netns", NS[0], "type", "veth", "peer", "name", VETH[1], "netns", NS[1])
    for ns, veth, address in zip(NS, VETH, UNDERLAY):
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", veth)
        sh("ip", "-n", ns, "link", "set", veth, "up")


def set_underlay_mtu(tunnel_mtu: int) -> None:
    for ns, veth in zip(NS, VETH):
        sh("ip", "-n", ns, "link", "set", veth, "mtu", str(underlay_mtu(tunnel_mtu)), "up")


def teardown() -> None:
    """Kill whatever still runs in the namespaces, delete them and any UAPI socket left behind."""
    for ns in NS:
        listed = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in listed.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for name in TUNNEL_NAMES:
        Path(f"/var/run/wireguard/{name}.sock").unlink(missing_ok=True)


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


@contextmanager
def entered(ns: str):
    """Run the block in network namespace ``ns`` (this thread only). Sockets created inside stay in
    ``ns`` after the block, so a probe can act there without spawning ``ip netns exec``."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def set_link_up(control: socket.socket, name: str, up: bool = True) -> None:
    """Bring interface ``name`` up or down through ``control``, a socket of the interface's namespace."""
    request = bytearray(_IFREQ_FLAGS.pack(name.encode(), 0))
    fcntl.ioctl(control.fileno(), SIOCGIFFLAGS, request)
    flags = _IFREQ_FLAGS.unpack(request)[1]
    flags = flags | IFF_UP if up else flags & ~IFF_UP
    fcntl.ioctl(control.fileno(), SIOCSIFFLAGS, bytearray(_IFREQ_FLAGS.pack(name.encode(), flags)))


def listening(pid: int, port: int, protocol: str) -> bool:
    """Whether a socket in ``pid``'s namespace is bound to ``port`` (``protocol`` "udp", or "tcp" for a
    listening socket), read from /proc/PID/net without spawning ``ss``."""
    hex_port = f":{port:04X}"
    for name in (protocol, protocol + "6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1].endswith(hex_port) and (protocol == "udp" or fields[3] == "0A"):
                return True
    return False
