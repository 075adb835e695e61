"""Core benchmark: handshakes per second and transport packets per second, beside the bare primitives.

    python3 benchmarks/bench_core.py [--seconds S] [--json FILE]

Each figure is printed beside a reference measured in the same run, so the overhead of wgpy's own code
shows as a ratio that does not depend on the machine:

* handshake, initiator side (create the initiation with MACs, consume the response) and responder side
  (check MAC1, consume the initiation, create the response with MACs), beside the cost of the X25519
  operations each side must do anyway (initiator: 1 key generation + 4 DH, responder: 1 + 4);
* transport at 64, 1420 and 8000 bytes: ``Keypair.encrypt`` then ``Keypair.decrypt`` (padding, header,
  counter, replay window), beside a bare ``ChaCha20Poly1305.encrypt`` + ``decrypt`` of the same size.
"""

from __future__ import annotations

import argparse
import json
import os
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

    bare = rate(bare_x25519_work, seconds)
    initiator = rate(initiator_side, seconds)
    responder = rate(responder_side, seconds)
    return {
        "handshake_initiator_per_s": initiator,
        "handshake_responder_per_s": responder,
        "bare_x25519_1gen_4dh_per_s": bare,
        "initiator_ratio_to_bare": initiator / bare,
        "responder_ratio_to_bare": responder / bare,
    }


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
                     "transport": [t for t in (failures.run(f"transport {s} B", transport_rates, s, args.seconds)
                                               for s in (64, 1420, 8000)) if t is not None]}
    hs = results["handshake"]
    if hs is not None:
        print("handshakes per second (one core)")
        print(f"  initiator side  {hs['handshake_initiator_per_s']:9.0f}/s   {hs['initiator_ratio_to_bare']:.2f}x the bare X25519 work ({hs['bare_x25519_1gen_4dh_per_s']:.0f}/s)")
        print(f"  responder side  {hs['handshake_responder_per_s']:9.0f}/s   {hs['responder_ratio_to_bare']:.2f}x the bare X25519 work")
    print("transport: encrypt + decrypt (padding, header, counter, replay window) vs bare ChaCha20Poly1305 encrypt + decrypt")
    for t in results["transport"]:
        print(f"  {t['size']:5d} B   wgpy {t['wgpy_packets_per_s']:9.0f} packets/s   bare {t['bare_aead_per_s']:9.0f}/s   ratio {t['ratio_to_bare']:.2f}")
    results["failed"] = failures.failed
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
