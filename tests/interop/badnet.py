"""A bad network for live tests: netem's model (loss, duplication, reordering, jittered delay) in user
space, on the kernel's NFQUEUE.

The kernels these tests run on are built without ``sch_netem`` (``tc qdisc add dev va root netem ...``
answers "Specified qdisc kind is unknown"), but with NFQUEUE. So an iptables rule hands the underlay's
outgoing UDP to this program, which holds each packet and gives the kernel its verdict later::

    ns A                                                          ns B
    wgpy --> UDP --> OUTPUT: NFQUEUE 7 --> badnet --> veth va ====== veth vb --> wireguard-go
                                   (drop, hold, release early, copy)

Each packet, independently, as netem treats it: dropped with probability ``loss``; otherwise released
after ``delay`` plus a uniform jitter in [-jitter, +jitter], except that with probability ``reorder`` it
is released at once, overtaking the ones held (netem's ``reorder``); and with probability ``duplicate``
a copy goes out too, after its own delay, through a raw socket whose mark the rule skips.

    ip netns exec NS python3 -m tests.interop.badnet --queue 7 --loss 0.1 --duplicate 0.05 \\
        --reorder 0.25 --delay 0.004 --jitter 0.002 --seed 1

On SIGTERM it lets every held packet go, prints what it did as one JSON line, and exits. With the rule's
``--queue-bypass``, packets pass untouched when no program listens, so a crash cannot cut the link.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import select
import signal
import socket
import struct
import sys
import time

MARK = 0x7E57   # the raw socket's duplicates carry it; the iptables rule lets them by

# linux/netlink.h, linux/netfilter/nfnetlink.h, linux/netfilter/nfnetlink_queue.h
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
SO_RCVBUFFORCE = 33
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_PAYLOAD = 10
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_PACKET = 2
NF_DROP = 0
NF_ACCEPT = 1

NLMSGHDR = struct.Struct("=IHHII")
NLATTR = struct.Struct("=HH")
PACKET_HDR = struct.Struct(">IHB")
VERDICT_HDR = struct.Struct(">II")
QUEUE_MAXLEN = 16384


def attribute(kind: int, payload: bytes) -> bytes:
    size = NLATTR.size + len(payload)
    return NLATTR.pack(size, kind) + payload + bytes(-size % 4)


def message(kind: int, queue: int, attributes: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = struct.pack("=BB", socket.AF_UNSPEC, 0) + struct.pack(">H", queue) + attributes
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq, 0) + body


def attributes_of(data: bytes, start: int, end: int) -> dict[int, bytes]:
    found = {}
    while start + NLATTR.size <= end:
        size, kind = NLATTR.unpack_from(data, start)
        if size < NLATTR.size:
            break
        found[kind & 0x3FFF] = data[start + NLATTR.size : start + size]
        start += size + (-size % 4)
    return found


class Queue:
    """One NFQUEUE, bound and copying whole packets."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        self.sock.bind((0, 0))
        self._configure(attribute(NFQA_CFG_CMD, struct.pack("=BxH", NFQNL_CFG_CMD_BIND, 0)))
        self._configure(attribute(NFQA_CFG_PARAMS, struct.pack(">IB", 0xFFFF, NFQNL_COPY_PACKET))
                        + attribute(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", QUEUE_MAXLEN)))
        self.sock.setblocking(False)

    def _configure(self, attributes: bytes) -> None:
        self.sock.send(message(NFQNL_MSG_CONFIG, self.number, attributes, NLM_F_REQUEST | NLM_F_ACK, seq=1))
        reply = self.sock.recv(65536)
        _, kind, _, _, _ = NLMSGHDR.unpack_from(reply)
        if kind == NLMSG_ERROR:
            error = struct.unpack_from("=i", reply, NLMSGHDR.size)[0]
            if error:
                raise OSError(-error, f"NFQUEUE {self.number}: configuration refused")

    def receive(self) -> list[tuple[int, bytes]]:
        """Every queued packet waiting now, as (packet id, IP packet)."""
        packets = []
        while True:
            try:
                data = self.sock.recv(1 << 17)
            except (BlockingIOError, InterruptedError):
                return packets
            offset = 0
            while offset + NLMSGHDR.size <= len(data):
                size, kind, _, _, _ = NLMSGHDR.unpack_from(data, offset)
                if size < NLMSGHDR.size:
                    break
                if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    found = attributes_of(data, offset + NLMSGHDR.size + 4, offset + size)
                    if NFQA_PACKET_HDR in found:
                        packet_id = PACKET_HDR.unpack_from(found[NFQA_PACKET_HDR])[0]
                        packets.append((packet_id, found.get(NFQA_PAYLOAD, b"")))
                offset += size + (-size % 4)

    def verdicts(self, decisions: list[tuple[int, int]]) -> None:
        """Send many verdicts in one write: netlink takes several messages per datagram."""
        for start in range(0, len(decisions), 512):
            self.sock.send(b"".join(message(NFQNL_MSG_VERDICT, self.number, attribute(NFQA_VERDICT_HDR, VERDICT_HDR.pack(v, i)))
                                    for i, v in decisions[start : start + 512]))

    def close(self) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.send(message(NFQNL_MSG_CONFIG, self.number, attribute(NFQA_CFG_CMD, struct.pack("=BxH", NFQNL_CFG_CMD_UNBIND, 0))))
        except OSError:
            pass
        self.sock.close()


def without_udp_checksum(packet: bytes) -> bytes:
    """The copy goes out as it is, so drop its UDP checksum (0 means none, IPv4 only) rather than trust it."""
    header = (packet[0] & 0x0F) * 4
    if packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_UDP or len(packet) < header + 8:
        return packet
    return packet[: header + 6] + b"\0\0" + packet[header + 8 :]


def run(args: argparse.Namespace) -> dict:
    rng = random.Random(args.seed)
    queue = Queue(args.queue)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.setsockopt(socket.SOL_SOCKET, 36, MARK)   # SO_MARK
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    held: list[tuple[float, int, int, bytes]] = []   # (due, order, packet id or -1 for a copy, copy)
    order = 0
    counts = dict(packets=0, dropped=0, duplicated=0, reordered=0, max_held=0)
    print("ready", flush=True)
    while not stopping:
        now = time.monotonic()
        timeout = min(0.2, max(0.0, held[0][0] - now)) if held else 0.2
        try:
            select.select([queue.sock], [], [], timeout)
        except InterruptedError:
            pass
        now = time.monotonic()
        release = []
        for packet_id, packet in queue.receive():
            counts["packets"] += 1
            if rng.random() < args.loss:
                counts["dropped"] += 1
                release.append((packet_id, NF_DROP))
                continue
            if rng.random() < args.reorder:
                counts["reordered"] += 1
                release.append((packet_id, NF_ACCEPT))
            else:
                due = now + max(0.0, args.delay + rng.uniform(-args.jitter, args.jitter))
                heapq.heappush(held, (due, order, packet_id, b""))
                order += 1
            if rng.random() < args.duplicate:
                counts["duplicated"] += 1
                due = now + max(0.0, args.delay + rng.uniform(-args.jitter, args.jitter))
                heapq.heappush(held, (due, order, -1, without_udp_checksum(packet)))
                order += 1
        counts["max_held"] = max(counts["max_held"], len(held))
        while held and held[0][0] <= now:
            _, _, packet_id, copy = heapq.heappop(held)
            if packet_id >= 0:
                release.append((packet_id, NF_ACCEPT))
            else:
                try:
                    raw.sendto(copy, (socket.inet_ntoa(copy[16:20]), 0))
                except OSError:
                    pass
        if release:
            queue.verdicts(release)
    queue.verdicts([(packet_id, NF_ACCEPT) for _, _, packet_id, _ in held if packet_id >= 0])
    queue.close()
    raw.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--duplicate", type=float, default=0.0)
    parser.add_argument("--reorder", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    print(json.dumps(run(parser.parse_args(argv))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
