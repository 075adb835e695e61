"""``wgpy demo``: a real WireGuard tunnel between two network namespaces, both ends run by wgpy.

    namespace wgpy-demo-a                                   namespace wgpy-demo-b
    wgpy daemon, interface wgdemo-a                         wgpy daemon, interface wgdemo-b
      tunnel 198.18.0.1/24  ==== UDP 51820 over veth ====     tunnel 198.18.0.2/24
      veth   192.0.2.1/24                                     veth   192.0.2.2/24

It configures both daemons through their UAPI sockets (the same text ``wg`` sends), pings across the
tunnel, moves a few megabytes over TCP, prints what each daemon reports, and removes everything it made.
Needs root, ``ip`` and ``ping``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ..core.crypto import PrivateKey
from ..core.encoding import key_to_base64, key_to_hex
from .uapi_socket import request as uapi
from .uapi_socket import socket_path

NAMESPACES = ("wgpy-demo-a", "wgpy-demo-b")
INTERFACES = ("wgdemo-a", "wgdemo-b")
UNDERLAY = ("192.0.2.1", "192.0.2.2")
TUNNEL = ("198.18.0.1", "198.18.0.2")
PORT = 51820
TRANSFER_BYTES = 8 * 1024 * 1024
LOCK_PATH = "/run/wgpy-demo.lock"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # where wgpy/ is


class DemoError(RuntimeError):
    """A step of the demo failed: the message names the command and carries what it said."""


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise DemoError(f"`ip {' '.join(args)}` failed ({result.returncode}): "
                        f"{(result.stderr or result.stdout).strip() or 'no message'}")


def in_ns(ns: str, *command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *command], capture_output=True, text=True, **kwargs)


def run(say=print) -> bool:
    problems = [c for c in ("ip", "ping") if shutil.which(c) is None]
    if problems or os.geteuid() != 0:
        say(f"wgpy demo needs root and the commands ip and ping (missing: {', '.join(problems) or 'root'})")
        return False
    # Names, namespaces and the socket directory are global: a second demo's clean-up would delete the first
    # one's namespaces under it (the first then failed at `ip addr add ... dev wgdemo-a`), so one at a time.
    lock = open(LOCK_PATH, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        say("another wgpy demo is running: wait for it to finish")
        return False
    try:
        busy = [interface for interface in INTERFACES if _answers(interface)]
        if busy:   # a daemon that is not a demo's: cleaning up would stop it
            say(f"{socket_path(busy[0])} is served by another process: is another wgpy demo running?")
            return False
        return _run(say)
    finally:
        lock.close()


def _run(say) -> bool:
    daemons: list[subprocess.Popen] = []
    try:
        _cleanup()
        ip("netns", "add", NAMESPACES[0])
        ip("netns", "add", NAMESPACES[1])
        ip("link", "add", "wgpy-demo0", "netns", NAMESPACES[0], "type", "veth", "peer", "name", "wgpy-demo1", "netns", NAMESPACES[1])
        for n, ns in enumerate(NAMESPACES):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{UNDERLAY[n]}/24", "dev", f"wgpy-demo{n}")
            ip("-n", ns, "link", "set", f"wgpy-demo{n}", "up")
        say(f"namespaces {NAMESPACES[0]} and {NAMESPACES[1]} joined by a veth pair ({UNDERLAY[0]} <-> {UNDERLAY[1]})")

        keys = [PrivateKey(os.urandom(32)) for _ in NAMESPACES]
        for ns, interface in zip(NAMESPACES, INTERFACES):
            daemons.append(start_daemon(ns, interface))
        for daemon, ns, interface in zip(daemons, NAMESPACES, INTERFACES):
            wait_until_serving(daemon, ns, interface)
        say(f"wgpy daemons serve {socket_path(INTERFACES[0])} and {socket_path(INTERFACES[1])}")

        for n, (ns, interface) in enumerate(zip(NAMESPACES, INTERFACES)):
            other = 1 - n
            answer = uapi(interface, (
                f"set=1\nprivate_key={key_to_hex(keys[n].private_bytes())}\nlisten_port={PORT}\n"
                f"public_key={key_to_hex(keys[other].public)}\nendpoint={UNDERLAY[other]}:{PORT}\n"
                f"allowed_ip={TUNNEL[other]}/32\n\n"))
            if "errno=0" not in answer:
                say(f"configuring {interface} failed: {answer.strip()}")
                return False
            ip("-n", ns, "addr", "add", f"{TUNNEL[n]}/24", "dev", interface)
            ip("-n", ns, "link", "set", interface, "up")
            say(f"{interface}: public key {key_to_base64(keys[n].public)}, tunnel address {TUNNEL[n]}")

        start = time.monotonic()
        ping = in_ns(NAMESPACES[0], "ping", "-c", "5", "-i", "0.2", "-W", "5", TUNNEL[1], timeout=30)
        say(f"\nping {TUNNEL[1]} from {NAMESPACES[0]} through the tunnel:")
        say("\n".join("  " + line for line in ping.stdout.strip().splitlines()[-2:]))
        ok = ping.returncode == 0
        if ok:
            say(f"handshake and 5 pings took {time.monotonic() - start:.2f} s")
            rate = _tcp_transfer()
            say(f"TCP through the tunnel: {TRANSFER_BYTES // 2**20} MiB at {rate:.0f} Mbit/s")
        say("")
        for interface in INTERFACES:
            state = dict(line.split("=", 1) for line in uapi(interface, "get=1\n\n").splitlines() if "=" in line)
            say(f"{interface} reports: listen_port={state.get('listen_port')} last_handshake_time_sec="
                f"{state.get('last_handshake_time_sec')} rx_bytes={state.get('rx_bytes')} tx_bytes={state.get('tx_bytes')}")
        say("\nthe tunnel works" if ok else "\nTHE TUNNEL DID NOT CARRY TRAFFIC")
        return ok
    except (DemoError, OSError, subprocess.SubprocessError) as error:
        say(f"wgpy demo failed: {error}")
        return False
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.wait(5)
            except subprocess.TimeoutExpired:
                daemon.kill()
        _cleanup()
        say("cleaned up: daemons stopped, namespaces removed")


def start_daemon(ns: str, interface: str) -> subprocess.Popen:
    """``wgpy -f INTERFACE`` in ``ns``; what it says on its standard error is kept for a failure message."""
    error_log = tempfile.TemporaryFile("w+")   # a file, so a chatty daemon never blocks on a full pipe
    daemon = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "wgpy", "-f", interface],
                              env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.DEVNULL, stderr=error_log)
    daemon.error_log = error_log
    return daemon


def wait_until_serving(daemon: subprocess.Popen, ns: str, interface: str, timeout: float = 10) -> None:
    """Wait until the daemon we started answers on its UAPI socket and its interface exists in ``ns``: a
    socket file alone may be another process's, and ``ip addr add`` needs the link."""
    deadline = time.monotonic() + timeout
    while True:
        if daemon.poll() is not None:
            raise DemoError(f"the wgpy daemon for {interface} exited ({daemon.returncode}): "
                            f"{_said(daemon) or 'no message'}")
        if _answers(interface) and subprocess.run(["ip", "-n", ns, "link", "show", interface],
                                                  capture_output=True).returncode == 0:
            return
        if time.monotonic() > deadline:
            raise DemoError(f"timed out waiting for the wgpy daemon to serve {interface} in {ns}")
        time.sleep(0.02)


def _said(daemon: subprocess.Popen) -> str:
    """What a daemon of :func:`start_daemon` wrote on its standard error."""
    daemon.error_log.seek(0)
    return daemon.error_log.read().strip()


def _answers(interface: str) -> bool:
    try:
        return uapi(interface, "get=1\n\n", timeout=2).endswith("errno=0\n\n")
    except OSError:
        return False


def _tcp_transfer() -> float:
    """Send TRANSFER_BYTES from namespace A to B over TCP through the tunnel; Mbit/s."""
    server = subprocess.Popen(["ip", "netns", "exec", NAMESPACES[1], sys.executable, "-c", (
        "import socket\n"
        f"s = socket.create_server(('{TUNNEL[1]}', 5201)); c, _ = s.accept(); n = 0\n"
        "while (d := c.recv(1 << 16)): n += len(d)\n"
        "print(n)\n")], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        client = in_ns(NAMESPACES[0], sys.executable, "-c", (
            "import socket, time\n"
            f"c = socket.create_connection(('{TUNNEL[1]}', 5201), timeout=30); block = bytes(1 << 16)\n"
            f"start = time.monotonic()\n"
            f"for _ in range({TRANSFER_BYTES} >> 16): c.sendall(block)\n"
            "c.shutdown(socket.SHUT_WR); c.recv(1); print(time.monotonic() - start)\n"), timeout=120)
        received = int(server.communicate(timeout=60)[0].strip() or 0)
        seconds = float(client.stdout.strip() or "inf")
        return received * 8 / seconds / 1e6 if received == TRANSFER_BYTES else 0.0
    finally:
        if server.poll() is None:
            server.kill()


def _cleanup() -> None:
    for ns in NAMESPACES:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for interface in INTERFACES:
        try:
            os.unlink(socket_path(interface))
        except FileNotFoundError:
            pass
