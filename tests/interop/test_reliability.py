"""Reliability, live: a bad network, a peer that crashes and comes back, replayed and garbage datagrams,
and keys rotating under traffic. The rig (namespaces, daemons, the bad network, numbered streams) is in
reliability.py; each test draws its own topology.

The bad network is netem's model (loss, duplication, reordering, jittered delay) played by
tests/interop/badnet.py on NFQUEUE, because the kernels these tests run on have no sch_netem.

Every figure a test measures is printed (run pytest with -s to see them) as "figure: ..." lines.
"""

from __future__ import annotations

import random
import time

import pytest

from wgpy.core.errors import Drop

from ..netns import Hosts, require, tcp_transfer, wait_for
from .attack import garbage, write_records
from .reliability import (
    TAG,
    Ping,
    Transfer,
    add_attacker,
    bad_network,
    capture,
    expect_line,
    first_ping,
    python_in,
    result_of,
    stop,
    tunnel,
    udp_counters,
)

# netem's "loss 10% duplicate 5% reorder 25% delay 2ms 1.5ms", applied to what each side sends.
IMPAIRMENT = dict(loss=0.10, duplicate=0.05, reorder=0.25, delay=0.002, jitter=0.0015)


def figure(text: str) -> None:
    print(f"figure: {text}")


def dropped(side, reason: Drop) -> int:
    """How many datagrams the daemon's verbose log says it dropped for ``reason``."""
    return side.log_count(f"Dropped: {reason.value}")


@pytest.mark.parametrize("far", ["wireguard-go", "wgpy"])
def test_bad_network_loses_nothing_and_delivers_nothing_twice(tmp_path, far):
    """
        ns A: wgpy, wgra                                         ns B: wireguard-go or wgpy, wgrb
          va ==== each way: loss 10 %, duplicate 5 %, reorder 25 %, delay 2 ms +- 1.5 ms ==== vb
          <-- TCP, 50 MiB, sha256 at both ends --------------------------------------------- sender
          <-- numbered UDP, 1000/s (UDP has no duplicate suppression: copies would reach the app)

    wgpy receives the bulk: every duplicate the network makes of B's datagrams reaches wgpy, which must
    refuse it (the replay window) rather than hand the packet to the TUN a second time. The numbered
    stream counts what reached the application, so what the TUN delivered: no number twice. The session
    must survive: the same handshake carries everything, and the tunnel still answers after.
    """
    require("ip", "wg", "wireguard-go", "iptables", "ping")
    with Hosts(TAG) as hosts:
        a, b = tunnel(hosts, tmp_path, far=far)
        assert hosts.ping(b.ns, a.address)
        session = a.latest_handshake()
        receiver = python_in(hosts, a.ns, "tests.interop.streams", "receive", a.address, "5400", "--idle", "4")
        expect_line(receiver, "listening")
        with bad_network(hosts, a.ns, "va", 7, seed=1, **IMPAIRMENT) as to_b, \
                bad_network(hosts, b.ns, "vb", 7, seed=2, **IMPAIRMENT) as to_a:
            sender = python_in(hosts, b.ns, "tests.interop.streams", "send", a.address, "5400", "--count", "6000", "--rate", "1000")
            size = 50 * 2**20
            received, intact, seconds, mbits = tcp_transfer(hosts, b.ns, a.ns, a.address, size)
            sent = result_of(sender)
        stream = result_of(receiver)
        figure(f"bad network, {far}: 50 MiB in {seconds:.1f} s ({mbits:.1f} Mbit/s); impairment B->A {to_a}, A->B {to_b}")
        figure(f"bad network, {far}: UDP stream {sent['sent']} sent, {stream}")
        replays = dropped(a, Drop.REPLAYED)
        figure(f"bad network, {far}: wgpy refused {replays} replayed datagrams (the network duplicated {to_a['duplicated']})")

        assert received == size and intact
        assert stream["duplicates"] == 0
        assert stream["distinct"] >= 0.8 * sent["sent"]   # 10 % lost on the way, nothing retransmits UDP
        assert to_a["duplicated"] > 100 and replays >= 0.8 * to_a["duplicated"]
        assert to_a["reordered"] > 1000 and stream["reordered"] > 0
        if far == "wgpy":   # B receives the acknowledgements, duplicated as well
            assert dropped(b, Drop.REPLAYED) >= 0.8 * to_b["duplicated"]
        # The session survives: the same one carried everything, and still does.
        assert a.latest_handshake() == session
        assert hosts.ping(b.ns, a.address) and hosts.ping(a.ns, b.address)
        assert a.process.poll() is None


def received_bytes(side) -> int:
    fields = side.show("transfer").split()
    return int(fields[1]) if len(fields) > 1 else 0


@pytest.mark.parametrize("restarted", ["a", "b"], ids=["wgpy-restarts", "wireguard-go-restarts"])
def test_a_peer_killed_mid_transfer_comes_back_within_seconds(tmp_path, restarted):
    """
        ns A: wgpy, wgra  <------------ veth ------------>  ns B: wireguard-go, wgrb
        the survivor sends 200 MiB over TCP to the other side; mid-transfer the other daemon is killed
        (SIGKILL: its TUN goes, its socket file stays) and started again with the same configuration

    Measured: the restart (kill to daemon answering and configured: wg setconf of the same file, address,
    link up), then the time until a ping from the restarted side gets through: it initiates, and the
    survivor, still holding the old session, must accept the new handshake at once. The interrupted TCP
    connection resumes once the tunnel is back (its retransmissions back off, so that takes a few seconds
    more), and a retried transfer completes too.
    """
    require("ip", "wg", "wireguard-go", "ping")
    with Hosts(TAG) as hosts:
        a, b = tunnel(hosts, tmp_path)
        assert hosts.ping(a.ns, b.address)
        victim, survivor = (a, b) if restarted == "a" else (b, a)
        transfer = Transfer(hosts, survivor.ns, victim.ns, victim.address, 200 * 2**20, port=5310)
        wait_for(lambda: received_bytes(victim) > 5 * 2**20, "the transfer to get going", timeout=30)
        before_kill = received_bytes(victim)
        killed = time.monotonic()
        victim.kill()
        victim.restart(survivor)
        restart = time.monotonic() - killed
        back = first_ping(hosts, victim.ns, survivor.address, timeout=20)
        received, intact = transfer.finish(timeout=120)
        finished = time.monotonic() - killed
        retried = tcp_transfer(hosts, survivor.ns, victim.ns, victim.address, 20 * 2**20, port=5311)
        figure(f"restart of {victim.kind}, killed after {before_kill / 2**20:.0f} MiB of 200: restarted and "
               f"configured in {restart:.2f} s, tunnel back {back if back is None else round(back, 2)} s later; "
               f"the interrupted transfer {'completed intact' if intact else f'failed after {received} bytes'} "
               f"{finished:.1f} s after the kill; a retried 20 MiB: {retried[0]} bytes, intact {retried[1]}")
        assert back is not None and restart + back < 5.0
        assert retried[0] == 20 * 2**20 and retried[1]
        assert intact



def test_wgpy_recovers_on_its_own_when_its_peer_restarts_silently(tmp_path):
    """
        ns A: wgpy, wgra  ---- numbered UDP, 100 a second, for 25 s ---->  ns B: wireguard-go, wgrb
                                                                          killed at 3 s and restarted
                                                                          with the same configuration;
                                                                          it sends nothing of its own

    wgpy keeps sending on the old session, which the new wireguard-go cannot decrypt. Nothing comes back,
    so wgpy's new-handshake timer (data sent, nothing received for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT,
    15 s, plus up to 1/3 s of jitter) starts a handshake, and the stream flows again. The outage, measured
    as the datagrams missing at the receiver, must stay within that timer, the restart and a margin.
    """
    require("ip", "wg", "wireguard-go", "ping")
    with Hosts(TAG) as hosts:
        a, b = tunnel(hosts, tmp_path)
        assert hosts.ping(a.ns, b.address)
        receiver = python_in(hosts, b.ns, "tests.interop.streams", "receive", b.address, "5403", "--idle", "60")
        expect_line(receiver, "listening")
        sender = python_in(hosts, a.ns, "tests.interop.streams", "send", b.address, "5403", "--count", "2500", "--rate", "100")
        time.sleep(3.0)
        handshake = a.latest_handshake()
        b.kill()
        b.restart(a)
        assert result_of(sender)["sent"] == 2500
        time.sleep(1.0)
        stream = stop(receiver)
        outage = stream["missing"] / 100
        figure(f"silent restart of wireguard-go: wgpy's stream was out for {outage:.1f} s, then flowed again "
               f"({stream}); handshake time {handshake} -> {a.latest_handshake()}")
        assert a.latest_handshake() > handshake
        assert stream["highest"] == 2499 and stream["duplicates"] == 0
        assert outage < 15 + 0.34 + 3.0

def test_replayed_datagrams_are_never_delivered(tmp_path):
    """
        ns A: wgpy, wgra  <------------ veth ------------  ns B: wireguard-go, wgrb
          stream receiver                 ^ tcpdump -w: everything B sends to A's port
                                          | then the same IP packets written again from B (raw socket),
                                          | in order, in reverse, and once more

    B initiates (a ping) and sends 300 numbered UDP datagrams; all of it is captured on B's veth and sent
    again, three times over. The receiving application must count each of the 300 exactly once; wgpy must
    refuse every replayed transport datagram (the replay window) and the replayed initiation (its
    timestamp is not newer), and the session must stay the one the real handshake made.
    """
    require("ip", "wg", "wireguard-go", "ping", "tcpdump")
    with Hosts(TAG) as hosts:
        a, b = tunnel(hosts, tmp_path)
        receiver = python_in(hosts, a.ns, "tests.interop.streams", "receive", a.address, "5401", "--idle", "60")
        expect_line(receiver, "listening")
        with capture(hosts, b.ns, "vb", f"udp and dst host {a.underlay} and dst port {a.port}", tmp_path / "b-to-a.pcap") as packets:
            assert hosts.ping(b.ns, a.address)
            sender = python_in(hosts, b.ns, "tests.interop.streams", "send", a.address, "5401", "--count", "300", "--rate", "500")
            assert result_of(sender)["sent"] == 300
            time.sleep(0.5)
        session = a.latest_handshake()
        datagrams = [p.payload for p in packets]
        kinds = [d[0] for d in datagrams]
        replays = datagrams + datagrams[::-1] + datagrams
        write_records(str(tmp_path / "replay.bin"), [(b.underlay, b.port, d) for d in replays])
        replayed_before = dropped(a, Drop.REPLAYED)
        before = udp_counters(hosts, a.ns)
        sent = result_of(python_in(hosts, b.ns, "tests.interop.attack", "send", f"{a.underlay}:{a.port}",
                                   "--records", str(tmp_path / "replay.bin"), "--rate", "2000"))
        time.sleep(1.0)
        stream = stop(receiver)
        unread = udp_counters(hosts, a.ns)["RcvbufErrors"] - before["RcvbufErrors"]
        refused = dropped(a, Drop.REPLAYED) - replayed_before
        stale = dropped(a, Drop.STALE_TIMESTAMP)
        figure(f"replay: captured {len(datagrams)} datagrams ({kinds.count(1)} initiations, {kinds.count(4)} transport), "
               f"sent {sent['sent']} again; the application received {stream}; wgpy refused {refused} as replayed, "
               f"{stale} initiations as stale ({unread} dropped unread by the kernel)")
        assert kinds.count(4) >= 300 and sent["sent"] == len(replays)
        assert stream["received"] == stream["distinct"] == 300 and stream["duplicates"] == 0
        # Every replayed datagram that wgpy read was refused, for the right reason.
        assert 3 * kinds.count(4) - unread <= refused <= 3 * kinds.count(4)
        assert 3 * kinds.count(1) - unread <= stale <= 3 * kinds.count(1)
        assert a.latest_handshake() == session
        assert hosts.ping(b.ns, a.address)


def test_garbage_on_the_udp_port_changes_nothing(tmp_path):
    """
        ns A: wgpy, wgra  <------------ veth ------------>  ns B: wireguard-go, wgrb
          vc                                                   ping B -> A, 100 a second
           ^
           | 20,000 garbage datagrams, 4,000 a second: half from B's own address and port (spoofed),
           | half from random addresses of 10.77.0.0/16
        ns C: the attacker

    Every message type, truncated, exact-sized and random, too long, with reserved bytes set, with a valid
    MAC1 over garbage; transport messages and cookie replies naming the live session's index; real
    datagrams (captured on A's veth) with one bit flipped, cut short or lengthened. wgpy must not crash,
    keep its session and its peer's endpoint, and lose at most 2 % of the pings (the bound: garbage costs
    at most one Diffie-Hellman each, so 4,000 a second leave the loop time to spare).
    """
    require("ip", "wg", "wireguard-go", "ping", "tcpdump")
    with Hosts(TAG) as hosts:
        a, b = tunnel(hosts, tmp_path)
        c = add_attacker(hosts)
        with capture(hosts, a.ns, "va", f"udp and port {a.port}", tmp_path / "a.pcap") as packets:
            assert hosts.ping(b.ns, a.address, count=5)
        session, endpoint = a.latest_handshake(), a.show("endpoints").split()[1]
        captured = [p.payload for p in packets]
        # The attacker sees the session's indices on the wire: what B sends names A's index.
        indices = sorted({int.from_bytes(p.payload[4:8], "little") for p in packets
                          if p.source[0] == b.underlay and p.payload[0] == 4})
        rng = random.Random(8)
        records = []
        for n in range(20_000):
            source = (b.underlay, b.port) if n % 2 else (f"10.77.{rng.randrange(256)}.{rng.randrange(1, 255)}", rng.randrange(1024, 65536))
            records.append((*source, garbage(rng, a.key.public, indices, captured)))
        write_records(str(tmp_path / "garbage.bin"), records)
        ping = Ping(hosts, b.ns, a.address, count=700, interval=0.01)
        attacker = python_in(hosts, c, "tests.interop.attack", "send", f"{a.underlay}:{a.port}",
                             "--records", str(tmp_path / "garbage.bin"), "--rate", "4000")
        sent = result_of(attacker)
        pings = ping.result()
        reasons = {reason.name: dropped(a, reason) for reason in Drop if dropped(a, reason)}
        figure(f"garbage: sent {sent}; ping B->A during it: {pings}; wgpy's drops by reason: {reasons}")
        assert a.process.poll() is None and "Traceback" not in a.log.read_text()
        assert sent["sent"] == 20_000
        assert pings["lost"] <= 0.02 * pings["sent"]
        assert sum(reasons.values()) >= 19_000 and len(reasons) >= 6
        assert a.latest_handshake() == session and a.show("endpoints").split()[1] == endpoint
        assert hosts.ping(b.ns, a.address) and hosts.ping(a.ns, b.address)


@pytest.mark.parametrize("far", ["wireguard-go", "wgpy"])
def test_keys_rotate_under_continuous_traffic_without_loss(tmp_path, far):
    """
        ns A: wgpy, wgra, timers shortened           <---- veth ---->  ns B: wireguard-go (standard timers)
          (tests/interop/fast_timers.py: REKEY_AFTER_TIME 3 s,           or wgpy, shortened the same way
           REJECT_AFTER_TIME 8 s, REKEY_TIMEOUT 0.5 s, KEEPALIVE 1.5 s)
          numbered UDP A -> B and B -> A, 250 a second each, for 15 s

    A initiates the first handshake, so it is the initiator that rekeys every REKEY_AFTER_TIME while it
    sends; each rekey must go unnoticed by the streams: nothing missing, nothing twice. The timers are
    shortened only in the daemon the test starts, through the launcher: production code has no hook.
    """
    require("ip", "wg", "wireguard-go", "ping")
    launcher, COUNT = "tests.interop.fast_timers", 3750
    with Hosts(TAG) as hosts:
        a, b = tunnel(hosts, tmp_path, far=far, launcher=launcher, far_launcher=launcher if far == "wgpy" else None)
        assert hosts.ping(a.ns, b.address)
        receivers = [python_in(hosts, side.ns, "tests.interop.streams", "receive", side.address, "5402", "--idle", "2")
                     for side in (a, b)]
        for receiver in receivers:
            expect_line(receiver, "listening")
        senders = [python_in(hosts, side.ns, "tests.interop.streams", "send", other.address, "5402", "--count", str(COUNT), "--rate", "250")
                   for side, other in ((a, b), (b, a))]
        handshakes = {a.latest_handshake()}
        completed_before = a.log_count("handshake completed")
        while any(sender.poll() is None for sender in senders):
            handshakes.add(a.latest_handshake())
            time.sleep(0.5)
        sent = [result_of(sender) for sender in senders]
        to_a, to_b = (result_of(receiver) for receiver in receivers)
        rekeys = a.log_count("handshake completed") - completed_before
        figure(f"rekeys, {far}: {rekeys} handshakes completed in {sent[0]['seconds']} s of traffic, "
               f"{len(handshakes) - 1} new handshake times seen by `wg show`; A->B {to_b}; B->A {to_a}")
        assert len(handshakes) - 1 >= 3 and rekeys >= 3
        for stream, sender in ((to_b, sent[0]), (to_a, sent[1])):
            assert sender["sent"] == COUNT
            assert stream["received"] == stream["distinct"] == COUNT and stream["missing"] == 0
