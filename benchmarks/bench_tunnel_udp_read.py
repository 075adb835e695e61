"""How the tunnel's engine should read its UDP socket in asyncio: ``loop.add_reader`` with batched
``recvmsg_into`` (udp.py's ``Udp.receive``, what tunnel_engine.py does) against an asyncio datagram
endpoint (one ``datagram_received`` callback per datagram).

    python3 benchmarks/bench_tunnel_udp_read.py [--datagrams 2000] [--rounds 30] [--size 200]

Each round queues ``--datagrams`` datagrams on the receiving socket first (they fit its buffer), then runs
the loop until all are read; the figure is the median wall time per datagram, and the CPU time, for each
way. No root, no network: 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wgpy.runtime.udp import Udp  # noqa: E402

BATCH = 64


def fill(sender: socket.socket, port: int, count: int, payload: bytes) -> None:
    for _ in range(count):
        sender.sendto(payload, ("127.0.0.1", port))


async def with_reader(count: int, payload: bytes, rounds: int) -> list[float]:
    loop = asyncio.get_running_loop()
    udp = Udp(steer=False)
    port = udp.bind(0)
    sock = next(s for s in udp.sockets if s.family == socket.AF_INET)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    times = []
    try:
        for _ in range(rounds):
            fill(sender, port, count, payload)
            done = loop.create_future()
            got = 0

            def readable() -> None:
                nonlocal got
                datagrams: list = []
                udp.receive(sock, datagrams, BATCH)
                got += len(datagrams)
                if got >= count and not done.done():
                    done.set_result(None)

            start = time.perf_counter()
            loop.add_reader(sock.fileno(), readable)
            await asyncio.wait_for(done, 10)
            times.append((time.perf_counter() - start) / count)
            loop.remove_reader(sock.fileno())
    finally:
        sender.close()
        udp.close()
    return times


class Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got = 0
        self.target = 0
        self.done: asyncio.Future | None = None

    def datagram_received(self, data, addr) -> None:
        self.got += 1
        if self.got >= self.target and self.done is not None and not self.done.done():
            self.done.set_result(None)


async def with_endpoint(count: int, payload: bytes, rounds: int) -> list[float]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 7 << 20)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    transport, counter = await loop.create_datagram_endpoint(Counter, sock=sock)
    times = []
    try:
        for _ in range(rounds):
            transport.pause_reading()
            fill(sender, port, count, payload)
            counter.got, counter.target, counter.done = 0, count, loop.create_future()
            start = time.perf_counter()
            transport.resume_reading()
            await asyncio.wait_for(counter.done, 10)
            times.append((time.perf_counter() - start) / count)
    finally:
        sender.close()
        transport.close()
    return times


async def main(arguments) -> None:
    payload = bytes(arguments.size)
    for name, way in (("add_reader + recvmsg_into batches (tunnel_engine)", with_reader),
                      ("create_datagram_endpoint, a callback each", with_endpoint)):
        cpu = time.process_time()
        times = await way(arguments.datagrams, payload, arguments.rounds)
        cpu = (time.process_time() - cpu) / (arguments.datagrams * arguments.rounds)
        print(f"{name:52} median {statistics.median(times) * 1e6:6.2f} us/datagram, "
              f"CPU incl. sending {cpu * 1e6:6.2f} us/datagram")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datagrams", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--size", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
