"""The security issue's attacks, live: what an off-path attacker who can spoof source addresses does to a
tunnel with a few unauthenticated datagrams. Each test runs with wgpy as the daemon under attack and, as
the control that proves the test fair, with wireguard-go in its place.

    ns A: the daemon (wgpy or wireguard-go), wgxa   ns B: the peer (wireguard-go or wgpy), wgxb
      tunnel 198.18.0.1                              tunnel 198.18.0.2
      va 192.0.2.1  <----------- veth ----------->  vb 192.0.2.2
      vc 203.0.113.1   A's second address; B has no route to it, and nothing from it reaches B
          ^
          | veth
          v
      vx 203.0.113.2   ns C: the attacker; raw IPv4/UDP with any source (tests/interop/attack.py);
                       10.77.0.0/16 is local here and A routes it to C

Interface names start with "wgx" (the UAPI sockets in /var/run/wireguard are shared by every namespace);
Hosts' tag is "x".
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from ..netns import Hosts, require
from .attack import write_records
from .reliability import (
    ATTACKER,
    Ping,
    Side,
    add_attacker,
    capture,
    expect_line,
    first_ping,
    python_in,
    result_of,
    stop,
    udp_counters,
)

TAG, PREFIX = "x", "wgx"
DAEMONS = ["wgpy", "wireguard-go"]   # the one under attack; wireguard-go is the control
PEERS = ["wireguard-go", "wgpy"]
SECOND_ADDRESS = ATTACKER["a"]       # A's address on the link to C


def figure(text: str) -> None:
    print(f"figure: {text}")


def pair(hosts: Hosts, tmp_path: Path, daemon: str, peer: str, log_level: str = "verbose") -> tuple[Side, Side]:
    """``daemon`` in A and ``peer`` in B, each configured for the other, links up; not yet handshaken."""
    a = Side(hosts, "a", daemon, tmp_path, prefix=PREFIX)
    b = Side(hosts, "b", peer, tmp_path, prefix=PREFIX)
    a.log_level = log_level
    for side in (a, b):
        side.start()
    a.configure(b)
    b.configure(a)
    return a, b


def loss(result: dict) -> float:
    return result["lost"] / max(1, result["sent"])


# --------------------------------------------------------------------------- item 1: the reply source

SPOOF_RATE = 1000.0
PING_INTERVAL = 0.1
A_TO_B_PINGS = 100     # 10 s
B_TO_A_PINGS = 50      # 5 s
MAX_LOSS = 0.02


def spoofs(kind: str, count: int, receiver_index: bytes, peer: Side, seed: int) -> list[tuple[str, int, bytes]]:
    """``count`` datagrams from the peer's address and port: random bytes ("junk"), or transport messages
    naming the daemon's live receiver index with a plausible counter and a made-up ciphertext ("transport",
    which fails authentication)."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        if kind == "junk":
            payload = rng.randbytes(rng.randrange(1, 200))
        else:
            counter = (1000 + n).to_bytes(8, "little")
            payload = bytes([4, 0, 0, 0]) + receiver_index + counter + rng.randbytes(16 * rng.randrange(1, 8) + 16)
        out.append((peer.underlay, peer.port, payload))
    return out


@pytest.mark.parametrize("spoof", ["1-junk", "500-junk", "1-transport"])
@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("daemon", DAEMONS)
def test_spoofed_datagram_to_a_second_address_does_not_move_the_reply_source(tmp_path, daemon, peer, spoof):
    """Item 1: a datagram that has not been authenticated must not choose the address replies leave from.

    A is multi-homed: 192.0.2.1 on the link to B, 203.0.113.1 on the link to C. B has no route to
    203.0.113.0/24, and the path from A to B does not carry it either (in the wild an ISP's ingress filter,
    BCP 38, or a NAT that maps only the first address; here a drop rule in B's raw table), so a datagram A
    sends from 203.0.113.1 never arrives. C reaches 203.0.113.1 directly, and A accepts a datagram there
    from 192.0.2.2 (reverse-path filtering is loose, systemd's default: 192.0.2.2 is routable, via va).

    C sends the spoofs: source 192.0.2.2:51821 (B's endpoint), destination 203.0.113.1:51820 (A's port at
    its second address). Then A pings B through the tunnel, then B pings A. A speaks first on purpose: while
    B is the one talking, each of B's datagrams names 192.0.2.1 again before A answers, and hides the harm;
    A's own traffic (a server's, a keepalive) leaves from whatever address the last datagram named. The
    loss must stay below MAX_LOSS in both directions, whatever the daemon.
    """
    require("ip", "wg", "wireguard-go", "ping", "iptables", "tcpdump")
    count, kind = spoof.split("-")
    with Hosts(TAG) as hosts:
        a, b = pair(hosts, tmp_path, daemon, peer)
        c = add_attacker(hosts)
        for key in ("all", "vc"):
            hosts.run(a.ns, "sysctl", "-q", "-w", f"net.ipv4.conf.{key}.rp_filter=2")
        hosts.run(b.ns, "iptables", "-t", "raw", "-A", "PREROUTING", "-i", "vb", "-s", f"{SECOND_ADDRESS}/24", "-j", "DROP")

        # Warm up: B handshakes and pings A, then A pings B once, so neither end owes the other a keepalive
        # and B stays silent unless A's datagrams reach it. A's receiver index is in B's transport messages.
        with capture(hosts, a.ns, "va", f"udp and src host {b.underlay} and dst port {a.port}", tmp_path / "warm.pcap") as packets:
            assert first_ping(hosts, b.ns, a.address, timeout=10) is not None, "no tunnel to begin with"
            assert hosts.run(a.ns, "ping", "-c", "1", "-W", "2", b.address, check=False).returncode == 0
        indices = {p.payload[4:8] for p in packets if p.payload[:4] == b"\x04\x00\x00\x00"}
        assert indices, "no transport message from B to A captured"

        records = tmp_path / "spoofs.bin"
        write_records(str(records), spoofs(kind, int(count), indices.pop(), b, seed=int(count)))
        before = udp_counters(hosts, a.ns)["InDatagrams"]
        sent = result_of(python_in(hosts, c, "tests.interop.attack", "send", f"{SECOND_ADDRESS}:{a.port}",
                                   "--records", str(records), "--rate", str(SPOOF_RATE)))
        time.sleep(0.3)
        arrived = udp_counters(hosts, a.ns)["InDatagrams"] - before
        assert sent["sent"] == int(count) and arrived >= int(count), f"spoofs sent {sent}, arrived at A {arrived}"

        a_to_b = Ping(hosts, a.ns, b.address, A_TO_B_PINGS, PING_INTERVAL).result()
        b_to_a = Ping(hosts, b.ns, a.address, B_TO_A_PINGS, PING_INTERVAL).result()
        endpoints = b.show("endpoints").split()
        figure(f"{daemon} daemon, {peer} peer, {count} spoofed {kind} datagram(s) to {SECOND_ADDRESS}: ping A->B lost "
               f"{a_to_b['lost']}/{a_to_b['sent']} ({loss(a_to_b):.0%}), then B->A lost {b_to_a['lost']}/{b_to_a['sent']} "
               f"({loss(b_to_a):.0%}); B's endpoint for A: {endpoints[1:]}")
        assert a.process.poll() is None and b.process.poll() is None
        assert loss(a_to_b) <= MAX_LOSS, f"A->B lost {a_to_b['lost']} of {a_to_b['sent']} after {count} spoofed {kind} datagram(s)"
        assert loss(b_to_a) <= MAX_LOSS, f"B->A lost {b_to_a['lost']} of {b_to_a['sent']} after {count} spoofed {kind} datagram(s)"


# --------------------------------------------------------------------------- item 3: junk and "under load"

JUNK_RATE = 600.0           # past the 512 handshake messages a second of the under-load test, if junk counted
JUNK_WARM = 2.0             # seconds of junk before the fresh handshake starts
HANDSHAKE_BOUND = 2.0       # a fresh handshake and its first ping: tens of ms unloaded
HANDSHAKE_TIMEOUT = 10.0    # long enough to see the cookie round trip (REKEY_TIMEOUT, 5 s) it should not need


@pytest.mark.parametrize("daemon", DAEMONS)
def test_junk_initiations_do_not_put_the_daemon_under_load(tmp_path, daemon):
    """Item 3: only a handshake message with a valid MAC1 may count toward "under load" (whitepaper section
    5.3: MAC1 is checked first, so that a responder spends nothing on what anyone could have sent).

    C sends JUNK_RATE datagrams a second that look like initiations (type 1, three zero bytes, 148 bytes)
    and are random inside, each from the next address of 10.77.0.0/16, for the whole test. After JUNK_WARM
    seconds both ends forget the session (``wg setconf`` replaces the peer) and B pings A: the fresh
    handshake and its first reply must take less than HANDSHAKE_BOUND. A daemon that counts the junk
    answers B's initiation with a cookie reply, and B's retransmission comes REKEY_TIMEOUT (5 s) later.
    """
    require("ip", "wg", "wireguard-go", "ping")
    with Hosts(TAG) as hosts:
        # The daemon logs errors only: a verbose log would write a line per junk datagram.
        a, b = pair(hosts, tmp_path, daemon, "wireguard-go", log_level="error")
        c = add_attacker(hosts)
        assert first_ping(hosts, b.ns, a.address, timeout=10) is not None, "no tunnel to begin with"

        before = udp_counters(hosts, a.ns)
        attacker = python_in(hosts, c, "tests.interop.attack", "flood", f"{a.underlay}:{a.port}", "--junk",
                             "--sources", ATTACKER["sources"], "--rate", str(JUNK_RATE),
                             "--seconds", str(JUNK_WARM + HANDSHAKE_TIMEOUT + 5))
        expect_line(attacker, "ready")
        time.sleep(JUNK_WARM)
        for side in (a, b):
            side.wg("setconf", side.name, str(tmp_path / f"{side.name}.conf"))
        handshake = first_ping(hosts, b.ns, a.address, timeout=HANDSHAKE_TIMEOUT)
        flood = stop(attacker)
        after = udp_counters(hosts, a.ns)
        arrived = after["InDatagrams"] - before["InDatagrams"]
        cookies = b.log_count("Receiving cookie response")
        figure(f"{daemon} daemon, {flood['rate']} junk initiations/s ({flood['sent']} in {flood['seconds']} s, "
               f"{arrived} datagrams arrived at A): fresh handshake and first ping in "
               f"{'%.2f s' % handshake if handshake is not None else f'more than {HANDSHAKE_TIMEOUT:g} s'} "
               f"(bound {HANDSHAKE_BOUND:g} s); cookie replies B got: {cookies}")
        assert flood["rate"] >= 0.9 * JUNK_RATE, f"the junk flood reached only {flood['rate']}/s"
        assert arrived >= 0.8 * flood["sent"]
        assert a.process.poll() is None
        assert handshake is not None and handshake < HANDSHAKE_BOUND, (
            f"a fresh handshake took {handshake if handshake is None else round(handshake, 2)} s under "
            f"{flood['rate']} junk initiations/s")
