"""Memory benchmark: what a peer costs, and what the daemon holds under a handshake flood.

    python3 benchmarks/bench_memory.py [--peers 10000] [--allowed-ips 100000] [--flood-seconds 15] [--json FILE]

* In-process ``Device`` objects, each built in a fresh interpreter so that one does not inherit another's
  heap: an empty device (the reference), one with ``--peers`` peers with an endpoint each, the same with
  ``--allowed-ips`` allowed IPs shared among them (half IPv4 /32, half IPv6 /128), and the same after a
  real handshake with every peer (a session each: two AEAD contexts and a replay window). Each is measured twice, in separate runs:
  ``tracemalloc`` (Python's own allocations, exactly) and the process's resident set (VmRSS: everything,
  OpenSSL's key schedules and the allocator's slack included). Per peer = (device - empty) / peers.
* The timer heap under traffic with a persistent keepalive: entries after N received packets.
* The daemon under the flood of tests/interop/test_reliability_flood.py (root, namespaces, wireguard-go):
  initiations with a valid MAC1 from ever-new spoofed source endpoints, as fast as one process sends, for
  ``--flood-seconds``; the daemon's VmRSS each second, and its growth per datagram answered.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from failures import Failures  # noqa: E402
from wgpy.core.crypto import PrivateKey  # noqa: E402
from wgpy.core.device import Device  # noqa: E402

OUR_TUNNEL = bytes([10, 255, 255, 254])


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def ipv4(source: bytes, destination: bytes, size: int = 64) -> bytes:
    return bytes([0x45, 0]) + size.to_bytes(2, "big") + bytes(5) + bytes([17, 0, 0]) + source + destination + bytes(size - 20)


def prefixes_of(n: int, per_peer: int) -> list[tuple[bytes, int]]:
    """Peer n's allowed IPs: half IPv4 /32 from 10.0.0.0/8, half IPv6 /128 from fd00::/8."""
    out = []
    for k in range(per_peer):
        index = n * per_peer + k
        if k % 2 == 0:
            out.append(((0x0A000000 + index).to_bytes(4, "big"), 32))
        else:
            out.append((ipaddress.IPv6Address((0xFD << 120) + index).packed, 128))
    return out


def build(config: str, peers: int, allowed_ips: int) -> tuple[Device, list]:
    """The device of ``config`` ("empty"; "bare": peers with an endpoint, no allowed IPs; "idle": with
    their allowed IPs; "sessions": and a session each); also what must stay alive with it."""
    device = Device(PrivateKey.generate(os.urandom), rng=os.urandom)
    device.listen_port = 51820
    if config == "empty":
        return device, []
    per_peer = max(1, allowed_ips // peers)
    keys = [PrivateKey.generate(os.urandom) for _ in range(peers)]
    for n, key in enumerate(keys):
        peer = device.add_peer(key.public)
        peer.endpoint = (f"198.18.{n // 250}.{n % 250 + 1}", 51820)
        if config == "bare":
            continue
        for address, cidr in prefixes_of(n, per_peer):
            device.allowed_ips.insert(address, cidr, peer)
    if config == "sessions":
        now = 1000.0
        for n, key in enumerate(keys):
            # Each peer, in turn, is a device of its own that sends us one packet: a full handshake, then
            # the packet confirms the session on our side. The clock moves 10 ms per handshake, so we are
            # never under load (512 handshake messages a second).
            remote = Device(key, rng=os.urandom)
            ours = remote.add_peer(device.private_key.public)
            ours.endpoint = ("192.0.2.1", 51820)
            remote.allowed_ips.insert(bytes(4), 0, ours)
            source = prefixes_of(n, per_peer)[0][0]
            remote.send_packet(ipv4(source, OUR_TUNNEL), now)
            for _ in range(3):
                for datagram, _ in remote.datagrams_to_send():
                    device.receive_datagram(datagram, device.peers[key.public].endpoint, now)
                for datagram, _ in device.datagrams_to_send():
                    remote.receive_datagram(datagram, ("192.0.2.1", 51820), now)
            now += 0.01
        device.packets_to_deliver()
        device.events()
        missing = sum(1 for peer in device.peers.values() if peer.keypairs.current is None)
        assert missing == 0, f"{missing} peers without a session"
    return device, keys


def measure(config: str, mode: str, peers: int, allowed_ips: int) -> dict:
    """Run in a fresh interpreter: the device's size by ``mode`` ("tracemalloc" or "rss")."""
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = rss_kib() * 1024
    start = time.perf_counter()
    device, keep = build(config, peers, allowed_ips)
    seconds = time.perf_counter() - start
    del keep
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if mode == "tracemalloc" else rss_kib() * 1024
    return {"config": config, "mode": mode, "bytes": after - before, "peers": len(device.peers),
            "allowed_ips": sum(1 for peer in device.peers.values() for _ in device.allowed_ips.entries(peer)),
            "seconds": round(seconds, 2)}


def in_child(config: str, mode: str, peers: int, allowed_ips: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", config, mode, "--peers", str(peers),
                          "--allowed-ips", str(allowed_ips)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"the interpreter measuring {config} ({mode}) exited with {out.returncode}: "
                           f"{(out.stderr.strip().splitlines() or ['(no output)'])[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def timer_heap(packets: int) -> dict:
    """Heap entries of the receiving device's timer schedule after ``packets`` transport packets, with a
    persistent keepalive of 25 s and without one."""
    sys.path.insert(0, str(ROOT))
    from tests.netsim import Net, ipv4_packet

    out = {}
    for interval in (0, 25):
        net = Net(seed=1)
        alice, bob = net.device("192.0.2.1"), net.device("192.0.2.2")
        net.link(alice, bob)
        peer = bob.device.peers[alice.public]
        bob.device.set_persistent_keepalive(peer, interval, net.now)
        alice.device.send_packet(ipv4_packet(alice.tunnel_ip, bob.tunnel_ip, b"hello"), net.now)
        net.run(until=net.now + 12)
        before = len(bob.device.schedule)
        for _ in range(packets):
            alice.device.send_packet(ipv4_packet(alice.tunnel_ip, bob.tunnel_ip, bytes(100)), net.now)
            for datagram, _ in alice.device.datagrams_to_send():
                bob.device.receive_datagram(datagram, alice.endpoint, net.now)
            bob.device.packets_to_deliver()
            bob.device.datagrams_to_send()
            bob.device.events()
            net.now += 0.0001
        out[f"keepalive_{interval}"] = {"before": before, "after": len(bob.device.schedule)}
    return out


def daemon_under_flood(seconds: float) -> dict:
    """The live daemon's VmRSS while the test suite's flood runs at full speed."""
    from tests.netns import Hosts
    from tests.interop.reliability import (ATTACKER, add_attacker, expect_line, python_in, result_of, tunnel,
                                           udp_counters)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, Hosts("r") as hosts:
        a, b = tunnel(hosts, Path(tmp), log_level="error", prefix="wgrm")
        c = add_attacker(hosts)
        hosts.run(c, "iptables", "-t", "raw", "-A", "PREROUTING", "-i", "vx", "-p", "udp", "--sport", str(a.port),
                  "-m", "length", "--length", "92", "-j", "DROP")
        idle = a.rss_kib()
        before = udp_counters(hosts, a.ns)
        attacker = python_in(hosts, c, "tests.interop.attack", "flood", f"{a.underlay}:{a.port}", "--public",
                             a.key.public.hex(), "--sources", ATTACKER["sources"], "--seconds", str(seconds))
        expect_line(attacker, "ready")
        start, samples = time.monotonic(), []
        while attacker.poll() is None:
            samples.append((round(time.monotonic() - start, 1), a.rss_kib()))
            time.sleep(1.0)
        flood = result_of(attacker)
        after = udp_counters(hosts, a.ns)
        line = hosts.run(c, "iptables", "-t", "raw", "-L", "PREROUTING", "-v", "-n", "-x").stdout.splitlines()[2]
        cookie_replies = int(line.split()[0])
        peak = int(next(l.split()[1] for l in Path(f"/proc/{a.process.pid}/status").read_text().splitlines()
                        if l.startswith("VmHWM:")))
        return {"flood": flood, "cookie_replies": cookie_replies, "idle_rss_kib": idle, "samples": samples,
                "peak_kib": peak, "unread": after["RcvbufErrors"] - before["RcvbufErrors"],
                "bytes_per_answered": round((samples[-1][1] - idle) * 1024 / max(cookie_replies, 1))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 200 peers, 2,000 allowed IPs, 2,000 packets, no live flood")
    parser.add_argument("--peers", type=int, default=10_000)
    parser.add_argument("--allowed-ips", type=int, default=100_000)
    parser.add_argument("--flood-seconds", type=float, default=15.0, help="0 to skip the live flood")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(*args.child, args.peers, args.allowed_ips)))
        return 0
    packets = 20_000
    if args.quick:
        args.peers, args.allowed_ips, args.flood_seconds, packets = 200, 2_000, 0.0, 2_000
    failures = Failures("bench_memory")

    results: dict = {"peers": args.peers, "allowed_ips": args.allowed_ips}
    for mode in ("tracemalloc", "rss"):
        empty = failures.run(f"empty device ({mode})", in_child, "empty", mode, args.peers, args.allowed_ips)
        if empty is None:
            continue
        results[f"empty_{mode}"] = empty
        print(f"empty device ({mode}): {empty['bytes'] / 1024:.0f} KiB")
        for config in ("bare", "idle", "sessions"):
            full = failures.run(f"{config} ({mode})", in_child, config, mode, args.peers, args.allowed_ips)
            if full is None:
                continue
            per_peer = (full["bytes"] - empty["bytes"]) / args.peers
            results[f"{config}_{mode}"] = dict(full, per_peer=round(per_peer))
            what = "a session each" if config == "sessions" else "no sessions"
            print(f"{args.peers} peers, {full['allowed_ips']} allowed IPs, {what} ({mode}): {full['bytes'] / 2**20:.1f} MiB, "
                  f"{per_peer:.0f} bytes per peer beyond the empty device (built in {full['seconds']} s)")
        if f"bare_{mode}" in results and f"idle_{mode}" in results:
            bare, idle = results[f"bare_{mode}"]["bytes"], results[f"idle_{mode}"]["bytes"]
            results[f"per_allowed_ip_{mode}"] = round((idle - bare) / args.allowed_ips)
            print(f"per allowed IP ({mode}): {(idle - bare) / args.allowed_ips:.0f} bytes")

    heap = failures.run("timer heap", timer_heap, packets)
    if heap is not None:
        results["timer_heap"] = heap
        print(f"timer heap after {packets:,} received packets: {heap['keepalive_0']['after']} entries without a persistent "
              f"keepalive, {heap['keepalive_25']['after']} with one (25 s)")

    tools = all(shutil.which(t) for t in ("ip", "wg", "wireguard-go", "iptables"))
    if args.flood_seconds and os.geteuid() == 0 and tools:
        flood = failures.run("daemon under flood", daemon_under_flood, args.flood_seconds)
        if flood is not None:
            results["flood"] = flood
            print(f"daemon under a flood of {flood['flood']['rate']} initiations/s for {flood['flood']['seconds']} s "
                  f"({flood['cookie_replies']} answered with cookie replies, {flood['unread']} dropped unread): "
                  f"RSS idle {flood['idle_rss_kib']} KiB, peak {flood['peak_kib']} KiB, "
                  f"{flood['bytes_per_answered']} bytes more per datagram answered; samples (s, KiB) {flood['samples']}")
    elif args.flood_seconds:
        failures.missing("root, ip, wg, wireguard-go and iptables for the daemon under flood")
    results["failed"] = failures.failed
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
