"""Tracing the handshake, step by step, for study (``wgpy explain``) and nothing else.

The handshake code calls ``trace.step(...)`` from its primitives (``mix_hash``, ``mix_key``, the DH, KDF
and AEAD steps in noise.py; the MACs and cookies in cookie.py), never inline in the protocol flow, and only
when ``trace.enabled``: with the default :data:`NULL_TRACE` a step costs one attribute test and builds
nothing. Secrets only ever leave the core when a caller asks for a :class:`Recorder` on purpose.

A step says what it computes as data, not only as text: an :class:`Op`, the names of its inputs (in the
order the operation takes them) and of its outputs. A reader recomputes a step by running the operation on
the inputs, so the formula's wording is free (``wgpy.study.verify``). An input is a value the step prints,
or one carried from an earlier step of the same party (the chaining key ``C`` and hash ``H`` that
``mix_key`` and ``mix_hash`` update: an input that is also an output is the value before the step, and the
value shown under its name the one after), or a constant the formula writes out (:data:`LITERALS`).
"""

from __future__ import annotations

from enum import Enum

from .constants import MAC_LEN
from .record import record

COUNTER_LEN = 8


class Op(Enum):
    """What a step computes (whitepaper section 5.4, "Cryptographic Primitives")."""

    GIVEN = "chosen or random: nothing to recompute"
    PUBLIC_KEY = "the X25519 public key of the private key"
    PAD_TO_HASHLEN = "the input with zeros appended to 32 bytes (Noise, for a short protocol name)"
    PAD = "the packet with zeros appended to a multiple of 16 bytes"
    CONSTANT = "the input itself (a constant the formula writes out)"
    HASH = "HASH of the inputs, one after the other"
    MAC = "MAC(key, input)"
    KDF1 = "KDF1(key, input)"
    KDF2 = "KDF2(key, input)"
    KDF3 = "KDF3(key, input)"
    SPLIT = "KDF2(key, input), each key under its name for both sides: T_send_i = T_recv_r, T_recv_i = T_send_r"
    DH = "DH(private key, public key)"
    AEAD = "the nonce of the counter, and AEAD(key, counter, plaintext, associated data)"
    AEAD_DECRYPT = "the nonce of the counter, and AEAD-DECRYPT(key, counter, ciphertext, associated data)"
    XAEAD = "XAEAD(key, nonce, plaintext, associated data)"
    XAEAD_DECRYPT = "XAEAD-DECRYPT(key, nonce, ciphertext, associated data)"


# The constants formulas write out, by the name they have there.
LITERALS = {"0": bytes(COUNTER_LEN), "ε": b"", "0^16": bytes(MAC_LEN)}


@record
class Step:
    """One computation: what the whitepaper writes (``C = KDF1(C, E_pub_i)``), what it computes (``Op.KDF1``
    of inputs ``("C", "E_pub_i")`` to outputs ``("C",)``) and the values it shows, in order."""

    operation: Op
    formula: str
    values: dict[str, bytes]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    section: str = ""


class NullTrace:
    """Records nothing."""

    __slots__ = ()
    enabled = False

    def step(self, operation: Op, formula: str, section: str, inputs: tuple[str, ...], outputs: tuple[str, ...],
             **values: bytes) -> None:
        pass


NULL_TRACE = NullTrace()


class Recorder:
    """Keeps every step, in order. It holds secrets: only explain mode and tests create one."""

    enabled = True

    def __init__(self) -> None:
        self.steps: list[Step] = []

    def __repr__(self) -> str:
        return "Recorder()"

    def __eq__(self, other):
        return self.steps == other.steps if other.__class__ is Recorder else NotImplemented

    __hash__ = None

    def step(self, operation: Op, formula: str, section: str, inputs: tuple[str, ...], outputs: tuple[str, ...],
             **values: bytes) -> None:
        self.steps.append(Step(operation, formula, dict(values), inputs, outputs, section))
