"""Core benchmark: handshakes per second and transport packets per second, beside the bare primitives.

    python3 benchmarks/bench_core.py [--seconds S] [--json FILE]

Each figure is printed beside a reference measured in the same run, so the overhead of wgpy's own code
shows as a ratio that does not depend on the machine:

* handshake, initiator side (create the initiation with MACs, consume the response) and responder side
  (check MAC1, consume the initiation, create the response with MACs), beside the cost of the X25519
  operations each side must do anyway (initiator: 1 key generation + 4 DH, responder: 1 + 4);
* the same messages with their X25519 work prepared while idle (core/prepare.py): what is left when an
  initiation is due (its timestamp, AEAD and MACs) and when a response is (one DH instead of three);
* coalescing for the TUN (runtime/offload.py): 64 in-order 1420-byte TCP segments of one flow into the
  writes the TUN gets, per segment;
* transport at 64, 1420 and 8000 bytes: ``Keypair.encrypt`` then ``Keypair.decrypt`` (padding, header,
  counter, replay window), beside a bare ``ChaCha20Poly1305.encrypt`` + ``decrypt`` of the same size.
"""

from __future__ import annotations

import argparse
import json
import os
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
from wgpy.core.cookie import CookieChecker, CookieGenerator  # noqa: E402
from wgpy.core.crypto import PrivateKey  # noqa: E402
from wgpy.core.keypairs import Keypair  # noqa: E402
from wgpy.core.messages import Initiation, Response  # noqa: E402
from wgpy.runtime.offload import coalesce  # noqa: E402

SOURCE = ("192.0.2.1", 51820)


def rate(function, seconds: float) -> float:
    """Calls per second of ``function`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(3):
        function()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    batch = 1
    while True:
        for _ in range(batch):
            function()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)
        batch = min(batch * 2, 4096)


def handshake_rates(seconds: float) -> dict:
    alice, bob = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom)
    to_bob, to_alice = CookieGenerator(bob.public), CookieGenerator(alice.public)
    bob_checker = CookieChecker(bob.public, os.urandom)
    psk = os.urandom(32)

    # A fixed exchange for each side to replay against.
    message, sent = noise.create_initiation(alice, bob.public, PrivateKey.generate(os.urandom), 1, tai64n.encode(time.time()))
    initiation = to_bob.add_macs(message.pack(), 0.0)
    received = noise.consume_initiation(bob, Initiation.parse(initiation))
    response, _ = noise.create_response(received, PrivateKey.generate(os.urandom), psk, 2, 1)
    response_wire = to_alice.add_macs(response.pack(), 0.0)

    def initiator_side():
        message, state = noise.create_initiation(alice, bob.public, PrivateKey.generate(os.urandom), 1, tai64n.encode(1.0))
        to_bob.add_macs(message.pack(), 0.0)
        noise.consume_response(sent, alice, Response.parse(response_wire), psk)  # fixed state: same DH work

    def responder_side():
        bob_checker.check_macs(initiation, SOURCE, 0.0, check_cookie=False)
        state = noise.consume_initiation(bob, Initiation.parse(initiation))
        response, _ = noise.create_response(state, PrivateKey.generate(os.urandom), psk, 2, 1)
        to_alice.add_macs(response.pack(), 0.0)

    own, peer_public = X25519PrivateKey.generate(), X25519PrivateKey.generate().public_key()

    def bare_x25519_work():  # one key generation (with its public key) and four DH: either side's floor
        X25519PrivateKey.generate().public_key().public_bytes_raw()
        for _ in range(4):
            own.exchange(peer_public)

    # Prepared while idle (core/prepare.py): the timed part is what remains when the message is due.
    prepared = noise.prepare_initiation(alice, bob.public, PrivateKey.generate(os.urandom),
                                        static_static=alice.exchange(bob.public))
    ephemeral = PrivateKey.generate(os.urandom)
    ephemeral_static = ephemeral.exchange(alice.public)

    def initiation_due():
        message, _ = noise.finish_initiation(prepared, 1, tai64n.encode(1.0))
        to_bob.add_macs(message.pack(), 0.0)

    def response_due():
        bob_checker.check_macs(initiation, SOURCE, 0.0, check_cookie=False)
        state = noise.consume_initiation(bob, Initiation.parse(initiation))
        response, _ = noise.create_response(state, ephemeral, psk, 2, 1, ephemeral_static=ephemeral_static)
        to_alice.add_macs(response.pack(), 0.0)

    bare = rate(bare_x25519_work, seconds)
    initiator = rate(initiator_side, seconds)
    responder = rate(responder_side, seconds)
    return {
        "handshake_initiator_per_s": initiator,
        "handshake_responder_per_s": responder,
        "prepared_initiation_due_per_s": rate(initiation_due, seconds),
        "prepared_response_due_per_s": rate(response_due, seconds),
        "bare_x25519_1gen_4dh_per_s": bare,
        "initiator_ratio_to_bare": initiator / bare,
        "responder_ratio_to_bare": responder / bare,
    }


def coalesce_rate(seconds: float) -> dict:
    """Segments per second through ``offload.coalesce``: 64 in-order segments of one TCP flow, as the
    receive path hands them to the TUN (1368 bytes of payload each, timestamps option)."""
    def segment(seq: int) -> bytes:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 1420, 1, 0x4000, 64, 6, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        return ip + struct.pack("!HHIIBBHHH", 5201, 40000, seq, 99, 8 << 4, 0x10, 500, 0, 0) + bytes(12) + bytes(1368)

    segments = [segment(1000 + 1368 * n) for n in range(64)]
    writes = coalesce(segments)
    if len(writes) != 2:   # 64 x 1368 bytes is more than one 64 KB write holds
        raise RuntimeError(f"coalesce made {len(writes)} writes of 64 segments, not 2")
    return {"segments_per_s": rate(lambda: coalesce(segments), seconds) * 64}


def transport_rates(size: int, seconds: float) -> dict:
    alice, bob = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom)
    message, sent = noise.create_initiation(alice, bob.public, PrivateKey.generate(os.urandom), 1, tai64n.encode(1.0))
    received = noise.consume_initiation(bob, message)
    response, bob_keys = noise.create_response(received, PrivateKey.generate(os.urandom), None, 2, 1)
    alice_keys = noise.consume_response(sent, alice, response, None)
    sender, receiver = Keypair(alice_keys, 1, 2, 0.0), Keypair(bob_keys, 2, 1, 0.0)
    packet = os.urandom(size)

    def wgpy_round():
        receiver.decrypt(sender.encrypt(packet))

    aead = ChaCha20Poly1305(os.urandom(32))
    nonce = bytes(12)

    def bare_round():
        aead.decrypt(nonce, aead.encrypt(nonce, packet, None), None)

    bare = rate(bare_round, seconds)
    ours = rate(wgpy_round, seconds)
    return {"size": size, "wgpy_packets_per_s": ours, "bare_aead_per_s": bare, "ratio_to_bare": ours / bare}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 0.05 s per measurement")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 0.05
    failures = Failures("bench_core")

    results: dict = {"handshake": failures.run("handshake", handshake_rates, args.seconds),
                     "coalesce": failures.run("coalesce", coalesce_rate, args.seconds),
                     "transport": [t for t in (failures.run(f"transport {s} B", transport_rates, s, args.seconds)
                                               for s in (64, 1420, 8000)) if t is not None]}
    hs = results["handshake"]
    if hs is not None:
        print("handshakes per second (one core)")
        print(f"  initiator side  {hs['handshake_initiator_per_s']:9.0f}/s   {hs['initiator_ratio_to_bare']:.2f}x the bare X25519 work ({hs['bare_x25519_1gen_4dh_per_s']:.0f}/s)")
        print(f"  responder side  {hs['handshake_responder_per_s']:9.0f}/s   {hs['responder_ratio_to_bare']:.2f}x the bare X25519 work")
        print(f"  prepared while idle, what is left when due: initiation {hs['prepared_initiation_due_per_s']:.0f}/s, "
              f"response {hs['prepared_response_due_per_s']:.0f}/s")
    if results["coalesce"] is not None:
        print(f"coalescing for the TUN: {results['coalesce']['segments_per_s']:.0f} segments/s "
              f"({1e6 / results['coalesce']['segments_per_s']:.2f} us each)")
    print("transport: encrypt + decrypt (padding, header, counter, replay window) vs bare ChaCha20Poly1305 encrypt + decrypt")
    for t in results["transport"]:
        print(f"  {t['size']:5d} B   wgpy {t['wgpy_packets_per_s']:9.0f} packets/s   bare {t['bare_aead_per_s']:9.0f}/s   ratio {t['ratio_to_bare']:.2f}")
    results["failed"] = failures.failed
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
