"""``wgpy explain``: one WireGuard handshake and its first packets, every value shown as the whitepaper
writes it.

Two peers in memory (fixed keys unless chosen, every random value from a seeded generator, the clock at a
fixed date) run the real core: ``noise.create_initiation`` ... ``consume_response`` with a
:class:`~wgpy.core.trace.Recorder` as their ``trace``, the cookie generator and checker likewise, and the
session's :class:`~wgpy.core.keypairs.Keypair` for the data. The steps the core records (each ``mix_hash``,
``mix_key``, DH, KDF, AEAD, MAC) are arranged into parts, one per message, with each message's byte layout
(the labels of ``wgpy decode``): a :class:`~wgpy.study.walkthrough.Walkthrough`.

The output checks itself: :func:`~wgpy.study.verify.verify` recomputes every printed step from the printed
values alone (the hash chain, the chaining keys, each DH, KDF, AEAD and MAC, and that each message's bytes
are the values computed for them), and the transport keys the transcript ends with must be the ones both
peers hold.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Callable

from ..core import noise, tai64n
from ..core.constants import KEY_LEN, REKEY_TIMEOUT, TRANSPORT_MIN_SIZE
from ..core.cookie import CookieChecker, CookieGenerator, MacStatus
from ..core.crypto import AEAD, HASH, PrivateKey, aead_nonce, clamp
from ..core.device import DEFAULT_MTU
from ..core.encoding import key_from_text, key_to_base64
from ..core.keypairs import Keypair
from ..core.messages import TRANSPORT_HEADER, parse
from ..core.trace import COUNTER_LEN, Op, Recorder
from ..core.trace import Step as TraceStep
from .ip import icmp_echo, summarize_ip
from .labels import fields
from .render import tai64n_text, write_stdout
from .verify import verify
from .walkthrough import Check, Layout, Note, Part, Step, Walkthrough, render_json, render_markdown, render_text, to_json

EPOCH = 1_735_689_600.0  # 2025-01-01 00:00:00 UTC: the wall clock of every explained handshake
INITIATOR_ENDPOINT = ("192.0.2.1", 51820)
RESPONDER_ENDPOINT = ("192.0.2.2", 51820)
INITIATOR_ADDRESS, RESPONDER_ADDRESS = "10.0.0.1", "10.0.0.2"
INDEX_LEN = 4


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


class _Builder:
    """Collects the parts while the exchange runs."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def part(self, title: str, section: str, text: str) -> Part:
        self.parts.append(Part(title, section, " ".join(text.split())))
        return self.parts[-1]

    def given(self, formula: str, section: str, by: str, operation: Op = Op.GIVEN, inputs: tuple[str, ...] = (),
              **values: bytes) -> None:
        """A step that states values (chosen or random), or computes them from such (a public key): its
        outputs are the values that are not inputs."""
        outputs = tuple(name for name in values if name not in inputs)
        self.parts[-1].items.append(Step(formula, section, by, list(values.items()), True, operation, inputs, outputs))

    def step(self, step: TraceStep, by: str) -> None:
        self.parts[-1].items.append(Step(step.formula, step.section, by, list(step.values.items()), False,
                                         step.operation, step.inputs, step.outputs))

    def recorded(self, recorder: Recorder, by: str, keep: Callable[[str], bool] = lambda section: True) -> list:
        """Move the recorder's steps into the current part; returns those left out by ``keep``."""
        left = []
        for step in recorder.steps:
            if keep(step.section):
                self.step(step, by)
            else:
                left.append(step)
        recorder.steps.clear()
        return left

    def note(self, text: str) -> None:
        self.parts[-1].items.append(Note(" ".join(text.split())))

    def layout(self, title: str, section: str, wire: bytes) -> None:
        self.parts[-1].items.append(Layout(title, section, wire, fields(wire)))


def run(
    initiator_key: bytes | None = None,
    responder_key: bytes | None = None,
    psk: bytes | None = None,
    seed: int = 0,
    under_load: bool = False,
) -> Walkthrough:
    """Run the exchange and return it as a checked :class:`Walkthrough`."""
    initiator = PrivateKey(initiator_key if initiator_key is not None else default_key("initiator"))
    responder = PrivateKey(responder_key if responder_key is not None else default_key("responder"))
    if initiator.public == responder.public:
        raise ValueError("the initiator and the responder need different static keys")
    exchange = _Exchange(initiator, responder, psk, SeededRng(seed), under_load)
    exchange.peers()
    exchange.initiation("")
    if under_load:
        exchange.cookie_round_trip()
    exchange.read_initiation()
    exchange.response()
    exchange.read_response()
    exchange.transport_keys()
    exchange.first_packet()
    exchange.keepalive()
    parameters = [
        ("S_pub_i", key_to_base64(initiator.public)),
        ("S_pub_r", key_to_base64(responder.public)),
        ("preshared key", "yes" if psk is not None else "none"),
        ("seed", str(seed)),
        ("under load", "yes" if under_load else "no"),
    ]
    walkthrough = Walkthrough(parameters, exchange.b.parts)
    failures, recomputed = verify(to_json(walkthrough))
    exchange.checks.append(Check(
        "the hash chain and every other step recompute from the printed values",
        not failures,
        f"{recomputed} steps recomputed" + ("; " + "; ".join(failures) if failures else ""),
    ))
    walkthrough.checks = exchange.checks
    return walkthrough


class _Exchange:
    """The two peers in memory, one method per part of the walkthrough, in the order they run."""

    def __init__(self, initiator: PrivateKey, responder: PrivateKey, psk: bytes | None, rng: SeededRng,
                 under_load: bool) -> None:
        self.initiator, self.responder, self.psk, self.rng, self.under_load = initiator, responder, psk, rng, under_load
        self.b = _Builder()
        self.checks: list[Check] = []
        self.now = 0.0
        self.cookies_for_responder = CookieGenerator(responder.public)  # the initiator's view of the responder
        self.checker = CookieChecker(responder.public, rng)  # the responder's own

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))

    def peers(self) -> None:
        b = self.b
        b.part("The two peers", "5.4", """Each peer has a static Curve25519 key pair and knows the other's public
            key before anything is sent (the Noise IK pattern's pre-message "<- s"). They may also share a
            pre-shared key Q; without one, Q is 32 zero bytes (section 5.2). Values are hexadecimal; the
            initiator's names end in _i, the responder's in _r, as in the whitepaper.""")
        b.given("(S_priv_i, S_pub_i) = the initiator's static key pair", "5.4", "initiator",
                Op.PUBLIC_KEY, ("S_priv_i",), S_priv_i=self.initiator.private_bytes(), S_pub_i=self.initiator.public)
        b.given("(S_priv_r, S_pub_r) = the responder's static key pair", "5.4", "responder",
                Op.PUBLIC_KEY, ("S_priv_r",), S_priv_r=self.responder.private_bytes(), S_pub_r=self.responder.public)
        q = self.psk if self.psk is not None else bytes(KEY_LEN)
        b.given("Q = the pre-shared key" + ("" if self.psk is not None else " (none: 32 zero bytes)"), "5.2", "", Q=q)

    def initiation(self, attempt: str) -> None:
        b, rng = self.b, self.rng
        b.part(f"Message 1{attempt}: the initiator writes the handshake initiation", "5.4.2", """The initiator
            starts the transcript from the protocol's name and identifier, mixes in the responder's
            public key, then runs the tokens "e, es, s, ss": a fresh ephemeral key, a DH of it with the
            responder's static key, its own static public key encrypted under the key that DH gave, a DH
            of both static keys, and the encrypted timestamp. C is the chaining key, H the hash of
            everything so far, k the key for the next AEAD.""")
        ephemeral = PrivateKey.generate(rng)
        self.initiator_index = int.from_bytes(rng(INDEX_LEN), "little")
        timestamp = tai64n.encode(EPOCH + self.now)
        b.given("(E_priv_i, E_pub_i) = DH-GENERATE()", "5.4.2", "initiator",
                Op.PUBLIC_KEY, ("E_priv_i",), E_priv_i=ephemeral.private_bytes(), E_pub_i=ephemeral.public)
        b.given("I_i = a random 32-bit sender index", "5.4.2", "initiator",
                I_i=self.initiator_index.to_bytes(INDEX_LEN, "little"))
        b.given("timestamp = TAI64N(now)", "5.4.2", "initiator", timestamp=timestamp)
        recorder = Recorder()
        message, self.sent = noise.create_initiation(self.initiator, self.responder.public, ephemeral,
                                                     self.initiator_index, timestamp, trace=recorder)
        b.recorded(recorder, "initiator")
        b.note("""Last come the two MACs (section 5.4.4). MAC1 is keyed with the receiver's public key, so a
            responder can drop anything not meant for it for the cost of one BLAKE2s; MAC2 is keyed with a
            cookie, and stays zero unless the responder, under load, gave the initiator one.""")
        self.wire = self.cookies_for_responder.add_macs(message.pack(), self.now, trace=recorder)
        b.recorded(recorder, "initiator")
        b.layout("The handshake initiation on the wire (148 bytes)", "5.4.2", self.wire)

    def cookie_round_trip(self) -> None:
        b, checker = self.b, self.checker
        b.part("Under load: the responder answers with a cookie reply", "5.4.7", """A responder under load does
            no Diffie-Hellman for a message whose MAC2 is not valid: it answers with a cookie reply
            instead. The cookie is a MAC of the sender's IP address and port under a secret that changes
            every two minutes, encrypted with XChaCha20-Poly1305 under a key derived from the responder's
            public key, with the MAC1 it answers as associated data.""")
        status = checker.check_macs(self.wire, INITIATOR_ENDPOINT, self.now, check_cookie=True)
        b.note(f"The responder checks the MACs with its own public key: {status.value}.")
        self.check("under load, the first initiation gets a cookie reply", status is MacStatus.VALID_MAC1)
        recorder = Recorder()
        reply = checker.create_reply(self.wire, self.initiator_index, INITIATOR_ENDPOINT, self.now, trace=recorder)
        b.recorded(recorder, "responder")
        b.layout("The cookie reply on the wire (64 bytes)", "5.4.7", reply.pack())
        self.cookies_for_responder.consume_reply(parse(reply.pack()), self.now, trace=recorder)
        b.note("The initiator decrypts the cookie with the responder's public key and the MAC1 it sent last:")
        b.recorded(recorder, "initiator")
        self.now += REKEY_TIMEOUT
        b.note(f"""Its initiation unanswered, the initiator tries again REKEY_TIMEOUT ({REKEY_TIMEOUT:.0f} s)
            later (section 6.4) with a new initiation, and this one carries MAC2.""")
        self.initiation(" again")
        status = checker.check_macs(self.wire, INITIATOR_ENDPOINT, self.now, check_cookie=True)
        b.note(f"The responder, still under load, checks the MACs: {status.value}.")
        self.check("under load, the retried initiation has a valid MAC2", status is MacStatus.VALID_MAC1_AND_MAC2)

    def read_initiation(self) -> None:
        b = self.b
        b.part("The responder reads message 1", "5.4.2", """The responder checks MAC1, then repeats the
            initiator's computations from its own side: its DHs use its private keys and the initiator's
            public ones and give the same results, so it can decrypt the initiator's static public key (and
            so learn who is calling) and the timestamp (which must be newer than the last one it accepted from
            that peer, against replays).""")
        status = self.checker.check_macs(self.wire, INITIATOR_ENDPOINT, self.now, check_cookie=self.under_load)
        b.note(f"MAC1 with the responder's own public key: {status.value}.")
        self.check("the responder accepts the initiation's MAC1", status is not MacStatus.INVALID_MAC1)
        recorder = Recorder()
        self.received = noise.consume_initiation(self.responder, parse(self.wire), trace=recorder)
        b.recorded(recorder, "responder")
        b.note(f"The timestamp reads {tai64n_text(self.received.payload)}; the static key is the initiator's.")
        self.check("the responder decrypts the initiator's static key",
                   self.received.initiator_public == self.initiator.public)
        self.check("after message 1 both transcripts hold the same C and H",
                   (self.received.chaining_key, self.received.hash) == (self.sent.chaining_key, self.sent.hash))

    def response(self) -> None:
        b, rng = self.b, self.rng
        b.part("Message 2: the responder writes the handshake response", "5.4.3", """The response runs the tokens
            "e, ee, se, psk": a fresh ephemeral key, a DH of it with each of the initiator's keys, then the
            pre-shared key, which also yields tau (mixed into H) and the key of the last AEAD. That AEAD
            encrypts nothing: its 16-byte tag proves the responder computed the same transcript.""")
        ephemeral = PrivateKey.generate(rng)
        self.responder_index = int.from_bytes(rng(INDEX_LEN), "little")
        b.given("(E_priv_r, E_pub_r) = DH-GENERATE()", "5.4.3", "responder",
                Op.PUBLIC_KEY, ("E_priv_r",), E_priv_r=ephemeral.private_bytes(), E_pub_r=ephemeral.public)
        b.given("I_r = a random 32-bit sender index", "5.4.3", "responder",
                I_r=self.responder_index.to_bytes(INDEX_LEN, "little"))
        recorder = Recorder()
        response, self.responder_keys = noise.create_response(self.received, ephemeral, self.psk, self.responder_index,
                                                               self.initiator_index, trace=recorder)
        self.responder_split = b.recorded(recorder, "responder", keep=lambda section: section != "5.4.5")
        self.wire = CookieGenerator(self.initiator.public).add_macs(response.pack(), self.now, trace=recorder)
        b.recorded(recorder, "responder")
        b.layout("The handshake response on the wire (92 bytes)", "5.4.3", self.wire)

    def read_response(self) -> None:
        b = self.b
        b.part("The initiator reads message 2", "5.4.3", """The initiator finds its pending handshake by
            receiver_index, checks MAC1 (keyed with its own public key) and repeats the responder's steps
            with its own private keys. If the tag of encrypted_nothing verifies, both sides hold the same
            chaining key, and so will derive the same session keys.""")
        checker = CookieChecker(self.initiator.public, self.rng)
        mac1_ok = checker.check_macs(self.wire, RESPONDER_ENDPOINT, self.now, check_cookie=False) is not MacStatus.INVALID_MAC1
        b.note(f"MAC1 with the initiator's own public key: {'valid' if mac1_ok else 'NOT valid'}.")
        self.check("the initiator accepts the response's MAC1", mac1_ok)
        recorder = Recorder()
        self.initiator_keys = noise.consume_response(self.sent, self.initiator, parse(self.wire), self.psk, trace=recorder)
        self.initiator_split = b.recorded(recorder, "initiator", keep=lambda section: section != "5.4.5")

    def transport_keys(self) -> None:
        b = self.b
        b.part("The transport data keys", "5.4.5", """Each side derives two keys from the final chaining key, one
            per direction, and erases everything else of the handshake (the ephemeral keys, C, H). The
            initiator sends with the first key, the responder with the second; each counts its messages from
            zero. The responder waits to send until the initiator's first data packet proves the initiator
            has these keys too.""")
        for steps, by in ((self.initiator_split, "initiator"), (self.responder_split, "responder")):
            for step in steps:
                b.step(step, by)
        initiator_transcript, responder_transcript = (
            (split[-1].values["T_send_i"], split[-1].values["T_recv_i"])
            for split in (self.initiator_split, self.responder_split)
        )
        initiator_keys, responder_keys = self.initiator_keys, self.responder_keys
        self.check(
            "the transcript's final keys equal what the two peers derived",
            initiator_transcript == responder_transcript == (initiator_keys.sending_key, initiator_keys.receiving_key)
            == (responder_keys.receiving_key, responder_keys.sending_key)
            and initiator_keys.handshake_hash == responder_keys.handshake_hash,
            "T_send_i = the initiator's sending key = the responder's receiving key, and the other way round",
        )
        self.sending = Keypair(initiator_keys, self.initiator_index, self.responder_index, self.now)
        self.receiving = Keypair(responder_keys, self.responder_index, self.initiator_index, self.now)

    def first_packet(self) -> None:
        b = self.b
        packet = icmp_echo(INITIATOR_ADDRESS, RESPONDER_ADDRESS)
        b.part("The first data packet", "5.4.6", f"""The initiator's first IP packet, a ping from {INITIATOR_ADDRESS}
            to {RESPONDER_ADDRESS} ({len(packet)} bytes), is padded with zeros to a multiple of 16 bytes and
            encrypted with ChaCha20-Poly1305 under T_send_i, the counter as nonce and no associated data. The
            header names the responder's session by its index; the counter lets the receiver reject replays
            (section 5.4.6).""")
        wire = self.sending.encrypt(packet, DEFAULT_MTU)
        padded = packet + bytes(len(wire) - TRANSPORT_MIN_SIZE - len(packet))
        self._transport_steps("initiator", "T_send_i", self.initiator_keys.sending_key, packet, padded, wire)
        b.layout("The first transport data message on the wire", "5.4.6", wire)
        delivered = self.receiving.decrypt(wire)
        b.note(f"""The responder finds the session by receiver_index, decrypts and authenticates the packet,
            checks the counter against its replay window, and finds an IPv4 packet from an address the
            initiator is allowed to use: {summarize_ip(delivered)}. This first packet under the new
            keys confirms the session.""")
        self.check("the responder decrypts the first packet", delivered == padded)

    def keepalive(self) -> None:
        b = self.b
        b.part("A keepalive", "6.5", """A peer that received data and has nothing to send for KEEPALIVE_TIMEOUT
            (10 s) sends a keepalive: a transport message with an empty packet, which is only the 16-byte tag
            (section 6.5). Here the responder sends one, under the other key, its own counter starting at 0.""")
        wire = self.receiving.encrypt(b"", DEFAULT_MTU)
        self._transport_steps("responder", "T_send_r", self.responder_keys.sending_key, b"", b"", wire)
        b.layout("The keepalive on the wire (32 bytes)", "5.4.6", wire)
        self.check("the initiator decrypts the keepalive to nothing", self.sending.decrypt(wire) == b"")

    def _transport_steps(self, by: str, key_name: str, key: bytes, packet: bytes, padded: bytes, wire: bytes) -> None:
        self.b.given("P = the packet || zero padding to a multiple of 16 bytes", "5.4.6", by, Op.PAD, ("packet",),
                     packet=packet, P=padded)
        _, _, counter = TRANSPORT_HEADER.unpack_from(wire)
        ciphertext = AEAD(key, counter, padded, b"")
        assert wire[TRANSPORT_HEADER.size :] == ciphertext, "the keypair's encryption is the whitepaper's AEAD"
        values = {key_name: key, "N_send": counter.to_bytes(COUNTER_LEN, "little"), "nonce": aead_nonce(counter),
                  "P": padded, "msg.encrypted_encapsulated_packet": ciphertext}
        self.b.step(TraceStep(Op.AEAD, f"msg.encrypted_encapsulated_packet = AEAD({key_name}, N_send, P, ε)", values,
                              (key_name, "N_send", "P", "ε"), ("nonce", "msg.encrypted_encapsulated_packet"), "5.4.6"), by)


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
    write_stdout(text)
    return 0 if walkthrough.ok else 1
