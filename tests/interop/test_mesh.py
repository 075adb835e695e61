"""``wgpy mesh`` on a real fleet: five hosts from one roster, then a sixth added without disturbing them.

                                   ns R (router, "the internet"): bridge br0 192.0.2.254, 2001:db8::fe
    ns nat1 10.9.1.2 ── 10.9.1.1 ┐   MASQUERADE out of br0       ┌─ ns hub  192.0.2.1  (wgpy, the hub)
    ns nat2 10.9.2.2 ── 10.9.2.1 ┘                               ├─ ns pub  192.0.2.2  (wgpy)
                                                                 ├─ ns go   192.0.2.4, 2001:db8::4 (wireguard-go)
                                                                 └─ ns new  192.0.2.5  (wgpy, added later)

Topology "hub": every spoke is a peer of the hub only; spokes reach each other through it. Tunnel
addresses 10.88.0.0/24 and fd00:88::/64 as the plan assigns them. The hub reaches go over IPv6.

The same five hosts also see the hub's key rotated (``wgpy mesh rotate``) while every pair pings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from wgpy.mesh.apply import parse_get
from wgpy.mesh.state import State, state_directory
from wgpy.runtime.uapi_socket import request

from ..netns import ROOT, SOCKETS, require, sh, wait_for

ROSTER = """
[network]
ipv4 = "10.88.0.0/24"
ipv6 = "fd00:88::/64"
topology = "hub"
hubs = ["hub"]

[[host]]
name = "hub"
endpoint = "192.0.2.1:51820"

[[host]]
name = "nat1"

[[host]]
name = "nat2"

[[host]]
name = "pub"
endpoint = "192.0.2.2:51820"

[[host]]
name = "go"
endpoint = "[2001:db8::4]:51820"
"""

NEW_HOST = """
[[host]]
name = "new"
endpoint = "192.0.2.5:51820"
"""

PUBLIC = {"hub": 1, "pub": 2, "go": 4, "new": 5}
NATTED = {"nat1": 1, "nat2": 2}


class Fleet:
    def __init__(self, tmp_path: Path, hosts=(*PUBLIC, *NATTED)) -> None:
        self.hosts = list(hosts)
        self.tag = f"msh{os.getpid() % 10000}"
        self.tmp = tmp_path
        self.router = f"{self.tag}r"
        self.processes: list[subprocess.Popen] = []
        self.namespaces = [self.router]
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))

    def ns(self, host: str) -> str:
        return f"{self.tag}{host}"

    iface = ns     # the interface in a host's namespace has its namespace's name (UAPI sockets are global)

    def __enter__(self) -> "Fleet":
        subprocess.run(["ip", "netns", "del", self.router], capture_output=True)
        sh("ip", "netns", "add", self.router)
        r = self.router
        sh("ip", "-n", r, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", r, "addr", "add", "192.0.2.254/24", "dev", "br0")
        sh("ip", "-n", r, "addr", "add", "2001:db8::fe/64", "dev", "br0", "nodad")
        sh("ip", "-n", r, "link", "set", "br0", "up")
        sh("ip", "-n", r, "link", "set", "lo", "up")
        self.exec(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.exec(r, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.9.0.0/16", "-o", "br0",
                  "-j", "MASQUERADE")
        for host in self.hosts:
            self.add_host(host)
        return self

    def add_host(self, host: str) -> None:
        ns = self.ns(host)
        if host not in self.hosts:
            self.hosts.append(host)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", f"v{host}", "netns", self.router, "type", "veth", "peer", "name", "eth0", "netns", ns)
        if host in PUBLIC:
            sh("ip", "-n", self.router, "link", "set", f"v{host}", "master", "br0")
            sh("ip", "-n", ns, "addr", "add", f"192.0.2.{PUBLIC[host]}/24", "dev", "eth0")
            sh("ip", "-n", ns, "addr", "add", f"2001:db8::{PUBLIC[host]}/64", "dev", "eth0", "nodad")
        else:
            lan = NATTED[host]
            sh("ip", "-n", self.router, "addr", "add", f"10.9.{lan}.1/24", "dev", f"v{host}")
            sh("ip", "-n", ns, "addr", "add", f"10.9.{lan}.2/24", "dev", "eth0")
        sh("ip", "-n", self.router, "link", "set", f"v{host}", "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        if host in NATTED:
            sh("ip", "-n", ns, "route", "add", "default", "via", f"10.9.{NATTED[host]}.1")

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 5
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for host in self.hosts:
            (SOCKETS / f"{self.iface(host)}.sock").unlink(missing_ok=True)

    def exec(self, ns: str, *command: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(["ip", "netns", "exec", ns, *command], capture_output=True, text=True, timeout=60,
                                env=self.env, input=input, cwd=ROOT)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({result.returncode}): {result.stdout}{result.stderr}")
        return result

    def mesh(self, host: str, *args: str) -> str:
        return self.exec(self.ns(host), sys.executable, "-m", "wgpy", "mesh", *args).stdout

    def start(self, host: str, program: str = "wgpy") -> None:
        """The daemon, the addresses the rendered file gives, the link up."""
        ns, name = self.ns(host), self.iface(host)
        command = [sys.executable, "-m", "wgpy", "-f", name] if program == "wgpy" else ["wireguard-go", "-f", name]
        log = open(self.tmp / f"{host}.log", "w")
        self.processes.append(subprocess.Popen(["ip", "netns", "exec", ns, *command], stdout=log, cwd=ROOT,
                                               stderr=subprocess.STDOUT, env=dict(self.env, LOG_LEVEL="verbose")))
        wait_for(lambda: (SOCKETS / f"{name}.sock").exists(), f"UAPI socket of {name}")
        text = (self.tmp / "out" / f"{host}.conf").read_text()
        for address in re.search(r"^Address = (.*)$", text, re.M).group(1).split(", "):
            sh("ip", "-n", ns, "addr", "add", address, "dev", name, *(["nodad"] if ":" in address else []))
        sh("ip", "-n", ns, "link", "set", name, "up")

    def address(self, host: str, family: int) -> str:
        text = (self.tmp / "out" / f"{host}.conf").read_text()
        addresses = re.search(r"^Address = (.*)$", text, re.M).group(1).split(", ")
        return [a for a in addresses if (":" in a) == (family == 6)][0].split("/")[0]

    def ping(self, source: str, target: str, family: int, timeout: float = 12) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.exec(self.ns(source), "ping", f"-{family}", "-c", "1", "-W", "1",
                               self.address(target, family), check=False)
            if result.returncode == 0:
                return True
        return False

    def handshakes(self, host: str) -> dict[str, tuple[int, int]]:
        current = parse_get(request(self.iface(host), "get=1\n\n", timeout=5))
        return {public: (peer["handshake"], peer["handshake_nsec"]) for public, peer in current.peers.items()}


def ping_all(fleet: Fleet, pairs: list[tuple[str, str]]) -> list[str]:
    """Every pair both families, in parallel; the failures."""
    jobs = [(a, b, family) for a, b in pairs for family in (4, 6)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda job: fleet.ping(*job), jobs))
    return [f"{a}->{b} IPv{family}" for (a, b, family), ok in zip(jobs, results) if not ok]


def five_up(fleet: Fleet, roster: Path, tmp_path: Path) -> list[str]:
    """ROSTER rendered, applied on its five hosts, every pair pinging once; the hosts."""
    rendered = fleet.mesh("hub", "render", str(roster), "--out", str(tmp_path / "out"))
    assert rendered.count("wrote ") == 5 and "forwards between spokes" in rendered, rendered
    for host in ("hub", "nat1", "nat2", "pub"):
        fleet.start(host)
    fleet.start("go", program="wireguard-go")
    fleet.exec(fleet.ns("hub"), "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")

    # The stock host takes its rendered file as the kernel's tools would; apply then has nothing to do.
    fleet.exec(fleet.ns("go"), "wg", "setconf", fleet.iface("go"), "/dev/stdin", input=stripped(tmp_path, "go"))
    assert fleet.mesh("go", "apply", str(roster), "--host", "go", "--interface", fleet.iface("go")).strip() \
        == f"{fleet.iface('go')}: unchanged"
    for host in ("hub", "nat1", "nat2", "pub"):
        said = fleet.mesh(host, "apply", str(roster), "--host", host, "--interface", fleet.iface(host))
        assert "private key set" in said and "added peer" in said, said

    hosts = ["hub", "nat1", "nat2", "pub", "go"]
    # Spokes behind NAT first greet the hub, so it learns their addresses; then every other pair.
    spokes_to_hub = [(spoke, "hub") for spoke in hosts[1:]]
    assert ping_all(fleet, spokes_to_hub) == []
    others = [(a, b) for i, a in enumerate(hosts[1:], 1) for b in hosts[i + 1:]]
    assert ping_all(fleet, others) == []
    return hosts


def stripped(tmp_path: Path, host: str) -> str:
    """HOST's rendered file as ``wg setconf``/``syncconf`` takes it."""
    return subprocess.run(["wg-quick", "strip", str(tmp_path / "out" / f"{host}.conf")], capture_output=True,
                          text=True, check=True).stdout


def test_a_roster_of_five_comes_up_and_a_sixth_joins_without_renegotiating(tmp_path):
    require("ip", "iptables", "wireguard-go", "wg", "wg-quick", "ping", "sysctl")
    started = time.monotonic()
    roster = tmp_path / "fleet.toml"
    roster.write_text(ROSTER)
    with Fleet(tmp_path) as fleet:
        hosts = five_up(fleet, roster, tmp_path)
        status = fleet.mesh("nat1", "status", str(roster), "--interface", fleet.iface("nat1"))
        assert re.search(r"hub\s+reachable\s+handshake: [^;]+; endpoint: 192\.0\.2\.1:51820", status), status
        assert "nat2" in status and "via hub" in status and "unreachable: none" in status, status
        before = {host: fleet.handshakes(host) for host in hosts}
        assert all(h != (0, 0) for peers in before.values() for h in peers.values()), before

        # A sixth host: the others keep their addresses; the hub gains a peer, the spokes change nothing.
        roster.write_text(ROSTER + NEW_HOST)
        old_addresses = {host: (fleet.address(host, 4), fleet.address(host, 6)) for host in hosts}
        fleet.mesh("hub", "render", str(roster), "--out", str(tmp_path / "out"))
        assert {host: (fleet.address(host, 4), fleet.address(host, 6)) for host in hosts} == old_addresses
        said = fleet.mesh("hub", "apply", str(roster), "--host", "hub", "--interface", fleet.iface("hub"))
        assert said.splitlines()[0].endswith("added peer new: preshared key, endpoint 192.0.2.5:51820, allowed IPs "
                                             f"{fleet.address('new', 4)}/32, {fleet.address('new', 6)}/128"), said
        assert len([line for line in said.splitlines() if "peer" in line]) == 1, said
        status = fleet.mesh("hub", "status", str(roster), "--host", "hub", "--interface", fleet.iface("hub"))
        assert re.search(r"new\s+UNREACHABLE\s+handshake: never", status) and "unreachable: new" in status, status

        fleet.add_host("new")
        fleet.start("new")
        said = fleet.mesh("new", "apply", str(roster), "--host", "new", "--interface", fleet.iface("new"))
        assert "added peer hub" in said, said
        for host in hosts[1:]:
            assert fleet.mesh(host, "apply", str(roster), "--host", host, "--interface", fleet.iface(host)).strip() \
                == f"{fleet.iface(host)}: unchanged"
        assert ping_all(fleet, [("new", host) for host in hosts] + [("nat1", "new")]) == []

        after = {host: fleet.handshakes(host) for host in hosts}
        for host in hosts:
            for public, handshake in before[host].items():
                assert after[host][public] == handshake, f"{host} renegotiated with {public[:16]}"
        assert len(after["hub"]) == len(before["hub"]) + 1
        status = fleet.mesh("hub", "status", str(roster), "--interface", fleet.iface("hub"))
        assert status.startswith(f"interface {fleet.iface('hub')}: host hub ") and "unreachable: none" in status, status
        for spoke, endpoint in (("nat1", r"192\.0\.2\.254:\d+"), ("nat2", r"192\.0\.2\.254:\d+"),
                                ("pub", r"192\.0\.2\.2:51820"), ("go", r"(\[2001:db8::4\]|192\.0\.2\.4):51820"),
                                ("new", r"192\.0\.2\.5:51820")):
            assert re.search(rf"{spoke}\s+reachable\s+handshake: [^;]+; endpoint: {endpoint};", status), status
        print(status)
    print(f"mesh interop: {time.monotonic() - started:.1f} s")


MESH = """
[network]
ipv4 = "10.89.0.0/24"
ipv6 = "fd00:89::/64"

[[host]]
name = "hub"
endpoint = "192.0.2.1:51820"

[[host]]
name = "pub"
endpoint = "[2001:db8::2]:51820"
subnets = ["192.168.2.0/24"]

[[host]]
name = "go"
endpoint = "192.0.2.4:51820"
"""


def test_a_full_mesh_with_wireguard_go_and_a_host_removed(tmp_path):
    """Three hosts, every pair peers (no forwarding anywhere); then pub leaves the roster: the others
    remove it and keep their session with each other."""
    require("ip", "iptables", "wireguard-go", "wg", "ping", "sysctl")
    roster = tmp_path / "fleet.toml"
    roster.write_text(MESH)
    with Fleet(tmp_path, hosts=("hub", "pub", "go")) as fleet:
        fleet.mesh("hub", "render", str(roster), "--out", str(tmp_path / "out"))
        fleet.start("hub")
        fleet.start("pub")
        fleet.start("go", program="wireguard-go")
        for host in ("hub", "pub", "go"):
            said = fleet.mesh(host, "apply", str(roster), "--host", host, "--interface", fleet.iface(host))
            assert said.count("added peer") == 2, said
        assert "allowed IPs 10.89.0.2/32, 192.168.2.0/24, fd00:89::2/128" in said   # go's view of pub
        assert ping_all(fleet, [("hub", "pub"), ("hub", "go"), ("pub", "go")]) == []
        before = fleet.handshakes("go")

        pub = MESH[MESH.index('[[host]]\nname = "pub"'):MESH.index('[[host]]\nname = "go"')]
        roster.write_text(MESH.replace(pub, ""))
        fleet.mesh("hub", "render", str(roster), "--out", str(tmp_path / "out"))
        for host in ("hub", "go"):
            said = fleet.mesh(host, "apply", str(roster), "--host", host, "--interface", fleet.iface(host))
            assert said.startswith(f"{fleet.iface(host)}: removed peer ") and said.count("peer") == 1, said
        after = fleet.handshakes("go")
        assert len(after) == 1 and {k: before[k] for k in after} == after
        assert ping_all(fleet, [("go", "hub")]) == []
        assert not fleet.ping("go", "pub", 4, timeout=2)


PING_FOR = 16            # seconds of pings, every pair both ways
ROTATE_AT, SPOKES_AT, GO_AT, FINISH_AT = 2, 5, 10, 13


@pytest.mark.parametrize("how", ["wgpy", "stock"])
def test_the_hub_rotates_its_key_while_every_pair_pings(tmp_path, how):
    """The hub's key rotated (``wgpy mesh rotate``, docs/rotation.md) on the five-host fleet while every
    pair pings (IPv4, ``ping -i 0.05``); spoke-to-spoke traffic crosses the hub, so every pair is touched.
    The hub is the harder case: every other host's entry changes, two of them reach it only from behind
    NAT (they must initiate to the new key), and the stock host follows with a plain ``wg syncconf``.

        t0 + 2 s    mesh rotate ROSTER hub --grace 60
        t0 + 5 s    mesh apply on nat1, nat2, pub; the roster re-rendered
        t0 + 10 s   wg syncconf on go with its re-rendered, stripped file
        t0 + 13 s   mesh rotate ROSTER hub --finish

    Bounds as tests/interop/test_rotation.py: per ping, the longest time without a reply under
    REKEY_TIMEOUT and at most REKEY_TIMEOUT / interval pings lost. ``how`` "stock" is the control: the
    hub's key changed as ``wg set private-key`` does (the state's next key, promoted by hand), the rest the
    same; hub <-> go is then cut from the change to go's (8 s) and must break the bounds."""
    require("ip", "iptables", "wireguard-go", "wg", "wg-quick", "ping", "sysctl")
    from wgpy.core.constants import REKEY_TIMEOUT

    from .test_rotation import INTERVAL, ping_figures

    roster = tmp_path / "fleet.toml"
    roster.write_text(ROSTER)
    with Fleet(tmp_path) as fleet:
        hosts = five_up(fleet, roster, tmp_path)
        old_public = fleet.exec(fleet.ns("hub"), "wg", "show", fleet.iface("hub"), "public-key").stdout.strip()
        pings = {}
        for x in hosts:
            for y in hosts:
                if x != y:
                    pings[(x, y)] = tmp_path / f"ping-{x}-{y}.txt"
                    fleet.processes.append(subprocess.Popen(
                        ["ip", "netns", "exec", fleet.ns(x), "ping", "-D", "-n", "-i", str(INTERVAL), "-W", "1",
                         "-w", str(PING_FOR), fleet.address(y, 4)], stdout=open(pings[(x, y)], "w"),
                        stderr=subprocess.STDOUT))
        t0 = time.monotonic()

        def at(offset: float) -> None:
            time.sleep(max(0.0, t0 + offset - time.monotonic()))

        at(ROTATE_AT)
        if how == "wgpy":
            said = fleet.mesh("hub", "rotate", str(roster), "hub", "--grace", "60", "--interface", fleet.iface("hub"))
            assert "rotated: public key now" in said, said
        else:
            state = State(state_directory(str(roster)))
            state.ensure_next_key("hub")
            fleet.exec(fleet.ns("hub"), "wg", "set", fleet.iface("hub"), "private-key",
                       os.path.join(state.directory, "keys", "hub.next.key"))
            state.promote_next_key("hub")
        at(SPOKES_AT)
        for host in ("nat1", "nat2", "pub"):
            said = fleet.mesh(host, "apply", str(roster), "--host", host, "--interface", fleet.iface(host))
            assert "removed peer" in said and "added peer hub" in said, said
        fleet.mesh("hub", "render", str(roster), "--out", str(tmp_path / "out"))
        at(GO_AT)
        fleet.exec(fleet.ns("go"), "wg", "syncconf", fleet.iface("go"), "/dev/stdin", input=stripped(tmp_path, "go"))
        assert fleet.mesh("go", "apply", str(roster), "--host", "go", "--interface", fleet.iface("go")).strip() \
            == f"{fleet.iface('go')}: unchanged"
        at(FINISH_AT)
        said = fleet.mesh("hub", "rotate", str(roster), "hub", "--finish", "--interface", fleet.iface("hub"))
        assert ("grace ended" if how == "wgpy" else "no rotation in progress") + " on the interface" in said, said
        for process in fleet.processes[5:]:
            process.wait(PING_FOR + 15)
        new_public = fleet.exec(fleet.ns("hub"), "wg", "show", fleet.iface("hub"), "public-key").stdout.strip()
        status = fleet.mesh("hub", "status", str(roster), "--interface", fleet.iface("hub"))
        assert new_public != old_public and "unreachable: none" in status, status
        # Every other host knows the hub only by its new key, and has a session with it.
        for host in hosts[1:]:
            known = fleet.exec(fleet.ns(host), "wg", "show", fleet.iface(host), "latest-handshakes").stdout
            handshakes = dict(line.split("\t") for line in known.splitlines())
            assert old_public not in handshakes and int(handshakes[new_public]) > 0, (host, known)

    figures = {pair: ping_figures(path.read_text()) for pair, path in pings.items()}
    print(f"\n{how}: hub rotated at t0+{ROTATE_AT}s, spokes applied at t0+{SPOKES_AT}s, "
          f"wireguard-go synced at t0+{GO_AT}s, grace finished at t0+{FINISH_AT}s; ping -i {INTERVAL} for {PING_FOR}s each way:")
    for (x, y), (sent, lost, gap) in figures.items():
        print(f"  {x} -> {y}: {sent} sent, {lost} lost, longest gap {gap:.2f} s")
    if how == "stock":
        for pair in (("hub", "go"), ("go", "hub")):
            assert figures[pair][2] > REKEY_TIMEOUT and figures[pair][1] > REKEY_TIMEOUT / INTERVAL, pair
        return
    for (x, y), (sent, lost, gap) in figures.items():
        assert sent >= 0.8 * PING_FOR / INTERVAL, (x, y, sent)
        assert gap < REKEY_TIMEOUT, (x, y, gap)
        assert lost <= REKEY_TIMEOUT / INTERVAL, (x, y, lost)
