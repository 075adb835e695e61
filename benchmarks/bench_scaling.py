"""Scaling benchmark: the cost as the work grows, in one process (the sans-IO Device, no root).

    python3 benchmarks/bench_scaling.py [--quick] [--rounds 5] [--json FILE]
    python3 benchmarks/bench_scaling.py --write-docs    # docs/performance-scaling.{svg,json}, performance.md's tables

* per packet against peers (1, 10, 100, 1,000, 10,000): a device with N peers, a session with each (real
  handshakes, each peer a device of its own that initiates), sends 1420-byte IP packets (route, stage,
  encrypt: ``send_packets``) and receives transport messages (decrypt, replay window, roam check,
  allowed-IPs source check, timers: ``receive_datagrams``), in batches of 64 as the runtime reads them;
  the traffic spread over all N peers (a batch holds min(N, 64) peers), or all to one peer. Beside it,
  a bare ChaCha20-Poly1305 encrypt and decrypt of the same size, in the same rounds;
* per packet against allowed IPs (10 to 100,000, host routes shared by 10 peers, traffic spread over the
  10), and the bare ``AllowedIPs.lookup`` against table size, IPv4 and IPv6, host routes (/32, /128:
  one prefix length) and lengths mixed as in real tables (bench_allowedips.py's weights);
* handshakes a responder completes per second: the device's own time to answer each initiation while
  the N peers above are set up (one at a time, never under load);
* a flood: initiations with a valid MAC1 from 4,096 source endpoints, the clock real, the device's timer
  run after each read (the runtime's loop); read as the runtime reads its handshake socket (only as many
  as the handshake queue has room for), then in full batches of 64: how many messages per second the
  device gets through and what it does with them (cookie replies under load, drops while its queue is
  full, full handshakes before the load showed);
* memory per peer, per allowed IP and per session, by bench_memory.py's fresh interpreters (tracemalloc
  and VmRSS), against the number of peers.

Every size is measured once per round, the sizes alternating (reversed on odd rounds) so a change in the
machine's load falls on all alike, each timed pass after an untimed one of the same size (so it finds
its own device in the CPU caches, as a device running alone would); a figure is the best (lowest) of the
rounds, the median beside it in the JSON. Writes benchmarks/results/scaling.json by default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402

import bench_memory  # noqa: E402
import scaling_report  # noqa: E402
from bench_allowedips import MIXED  # noqa: E402
from bench_memory import ipv4, prefixes_of  # noqa: E402
from failures import Failures  # noqa: E402

from wgpy.core import noise, tai64n  # noqa: E402
from wgpy.core.allowedips import AllowedIPs  # noqa: E402
from wgpy.core.cookie import CookieGenerator  # noqa: E402
from wgpy.core.crypto import PrivateKey  # noqa: E402
from wgpy.core.device import Device  # noqa: E402
from wgpy.core.errors import Drop  # noqa: E402

DEFAULT_JSON = HERE / "results" / "scaling.json"
PEERS = (1, 10, 100, 1000, 10_000)
ALLOWED_IPS = (10, 100, 1000, 10_000, 100_000)
MEMORY_PEERS = (100, 1000, 10_000)
BATCH = 64                      # as wgpy.runtime.loop.BATCH
SIZE = 1420                     # IP packet size: the default tunnel MTU
OURS = bytes([10, 255, 255, 254])
HANDSHAKE_STEP = 0.005          # virtual seconds between two peers' handshakes: 200/s, never under load
SPOOFED = [(f"198.18.{n // 256}.{n % 256}", 1000 + n) for n in range(4096)]


# ------------------------------------------------------------------------------------ the rig

class Rig:
    """A device with ``peers`` peers, each with ``per_peer`` allowed IPs (bench_memory.prefixes_of: half
    IPv4 /32, half IPv6 /128) and a confirmed session; and, for each peer, the keypair of the remote end,
    to make transport messages for the device to receive."""

    def __init__(self, peers: int, per_peer: int = 1) -> None:
        self.device = device = Device(PrivateKey.generate(os.urandom), rng=os.urandom)
        device.listen_port = 51820
        self.peers, self.remote_keypairs, self.endpoints, self.addresses = [], [], [], []
        keys = [PrivateKey.generate(os.urandom) for _ in range(peers)]
        for n, key in enumerate(keys):
            peer = device.add_peer(key.public)
            endpoint = (f"198.19.{n // 250}.{n % 250 + 1}", 51820)
            peer.endpoint = endpoint
            for address, cidr in prefixes_of(n, per_peer):
                device.allowed_ips.insert(address, cidr, peer)
            self.peers.append(peer)
            self.endpoints.append(endpoint)
            self.addresses.append(prefixes_of(n, per_peer)[0][0])   # an IPv4 address of the peer's
        now, handshake_seconds = 1000.0, 0.0
        for n, key in enumerate(keys):
            # The peer initiates; the device answers; the peer's first data packet confirms the session.
            remote = Device(key, rng=os.urandom)
            ours = remote.add_peer(device.private_key.public)
            ours.endpoint = ("192.0.2.1", 51820)
            remote.allowed_ips.insert(bytes(4), 0, ours)
            remote.send_packet(ipv4(self.addresses[n], OURS), now)
            (initiation, _), = remote.datagrams_to_send()
            start = time.perf_counter()
            device.receive_datagram(initiation, self.endpoints[n], now)
            handshake_seconds += time.perf_counter() - start
            (response, _), = device.datagrams_to_send()
            remote.receive_datagram(response, ("192.0.2.1", 51820), now)
            for datagram, _ in remote.datagrams_to_send():
                device.receive_datagram(datagram, self.endpoints[n], now)
            self.remote_keypairs.append(ours.keypairs.current)
            now += HANDSHAKE_STEP
        device.packets_to_deliver()
        device.datagrams_to_send()
        device.events()
        missing = sum(1 for peer in self.peers if peer.keypairs.current is None)
        if missing:
            raise RuntimeError(f"{missing} of {peers} peers without a session")
        self.now = now + 1.0
        self.handshakes_per_s = peers / handshake_seconds

    def targets(self, spread: bool, count: int) -> list[int]:
        """Which peer each of ``count`` packets goes to or comes from: round robin over all, or peer 0."""
        n = len(self.peers)
        return [i % n for i in range(count)] if spread else [0] * count

    def send_pass(self, spread: bool, count: int) -> float:
        """Seconds per packet: ``count`` packets routed and sent in batches, drained as the runtime does."""
        device, now = self.device, self.now
        packets = [ipv4(OURS, self.addresses[i], SIZE) for i in self.targets(spread, count)]
        batches = [packets[i:i + BATCH] for i in range(0, count, BATCH)]
        send, drain = device.send_packets, device.datagrams_to_send
        start = time.perf_counter()
        for batch in batches:
            send(batch, now)
            drain()
        seconds = time.perf_counter() - start
        device.events()
        return seconds / count

    def receive_pass(self, spread: bool, count: int) -> float:
        """Seconds per packet: ``count`` transport messages received in batches, delivered, drained."""
        device, now = self.device, self.now
        datagrams = []
        for i in self.targets(spread, count):
            wire = self.remote_keypairs[i].encrypt(ipv4(self.addresses[i], OURS, SIZE), device.mtu)
            datagrams.append((wire, self.endpoints[i], None))
        batches = [datagrams[i:i + BATCH] for i in range(0, count, BATCH)]
        receive, drain = device.receive_datagrams, device.packets_to_deliver
        delivered = 0
        start = time.perf_counter()
        for batch in batches:
            receive(batch, now)
            delivered += len(drain())
        seconds = time.perf_counter() - start
        device.events()
        if delivered != count:
            raise RuntimeError(f"{delivered} of {count} packets delivered; drops: {dict(device.drops)}")
        return seconds / count


def bare_aead(count: int) -> tuple[float, float]:
    """Seconds per packet of a bare ChaCha20-Poly1305 encrypt, and of a decrypt: each direction's floor."""
    aead, nonce, packet = ChaCha20Poly1305(os.urandom(32)), bytes(12), bytes(SIZE)
    encrypt, decrypt = aead.encrypt, aead.decrypt
    start = time.perf_counter()
    sealed = [encrypt(nonce, packet, None) for _ in range(count)]
    middle = time.perf_counter()
    for message in sealed:
        decrypt(nonce, message, None)
    return (middle - start) / count, (time.perf_counter() - middle) / count


def summary(samples: list[float], scale: float) -> dict:
    return {"best": min(samples) * scale, "median": statistics.median(samples) * scale,
            "samples": [round(s * scale, 4) for s in samples]}


def alternate(sizes, rounds: int):
    """(round, size) for every round, the sizes in order on even rounds and reversed on odd ones."""
    for r in range(rounds):
        for size in (sizes if r % 2 == 0 else sizes[::-1]):
            yield r, size


# ------------------------------------------------------------------------------------ per packet

def per_packet_by_peers(peers: tuple[int, ...], rounds: int, count: int) -> dict:
    rigs, setup = {}, {}
    for n in peers:
        start = time.perf_counter()
        rigs[n] = Rig(n)
        setup[n] = {"seconds": round(time.perf_counter() - start, 2), "handshakes_per_s": rigs[n].handshakes_per_s}
        print(f"  {n:6d} peers: set up in {setup[n]['seconds']} s, the responder's handshakes "
              f"{rigs[n].handshakes_per_s:,.0f}/s", flush=True)
    samples: dict = {n: {key: [] for key in ("send_spread", "send_one", "receive_spread", "receive_one", "bare_encrypt",
                                       "bare_decrypt")}
                     for n in peers}
    for _, n in alternate(peers, rounds):
        rig, into = rigs[n], samples[n]
        encrypt, decrypt = bare_aead(count)
        into["bare_encrypt"].append(encrypt)
        into["bare_decrypt"].append(decrypt)
        for spread, label in ((True, "spread"), (False, "one")):
            # An untimed pass first: the timed one then finds this device in the caches as a device that
            # runs alone would, not as the previous size left them.
            rig.send_pass(spread, count)
            into[f"send_{label}"].append(rig.send_pass(spread, count))
            rig.receive_pass(spread, count)
            into[f"receive_{label}"].append(rig.receive_pass(spread, count))
    rows = []
    for n in peers:
        row = {"peers": n, "setup": setup[n]}
        row.update({key: summary(values, 1e6) for key, values in samples[n].items()})   # microseconds
        rows.append(row)
        print(f"  {n:6d} peers, us per packet (best of {rounds}): send spread {row['send_spread']['best']:.2f}, "
              f"one {row['send_one']['best']:.2f}; receive spread {row['receive_spread']['best']:.2f}, "
              f"one {row['receive_one']['best']:.2f}; bare encrypt {row['bare_encrypt']['best']:.2f}, decrypt "
              f"{row['bare_decrypt']['best']:.2f}", flush=True)
    return {"unit": "us per packet", "packet_bytes": SIZE, "batch": BATCH, "count_per_pass": count, "rows": rows}


def per_packet_by_allowed_ips(sizes: tuple[int, ...], rounds: int, count: int, peers: int = 10) -> dict:
    rigs = {total: Rig(peers, max(1, total // peers)) for total in sizes}
    samples: dict = {total: {"send_spread": [], "receive_spread": []} for total in sizes}
    for _, total in alternate(sizes, rounds):
        rig = rigs[total]
        rig.send_pass(True, count)   # untimed, as above
        samples[total]["send_spread"].append(rig.send_pass(True, count))
        rig.receive_pass(True, count)
        samples[total]["receive_spread"].append(rig.receive_pass(True, count))
    rows = []
    for total in sizes:
        row = {"allowed_ips": len(rigs[total].device.allowed_ips), "peers": peers}
        row.update({key: summary(values, 1e6) for key, values in samples[total].items()})
        rows.append(row)
        print(f"  {row['allowed_ips']:7d} allowed IPs over {peers} peers, us per packet: send "
              f"{row['send_spread']['best']:.2f}, receive {row['receive_spread']['best']:.2f}", flush=True)
    return {"unit": "us per packet", "packet_bytes": SIZE, "rows": rows}


def lookups_by_table_size(sizes: tuple[int, ...], rounds: int, probes: int) -> dict:
    """Nanoseconds per ``AllowedIPs.lookup`` of an address inside a random inserted prefix."""
    rng = random.Random(6479)
    series = {}
    for family, size in (("IPv4", 4), ("IPv6", 16)):
        for mix in ("host", "mixed"):
            tables, addresses, lengths = {}, {}, {}
            for total in sizes:
                table: AllowedIPs[object] = AllowedIPs()
                prefixes = random_prefixes(rng, size, mix, total)
                peers = [object() for _ in range(min(total, 1000))]
                for i, (address, cidr) in enumerate(prefixes):
                    table.insert(address, cidr, peers[i % len(peers)])
                bits = size * 8
                hits = []
                for address, cidr in rng.choices(prefixes, k=probes):
                    value = int.from_bytes(address, "big") >> (bits - cidr) << (bits - cidr)
                    hits.append((value | rng.getrandbits(bits - cidr)).to_bytes(size, "big"))
                if any(table.lookup(a) is None for a in hits):
                    raise RuntimeError("a lookup of an inserted prefix missed")
                tables[total], addresses[total] = table, hits
                lengths[total] = len({cidr for _, cidr in prefixes})
            samples: dict = {total: [] for total in sizes}
            for _, total in alternate(sizes, rounds):
                lookup = tables[total].lookup
                start = time.perf_counter()
                for address in addresses[total]:
                    lookup(address)
                samples[total].append((time.perf_counter() - start) / probes)
            series[f"{family} {mix}"] = [
                {"prefixes": len(tables[total]), "distinct_lengths": lengths[total], **summary(samples[total], 1e9)}
                for total in sizes]
            print(f"  {family} {mix:5s} lookup, ns: " + ", ".join(
                f"{row['prefixes']:,}: {row['best']:.0f}" for row in series[f"{family} {mix}"]), flush=True)
    return {"unit": "ns per lookup", "series": series}


def random_prefixes(rng: random.Random, size: int, mix: str, count: int) -> list[tuple[bytes, int]]:
    """``count`` distinct random prefixes: host routes only, or lengths weighted as in real tables."""
    bits, seen, out = size * 8, set(), []
    lengths, weights = zip(*MIXED[size].items())
    while len(out) < count:
        cidr = bits if mix == "host" else rng.choices(lengths, weights)[0]
        key = (rng.getrandbits(cidr), cidr)
        if key in seen:
            continue
        seen.add(key)
        out.append(((key[0] << (bits - cidr)).to_bytes(size, "big"), cidr))
    return out


# ------------------------------------------------------------------------------------ handshakes

def flood(seconds: float) -> dict:
    """A responder with one peer flooded with valid-MAC1 initiations from an unknown key, from 4,096
    endpoints, the clock real, the device's timer run after each read as the runtime's loop does: first
    read as the runtime reads its steered handshake socket (only as many as the handshake queue has room
    for: the kernel drops the rest), then in full batches of 64 (as a socket without steering delivers
    them), half the time each."""
    attacker = PrivateKey.generate(os.urandom)
    return {"runtime_reads": flood_run(attacker, seconds / 2, room_only=True),
            "full_batches": flood_run(attacker, seconds / 2, room_only=False)}


def flood_run(attacker: PrivateKey, seconds: float, room_only: bool) -> dict:
    device = Device(PrivateKey.generate(os.urandom), rng=os.urandom)
    device.add_peer(PrivateKey.generate(os.urandom).public).endpoint = ("192.0.2.2", 51820)
    message, _ = noise.create_initiation(attacker, device.private_key.public, PrivateKey.generate(os.urandom), 1,
                                         tai64n.encode(1.0))
    wire = CookieGenerator(device.private_key.public).add_macs(message.pack(), 0.0)
    stream = [(wire, source, None) for source in SPOOFED] * 2
    queue = device.handshake_queue
    receive, timer, drain = device.receive_datagrams, device.handle_timer, device.datagrams_to_send
    given = replies = position = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        for _ in range(64):
            now = 1000.0 + elapsed
            limit = min(BATCH, queue.limit - len(queue)) if room_only else BATCH
            if limit > 0:
                receive(stream[position:position + limit], now)
                given += limit
                position = (position + limit) % len(SPOOFED)
            deadline = device.next_deadline()
            if deadline is not None and deadline <= now:
                timer(now)
            replies += len(drain())
            device.events()
        elapsed = time.perf_counter() - start
    drops = device.drops
    unaccounted = given - sum(drops.values()) - len(queue)
    if unaccounted:
        raise RuntimeError(f"{unaccounted} flood messages neither dropped nor queued: {dict(drops)}")
    result = {
        "seconds": elapsed,
        "messages_per_s": given / elapsed,
        "cookie_replies_per_s": replies / elapsed,
        "turned_away_queue_full_per_s": drops[Drop.HANDSHAKE_QUEUE_FULL] / elapsed,
        "counts": {"given": given, "cookie_replies": replies,
                   **{reason.name.lower(): count for reason, count in sorted(drops.items(), key=lambda i: i[0].name)}},
    }
    how = "read as far as the queue has room" if room_only else "in full batches of 64"
    print(f"  flood, {how}: {result['messages_per_s']:,.0f} messages/s through the device: cookie replies "
          f"{result['cookie_replies_per_s']:,.0f}/s, turned away (queue full) "
          f"{result['turned_away_queue_full_per_s']:,.0f}/s, handled as full handshakes (unknown peer) "
          f"{result['counts'].get('unknown_peer', 0)}", flush=True)
    return result


# ------------------------------------------------------------------------------------ memory

def memory(peers: tuple[int, ...]) -> dict:
    """bench_memory's fresh interpreters: per peer (bare - empty), per allowed IP (idle - bare; one IPv4 and
    one IPv6 per peer), per session (sessions - idle), each divided by the count, by both measures."""
    rows = []
    for n in peers:
        row = {"peers": n}
        for mode in ("tracemalloc", "rss"):
            sizes = {config: bench_memory.in_child(config, mode, n, 2 * n)["bytes"]
                     for config in ("empty", "bare", "idle", "sessions")}
            row[mode] = {"per_peer": (sizes["bare"] - sizes["empty"]) / n,
                         "per_allowed_ip": (sizes["idle"] - sizes["bare"]) / (2 * n),
                         "per_session": (sizes["sessions"] - sizes["idle"]) / n,
                         "bytes": sizes}
        rows.append(row)
        print(f"  {n:6d} peers, bytes: per peer {row['tracemalloc']['per_peer']:,.0f} (tracemalloc) "
              f"{row['rss']['per_peer']:,.0f} (RSS); per allowed IP {row['tracemalloc']['per_allowed_ip']:,.0f} / "
              f"{row['rss']['per_allowed_ip']:,.0f}; per session {row['tracemalloc']['per_session']:,.0f} / "
              f"{row['rss']['per_session']:,.0f}", flush=True)
    return {"unit": "bytes", "rows": rows}


# ------------------------------------------------------------------------------------ main

def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 rounds, 1,000 peers and 10,000 allowed IPs at most, no memory")
    parser.add_argument("--rounds", type=int, default=5, help="rounds over all sizes (default 5)")
    parser.add_argument("--count", type=int, default=2048, help="packets per pass (default 2048)")
    parser.add_argument("--flood-seconds", type=float, default=2.0, help="length of the flood (default 2)")
    parser.add_argument("--peers", type=int, nargs="+", default=list(PEERS), help="peer counts")
    parser.add_argument("--allowed-ips", type=int, nargs="+", default=list(ALLOWED_IPS), help="table sizes")
    parser.add_argument("--memory-peers", type=int, nargs="*", default=list(MEMORY_PEERS),
                        help="peer counts for the memory figures (none: skip them)")
    parser.add_argument("--note", default="", help="a remark stored with the results")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--write-docs", action="store_true",
                        help="measure nothing: draw docs/performance-scaling.svg, rewrite docs/performance.md's "
                             "scaling tables and copy the results file to docs/performance-scaling.json")
    args = parser.parse_args(argv)
    failures = Failures("bench_scaling")
    if args.write_docs:
        if failures.run("write-docs", scaling_report.write_docs, json.loads(args.json.read_text())) is not None:
            print(f"wrote {scaling_report.PLOT}, {scaling_report.DOC_JSON} and the tables in {scaling_report.DOC} "
                  f"from {args.json}")
        return failures.finish()
    if args.quick:
        args.rounds, args.count, args.flood_seconds = 2, 512, 0.5
        args.peers = [n for n in args.peers if n <= 1000]
        args.allowed_ips = [n for n in args.allowed_ips if n <= 10_000]
        args.memory_peers = []

    results: dict = {
        "benchmark": "scaling",
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "loadavg_start": loadavg()},
        "settings": {"rounds": args.rounds, "count": args.count, "flood_seconds": args.flood_seconds,
                     "peers": args.peers, "allowed_ips": args.allowed_ips, "memory_peers": args.memory_peers},
        "note": args.note,
    }
    clock = time.monotonic()
    parts = (
        ("per_packet_by_peers", "per packet against peers", per_packet_by_peers,
         (tuple(args.peers), args.rounds, args.count)),
        ("per_packet_by_allowed_ips", "per packet against allowed IPs", per_packet_by_allowed_ips,
         (tuple(args.allowed_ips), args.rounds, args.count)),
        ("lookup_by_table_size", "allowed-IPs lookups against table size", lookups_by_table_size,
         (tuple(args.allowed_ips), args.rounds, 4 * args.count)),
        ("flood", "a handshake flood", flood, (args.flood_seconds,)),
        ("memory", "memory against peers", memory, (tuple(args.memory_peers),)),
    )
    for key, title, function, arguments in parts:
        if key == "memory" and not args.memory_peers:
            continue
        print(f"{title}:", flush=True)
        figures = failures.run(key, function, *arguments)
        if figures is not None:
            results[key] = figures
    results["machine"]["loadavg_end"] = loadavg()
    results["duration_s"] = round(time.monotonic() - clock, 1)
    results["failed"] = failures.failed
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {args.json}")
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
