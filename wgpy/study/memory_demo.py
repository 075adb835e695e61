"""Two WireGuard peers in memory: a handshake and transport data both ways, told step by step.

This is what ``wgpy demo --in-memory`` prints. It drives the sans-IO core directly, with no socket and no TUN, so it
runs anywhere; the datagrams it shows are the exact bytes a real peer would put on the wire.
"""

from __future__ import annotations

import os
from typing import Callable

from ..core import noise, tai64n
from ..core.cookie import CookieChecker, CookieGenerator, MacStatus
from ..core.crypto import PrivateKey
from ..core.encoding import key_to_base64
from ..core.errors import Rejected
from ..core.keypairs import Keypair
from ..core.messages import parse

ALICE, BOB = ("192.0.2.1", 51820), ("192.0.2.2", 51820)
# An ICMP echo request 10.0.0.1 -> 10.0.0.2, as it would come from the TUN device.
PING = bytes.fromhex("45000054abcd400040010000" "0a000001" "0a000002" "0800") + bytes(62)
# Bob's answer: the same packet with source and destination swapped.
PONG = PING[:12] + PING[16:20] + PING[12:16] + PING[20:]


def run(say: Callable[[str], None] = print, rng: Callable[[int], bytes] = os.urandom, epoch: float = 1.7e9) -> bool:
    """Run the exchange, narrating with ``say``; True when every check held."""
    alice, bob = PrivateKey.generate(rng), PrivateKey.generate(rng)
    psk = rng(32)
    say(f"alice: public key {key_to_base64(alice.public)}  endpoint {ALICE[0]}:{ALICE[1]}")
    say(f"bob:   public key {key_to_base64(bob.public)}  endpoint {BOB[0]}:{BOB[1]}")
    say("both share a preshared key (not shown)")

    now = 0.0
    message, sent = noise.create_initiation(alice, bob.public, PrivateKey.generate(rng), _index(rng), tai64n.encode(epoch))
    wire = CookieGenerator(bob.public).add_macs(message.pack(), now)
    say(f"\n-> alice sends a handshake initiation, {len(wire)} bytes, sender index {message.sender_index:#010x}")
    say(f"   {wire.hex()}")

    status = CookieChecker(bob.public, rng).check_macs(wire, ALICE, now, check_cookie=False)
    received = noise.consume_initiation(bob, parse(wire))
    ok = status is MacStatus.VALID_MAC1 and received.initiator_public == alice.public
    seconds, nanoseconds = tai64n.decode(received.payload)
    say(f"   bob checks MAC1 ({status.name}), decrypts the initiator's static key: it is alice's")
    say(f"   and the TAI64N timestamp: {seconds}.{nanoseconds:09d}")

    response, bob_keys = noise.create_response(received, PrivateKey.generate(rng), psk, _index(rng), message.sender_index)
    wire = CookieGenerator(alice.public).add_macs(response.pack(), now)
    say(f"\n<- bob answers with a handshake response, {len(wire)} bytes, sender index {response.sender_index:#010x}")
    say(f"   {wire.hex()}")
    alice_keys = noise.consume_response(sent, alice, parse(wire), psk)
    ok &= alice_keys.handshake_hash == bob_keys.handshake_hash
    say(f"   alice completes the handshake; both hold handshake hash {alice_keys.handshake_hash.hex()[:32]}...")

    a = Keypair(alice_keys, message.sender_index, response.sender_index, now)
    b = Keypair(bob_keys, response.sender_index, message.sender_index, now)
    wire = a.encrypt(PING)
    say(f"\n-> alice sends a {len(PING)}-byte IP packet as a {len(wire)}-byte transport message (counter 0)")
    delivered = b.decrypt(wire)
    ok &= delivered[: len(PING)] == PING
    say(f"   bob decrypts it: {len(delivered)} bytes, the packet and {len(delivered) - len(PING)} bytes of padding")
    reply = b.encrypt(PONG)
    ok &= a.decrypt(reply)[: len(PONG)] == PONG
    say(f"<- bob answers with a {len(reply)}-byte transport message; alice decrypts it")
    keepalive = a.encrypt(b"")
    ok &= b.decrypt(keepalive) == b""
    say(f"-> alice sends a keepalive: {len(keepalive)} bytes, an empty packet")

    for what, datagram in (("a replay of the first packet", wire), ("a packet with one bit flipped", _flip(a.encrypt(PING)))):
        try:
            b.decrypt(datagram)
            ok = False
            say(f"!! bob accepted {what}")
        except Rejected as err:
            say(f"   bob drops {what}: {err.reason.name} ({err.reason.value})")
    say("\nall checks held" if ok else "\nSOME CHECKS FAILED")
    return ok


def _index(rng: Callable[[int], bytes]) -> int:
    return int.from_bytes(rng(4), "little")


def _flip(datagram: bytes) -> bytes:
    return datagram[:-1] + bytes([datagram[-1] ^ 1])

