"""The tunnel's engine without the stack: two Devices over loopback UDP, driven by asyncio's clock.

    engine A (10.0.0.1)  --- 127.0.0.1 UDP, WireGuard ---  engine B (10.0.0.2)
    a packet stack in place of the userspace stack: what A's sends, B's receives

And the DNS messages the tunnel's resolver sends and reads (wgpy/netstack/dns.py).
"""

from __future__ import annotations

import asyncio
import os
import random
import struct

import pytest

from wgpy.core.crypto import PrivateKey
from wgpy.core.device import Device
from wgpy.core.encoding import key_to_hex
from wgpy.netstack import dns
from wgpy.runtime.tunnel_engine import Engine
from wgpy.runtime.udp import Udp
from wgpy.uapi import UapiConnection


class PacketStack:
    """The stack's contract (docs/netstack.md) reduced to packets: what a test puts in ``outbox`` is sent,
    what the device delivers lands in ``received``."""

    def __init__(self) -> None:
        self.outbox: list[bytes] = []
        self.received: list[bytes] = []

    def receive_packets(self, packets, now) -> None:
        self.received += packets

    def packets_to_send(self) -> list[bytes]:
        out, self.outbox = self.outbox, []
        return out

    def poll(self, now) -> None:
        pass

    def next_deadline(self):
        return None

    def events(self) -> list:
        return []


def ipv4_udp(source: int, destination: int, payload: bytes) -> bytes:
    total = 20 + 8 + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, bytes([10, 0, 0, source]),
                         bytes([10, 0, 0, destination]))
    return header + struct.pack("!HHHH", 40000, 9, 8 + len(payload), 0) + payload


def configure(device: Device, engine: Engine, private: PrivateKey, peer_public: bytes, peer_address: int,
              endpoint_port: int | None) -> None:
    lines = ["set=1", f"private_key={key_to_hex(private.private_bytes())}", "listen_port=0",
             f"public_key={key_to_hex(peer_public)}", f"allowed_ip=10.0.0.{peer_address}/32"]
    if endpoint_port is not None:
        lines.append(f"endpoint=127.0.0.1:{endpoint_port}")
    answer = UapiConnection(device, bind=engine.bind).feed(("\n".join(lines) + "\n\n").encode(), 0.0)
    assert answer == b"errno=0\n\n"


async def wait_for(condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_two_engines_carry_packets_both_ways_over_loopback():
    async def main():
        loop = asyncio.get_running_loop()
        keys = [PrivateKey.generate(os.urandom) for _ in range(2)]
        stacks = [PacketStack(), PacketStack()]
        devices = [Device(rng=os.urandom) for _ in range(2)]
        engines = [Engine(d, s, Udp(), loop) for d, s in zip(devices, stacks)]
        try:
            configure(devices[1], engines[1], keys[1], keys[0].public, 1, None)
            configure(devices[0], engines[0], keys[0], keys[1].public, 2, devices[1].listen_port)
            assert devices[0].listen_port and devices[1].listen_port
            ping = ipv4_udp(1, 2, b"hello through the engine")
            stacks[0].outbox.append(ping)
            engines[0].kick()                        # as a transport's write does
            await wait_for(lambda: stacks[1].received)
            assert stacks[1].received == [ping]
            pong = ipv4_udp(2, 1, b"and back")       # B learnt A's endpoint from the handshake (roaming)
            stacks[1].outbox.append(pong)
            engines[1].kick()
            await wait_for(lambda: stacks[0].received)
            assert stacks[0].received == [pong]
            assert not engines[0].bugs and not engines[1].bugs
        finally:
            for engine in engines:
                engine.close()
        assert all(not engine.udp.sockets for engine in engines)

    asyncio.run(main())


def test_the_engine_retransmits_a_lost_initiation_on_the_loop_clock():
    """Nobody answers at first (the endpoint's port is closed); the device's retransmission timer
    (REKEY_TIMEOUT, 5 s, with jitter) is armed by the engine with call_at and resends, so once the peer
    exists the packet arrives without anything else being done."""
    async def main():
        loop = asyncio.get_running_loop()
        keys = [PrivateKey.generate(os.urandom) for _ in range(2)]
        stacks = [PacketStack(), PacketStack()]
        devices = [Device(rng=os.urandom) for _ in range(2)]
        engines = [Engine(d, s, Udp(), loop) for d, s in zip(devices, stacks)]
        try:
            configure(devices[1], engines[1], keys[1], keys[0].public, 1, None)
            port = devices[1].listen_port
            engines[1].close()                       # B's port closed: the first initiation is lost
            configure(devices[0], engines[0], keys[0], keys[1].public, 2, port)
            stacks[0].outbox.append(ipv4_udp(1, 2, b"late"))
            engines[0].kick()
            await asyncio.sleep(0.5)
            engines[1] = Engine(devices[1], stacks[1], Udp(), loop)
            engines[1].bind(port, 0)
            await wait_for(lambda: stacks[1].received, timeout=9.0)
            assert stacks[1].received == [ipv4_udp(1, 2, b"late")]
        finally:
            for engine in engines:
                engine.close()

    asyncio.run(main())


# ---------------------------------------------------------------------------------- DNS messages


def answer_for(query: bytes, records: list[tuple[int, bytes]], rcode: int = 0, flags: int = 0x8180) -> bytes:
    ident = struct.unpack_from("!H", query)[0]
    header = struct.pack("!HHHHHH", ident, flags | rcode, 1, len(records), 0, 0)
    body = b"".join(struct.pack("!HHHIH", 0xC00C, kind, 1, 60, len(data)) + data for kind, data in records)
    return header + query[12:] + body


def test_a_query_and_its_answer():
    query = dns.build_query("example.wg", dns.TYPE_A, 0x1234)
    assert query[:2] == b"\x12\x34" and b"\x07example\x02wg\x00" in query
    data = answer_for(query, [(5, b"\x03www\xc0\x0c"), (dns.TYPE_A, bytes([10, 0, 0, 9])), (dns.TYPE_AAAA, bytes(16))])
    assert dns.parse_answer(data, 0x1234, query, dns.TYPE_A) == dns.Answer(addresses=(bytes([10, 0, 0, 9]),))


@pytest.mark.parametrize("mangle, reason", [
    (lambda q, a: a[:11], dns.DnsRefused.MALFORMED),
    (lambda q, a: b"\x00\x01" + a[2:], dns.DnsRefused.NOT_OURS),
    (lambda q, a: a[:-3], dns.DnsRefused.MALFORMED),
    (lambda q, a: answer_for(q, [], rcode=3), dns.DnsRefused.NO_SUCH_NAME),
    (lambda q, a: answer_for(q, [], rcode=2), dns.DnsRefused.SERVER_FAILURE),
    (lambda q, a: answer_for(q, [], flags=0x8380), dns.DnsRefused.TRUNCATED),
    (lambda q, a: a[:12] + a[12:].replace(b"example", b"exbmple", 1), dns.DnsRefused.NOT_OURS),
])
def test_a_bad_answer_is_refused_by_name(mangle, reason):
    query = dns.build_query("example.wg", dns.TYPE_A, 7)
    good = answer_for(query, [(dns.TYPE_A, bytes([10, 0, 0, 9]))])
    assert dns.parse_answer(mangle(query, good), 7, query, dns.TYPE_A).refused is reason


def test_garbage_answers_never_raise():
    query = dns.build_query("example.wg", dns.TYPE_AAAA, 7)
    good = answer_for(query, [(dns.TYPE_AAAA, bytes(range(16)))])
    rng = random.Random(13)
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = bytes(data[: rng.randrange(len(data) + 1)])
        answer = dns.parse_answer(cut, 7, query, dns.TYPE_AAAA)
        assert all(len(a) == 16 for a in answer.addresses)


def test_names_that_cannot_be_asked_are_value_errors():
    for name in ("", "a" * 64 + ".wg", "x." * 130 + "wg", "a..b"):
        with pytest.raises(ValueError):
            dns.encode_name(name)
