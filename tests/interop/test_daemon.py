"""The daemon's life: ``wgpy IFACE`` creates the interface and its socket, and goes away cleanly.

    ns A: wgpy (interface wgd*)      nothing else: these tests look at the process, the TUN and the socket
"""

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from wgpy.runtime.uapi_socket import request as uapi_request

from ..netns import ROOT, SOCKETS, Hosts, require, wait_for, wgpy_command


@pytest.fixture
def hosts():
    require("ip")
    with Hosts("d") as h:
        yield h


def link_exists(hosts, ns, name):
    return hosts.run(ns, "ip", "link", "show", name, check=False).returncode == 0


def uapi(name: str, request: bytes) -> bytes:
    return uapi_request(name, request.decode(), timeout=5).encode()


def test_launch_daemonizes_only_once_ready_and_exits_on_link_deletion(hosts):
    hosts.start_wgpy(hosts.a, "wgd0", foreground=False)  # the launcher returned 0 (run() checks)
    assert link_exists(hosts, hosts.a, "wgd0")
    assert "mtu 1420" in hosts.ip(hosts.a, "link", "show", "wgd0")
    path = SOCKETS / "wgd0.sock"
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(SOCKETS.stat().st_mode) == 0o700
    assert uapi("wgd0", b"get=1\n\n").endswith(b"errno=0\n\n")
    hosts.ip(hosts.a, "link", "del", "wgd0")
    wait_for(lambda: not path.exists(), "the daemon to remove its socket after the link was deleted")


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "socket removed"])
def test_foreground_daemon_stops_cleanly(hosts, how):
    process = hosts.start_wgpy(hosts.a, "wgd1")
    path = SOCKETS / "wgd1.sock"
    if how == "socket removed":
        path.unlink()
    else:
        process.send_signal(getattr(signal, how))
    assert process.wait(timeout=10) == 0
    assert not path.exists()
    wait_for(lambda: not link_exists(hosts, hosts.a, "wgd1"), "the interface to go with its daemon")


def test_launch_fails_clearly_when_the_name_is_taken_or_bad(hosts):
    hosts.start_wgpy(hosts.a, "wgd2")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    again = hosts.run(hosts.a, *wgpy_command(), "wgd2", check=False, env=env)
    assert again.returncode != 0 and "Failed to create TUN device wgd2" in again.stderr
    assert uapi("wgd2", b"get=1\n\n").endswith(b"errno=0\n\n")  # the running daemon is untouched
    bad = hosts.run(hosts.a, *wgpy_command(), "way-too-long-a-name", check=False, env=env)
    assert bad.returncode != 0 and "invalid interface name" in bad.stderr


def test_interface_moved_to_another_namespace_keeps_working(hosts):
    """As wireguard-go's own test does: create in A, move the interface to B; the daemon stays in A."""
    process = hosts.start_wgpy(hosts.a, "wgd3")
    hosts.ip(hosts.a, "link", "set", "wgd3", "netns", hosts.b)
    time.sleep(1.5)  # a housekeeping round: the daemon must not mistake the move for a deletion
    assert process.poll() is None
    assert link_exists(hosts, hosts.b, "wgd3")
    assert uapi("wgd3", b"get=1\n\n").endswith(b"errno=0\n\n")
    hosts.ip(hosts.b, "link", "del", "wgd3")
    assert process.wait(timeout=10) == 0


def test_mtu_changes_are_picked_up(hosts, tmp_path):
    log = tmp_path / "wgpy.log"
    process = hosts.start_wgpy(hosts.a, "wgd4", log=log)
    hosts.ip(hosts.a, "link", "set", "wgd4", "mtu", "1280")
    wait_for(lambda: "MTU of wgd4 is now 1280" in log.read_text(), "the daemon to notice the new MTU")
    assert process.poll() is None


PORT_HOLDER = """
import socket, sys
holder = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)   # dual-stack: the port is taken for both families
holder.bind(("::", int(sys.argv[1])))
print("bound", flush=True)
sys.stdin.read()
"""


def test_a_refused_listen_port_leaves_the_old_port_reported_and_serving(hosts):
    """``wg set listen-port`` on a taken port fails (EADDRINUSE); ``wg show`` then reports the port the
    daemon still listens on, not 0.

        ns A: wgpy (wgp6) on 51000; a Python socket holding 52000
    """
    hosts.start_wgpy(hosts.a, "wgp6")
    hosts.wg(hosts.a, "set", "wgp6", "listen-port", "51000")
    holder = subprocess.Popen(["ip", "netns", "exec", hosts.a, sys.executable, "-c", PORT_HOLDER, "52000"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hosts.processes.append(holder)
    assert holder.stdout.readline() == "bound\n"
    refused = hosts.wg(hosts.a, "set", "wgp6", "listen-port", "52000", check=False)
    assert refused.returncode != 0 and "Address already in use" in refused.stderr
    assert hosts.wg(hosts.a, "show", "wgp6", "listen-port").stdout.strip() == "51000"
    listening = hosts.run(hosts.a, "ss", "-Hulpn", "sport", "= :51000").stdout
    assert "python" in listening   # the daemon's sockets are still open where it says they are
    holder.stdin.close()
    holder.wait(5)
    hosts.wg(hosts.a, "set", "wgp6", "listen-port", "52000")   # free now: the change goes through
    assert hosts.wg(hosts.a, "show", "wgp6", "listen-port").stdout.strip() == "52000"
