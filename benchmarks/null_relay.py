"""Null relay: wgpy's I/O with no protocol and no crypto, the ceiling of a Python data path on this machine.

    python3 benchmarks/null_relay.py --interface NAME --listen-port 51820 --peer 192.0.2.2:51820 [--mtu 1420]

Creates a TUN interface and forwards each IP packet read from it, as it is, in one UDP datagram to the
peer; each datagram received from the peer is written back to the TUN. It does exactly the I/O that wgpy's
runtime does, with the runtime's own classes: ``Tun`` (IFF_VNET_HDR, coalesced TCP writes) and ``Udp``
(GSO sends, GRO receives), one thread, one ``poll``, batches of 64 per wake-up (loop.py). What wgpy
reaches below this relay's figures is the cost of the protocol and the crypto.

Prints ``ready`` on standard output once the interface exists and the socket is bound; the caller then
gives the interface its address and brings it up. Exits on SIGTERM, SIGINT or when the interface is
deleted. A benchmark tool: it carries anything from the peer's address into the TUN, so run it only
between namespaces of your own.
"""

from __future__ import annotations

import argparse
import select
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wgpy.core.constants import DEFAULT_MTU  # noqa: E402
from wgpy.runtime.tun import Tun  # noqa: E402
from wgpy.runtime.udp import Udp  # noqa: E402

BATCH = 64  # as wgpy.runtime.loop.BATCH


def endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def relay(tun: Tun, udp: Udp, peer: tuple[str, int]) -> None:
    """Serve until a signal or the interface's deletion ends it."""
    poller = select.poll()
    poller.register(tun.fd, select.POLLIN)
    sockets = {s.fileno(): s for s in udp.sockets}
    for fd in sockets:
        poller.register(fd, select.POLLIN)
    read, send_many, receive, write_many = tun.read, udp.send_many, udp.receive, tun.write_many
    while True:
        for fd, event in poller.poll(1000):
            if fd == tun.fd:
                if event & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                    return
                datagrams = []
                for _ in range(BATCH):
                    packet = read()
                    if packet is None:
                        break
                    datagrams.append((packet, peer))
                if datagrams:
                    send_many(datagrams)
            else:
                received: list = []
                receive(sockets[fd], received, BATCH)
                packets = [datagram for datagram, source, _ in received if source == peer]
                if packets:
                    write_many(packets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", required=True, help="name of the TUN interface to create")
    parser.add_argument("--listen-port", type=int, required=True, help="local UDP port")
    parser.add_argument("--peer", type=endpoint, required=True, help="the other relay, HOST:PORT")
    parser.add_argument("--mtu", type=int, default=DEFAULT_MTU)
    args = parser.parse_args()

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tun = Tun(args.interface, args.mtu)
    udp = Udp()
    try:
        udp.bind(args.listen_port)
        print("ready", flush=True)
        relay(tun, udp, args.peer)
    except OSError as err:  # the interface was deleted under us (EBADFD), or the port is taken
        print(f"null_relay: {err}", file=sys.stderr)
        return 1
    finally:
        udp.close()
        tun.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
