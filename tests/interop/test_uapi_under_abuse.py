"""The UAPI under abuse, live: more idle clients than the daemon serves at once, and a configuration
change of 100,000 allowed IPs while a ping runs through the tunnel.

    ns A: wgpy, wgua  <---- veth ---->  ns B: wireguard-go, wgub
      tunnel 198.18.0.1                   tunnel 198.18.0.2
      /var/run/wireguard/wgua.sock <---- the test: idle clients, wg show, wg addconf

Interface names start with "wgu": the sockets in /var/run/wireguard are shared by every namespace.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from contextlib import contextmanager

import pytest

from ..netns import SOCKETS, Hosts, require
from .reliability import b64, first_ping, tunnel

TAG = "u"
PREFIX = "wgu"
IDLE_CLIENTS = 100
ALLOWED_IPS = 100_000
MAX_RTT = 0.150   # seconds; forwarding stalled ~450 ms while such a set was applied whole
SET_TIMEOUT = 60


@pytest.fixture
def sides(tmp_path):
    require("ip", "wg", "ping", "wireguard-go")
    with Hosts(TAG) as hosts:
        a, b = tunnel(hosts, tmp_path, log_level="error", prefix=PREFIX)
        assert first_ping(hosts, hosts.a, b.address, timeout=15) is not None, "no tunnel"
        yield hosts, a, b


def test_wg_show_is_served_while_many_idle_clients_are_connected(sides):
    hosts, a, b = sides
    idle = []
    try:
        for _ in range(IDLE_CLIENTS):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.settimeout(10)
            client.connect(str(SOCKETS / f"{a.name}.sock"))
            idle.append(client)
        time.sleep(0.5)   # let the daemon accept them all
        shown = a.wg("show", a.name, check=False)
        assert shown.returncode == 0 and b64(b.key.public) in shown.stdout, shown.stderr
        assert a.process.poll() is None
    finally:
        for client in idle:
            client.close()


@contextmanager
def pinging(hosts: Hosts, ns: str, address: str):
    """``ping -i 0.01`` through the tunnel while the block runs, starting half a second before it; yields a
    dict filled, on exit, with the largest round-trip time (seconds) and ping's summary line."""
    process = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-n", "-q", "-i", "0.01", "-W", "1", "-w",
                                str(SET_TIMEOUT + 10), address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    hosts.processes.append(process)
    time.sleep(0.5)
    result: dict = {}
    try:
        yield result
    finally:
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        out = process.communicate(timeout=10)[0]
        rtt = re.search(r"= [\d.]+/[\d.]+/([\d.]+)/", out)
        summary = [line for line in out.splitlines() if "transmitted" in line]
        result.update(max_rtt=float(rtt.group(1)) / 1000 if rtt else None, summary=summary[0] if summary else out)


def test_a_set_of_100000_allowed_ips_does_not_stall_forwarding(sides, tmp_path):
    """``wg addconf`` with 100,000 allowed IPs, then ``wg show`` of them all, each during a ping."""
    hosts, a, b = sides
    prefixes = [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}/32" for n in range(ALLOWED_IPS)]
    conf = tmp_path / "big.conf"
    # wg addconf replaces a listed peer's allowed IPs, so the tunnel address is listed too.
    conf.write_text(f"[Peer]\nPublicKey = {b64(b.key.public)}\nAllowedIPs = {b.address}/32, {', '.join(prefixes)}\n")
    with pinging(hosts, hosts.a, b.address) as quiet:
        time.sleep(0.5)
    with pinging(hosts, hosts.a, b.address) as during_set:
        start = time.monotonic()
        added = a.wg("addconf", a.name, str(conf), check=False)
        set_time = time.monotonic() - start
    assert added.returncode == 0, added.stderr
    with pinging(hosts, hosts.a, b.address) as during_get:
        start = time.monotonic()
        shown = a.show("allowed-ips").split()
        get_time = time.monotonic() - start
    print(f"figure: UAPI: ping -i 0.01 with no UAPI traffic: max RTT {quiet['max_rtt'] * 1000:.1f} ms ({quiet['summary']})")
    for what, took, ping in (("wg addconf", set_time, during_set), ("wg show allowed-ips", get_time, during_get)):
        print(f"figure: UAPI: {what} of {ALLOWED_IPS} allowed IPs took {took:.2f} s; ping -i 0.01 meanwhile: max RTT "
              f"{ping['max_rtt'] * 1000:.1f} ms ({ping['summary']})")
    assert len(shown) == 1 + 1 + ALLOWED_IPS, len(shown)   # the key, the tunnel address and these
    assert set(prefixes) <= set(shown)
    for ping in (during_set, during_get):
        assert ping["max_rtt"] is not None, ping["summary"]
        assert ping["max_rtt"] < MAX_RTT, f"forwarding stalled {ping['max_rtt'] * 1000:.0f} ms: {ping['summary']}"
