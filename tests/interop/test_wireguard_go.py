"""wgpy against wireguard-go (and against itself), live, configured by the real ``wg`` tool.

    ns A: wgpy, interface wgia                        ns B: wireguard-go, interface wgib
      tunnel 198.18.0.1, 2001:db8:1::1                  tunnel 198.18.0.2, 2001:db8:1::2
      veth   192.0.2.1,  2001:db8::1   <---- UDP ---->  veth   192.0.2.2,  2001:db8::2
"""

import base64
import os
import subprocess
import time

import pytest

from wgpy.core.crypto import PrivateKey

from ..netns import TUNNEL, UNDERLAY, Hosts, require, tcp_transfer, wait_for


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


def build_tunnel(hosts, tmp_path, *, far="wireguard-go", psk=False, mtu=None):
    """wgpy in A and ``far`` (wireguard-go or wgpy) in B, configured with `wg set`, interfaces up."""
    a, b = Side(hosts, hosts.a, "wgia", 51820), Side(hosts, hosts.b, "wgib", 51821)
    hosts.start_wgpy(a.ns, a.name, log=tmp_path / "wgpy.log")
    if far == "wgpy":
        hosts.start_wgpy(b.ns, b.name, log=tmp_path / "wgpy-b.log")
    else:
        hosts.start_wireguard_go(b.ns, b.name, log=tmp_path / "wireguard-go.log")
    shared = tmp_path / "psk"
    shared.write_text(b64(os.urandom(32)) + "\n")
    for side, other, n in ((a, b, "a"), (b, a, "b")):
        o = "b" if n == "a" else "a"
        key_file = tmp_path / f"{side.name}.key"
        key_file.write_text(b64(side.key.private_bytes()) + "\n")
        side.wg("set", side.name, "private-key", str(key_file), "listen-port", str(side.port),
                "peer", b64(other.key.public), "endpoint", f"{UNDERLAY[o][0]}:{other.port}",
                "allowed-ips", f"{TUNNEL[o][0]}/32,{TUNNEL[o][1]}/128",
                *(["preshared-key", str(shared)] if psk else []))
        hosts.ip(side.ns, "addr", "add", f"{TUNNEL[n][0]}/24", "dev", side.name)
        hosts.ip(side.ns, "addr", "add", f"{TUNNEL[n][1]}/64", "dev", side.name, "nodad")
        if mtu:
            hosts.ip(side.ns, "link", "set", side.name, "mtu", str(mtu))
        hosts.ip(side.ns, "link", "set", side.name, "up")
    return a, b


@pytest.fixture
def tunnel(tmp_path):
    """wgpy in A and wireguard-go in B, configured with `wg set`, interfaces up with addresses."""
    require("ip", "wg", "wireguard-go", "ping")
    with Hosts("i") as hosts:
        a, b = build_tunnel(hosts, tmp_path)
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


@pytest.mark.parametrize("far", ["wireguard-go", "wgpy"])
@pytest.mark.parametrize("psk", [False, True], ids=["no-psk", "psk"])
@pytest.mark.parametrize("family", [0, 1], ids=["ipv4", "ipv6"])
def test_100_megabytes_both_ways_checksum_matches(tmp_path, far, psk, family):
    """Each side initiates (A sends first, then B), inside IPv4 or IPv6; the underlay is IPv4 or IPv6 too."""
    require("ip", "wg", "wireguard-go", "ping")
    with Hosts("x") as hosts:
        a, b = build_tunnel(hosts, tmp_path, far=far, psk=psk)
        if family:
            a.wg("set", a.name, "peer", b64(b.key.public), "endpoint", f"[{UNDERLAY['b'][1]}]:{b.port}")
            b.wg("set", b.name, "peer", b64(a.key.public), "endpoint", f"[{UNDERLAY['a'][1]}]:{a.port}")
        size = 100 * 2**20
        received, intact, seconds, mbits = tcp_transfer(hosts, a.ns, b.ns, TUNNEL["b"][family], size)
        assert received == size and intact
        received, intact, _, _ = tcp_transfer(hosts, b.ns, a.ns, TUNNEL["a"][family], size, port=5302)
        assert received == size and intact
        print(f"{far} psk={psk} family={family}: 100 MiB A->B in {seconds:.1f} s, {mbits:.0f} Mbit/s")


def test_large_mtu(tmp_path):
    """veth MTU 9100 under a tunnel MTU of 9000: jumbo packets cross unfragmented, and TCP runs."""
    require("ip", "wg", "wireguard-go", "ping")
    with Hosts("m") as hosts:
        for ns, veth in ((hosts.a, "va"), (hosts.b, "vb")):
            hosts.ip(ns, "link", "set", veth, "mtu", "9100")
        a, b = build_tunnel(hosts, tmp_path, mtu=9000)
        assert hosts.ping(a.ns, TUNNEL["b"][0])
        jumbo = hosts.run(a.ns, "ping", "-c", "3", "-M", "do", "-s", str(9000 - 28), "-W", "2", TUNNEL["b"][0], check=False)
        assert jumbo.returncode == 0, jumbo.stdout
        received, intact, _, _ = tcp_transfer(hosts, a.ns, b.ns, TUNNEL["b"][0], 20 * 2**20)
        assert received == 20 * 2**20 and intact


def test_counters_and_handshake_time_move(tunnel):
    hosts, a, b = tunnel
    assert hosts.ping(a.ns, TUNNEL["b"][0])
    first = [int(x) for x in a.show("transfer").split()[1:]]
    handshake = int(a.show("latest-handshakes").split()[1])
    assert abs(handshake - time.time()) < 30
    assert hosts.ping(a.ns, TUNNEL["b"][0], count=5)
    second = [int(x) for x in a.show("transfer").split()[1:]]
    assert second[0] > first[0] and second[1] > first[1]


def test_a_source_the_peer_may_not_use_does_not_arrive(tunnel, tmp_path):
    """Cryptokey routing on receive: wireguard-go sends from an inner source outside what wgpy allows it."""
    hosts, a, b = tunnel
    assert hosts.ping(b.ns, TUNNEL["a"][0])
    hosts.ip(b.ns, "addr", "add", "198.18.0.99/32", "dev", b.name)
    spoofed = hosts.run(b.ns, "ping", "-c", "3", "-W", "1", "-I", "198.18.0.99", TUNNEL["a"][0], check=False)
    assert spoofed.returncode != 0
    wait_for(lambda: "inner source address is not in the sending peer's allowed IPs" in (tmp_path / "wgpy.log").read_text(),
             "wgpy to log the refused source")
    assert hosts.ping(b.ns, TUNNEL["a"][0])


def test_persistent_keepalive_holds_a_nat_mapping_open(tmp_path):
    """
        ns A: wgpy  192.0.2.1 --- ns M: router, SNAT to 203.0.113.1 --- ns B: wireguard-go 203.0.113.2
    B has no endpoint for A: it can only answer through the NAT mapping A's packets made. The router
    forgets UDP mappings after 5 idle seconds; with a 2 s persistent keepalive, B still reaches A after
    12 s of silence, and without it B does not.
    """
    require("ip", "wg", "wireguard-go", "ping", "iptables")
    with Hosts("n") as hosts:
        router = f"{hosts.prefix}m"
        subprocess.run(["ip", "netns", "del", router], capture_output=True)
        hosts.extra_namespaces.append(router)
        subprocess.run(["ip", "netns", "add", router], check=True)
        # A's veth now ends in the router; B gets a second link to the router.
        subprocess.run(["ip", "-n", hosts.b, "link", "set", "vb", "netns", router], check=True)
        subprocess.run(["ip", "link", "add", "vm", "netns", router, "type", "veth", "peer", "name", "vc", "netns", hosts.b], check=True)
        for args in (["addr", "flush", "dev", "vb"], ["addr", "add", "192.0.2.2/24", "dev", "vb"], ["link", "set", "vb", "up"],
                     ["addr", "add", "203.0.113.1/24", "dev", "vm"], ["link", "set", "vm", "up"], ["link", "set", "lo", "up"]):
            subprocess.run(["ip", "-n", router, *args], check=True)
        hosts.ip(hosts.b, "addr", "add", "203.0.113.2/24", "dev", "vc")
        hosts.ip(hosts.b, "link", "set", "vc", "up")
        hosts.ip(hosts.a, "route", "add", "default", "via", "192.0.2.2")
        for command in (["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "vm", "-j", "MASQUERADE"],
                        ["sysctl", "-qw", "net.ipv4.ip_forward=1"],
                        ["sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=5"],
                        ["sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout_stream=5"]):
            hosts.run(router, *command)

        a, b = Side(hosts, hosts.a, "wgna", 51820), Side(hosts, hosts.b, "wgnb", 51821)
        hosts.start_wgpy(a.ns, a.name, log=tmp_path / "wgpy.log")
        hosts.start_wireguard_go(b.ns, b.name)
        for side in (a, b):
            (tmp_path / side.name).write_text(b64(side.key.private_bytes()) + "\n")
            side.wg("set", side.name, "private-key", str(tmp_path / side.name), "listen-port", str(side.port))
        a.wg("set", a.name, "peer", b64(b.key.public), "endpoint", f"203.0.113.2:{b.port}", "allowed-ips", "198.18.0.2/32",
             "persistent-keepalive", "2")
        b.wg("set", b.name, "peer", b64(a.key.public), "allowed-ips", "198.18.0.1/32")
        for side, address in ((a, "198.18.0.1/24"), (b, "198.18.0.2/24")):
            hosts.ip(side.ns, "addr", "add", address, "dev", side.name)
            hosts.ip(side.ns, "link", "set", side.name, "up")

        assert hosts.ping(a.ns, "198.18.0.2")
        time.sleep(12)
        assert hosts.run(b.ns, "ping", "-c", "2", "-W", "1", "198.18.0.1", check=False).returncode == 0
        # Control: without the keepalive the mapping expires and B cannot reach A.
        a.wg("set", a.name, "peer", b64(b.key.public), "persistent-keepalive", "0")
        time.sleep(12)
        assert hosts.run(b.ns, "ping", "-c", "2", "-W", "1", "198.18.0.1", check=False).returncode != 0
