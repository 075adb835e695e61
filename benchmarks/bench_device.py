"""Device benchmark: two in-memory devices, and a handshake flood, beside the bare primitives.

    python3 benchmarks/bench_device.py [--seconds S] [--json FILE]

* transport, each way, 1420-byte IP packets through ``Device.send_packet`` on one device and
  ``Device.receive_datagram`` on the other (routing, staging, encryption, replay window, allowed-IPs
  source check, timers), beside a bare ``ChaCha20Poly1305`` encrypt + decrypt of the same size;
* a handshake flood: initiations with a valid MAC1 from many sources while the device is under load,
  each turned away with a cookie reply; beside it, the cost of one full handshake (both devices, from the
  first packet to the confirmed session) and the bare X25519 work of a handshake.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305  # noqa: E402

from failures import Failures  # noqa: E402
from wgpy.core import noise, tai64n  # noqa: E402
from wgpy.core.constants import UNDER_LOAD_QUEUE_LENGTH  # noqa: E402
from wgpy.core.cookie import CookieGenerator  # noqa: E402
from wgpy.core.crypto import PrivateKey  # noqa: E402
from wgpy.core.device import Device  # noqa: E402

A, B = ("192.0.2.1", 51820), ("192.0.2.2", 51820)
TUNNEL_A, TUNNEL_B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


def ipv4(source: bytes, destination: bytes, size: int) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, 0, 0, 64, 17, 0, source, destination) + bytes(size - 20)


def linked_pair() -> tuple[Device, Device]:
    a, b = Device(PrivateKey.generate(os.urandom), rng=os.urandom), Device(PrivateKey.generate(os.urandom), rng=os.urandom)
    for x, y, endpoint, tunnel in ((a, b, B, TUNNEL_B), (b, a, A, TUNNEL_A)):
        peer = x.add_peer(y.private_key.public)
        peer.endpoint = endpoint
        x.allowed_ips.insert(tunnel, 32, peer)
    return a, b


def exchange(a: Device, b: Device, now: float) -> None:
    """Carry datagrams between the two devices until both are quiet."""
    for _ in range(10):
        moved = False
        for sender, receiver, source in ((a, b, A), (b, a, B)):
            for datagram, _ in sender.datagrams_to_send():
                receiver.receive_datagram(datagram, source, now)
                moved = True
        if not moved:
            return


def median_rate(function, count: int, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(count)
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def transport(seconds: float) -> dict:
    a, b = linked_pair()
    now = 0.0
    a.send_packet(ipv4(TUNNEL_A, TUNNEL_B, 100), now)
    exchange(a, b, now)
    b.send_packet(ipv4(TUNNEL_B, TUNNEL_A, 100), now)
    exchange(a, b, now)
    assert a.packets_to_deliver() and b.packets_to_deliver()
    results = {}
    for name, sender, receiver, source, packet in (
        ("initiator_to_responder", a, b, A, ipv4(TUNNEL_A, TUNNEL_B, 1420)),
        ("responder_to_initiator", b, a, B, ipv4(TUNNEL_B, TUNNEL_A, 1420)),
    ):
        def through_devices(count, sender=sender, receiver=receiver, source=source, packet=packet):
            send, receive = sender.send_packet, receiver.receive_datagram
            for _ in range(count):
                send(packet, now)
                for datagram, _ in sender.datagrams_to_send():
                    receive(datagram, source, now)
                receiver.packets_to_deliver()
            sender.events(), receiver.events()

        def through_devices_batched(count, sender=sender, receiver=receiver, source=source, packet=packet):
            batch = [packet] * 64
            for _ in range(count // 64):
                sender.send_packets(batch, now)
                receiver.receive_datagrams([(d, source, None) for d, _ in sender.datagrams_to_send()], now)
                receiver.packets_to_deliver()
            sender.events(), receiver.events()

        aead, nonce = ChaCha20Poly1305(os.urandom(32)), bytes(12)

        def bare(count, packet=packet):
            for _ in range(count):
                aead.decrypt(nonce, aead.encrypt(nonce, packet, None), None)

        count = max(1000, int(20000 * seconds))
        bare_rate = median_rate(bare, count, 5)
        ours = median_rate(through_devices, count, 5)
        batched = median_rate(through_devices_batched, count - count % 64, 5)
        results[name] = {"wgpy_packets_per_s": ours, "wgpy_batched_packets_per_s": batched,
                         "bare_aead_per_s": bare_rate, "ratio_to_bare": ours / bare_rate,
                         "batched_ratio_to_bare": batched / bare_rate}
    return results


def flood(seconds: float) -> dict:
    attacker = PrivateKey.generate(os.urandom)
    responder = Device(PrivateKey.generate(os.urandom), rng=os.urandom)
    message, _ = noise.create_initiation(attacker, responder.private_key.public, PrivateKey.generate(os.urandom), 1, tai64n.encode(1.0))
    wire = CookieGenerator(responder.private_key.public).add_macs(message.pack(), 0.0)
    sources = [(f"198.18.{n // 256}.{n % 256}", 1000 + n) for n in range(4096)]
    now = 0.0
    # Push the device under load: a backlog of handshake messages, then let it work through them.
    responder.receive_datagrams([(wire, sources[n], None) for n in range(UNDER_LOAD_QUEUE_LENGTH)], now)
    while responder.handshake_queue:
        responder.handle_timer(now)
    responder.datagrams_to_send()

    def turn_away(count):
        receive = responder.receive_datagram
        for n in range(count):
            receive(wire, sources[n & 4095], now)
        assert len(responder.datagrams_to_send()) == count  # one cookie reply each
        responder.events()

    cookie_rate = median_rate(turn_away, max(500, int(5000 * seconds)), 5)

    def full_handshakes(count):
        for _ in range(count):
            a, b = linked_pair()
            a.send_packet(ipv4(TUNNEL_A, TUNNEL_B, 100), 0.0)
            exchange(a, b, 0.0)

    handshake_rate = median_rate(full_handshakes, max(20, int(300 * seconds)), 5)
    own, peer = X25519PrivateKey.generate(), X25519PrivateKey.generate().public_key()

    def bare_handshake_dh(count):  # both sides: 2 static key generations, 2 ephemerals, 8 DH
        for _ in range(count):
            for _ in range(4):
                X25519PrivateKey.generate().public_key()
            for _ in range(8):
                own.exchange(peer)

    bare = median_rate(bare_handshake_dh, max(20, int(300 * seconds)), 5)
    return {
        "cookie_replies_per_s": cookie_rate,
        "full_handshakes_per_s": handshake_rate,
        "full_handshake_ms": 1000 / handshake_rate,
        "bare_handshake_x25519_per_s": bare,
        "handshake_ratio_to_bare": handshake_rate / bare,
        "cookie_reply_vs_full_handshake": cookie_rate / handshake_rate,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: --seconds 0.05")
    parser.add_argument("--seconds", type=float, default=1.0, help="scale of each measurement")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 0.05
    failures = Failures("bench_device")
    results = {"transport_1420": failures.run("transport", transport, args.seconds),
               "flood": failures.run("flood", flood, args.seconds)}
    if results["transport_1420"] is not None:
        print("transport through two devices, 1420-byte packets: send, encrypt, decrypt, deliver (median of 5)")
        for name, r in results["transport_1420"].items():
            print(f"  {name:24s} one by one {r['wgpy_packets_per_s']:8.0f}/s ({r['ratio_to_bare']:.2f}x)   batches of 64 "
                  f"{r['wgpy_batched_packets_per_s']:8.0f}/s ({r['batched_ratio_to_bare']:.2f}x)   bare AEAD {r['bare_aead_per_s']:8.0f}/s")
    f = results["flood"]
    if f is not None:
        print("handshake flood (median of 5)")
        print(f"  initiations turned away with a cookie reply  {f['cookie_replies_per_s']:9.0f}/s")
        print(f"  full handshakes (both devices)               {f['full_handshakes_per_s']:9.0f}/s  = {f['full_handshake_ms']:.2f} ms each,"
              f" {f['handshake_ratio_to_bare']:.2f}x the bare X25519 work ({f['bare_handshake_x25519_per_s']:.0f}/s)")
        print(f"  a cookie reply costs 1/{f['cookie_reply_vs_full_handshake']:.0f} of a full handshake")
    results["failed"] = failures.failed
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
