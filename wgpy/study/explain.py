"""``wgpy explain``: one WireGuard handshake and its first packets, every value shown as the whitepaper
writes it.

Two peers in memory (fixed keys unless chosen, every random value from a seeded generator, the clock at a
fixed date) run the real core: ``noise.create_initiation`` ... ``consume_response`` with a
:class:`~wgpy.core.trace.Recorder` as their ``trace``, the cookie generator and checker likewise, and the
session's :class:`~wgpy.core.keypairs.Keypair` for the data. The steps the core records (each ``mix_hash``,
``mix_key``, DH, KDF, AEAD, MAC) are arranged into parts, one per message, with each message's byte layout
(the labels of ``wgpy decode``).

The output checks itself: :func:`verify` recomputes every printed step from the printed values alone (the
hash chain, the chaining keys, each DH, KDF, AEAD and MAC, and that each message's bytes are the values
computed for them), and the transport keys the transcript ends with must be the ones both peers hold.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import sys
import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from . import decode
from ..core import noise, tai64n
from ..core.constants import REKEY_TIMEOUT
from ..core.cookie import CookieChecker, CookieGenerator, MacStatus
from ..core.crypto import AEAD, HASH, KDF1, KDF2, KDF3, MAC, XAEAD, PrivateKey, aead_nonce, clamp, x25519
from ..core.device import DEFAULT_MTU
from ..core.encoding import key_from_text, key_to_base64
from ..core.keypairs import Keypair
from ..core.messages import parse
from ..core.trace import Recorder

EPOCH = 1_735_689_600.0  # 2025-01-01 00:00:00 UTC: the wall clock of every explained handshake
INITIATOR_ENDPOINT = ("192.0.2.1", 51820)
RESPONDER_ENDPOINT = ("192.0.2.2", 51820)
INITIATOR_ADDRESS, RESPONDER_ADDRESS = "10.0.0.1", "10.0.0.2"
REGENERATE = "python3 -m wgpy explain --format markdown > docs/walkthrough.md"
TEXT_VALUES = {"CONSTRUCTION", "IDENTIFIER", "LABEL_MAC1", "LABEL_COOKIE"}
BASEPOINT = bytes([9]) + bytes(31)  # X25519's base point u = 9 (RFC 7748)


def default_key(role: str) -> bytes:
    """The fixed static key of ``role`` ("initiator" or "responder"), the same on every machine."""
    return clamp(HASH(f"wgpy explain: the {role}'s static private key".encode()))


class SeededRng:
    """``rng(n)``: BLAKE2s in counter mode over the seed, so a seed names the same bytes everywhere."""

    def __init__(self, seed: int) -> None:
        self._seed = seed.to_bytes(8, "little", signed=True)
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.blake2s(self._seed + self._counter.to_bytes(8, "little"), person=b"wgpy-rng").digest()
            self._counter += 1
        return out[:n]


# ------------------------------------------------------------------------------------- the document


@dataclass
class Step:
    """One computation as the whitepaper writes it, by one party, with its inputs and outputs. A ``given``
    step states inputs (chosen or random) rather than computing them."""

    formula: str
    section: str
    by: str
    values: list[tuple[str, bytes]]
    given: bool = False


@dataclass
class Layout:
    """A message on the wire, field by field."""

    title: str
    section: str
    wire: bytes
    fields: list[decode.Field]


@dataclass
class Note:
    text: str


@dataclass
class Part:
    title: str
    section: str
    text: str
    items: list = field(default_factory=list)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Walkthrough:
    parameters: list[tuple[str, str]]
    parts: list[Part]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


# ------------------------------------------------------------------------------------- the exchange


def icmp_echo(source: str, destination: str, identifier: int = 1, sequence: int = 1, size: int = 56) -> bytes:
    """An ICMP echo request as ``ping`` sends it (84 bytes with the default size), checksums included."""
    data = bytes(range(size))
    icmp = struct.pack("!BBHHH", 8, 0, 0, identifier, sequence) + data
    icmp = icmp[:2] + _checksum(icmp).to_bytes(2, "big") + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0x4000, 64, 1, 0,
                         bytes(map(int, source.split("."))), bytes(map(int, destination.split("."))))
    header = header[:10] + _checksum(header).to_bytes(2, "big") + header[12:]
    return header + icmp


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data[: len(data) // 2 * 2])) + (data[-1] << 8 if len(data) % 2 else 0)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _Builder:
    """Collects the parts while the exchange runs."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def part(self, title: str, section: str, text: str) -> Part:
        self.parts.append(Part(title, section, " ".join(text.split())))
        return self.parts[-1]

    def given(self, formula: str, section: str, by: str, **values: bytes) -> None:
        self.parts[-1].items.append(Step(formula, section, by, list(values.items()), given=True))

    def step(self, formula: str, section: str, by: str, values: list[tuple[str, bytes]]) -> None:
        self.parts[-1].items.append(Step(formula, section, by, values))

    def recorded(self, recorder: Recorder, by: str, keep: Callable[[str], bool] = lambda section: True) -> list:
        """Move the recorder's steps into the current part; returns those left out by ``keep``."""
        left = []
        for step in recorder.steps:
            if keep(step.section):
                self.step(step.formula, step.section, by, list(step.values.items()))
            else:
                left.append(step)
        recorder.steps.clear()
        return left

    def note(self, text: str) -> None:
        self.parts[-1].items.append(Note(" ".join(text.split())))

    def layout(self, title: str, section: str, wire: bytes) -> None:
        self.parts[-1].items.append(Layout(title, section, wire, decode.fields(wire)))


def run(
    initiator_key: bytes | None = None,
    responder_key: bytes | None = None,
    psk: bytes | None = None,
    seed: int = 0,
    under_load: bool = False,
) -> Walkthrough:
    """Run the exchange and return it as a checked :class:`Walkthrough`."""
    rng = SeededRng(seed)
    initiator = PrivateKey(initiator_key if initiator_key is not None else default_key("initiator"))
    responder = PrivateKey(responder_key if responder_key is not None else default_key("responder"))
    if initiator.public == responder.public:
        raise ValueError("the initiator and the responder need different static keys")
    q = psk if psk is not None else bytes(32)
    b = _Builder()
    checks: list[Check] = []
    now = 0.0

    b.part("The two peers", "5.4", """Each peer has a static Curve25519 key pair and knows the other's public
        key before anything is sent (the Noise IK pattern's pre-message "<- s"). They may also share a
        pre-shared key Q; without one, Q is 32 zero bytes (section 5.2). Values are hexadecimal; the
        initiator's names end in _i, the responder's in _r, as in the whitepaper.""")
    b.given("(S_priv_i, S_pub_i) = the initiator's static key pair", "5.4", "initiator",
            S_priv_i=initiator.private_bytes(), S_pub_i=initiator.public)
    b.given("(S_priv_r, S_pub_r) = the responder's static key pair", "5.4", "responder",
            S_priv_r=responder.private_bytes(), S_pub_r=responder.public)
    b.given("Q = the pre-shared key" + ("" if psk is not None else " (none: 32 zero bytes)"), "5.2", "", Q=q)

    # ------------------------------------------------------------------ message 1
    cookies_for_responder = CookieGenerator(responder.public)  # the initiator's view of the responder
    checker = CookieChecker(responder.public, rng)  # the responder's own

    def initiation(attempt: str) -> tuple:
        b.part(f"Message 1{attempt}: the initiator writes the handshake initiation", "5.4.2", """The initiator
            starts the transcript from the protocol's name and identifier, mixes in the responder's
            public key, then runs the tokens "e, es, s, ss": a fresh ephemeral key, a DH of it with the
            responder's static key, its own static public key encrypted under the key that DH gave, a DH
            of both static keys, and the encrypted timestamp. C is the chaining key, H the hash of
            everything so far, k the key for the next AEAD.""")
        ephemeral = PrivateKey.generate(rng)
        index = int.from_bytes(rng(4), "little")
        timestamp = tai64n.encode(EPOCH + now)
        b.given("(E_priv_i, E_pub_i) = DH-GENERATE()", "5.4.2", "initiator",
                E_priv_i=ephemeral.private_bytes(), E_pub_i=ephemeral.public)
        b.given("I_i = a random 32-bit sender index", "5.4.2", "initiator", I_i=index.to_bytes(4, "little"))
        b.given("timestamp = TAI64N(now)", "5.4.2", "initiator", timestamp=timestamp)
        recorder = Recorder()
        message, state = noise.create_initiation(initiator, responder.public, ephemeral, index, timestamp, trace=recorder)
        b.recorded(recorder, "initiator")
        b.note("""Last come the two MACs (section 5.4.4). MAC1 is keyed with the receiver's public key, so a
            responder can drop anything not meant for it for the cost of one BLAKE2s; MAC2 is keyed with a
            cookie, and stays zero unless the responder, under load, gave the initiator one.""")
        wire = cookies_for_responder.add_macs(message.pack(), now, trace=recorder)
        b.recorded(recorder, "initiator")
        b.layout("The handshake initiation on the wire (148 bytes)", "5.4.2", wire)
        return wire, state, message, index

    wire, sent, message, initiator_index = initiation("")

    if under_load:
        b.part("Under load: the responder answers with a cookie reply", "5.4.7", """A responder under load does
            no Diffie-Hellman for a message whose MAC2 is not valid: it answers with a cookie reply
            instead. The cookie is a MAC of the sender's IP address and port under a secret that changes
            every two minutes, encrypted with XChaCha20-Poly1305 under a key derived from the responder's
            public key, with the MAC1 it answers as associated data.""")
        status = checker.check_macs(wire, INITIATOR_ENDPOINT, now, check_cookie=True)
        b.note(f"The responder checks the MACs with its own public key: {status.value}.")
        checks.append(Check("under load, the first initiation gets a cookie reply", status is MacStatus.VALID_MAC1))
        recorder = Recorder()
        reply = checker.create_reply(wire, message.sender_index, INITIATOR_ENDPOINT, now, trace=recorder)
        b.recorded(recorder, "responder")
        b.layout("The cookie reply on the wire (64 bytes)", "5.4.7", reply.pack())
        cookies_for_responder.consume_reply(parse(reply.pack()), now, trace=recorder)
        b.note("The initiator decrypts the cookie with the responder's public key and the MAC1 it sent last:")
        b.recorded(recorder, "initiator")
        now += REKEY_TIMEOUT
        b.note(f"""Its initiation unanswered, the initiator tries again REKEY_TIMEOUT ({REKEY_TIMEOUT:.0f} s)
            later (section 6.4) with a new initiation, and this one carries MAC2.""")
        wire, sent, message, initiator_index = initiation(" again")
        status = checker.check_macs(wire, INITIATOR_ENDPOINT, now, check_cookie=True)
        b.note(f"The responder, still under load, checks the MACs: {status.value}.")
        checks.append(Check("under load, the retried initiation has a valid MAC2", status is MacStatus.VALID_MAC1_AND_MAC2))

    b.part("The responder reads message 1", "5.4.2", """The responder checks MAC1, then repeats the
        initiator's computations from its own side: its DHs use its private keys and the initiator's
        public ones and give the same results, so it can decrypt the initiator's static public key (and
        so learn who is calling) and the timestamp (which must be newer than the last one it accepted from
        that peer, against replays).""")
    status = checker.check_macs(wire, INITIATOR_ENDPOINT, now, check_cookie=under_load)
    b.note(f"MAC1 with the responder's own public key: {status.value}.")
    checks.append(Check("the responder accepts the initiation's MAC1", status is not MacStatus.INVALID_MAC1))
    recorder = Recorder()
    received = noise.consume_initiation(responder, parse(wire), trace=recorder)
    b.recorded(recorder, "responder")
    seconds, nanoseconds = tai64n.decode(received.payload)
    b.note(f"The timestamp reads {_utc(seconds)}.{nanoseconds:09d} UTC; the static key is the initiator's.")
    checks.append(Check("the responder decrypts the initiator's static key", received.initiator_public == initiator.public))
    checks.append(Check(
        "after message 1 both transcripts hold the same C and H",
        (received.chaining_key, received.hash) == (sent.chaining_key, sent.hash),
    ))

    # ------------------------------------------------------------------ message 2
    b.part("Message 2: the responder writes the handshake response", "5.4.3", """The response runs the tokens
        "e, ee, se, psk": a fresh ephemeral key, a DH of it with each of the initiator's keys, then the
        pre-shared key, which also yields tau (mixed into H) and the key of the last AEAD. That AEAD
        encrypts nothing: its 16-byte tag proves the responder computed the same transcript.""")
    ephemeral = PrivateKey.generate(rng)
    responder_index = int.from_bytes(rng(4), "little")
    b.given("(E_priv_r, E_pub_r) = DH-GENERATE()", "5.4.3", "responder",
            E_priv_r=ephemeral.private_bytes(), E_pub_r=ephemeral.public)
    b.given("I_r = a random 32-bit sender index", "5.4.3", "responder", I_r=responder_index.to_bytes(4, "little"))
    recorder = Recorder()
    response, responder_keys = noise.create_response(received, ephemeral, psk, responder_index, message.sender_index,
                                                      trace=recorder)
    responder_split = b.recorded(recorder, "responder", keep=lambda section: section != "5.4.5")
    wire = CookieGenerator(initiator.public).add_macs(response.pack(), now, trace=recorder)
    b.recorded(recorder, "responder")
    b.layout("The handshake response on the wire (92 bytes)", "5.4.3", wire)

    b.part("The initiator reads message 2", "5.4.3", """The initiator finds its pending handshake by
        receiver_index, checks MAC1 (keyed with its own public key) and repeats the responder's steps
        with its own private keys. If the tag of encrypted_nothing verifies, both sides hold the same
        chaining key, and so will derive the same session keys.""")
    status = CookieChecker(initiator.public, rng).check_macs(wire, RESPONDER_ENDPOINT, now, check_cookie=False)
    mac1_ok = status is not MacStatus.INVALID_MAC1
    b.note(f"MAC1 with the initiator's own public key: {'valid' if mac1_ok else 'NOT valid'}.")
    checks.append(Check("the initiator accepts the response's MAC1", mac1_ok))
    initiator_keys = noise.consume_response(sent, initiator, parse(wire), psk, trace=recorder)
    initiator_split = b.recorded(recorder, "initiator", keep=lambda section: section != "5.4.5")

    # ------------------------------------------------------------------ keys
    b.part("The transport data keys", "5.4.5", """Each side derives two keys from the final chaining key, one
        per direction, and erases everything else of the handshake (the ephemeral keys, C, H). The
        initiator sends with the first key, the responder with the second; each counts its messages from
        zero. The responder waits to send until the initiator's first data packet proves the initiator
        has these keys too.""")
    for steps, by in ((initiator_split, "initiator"), (responder_split, "responder")):
        for step in steps:
            b.step(step.formula, step.section, by, list(step.values.items()))
    initiator_transcript, responder_transcript = (
        (split[-1].values["T_send_i"], split[-1].values["T_recv_i"]) for split in (initiator_split, responder_split)
    )
    checks.append(Check(
        "the transcript's final keys equal what the two peers derived",
        initiator_transcript == responder_transcript == (initiator_keys.sending_key, initiator_keys.receiving_key)
        == (responder_keys.receiving_key, responder_keys.sending_key)
        and initiator_keys.handshake_hash == responder_keys.handshake_hash,
        "T_send_i = the initiator's sending key = the responder's receiving key, and the other way round",
    ))

    # ------------------------------------------------------------------ data
    sending = Keypair(initiator_keys, initiator_index, responder_index, now)
    receiving = Keypair(responder_keys, responder_index, initiator_index, now)
    packet = icmp_echo(INITIATOR_ADDRESS, RESPONDER_ADDRESS)
    b.part("The first data packet", "5.4.6", f"""The initiator's first IP packet, a ping from {INITIATOR_ADDRESS}
        to {RESPONDER_ADDRESS} ({len(packet)} bytes), is padded with zeros to a multiple of 16 bytes and
        encrypted with ChaCha20-Poly1305 under T_send_i, the counter as nonce and no associated data. The
        header names the responder's session by its index; the counter lets the receiver reject replays
        (section 5.4.6).""")
    wire = sending.encrypt(packet, DEFAULT_MTU)
    padded = packet + bytes(len(wire) - 32 - len(packet))
    _transport_steps(b, "initiator", "T_send_i", initiator_keys.sending_key, 0, packet, padded, wire)
    b.layout("The first transport data message on the wire", "5.4.6", wire)
    delivered = receiving.decrypt(wire)
    b.note(f"""The responder finds the session by receiver_index, decrypts and authenticates the packet,
        checks the counter against its replay window, and finds an IPv4 packet from an address the
        initiator is allowed to use: {decode.summarize_ip(delivered)}. This first packet under the new
        keys confirms the session.""")
    checks.append(Check("the responder decrypts the first packet", delivered == padded))

    b.part("A keepalive", "6.5", """A peer that received data and has nothing to send for KEEPALIVE_TIMEOUT
        (10 s) sends a keepalive: a transport message with an empty packet, which is only the 16-byte tag
        (section 6.5). Here the responder sends one, under the other key, its own counter starting at 0.""")
    wire = receiving.encrypt(b"", DEFAULT_MTU)
    _transport_steps(b, "responder", "T_send_r", responder_keys.sending_key, 0, b"", b"", wire)
    b.layout("The keepalive on the wire (32 bytes)", "5.4.6", wire)
    checks.append(Check("the initiator decrypts the keepalive to nothing", sending.decrypt(wire) == b""))

    parameters = [
        ("S_pub_i", key_to_base64(initiator.public)),
        ("S_pub_r", key_to_base64(responder.public)),
        ("preshared key", "yes" if psk is not None else "none"),
        ("seed", str(seed)),
        ("under load", "yes" if under_load else "no"),
    ]
    walkthrough = Walkthrough(parameters, b.parts)
    failures, recomputed = verify(to_json(walkthrough))
    checks.append(Check(
        "the hash chain and every other step recompute from the printed values",
        not failures,
        f"{recomputed} steps recomputed" + ("; " + "; ".join(failures) if failures else ""),
    ))
    walkthrough.checks = checks
    return walkthrough


def _transport_steps(b: _Builder, by: str, key_name: str, key: bytes, counter: int, packet: bytes, padded: bytes,
                     wire: bytes) -> None:
    b.given("P = the packet || zero padding to a multiple of 16 bytes", "5.4.6", by, packet=packet, P=padded)
    n = counter.to_bytes(8, "little")
    ciphertext = AEAD(key, counter, padded, b"")
    assert wire[16:] == ciphertext, "the keypair's encryption is the whitepaper's AEAD"
    b.step(f"msg.encrypted_encapsulated_packet = AEAD({key_name}, N_send, P, ε)", "5.4.6", by,
           [(key_name, key), ("N_send", n), ("nonce", aead_nonce(counter)), ("P", padded),
            ("msg.encrypted_encapsulated_packet", ciphertext)])


# ------------------------------------------------------------------------------------- checking


def verify(document: dict) -> tuple[list[str], int]:
    """Recompute every step of a walkthrough (as :func:`to_json` gives it) from its printed values alone.

    Each party's C and H are followed from step to step: a step's inputs are the previous step's
    outputs, so one wrong value anywhere breaks the chain. Returns (failures, steps recomputed).
    """
    failures: list[str] = []
    chains: dict[str, dict[str, bytes]] = {}
    latest: dict[str, bytes] = {}  # the last value printed under each name, for the byte layouts
    count = 0
    for part in document["parts"]:
        for item in part["items"]:
            if item["kind"] == "layout":
                failures += _verify_layout(item, latest)
                continue
            if item["kind"] != "step":
                continue
            values = {name: bytes.fromhex(text) for name, text in item["values"].items()}
            chain = chains.setdefault(item["by"], {})
            try:
                problem = _recompute(item["formula"], values, chain)
            except (KeyError, ValueError) as err:
                problem = f"cannot recompute ({err})"
            if problem:
                failures.append(f"{part['title']}: {item['formula']}: {problem}")
            else:
                count += not item.get("given")
            latest.update(values)
    return failures, count


def _recompute(formula: str, v: dict[str, bytes], chain: dict[str, bytes]) -> str:
    """The check of one step; updates the party's chain; returns what is wrong, or ""."""

    def expect(name: str, value: bytes) -> str:
        return "" if v[name] == value else f"{name} does not recompute"

    def same_as_chain(name: str) -> str:
        return "" if name not in chain or chain[name] == v[name] else f"{name} is not the {name} of the previous step"

    if m := re.fullmatch(r"\((\w+), (\w+)\) = (DH-GENERATE\(\)|the \w+'s static key pair)", formula):
        return expect(m[2], x25519(v[m[1]], BASEPOINT))
    if formula.endswith(("sender index", "TAI64N(now)")) or formula.startswith("Q = "):
        return ""  # chosen or random inputs: nothing to recompute
    if formula.startswith("P = the packet"):
        ok = v["P"][: len(v["packet"])] == v["packet"] and not any(v["P"][len(v["packet"]):]) and len(v["P"]) % 16 == 0
        return "" if ok else "P is not the packet with zero padding"
    if formula == "C = HASH(CONSTRUCTION)":
        chain.clear()
        chain["C"] = v["C"]
        return expect("C", HASH(v["CONSTRUCTION"]))
    if formula == "H = HASH(C || IDENTIFIER)":
        chain["H"] = v["H"]
        return same_as_chain("C") or expect("H", HASH(v["C"] + v["IDENTIFIER"]))
    if m := re.fullmatch(r"H = HASH\(H \|\| (.+)\)", formula):
        problem = expect("H", HASH(chain["H"] + v[m[1]]))
        chain["H"] = v["H"]
        return problem
    if m := re.fullmatch(r"C = KDF1\(C, (.+)\)", formula):
        problem = expect("C", KDF1(chain["C"], v[m[1]]))
        chain["C"] = v["C"]
        return problem
    if m := re.fullmatch(r"\(C, k\) = KDF2\(C, (.+)\)", formula):
        c, k = KDF2(chain["C"], v[m[1]])
        chain.update(C=v["C"], k=v["k"])
        return expect("C", c) or expect("k", k)
    if formula == "(C, tau, k) = KDF3(C, Q)":
        c, tau, k = KDF3(chain["C"], v["Q"])
        chain.update(C=v["C"], k=v["k"])
        return expect("C", c) or expect("tau", tau) or expect("k", k)
    if m := re.fullmatch(r"DH\((\w+), (\w+)\)", formula):
        return expect(formula, x25519(v[m[1]], v[m[2]]))
    if m := re.fullmatch(r"(\S+) = AEAD\(k, 0, (\S+), H\)", formula):
        return (same_as_chain("k") or same_as_chain("H") or expect("nonce", aead_nonce(0))
                or expect(m[1], AEAD(v["k"], 0, v[m[2]], v["H"])))
    if m := re.fullmatch(r"(\S+) = AEAD-DECRYPT\(k, 0, (\S+), H\)", formula):
        # Encrypting the printed plaintext again must give the printed ciphertext.
        return (same_as_chain("k") or same_as_chain("H") or expect("nonce", aead_nonce(0))
                or expect(m[2], AEAD(v["k"], 0, v[m[1]], v["H"])))
    if formula.startswith("(T_send_i = T_recv_r, T_recv_i = T_send_r) = KDF2(C, ε)"):
        send_i, recv_i = KDF2(v["C"], b"")
        chain.update(T_send_i=v["T_send_i"], T_recv_i=v["T_recv_i"])
        return same_as_chain("C") or expect("T_send_i", send_i) or expect("T_recv_i", recv_i)
    if m := re.fullmatch(r"msg\.encrypted_encapsulated_packet = AEAD\((T_send_[ir]), N_send, P, ε\)", formula):
        key = chain.get("T_send_i") if m[1] == "T_send_i" else chain.get("T_recv_i")  # T_send_r = T_recv_i
        counter = int.from_bytes(v["N_send"], "little")
        if key != v[m[1]]:
            return f"{m[1]} is not the key the transcript derived"
        ciphertext = AEAD(key, counter, v["P"], b"")
        return expect("nonce", aead_nonce(counter)) or expect("msg.encrypted_encapsulated_packet", ciphertext)
    if formula == "mac1_key = HASH(LABEL_MAC1 || S_pub_m)":
        return expect("mac1_key", HASH(v["LABEL_MAC1"] + v["S_pub_m"]))
    if formula == "msg.mac1 = MAC(mac1_key, msg_α)":
        return expect("msg.mac1", MAC(v["mac1_key"], v["msg_α"]))
    if formula.startswith("msg.mac2 = 0^16"):
        return expect("msg.mac2", bytes(16))
    if formula == "msg.mac2 = MAC(L_m, msg_β)":
        return expect("msg.mac2", MAC(v["L_m"], v["msg_β"]))
    if formula == "cookie_key = HASH(LABEL_COOKIE || S_pub_m)":
        return expect("cookie_key", HASH(v["LABEL_COOKIE"] + v["S_pub_m"]))
    if formula == "τ = MAC(R_m, A_m')":
        return expect("τ", MAC(v["R_m"], v["A_m'"]))
    if formula == "msg.encrypted_cookie = XAEAD(cookie_key, msg.nonce, τ, M)":
        return expect("msg.encrypted_cookie", XAEAD(v["cookie_key"], v["msg.nonce"], v["τ"], v["M"]))
    if formula == "τ = XAEAD-DECRYPT(cookie_key, msg.nonce, msg.encrypted_cookie, M)":
        return expect("msg.encrypted_cookie", XAEAD(v["cookie_key"], v["msg.nonce"], v["τ"], v["M"]))
    return "no rule to recompute this formula"


# A layout's field is the value printed last under this name.
LAYOUT_VALUES = {
    "encrypted_static": "msg.encrypted_static",
    "encrypted_timestamp": "msg.encrypted_timestamp",
    "encrypted_nothing": "msg.encrypted_nothing",
    "mac1": "msg.mac1",
    "mac2": "msg.mac2",
    "nonce": "msg.nonce",
    "encrypted_cookie": "msg.encrypted_cookie",
    "encrypted_encapsulated_packet": "msg.encrypted_encapsulated_packet",
    "counter": "N_send",
}


def _verify_layout(item: dict, latest: dict[str, bytes]) -> list[str]:
    wire = bytes.fromhex(item["wire"])
    failures = []
    if b"".join(bytes.fromhex(f["hex"]) for f in item["fields"]) != wire:
        failures.append(f"{item['title']}: the fields do not make up the message")
    for f in item["fields"]:
        name = LAYOUT_VALUES.get(f["name"])
        if name is not None and name in latest and latest[name].hex() != f["hex"]:
            failures.append(f"{item['title']}: {f['name']} is not the {name} computed")
    if wire[0] in (1, 2) and latest.get("msg_α") != wire[:-32]:
        failures.append(f"{item['title']}: MAC1 was not computed over this message")
    return failures


# ------------------------------------------------------------------------------------- output


def to_json(walkthrough: Walkthrough) -> dict:
    parts = []
    for part in walkthrough.parts:
        items = []
        for item in part.items:
            if isinstance(item, Step):
                items.append({"kind": "step", "by": item.by, "formula": item.formula, "section": item.section,
                              "given": item.given, "values": {name: value.hex() for name, value in item.values}})
            elif isinstance(item, Layout):
                items.append({"kind": "layout", "title": item.title, "section": item.section, "wire": item.wire.hex(),
                              "fields": [{"offset": f.offset, "size": f.size, "name": f.name, "hex": f.value.hex(),
                                          "meaning": f.meaning} for f in item.fields]})
            else:
                items.append({"kind": "note", "text": item.text})
        parts.append({"title": part.title, "section": part.section, "text": part.text, "items": items})
    return {
        "parameters": dict(walkthrough.parameters),
        "parts": parts,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in walkthrough.checks],
    }


def render_json(walkthrough: Walkthrough) -> str:
    return json.dumps(to_json(walkthrough), indent=2, ensure_ascii=False) + "\n"


def _value_lines(name: str, value: bytes) -> list[str]:
    """How a value prints: text for the protocol's labels, else hex, 32 bytes a line."""
    if name in TEXT_VALUES:
        return [f'"{value.decode()}"']
    if not value:
        return ["(empty)"]
    text = value.hex()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    extra = _annotation(name, value)
    if extra:
        lines[-1] += f"  ({extra})"
    return lines


def _annotation(name: str, value: bytes) -> str:
    if name in ("I_i", "I_r"):
        return f"{int.from_bytes(value, 'little'):#010x}"
    if name in ("timestamp", "N_send") and len(value) in (12, 8):
        if name == "N_send":
            return f"counter {int.from_bytes(value, 'little')}"
        seconds, nanoseconds = tai64n.decode(value)
        return f"{_utc(seconds)}.{nanoseconds:09d} UTC"
    if name in ("S_pub_i", "S_pub_r") and len(value) == 32:
        return f"base64 {key_to_base64(value)}"
    return ""


class _Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text


def render_text(walkthrough: Walkthrough, colour: bool = False) -> str:
    s = _Style(colour)
    out = [s("1", "wgpy explain: one WireGuard handshake and its first packets, every value computed by wgpy's core")]
    out += [f"  {name}: {value}" for name, value in walkthrough.parameters]
    for number, part in enumerate(walkthrough.parts, 1):
        out += ["", s("1;4", f"{number}. {part.title}") + s("33", f"  [whitepaper {part.section}]")]
        out += textwrap.wrap(part.text, 100, initial_indent="  ", subsequent_indent="  ")
        for item in part.items:
            out.append("")
            if isinstance(item, Step):
                who = f"{item.by}: " if item.by else ""
                out.append(f"  {s('33', '[' + item.section + ']')} {who}{s('36', item.formula)}")
                width = max(len(name) for name, _ in item.values)
                for name, value in item.values:
                    lines = _value_lines(name, value)
                    out.append(f"      {s('2', name.ljust(width))}  {lines[0]}")
                    out += [f"      {'':{width}}  {line}" for line in lines[1:]]
            elif isinstance(item, Layout):
                out.append(f"  {s('1', item.title)}  {s('33', '[' + item.section + ']')}")
                out += ["   " + line for line in decode.field_lines(item.fields, dim=lambda text: s("2", text))]
            else:
                out += textwrap.wrap(item.text, 100, initial_indent="  ", subsequent_indent="  ")
    out += ["", s("1", "Checks")]
    for check in walkthrough.checks:
        mark = s("32", "ok  ") if check.ok else s("31", "FAIL")
        out.append(f"  {mark} {check.name}" + (f": {check.detail}" if check.detail else ""))
    return "\n".join(out) + "\n"


def render_markdown(walkthrough: Walkthrough) -> str:
    out = [
        f"<!-- Generated by `{REGENERATE}`. Do not edit by hand: tests/test_docs.py fails when this file is stale. -->",
        "",
        "# A WireGuard handshake, step by step",
        "",
        "This is the output of `wgpy explain --format markdown`: two peers in memory run wgpy's core "
        "(`wgpy/core/noise.py`, `cookie.py`, `keypairs.py`) with fixed keys and a seeded random generator, "
        "and every value the core computes is shown as the "
        "[WireGuard whitepaper](https://www.wireguard.com/papers/wireguard.pdf) writes it, with the section "
        "of the whitepaper each step comes from. The walkthrough checks itself: the last section recomputes "
        "every step from the printed values. `wgpy explain` prints the same in a terminal, "
        "`--under-load` adds the cookie round trip, and `--format json` gives it to programs.",
        "",
        "![The handshake as a sequence diagram](handshake.svg)",
        "",
        "| parameter | value |",
        "|---|---|",
        *[f"| {name} | `{value}` |" for name, value in walkthrough.parameters],
    ]
    for number, part in enumerate(walkthrough.parts, 1):
        out += ["", f"## {number}. {part.title}", "", f"*Whitepaper section {part.section}.* {part.text}"]
        for item in part.items:
            out.append("")
            if isinstance(item, Step):
                who = f"{item.by.capitalize()}: " if item.by else ""
                out += [f"**{who}`{item.formula}`** (§{item.section})", "", "```text"]
                width = max(len(name) for name, _ in item.values)
                for name, value in item.values:
                    lines = _value_lines(name, value)
                    out.append(f"{name.ljust(width)}  {lines[0]}")
                    out += [f"{'':{width}}  {line}" for line in lines[1:]]
                out.append("```")
            elif isinstance(item, Layout):
                out += [f"**{item.title}** (§{item.section})", "", "| offset | size | field | bytes | meaning |",
                        "|---:|---:|---|---|---|"]
                for f in item.fields:
                    hex_text = f.value.hex()
                    chunks = "<br>".join(f"`{hex_text[i : i + 64]}`" for i in range(0, len(hex_text), 64))
                    out.append(f"| {f.offset} | {f.size} | `{f.name}` | {chunks} | {_md(f.meaning)} |")
            else:
                out.append(item.text)
    out += ["", "## Checks", ""]
    for check in walkthrough.checks:
        out.append(f"- {'✓' if check.ok else '✗ FAILED:'} {check.name}" + (f" ({check.detail})" if check.detail else ""))
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _utc(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------------------------- command


def main(initiator_key: str | None, responder_key: str | None, psk: str | None, seed: int, under_load: bool,
         output_format: str) -> int:
    try:
        walkthrough = run(
            key_from_text(initiator_key) if initiator_key else None,
            key_from_text(responder_key) if responder_key else None,
            key_from_text(psk) if psk else None,
            seed,
            under_load,
        )
    except ValueError as err:
        print(f"wgpy explain: {err}", file=sys.stderr)
        return 2
    if output_format == "json":
        text = render_json(walkthrough)
    elif output_format == "markdown":
        text = render_markdown(walkthrough)
    else:
        text = render_text(walkthrough, colour=sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    decode.write_stdout(text)
    return 0 if walkthrough.ok else 1
