"""Userspace TCP benchmark: bulk transfer between two ``TcpConnection``s in memory, no loss.

    python3 benchmarks/bench_netstack.py [--megabytes 64] [--profile] [--json FILE]

The client writes as fast as its send buffer takes; every segment is packed (checksum computed) and parsed
(checksum checked) on its way, as the stack does, and handed to the other connection; the server reads
everything at once. The clock advances 0.1 ms per round, so delayed ACKs and timers run as they would.
It reports MB/s of application data and microseconds per data segment (the whole round trip of the work:
pack, parse, receive, the ACKs back). ``--profile`` prints the top of a cProfile of one run.

For scale: issue 13's goal is half of wgpy's TUN-mode throughput (~1.4 Gbit/s, ~175 MB/s) through the
whole path (WireGuard included), so TCP's share must be far below 1380 bytes / 175 MB/s = 7.9 us per segment.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wgpy.netstack.tcp import TcpConfig, TcpConnection, TcpState, parse  # noqa: E402

CLIENT = (bytes([10, 0, 0, 1]), 40000)
SERVER = (bytes([10, 0, 0, 2]), 80)
MSS = 1380
REPEATS = 3


def run(total: int, verify: bool = True) -> tuple[float, int]:
    """(seconds, data segments) to move ``total`` bytes from client to server; ``verify=False`` parses
    without checking checksums, as the stack may for packets a WireGuard tag already proved."""
    config = TcpConfig()
    now = 0.0
    client = TcpConnection.open(CLIENT, SERVER, 1, now, MSS, config)
    [syn] = client.segments_to_send(now)
    server = TcpConnection.from_syn(SERVER, CLIENT, parse(syn.pack(CLIENT[0], SERVER[0]), CLIENT[0], SERVER[0]),
                                    7, now, MSS, config)
    for segment in server.segments_to_send(now):
        client.receive(parse(segment.pack(SERVER[0], CLIENT[0]), SERVER[0], CLIENT[0]), now)
    for segment in client.segments_to_send(now):
        server.receive(parse(segment.pack(CLIENT[0], SERVER[0]), CLIENT[0], SERVER[0]), now)
    assert client.state is TcpState.ESTABLISHED and server.state is TcpState.ESTABLISHED
    chunk = memoryview(bytes(range(256)) * 256)  # 64 KiB
    a, b = CLIENT[0], SERVER[0]
    sent = received = segments = 0
    start = time.perf_counter()
    while received < total:
        now += 0.0001
        while sent < total and client.writable:
            sent += client.send(chunk[:min(len(chunk), total - sent)])
        for segment in client.segments_to_send(now):
            segments += 1
            server.receive(parse(segment.pack(a, b), a, b, verify), now)
        while server.readable:
            received += len(server.recv(1 << 20))
        deadline = server.next_deadline()
        if deadline is not None and deadline <= now:
            server.handle_timer(now)
        for segment in server.segments_to_send(now):
            client.receive(parse(segment.pack(b, a), b, a, verify), now)
        deadline = client.next_deadline()
        if deadline is not None and deadline <= now:
            client.handle_timer(now)
    return time.perf_counter() - start, segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=64)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    total = args.megabytes << 20
    if args.profile:
        import cProfile
        import pstats
        profile = cProfile.Profile()
        profile.runcall(run, total)
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        return
    results = {"bytes": total, "python": platform.python_version()}
    for name, verify in (("checksums_verified", True), ("checksums_trusted", False)):
        seconds, segments = min(run(total, verify) for _ in range(REPEATS))
        results[name] = {
            "seconds": round(seconds, 4), "segments": segments,
            "megabytes_per_second": round(total / seconds / 1e6, 1),
            "microseconds_per_segment": round(seconds / segments * 1e6, 2),
        }
        print(f"{args.megabytes} MiB client to server, {name.replace('_', ' ')}: "
              f"{results[name]['megabytes_per_second']} MB/s, {results[name]['microseconds_per_segment']} us "
              f"per data segment ({segments} segments, best of {REPEATS})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
