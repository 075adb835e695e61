"""Numbered UDP streams through a tunnel: UDP has no duplicate suppression and no retransmission, so what
the receiving application counts is what the tunnel delivered, copies and gaps included.

    ip netns exec B python3 -m tests.interop.streams send 198.18.0.1 5400 --count 20000 --rate 2000
    ip netns exec A python3 -m tests.interop.streams receive 198.18.0.1 5400 --idle 3

Each datagram starts with its 8-byte sequence number (big-endian), padded to ``--size`` bytes. The receiver
prints "listening", and once it has heard nothing for ``--idle`` seconds after the first datagram (or on
SIGTERM) one JSON line: datagrams received, distinct sequence numbers, duplicates, the highest number,
numbers missing below it, and how many arrived after a higher one (reordered).
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import socket
import struct
import sys
import time

SEQUENCE = struct.Struct(">Q")


def family_of(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def send(address: str, port: int, count: int, rate: float, size: int, first: int = 0) -> dict:
    """Send ``count`` numbered datagrams at ``rate`` per second (paced against the clock, not by sleeps
    alone, so a late wake-up catches up instead of slowing the stream)."""
    padding = bytes(max(0, size - SEQUENCE.size))
    sent = refused = 0
    with socket.socket(family_of(address), socket.SOCK_DGRAM) as sock:
        start = time.monotonic()
        for n in range(first, first + count):
            due = start + (n - first) / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                sock.sendto(SEQUENCE.pack(n) + padding, (address, port))
                sent += 1
            except OSError:   # no route for a moment (the interface is being recreated): a lost datagram
                refused += 1
    return {"sent": sent, "refused": refused, "seconds": round(time.monotonic() - start, 3)}


def receive(address: str, port: int, idle: float, limit: float) -> dict:
    seen: dict[int, int] = {}
    received = reordered = highest = 0
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    with socket.socket(family_of(address), socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((address, port))
        sock.setblocking(False)
        print("listening", flush=True)
        start = last = time.monotonic()
        while not stopping:
            now = time.monotonic()
            if (received and now - last > idle) or now - start > limit:
                break
            try:
                ready, _, _ = select.select([sock], [], [], 0.1)
            except InterruptedError:
                continue
            while ready:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    break
                if len(data) < SEQUENCE.size:
                    continue
                n = SEQUENCE.unpack_from(data)[0]
                received += 1
                seen[n] = seen.get(n, 0) + 1
                if received > 1 and n < highest:
                    reordered += 1
                highest = max(highest, n)
                last = time.monotonic()
    lowest = min(seen, default=0)
    return {
        "received": received,
        "distinct": len(seen),
        "duplicates": received - len(seen),
        "lowest": lowest,
        "highest": highest,
        "missing": (highest - lowest + 1 - len(seen)) if seen else 0,
        "reordered": reordered,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sender = commands.add_parser("send")
    sender.add_argument("address")
    sender.add_argument("port", type=int)
    sender.add_argument("--count", type=int, required=True)
    sender.add_argument("--rate", type=float, required=True)
    sender.add_argument("--size", type=int, default=64)
    sender.add_argument("--first", type=int, default=0)
    receiver = commands.add_parser("receive")
    receiver.add_argument("address")
    receiver.add_argument("port", type=int)
    receiver.add_argument("--idle", type=float, default=3.0, help="stop this long after the last datagram")
    receiver.add_argument("--limit", type=float, default=300.0, help="stop after this long in any case")
    args = parser.parse_args(argv)
    if args.command == "send":
        result = send(args.address, args.port, args.count, args.rate, args.size, args.first)
    else:
        result = receive(args.address, args.port, args.idle, args.limit)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
