"""wgpy.Tunnel in one process: two tunnels over loopback (``Tunnel.pair``), one asyncio loop, one core.

    python3 benchmarks/bench_tunnel_library.py [--megabytes 16] [--round-trips 2000]

Reports the TCP throughput of one connection (client writes, server reads and counts), the UDP
round trips per second of one datagram endpoint to an echo endpoint, and the time from ``start`` of a
pair to its first completed handshake. Both tunnels share the process: each figure pays for both ends
(encryption and decryption, both TCP stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import wgpy  # noqa: E402


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


class Ask(asyncio.DatagramProtocol):
    def __init__(self):
        self.waiting: asyncio.Future | None = None

    def datagram_received(self, data, addr):
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(data)


async def main(arguments) -> None:
    start = time.perf_counter()
    async with wgpy.Tunnel.pair() as (client, server):
        print(f"pair started, handshake done: {(time.perf_counter() - start) * 1000:.1f} ms")

        size = arguments.megabytes << 20
        done = asyncio.get_running_loop().create_future()

        async def sink(reader, writer):
            total = 0
            while chunk := await reader.read(1 << 16):
                total += len(chunk)
            done.set_result(total)
            writer.close()

        await server.start_server(sink, port=5201)
        reader, writer = await client.open_connection("10.0.0.2", 5201)
        block = bytes(1 << 16)
        cpu, began = time.process_time(), time.perf_counter()
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()
        writer.write_eof()
        received = await done
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        assert received == size, (received, size)
        print(f"TCP, one connection: {size * 8 / elapsed / 1e6:.1f} Mbit/s ({arguments.megabytes} MiB in "
              f"{elapsed:.2f} s, CPU {cpu:.2f} s)")
        writer.close()

        await server.create_datagram_endpoint(Echo, local_addr=("10.0.0.2", 7))
        transport, ask = await client.create_datagram_endpoint(Ask, remote_addr=("10.0.0.2", 7))
        began = time.perf_counter()
        for n in range(arguments.round_trips):
            ask.waiting = asyncio.get_running_loop().create_future()
            transport.sendto(b"%d" % n)
            await asyncio.wait_for(ask.waiting, 5)
        elapsed = time.perf_counter() - began
        print(f"UDP round trips: {arguments.round_trips / elapsed:.0f} per second "
              f"({elapsed / arguments.round_trips * 1e6:.0f} us each)")
        transport.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=16)
    parser.add_argument("--round-trips", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
