"""The userspace stack's bulk path: two Stacks in one process, packets handed straight across, no loss.

    python3 benchmarks/bench_stack.py [--mib N] [--trust] [--profile]

Measures the whole stack path a TCP segment takes (IP build and parse, TCP pack and parse with checksums,
demultiplexing, the connection, events), one way, with the clock held: MB/s of payload and microseconds
per packet carried (data and ACKs). No WireGuard here: bench_tunnel.py measures the device. ``--trust``:
``Stack(verify_checksums=False)``, as behind a Device whose Poly1305 tags proved the packets.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wgpy.netstack.stack import Stack  # noqa: E402


def transfer(size: int, verify: bool = True) -> tuple[float, int]:
    """Seconds to move ``size`` bytes from alice to bob, and the packets carried."""
    alice = Stack(["10.0.0.1/24"], rng=random.Random(1).randbytes, verify_checksums=verify)
    bob = Stack(["10.0.0.2/24"], rng=random.Random(2).randbytes, verify_checksums=verify)
    listener = bob.tcp_listen(port=80)
    now = 1.0
    client = alice.tcp_connect(("10.0.0.2", 80), now)
    for _ in range(4):
        bob.receive_packets(alice.packets_to_send(), now)
        alice.receive_packets(bob.packets_to_send(), now)
    server = listener.accept()
    data = random.Random(3).randbytes(size)
    sent = received = packets = 0
    start = time.perf_counter()
    while received < size:
        if sent < size:
            sent += client.send(data[sent:sent + 262144])
        out = alice.packets_to_send()
        packets += len(out)
        bob.receive_packets(out, now)
        while chunk := server.recv(1 << 20):
            received += len(chunk)
        back = bob.packets_to_send()
        packets += len(back)
        alice.receive_packets(back, now)
        now += 0.0005
        for stack in (alice, bob):
            deadline = stack.next_deadline()
            if deadline is not None and deadline <= now:
                stack.poll(now)
    return time.perf_counter() - start, packets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--trust", action="store_true", help="verify_checksums=False")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    size = args.mib << 20
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
    seconds, packets = transfer(size, verify=not args.trust)
    if args.profile:
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(12)
    print(f"{args.mib} MiB in {seconds:.2f} s: {size / seconds / 1e6:.1f} MB/s ({size * 8 / seconds / 1e6:.0f} Mbit/s), "
          f"{packets} packets, {seconds / packets * 1e6:.1f} us per packet")


if __name__ == "__main__":
    main()
