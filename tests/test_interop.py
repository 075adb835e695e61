"""wgpy against wireguard-go, live, configured by the real ``wg`` tool.

    ns A: wgpy, interface wgia                        ns B: wireguard-go, interface wgib
      tunnel 198.18.0.1, 2001:db8:1::1                  tunnel 198.18.0.2, 2001:db8:1::2
      veth   192.0.2.1,  2001:db8::1   <---- UDP ---->  veth   192.0.2.2,  2001:db8::2
"""

import base64
import os
import time

import pytest

from wgpy.core.crypto import PrivateKey

from .netns import TUNNEL, UNDERLAY, Hosts, require, wait_for


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class Side:
    def __init__(self, hosts, ns, name, port):
        self.hosts, self.ns, self.name, self.port = hosts, ns, name, port
        self.key = PrivateKey.generate(os.urandom)

    def wg(self, *args, **kwargs):
        return self.hosts.wg(self.ns, *args, **kwargs)

    def show(self, what):
        return self.wg("show", self.name, what).stdout


@pytest.fixture
def tunnel(tmp_path):
    """wgpy in A and wireguard-go in B, configured with `wg set`, interfaces up with addresses."""
    require("ip", "wg", "wireguard-go", "ping")
    with Hosts("i") as hosts:
        a, b = Side(hosts, hosts.a, "wgia", 51820), Side(hosts, hosts.b, "wgib", 51821)
        hosts.start_wgpy(a.ns, a.name, log=tmp_path / "wgpy.log")
        hosts.start_wireguard_go(b.ns, b.name, log=tmp_path / "wireguard-go.log")
        for side, other, n in ((a, b, "a"), (b, a, "b")):
            o = "b" if n == "a" else "a"
            key_file = tmp_path / f"{side.name}.key"
            key_file.write_text(b64(side.key.private_bytes()) + "\n")
            side.wg("set", side.name, "private-key", str(key_file), "listen-port", str(side.port),
                    "peer", b64(other.key.public), "endpoint", f"{UNDERLAY[o][0]}:{other.port}",
                    "allowed-ips", f"{TUNNEL[o][0]}/32,{TUNNEL[o][1]}/128")
            hosts.ip(side.ns, "addr", "add", f"{TUNNEL[n][0]}/24", "dev", side.name)
            hosts.ip(side.ns, "addr", "add", f"{TUNNEL[n][1]}/64", "dev", side.name, "nodad")
            hosts.ip(side.ns, "link", "set", side.name, "up")
        yield hosts, a, b


def test_wgpy_initiates_to_wireguard_go_over_ipv4(tunnel):
    hosts, a, b = tunnel
    assert hosts.ping(a.ns, TUNNEL["b"][0])
    assert hosts.ping(b.ns, TUNNEL["a"][0])
    assert hosts.ping(a.ns, TUNNEL["b"][1])  # IPv6 inside the tunnel
    handshake = int(a.show("latest-handshakes").split()[1])
    assert abs(handshake - time.time()) < 60


def test_wireguard_go_initiates_to_wgpy(tunnel):
    hosts, a, b = tunnel
    assert hosts.ping(b.ns, TUNNEL["a"][0])
    transfer = b.show("transfer").split()
    assert int(transfer[1]) > 0 and int(transfer[2]) > 0


def test_ipv6_underlay(tunnel):
    hosts, a, b = tunnel
    a.wg("set", a.name, "peer", b64(b.key.public), "endpoint", f"[{UNDERLAY['b'][1]}]:{b.port}")
    b.wg("set", b.name, "peer", b64(a.key.public), "endpoint", f"[{UNDERLAY['a'][1]}]:{a.port}")
    assert hosts.ping(a.ns, TUNNEL["b"][0])
    assert a.show("endpoints").split()[1] == f"[{UNDERLAY['b'][1]}]:{b.port}"


def test_wg_show_reports_wgpy_as_it_reports_wireguard_go(tunnel):
    hosts, a, b = tunnel
    assert hosts.ping(a.ns, TUNNEL["b"][0])
    assert a.show("public-key").strip() == b64(a.key.public)
    assert a.show("listen-port").strip() == str(a.port)
    assert a.show("peers").split() == [b64(b.key.public)]
    allowed = a.show("allowed-ips").split()
    assert allowed[0] == b64(b.key.public) and set(allowed[1:]) == {f"{TUNNEL['b'][0]}/32", f"{TUNNEL['b'][1]}/128"}
    dump = a.wg("show", a.name, "dump").stdout.splitlines()
    assert dump[0].split("\t")[1:3] == [b64(a.key.public), str(a.port)]
    peer = dump[1].split("\t")
    assert peer[0] == b64(b.key.public) and peer[1] == "(none)" and peer[2] == f"{UNDERLAY['b'][0]}:{b.port}"
    showconf = a.wg("showconf", a.name).stdout
    assert f"PrivateKey = {b64(a.key.private_bytes())}" in showconf and f"ListenPort = {a.port}" in showconf


def test_listen_port_change_at_run_time(tunnel):
    hosts, a, b = tunnel
    assert hosts.ping(a.ns, TUNNEL["b"][0])
    a.wg("set", a.name, "listen-port", "51999")
    assert a.show("listen-port").strip() == "51999"
    # wireguard-go learns the new port by roaming when wgpy next sends.
    assert hosts.ping(a.ns, TUNNEL["b"][0])
    wait_for(lambda: b.show("endpoints").split()[1] == f"{UNDERLAY['a'][0]}:51999", "wireguard-go to see the new port")


def test_roaming_to_a_new_underlay_address(tunnel):
    hosts, a, b = tunnel
    assert hosts.ping(b.ns, TUNNEL["a"][0])
    hosts.ip(b.ns, "addr", "del", f"{UNDERLAY['b'][0]}/24", "dev", "vb")
    hosts.ip(b.ns, "addr", "add", "192.0.2.3/24", "dev", "vb")
    b.wg("set", b.name, "peer", b64(a.key.public), "endpoint", f"{UNDERLAY['a'][0]}:{a.port}")
    assert hosts.ping(b.ns, TUNNEL["a"][0])
    wait_for(lambda: a.show("endpoints").split()[1] == f"192.0.2.3:{b.port}", "wgpy to follow the peer")


def test_fwmark_is_applied(tunnel):
    """The mark is on wgpy's UDP packets: an iptables rule matching it counts them."""
    hosts, a, b = tunnel
    require("iptables")
    hosts.run(a.ns, "iptables", "-t", "mangle", "-A", "OUTPUT", "-p", "udp", "-m", "mark", "--mark", "0x1234", "-j", "ACCEPT")
    a.wg("set", a.name, "fwmark", "0x1234")
    assert a.show("fwmark").strip() == "0x1234"
    assert hosts.ping(a.ns, TUNNEL["b"][0])
    counters = hosts.run(a.ns, "iptables", "-t", "mangle", "-L", "OUTPUT", "-v", "-n", "-x").stdout
    marked = [line.split() for line in counters.splitlines() if "mark match 0x1234" in line]
    assert marked and int(marked[0][0]) >= 3
    a.wg("set", a.name, "fwmark", "off")
    assert a.show("fwmark").strip() == "off"


def test_replies_leave_from_the_address_the_peer_reached(tunnel):
    """Sticky source: wireguard-go reaches wgpy on a secondary address, and wgpy answers from it (else
    wireguard-go would roam to the primary). When that address goes away, wgpy falls back to routing."""
    hosts, a, b = tunnel
    hosts.ip(a.ns, "addr", "add", "192.0.2.11/24", "dev", "va")
    b.wg("set", b.name, "peer", b64(a.key.public), "endpoint", f"192.0.2.11:{a.port}")
    assert hosts.ping(b.ns, TUNNEL["a"][0])
    assert hosts.ping(a.ns, TUNNEL["b"][0])
    assert b.show("endpoints").split()[1] == f"192.0.2.11:{a.port}"
    hosts.ip(a.ns, "addr", "del", "192.0.2.11/24", "dev", "va")
    assert hosts.ping(a.ns, TUNNEL["b"][0])
    wait_for(lambda: b.show("endpoints").split()[1] == f"{UNDERLAY['a'][0]}:{a.port}", "wireguard-go to follow wgpy")
