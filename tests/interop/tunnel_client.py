"""The Tunnel side of test_tunnel_library.py: one check per run, as a program (so it can run as another
user, in another namespace). Prints one JSON object per result line; exits non-zero on failure.

    python tunnel_client.py CONFIG CHECK HOST [PORT ...]

Checks: ``http`` (GET /blob with open_connection: the body's sha256), ``echo`` (256 KiB through an echo
server and back), ``udp`` (datagrams to an echo server), ``socket`` (GET /blob with http.client on
socket_connection), ``transparent`` (serve every destination; print ``ready``, then what each
connection's sockname was, for ``--count`` connections).
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import wgpy  # noqa: E402

LIMIT = 60.0


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


async def http_get(tunnel, host: str, port: int) -> None:
    reader, writer = await tunnel.open_connection(host, port)
    writer.write(f"GET /blob HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    head, _, body = response.partition(b"\r\n\r\n")
    say(status=head.split(b" ", 2)[1].decode(), size=len(body), sha256=hashlib.sha256(body).hexdigest())
    writer.close()


async def echo(tunnel, host: str, port: int) -> None:
    data = os.urandom(256 * 1024)
    reader, writer = await tunnel.open_connection(host, port)

    async def send() -> None:
        writer.write(data)
        await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    back = await reader.read()
    await sender
    say(sent=len(data), received=len(back), same=back == data)
    writer.close()


async def udp(tunnel, host: str, port: int) -> None:
    class Collect(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.queue: asyncio.Queue = asyncio.Queue()

        def datagram_received(self, data, addr) -> None:
            self.queue.put_nowait((data, addr))

    transport, collect = await tunnel.create_datagram_endpoint(Collect, remote_addr=(host, port))
    answers = []
    for n in range(5):
        message = b"datagram %d " % n + os.urandom(100)
        for _ in range(20):   # UDP: resend until the answer comes
            transport.sendto(message)
            try:
                data, source = await asyncio.wait_for(collect.queue.get(), 0.5)
            except asyncio.TimeoutError:
                continue
            answers.append(data == message and list(source) == [host, port])
            break
    say(answered=len(answers), all_same=all(answers))
    transport.close()


async def socket_get(tunnel, host: str, port: int) -> None:
    sock = await tunnel.socket_connection((host, port))

    def get():
        connection = http.client.HTTPConnection(host, port)
        connection.sock = sock
        connection.request("GET", "/blob")
        response = connection.getresponse()
        return response.status, response.read()

    with sock:
        status, body = await asyncio.to_thread(get)
    say(status=str(status), size=len(body), sha256=hashlib.sha256(body).hexdigest())


async def transparent(tunnel, count: str) -> None:
    done = asyncio.get_running_loop().create_future()
    seen = []

    async def handle(reader, writer):
        host, port = writer.get_extra_info("sockname")
        line = await reader.readline()
        writer.write(f"tunnel saw {host} {port} {line.decode().strip()}\n".encode())
        await writer.drain()
        writer.close()
        seen.append([host, port])
        if len(seen) == int(count) and not done.done():
            done.set_result(None)

    async with await tunnel.start_server(handle, port=None, transparent=True):
        say(ready=True, public_key=tunnel.public_key)
        await done
    say(seen=seen)


CHECKS = {"http": http_get, "echo": echo, "udp": udp, "socket": socket_get, "transparent": transparent}


async def main(config: str, check: str, *args: str) -> None:
    async with wgpy.Tunnel.from_file(config) as tunnel:
        say(started=True, uid=os.getuid(), listen_port=tunnel.listen_port)
        arguments = [int(a) if a.isdigit() and i else a for i, a in enumerate(args)]
        await asyncio.wait_for(CHECKS[check](tunnel, *arguments), LIMIT)
        say(bugs=sum(tunnel.engine.bugs.values()))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
