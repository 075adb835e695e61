"""A hostname endpoint whose address changes: ``wgpy up`` with ``Endpoint = rrs-far.test:51820``, the far
peer (wireguard-go) moves to a new address and the name with it, and the daemon follows the name once a
handshake goes unanswered (runtime/reresolve.py), logging the move.

    ns A: wgpy up rrsNa.conf                 <---- veth ---->    ns B: wireguard-go rrsNb
          Endpoint = rrs-far.test:51820                               192.0.2.2 -> 192.0.2.3
          198.18.0.1 (tunnel)                                         198.18.0.2 (tunnel)
          /etc/hosts: a private file bind-mounted in a mount namespace of its own (unshare -m), so the
          host's real /etc/hosts is never touched; glibc reads the file afresh at every lookup.

wireguard-go has no PersistentKeepalive and only answers pings, and the test waits for the tunnel to fall
quiet (A's passive keepalive has reached B) before the move, so after it B sends nothing on its own: the
tunnel can come back only through the name (roaming would need a packet from B first). The bound:
the first unanswered data packet starts a handshake after KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (15 s); its
retransmission (attempt 2, REKEY_TIMEOUT later, up to a third of a second of jitter each) starts the
lookup, and the next packet goes to the new address: about 20 s, asserted below RECOVERY_BOUND.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time

import pytest

from wgpy.core.crypto import PrivateKey

from ..netns import ROOT, SOCKETS, Hosts, require, wait_for

NAME = "rrs-far.test"
OLD, NEW = "192.0.2.2", "192.0.2.3"
TUNNEL_A, TUNNEL_B = "198.18.0.1", "198.18.0.2"
RECOVERY_BOUND = 30.0   # seconds from the move: 15 + 5 (+ jitter) to the lookup, then the next ping


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def hosts():
    require("ip", "ping", "unshare", "mount", "wireguard-go", "wg")
    with Hosts("rrs") as h:
        yield h


def write_hosts(path, address: str) -> None:
    """Rewrite the private hosts file in place: the bind mount holds its inode, so no rename."""
    with open(path, "r+") as f:
        f.truncate(0)
        f.write(f"127.0.0.1 localhost\n::1 localhost\n{address} {NAME}\n")


def test_a_hostname_endpoint_follows_its_name_when_the_far_peer_moves(hosts, tmp_path):
    tag = os.getpid() % 10000
    near, far = f"rrs{tag}a", f"rrs{tag}b"
    own, other = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom)

    # ns B: wireguard-go, the far peer, with no keepalive of its own.
    hosts.start_wireguard_go(hosts.b, far, log=tmp_path / "wireguard-go.log")
    key_file = tmp_path / "far.key"
    key_file.write_text(b64(other.private_bytes()) + "\n")
    key_file.chmod(0o600)
    hosts.wg(hosts.b, "set", far, "private-key", str(key_file), "listen-port", "51820",
             "peer", b64(own.public), "allowed-ips", f"{TUNNEL_A}/32")
    hosts.ip(hosts.b, "addr", "add", f"{TUNNEL_B}/24", "dev", far)
    hosts.ip(hosts.b, "link", "set", far, "up")

    # ns A: wgpy up, in a mount namespace where /etc/hosts is ours.
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text("")
    write_hosts(hosts_file, OLD)
    conf = tmp_path / f"{near}.conf"
    conf.write_text(f"[Interface]\nPrivateKey = {b64(own.private_bytes())}\nAddress = {TUNNEL_A}/24\n\n"
                    f"[Peer]\nPublicKey = {b64(other.public)}\nAllowedIPs = {TUNNEL_B}/32\n"
                    f"Endpoint = {NAME}:51820\n")
    conf.chmod(0o600)
    hosts.interfaces.append(near)
    log_path = tmp_path / "wgpy.log"
    env = dict(os.environ, LOG_LEVEL="verbose", PYTHONPATH=str(ROOT))
    script = f'mount --bind "$1" /etc/hosts && exec "$2" -m wgpy up "$3"'
    with open(log_path, "w") as log:
        up = subprocess.run(["ip", "netns", "exec", hosts.a, "unshare", "-m", "sh", "-c", script, "sh",
                             str(hosts_file), sys.executable, str(conf)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=30)
    assert up.returncode == 0, log_path.read_text()
    wait_for(lambda: (SOCKETS / f"{near}.sock").exists(), f"UAPI socket of {near}")
    # The host's own /etc/hosts does not know the name: only the daemon's namespace does.
    assert NAME not in open("/etc/hosts").read()

    assert hosts.ping(hosts.a, TUNNEL_B, timeout=15), log_path.read_text()
    shown = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "show", near, env=env).stdout
    assert f"endpoint: {OLD}:51820" in shown and f"endpoint name: {NAME}:51820" in shown, shown

    # Let the tunnel fall quiet first: B sent the last ping's reply, so B would start a handshake of its
    # own 15 s later (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT with nothing received) and, after the move, A
    # would simply roam to B's new source. A's passive keepalive, 10 s after that reply, stops B's timer:
    # wait until B has received it (its received bytes grow with no ping running).
    received = lambda: int(hosts.wg(hosts.b, "show", far, "transfer").stdout.split()[1])  # noqa: E731
    quiet = received()
    wait_for(lambda: received() > quiet, "A's passive keepalive at B", timeout=14)

    # The far peer moves: a new address, the old one removed, and the name now points there. (Without
    # promote_secondaries, removing the primary address would take the new, secondary one with it.)
    hosts.run(hosts.b, "sysctl", "-qw", "net.ipv4.conf.vb.promote_secondaries=1")
    hosts.ip(hosts.b, "addr", "add", f"{NEW}/24", "dev", "vb")
    hosts.ip(hosts.b, "addr", "del", f"{OLD}/24", "dev", "vb")
    addresses = hosts.ip(hosts.b, "-4", "-o", "addr", "show", "dev", "vb")
    assert f"{NEW}/24" in addresses and f"{OLD}/" not in addresses, addresses
    write_hosts(hosts_file, NEW)
    moved = time.monotonic()
    recovered = None
    while time.monotonic() - moved < RECOVERY_BOUND + 2:
        if hosts.run(hosts.a, "ping", "-c", "1", "-W", "1", TUNNEL_B, check=False).returncode == 0:
            recovered = time.monotonic() - moved
            break
        time.sleep(0.2)
    text = log_path.read_text()
    assert recovered is not None, f"no answer {RECOVERY_BOUND + 2:.0f} s after the move\n{text[-3000:]}"
    assert recovered < RECOVERY_BOUND, text[-3000:]
    print(f"tunnel recovered {recovered:.1f} s after the far peer moved")
    assert f"endpoint name {NAME}:51820 moved from {OLD}:51820 to {NEW}:51820" in text, text[-3000:]
    endpoints = hosts.wg(hosts.a, "show", near, "endpoints").stdout
    assert f"{NEW}:51820" in endpoints, endpoints
    assert hosts.ping(hosts.a, TUNNEL_B, count=3, timeout=5)
