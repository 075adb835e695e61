"""The check of ``wgpy explain``'s walkthrough: every printed step recomputed from the printed values alone.

Each step names its operation, its inputs and its outputs (:mod:`wgpy.core.trace`); :func:`check_step`
runs the operation on the inputs and compares what it gives with the printed outputs. The formula is never
read, so rewording it changes nothing here. Each party's values are followed from step to step: an input
not printed, or printed as the step's output under the same name (the C and H that ``mix_key`` and
``mix_hash`` carry), is the party's last output of that name, and an input that is printed must be that
output, so one wrong value anywhere breaks the chain. Each message's bytes must be the values computed for
them.
"""

from __future__ import annotations

from typing import Callable

from ..core.constants import PADDING_MULTIPLE, MessageType
from ..core.crypto import AEAD, AEAD_DECRYPT, HASH, KDF1, KDF2, KDF3, MAC, XAEAD, XAEAD_DECRYPT, aead_nonce, x25519
from ..core.errors import Rejected
from ..core.messages import MAC1_OFFSET_FROM_END
from ..core.trace import LITERALS, Op

BASEPOINT = bytes([9]) + bytes(31)  # X25519's base point u = 9 (RFC 7748)
HASHLEN = 32


def _aead(key: bytes, counter: bytes, plaintext: bytes, associated_data: bytes) -> tuple[bytes, bytes]:
    n = int.from_bytes(counter, "little")
    return aead_nonce(n), AEAD(key, n, plaintext, associated_data)


def _aead_decrypt(key: bytes, counter: bytes, ciphertext: bytes, associated_data: bytes) -> tuple[bytes, bytes]:
    n = int.from_bytes(counter, "little")
    return aead_nonce(n), AEAD_DECRYPT(key, n, ciphertext, associated_data)


def _split(key: bytes, data: bytes) -> tuple[bytes, ...]:
    initiator_to_responder, responder_to_initiator = KDF2(key, data)
    return initiator_to_responder, responder_to_initiator, initiator_to_responder, responder_to_initiator


# What each operation gives, from its inputs in order; None: nothing to recompute.
RECOMPUTE: dict[Op, Callable[..., tuple[bytes, ...]] | None] = {
    Op.GIVEN: None,
    Op.PUBLIC_KEY: lambda private: (x25519(private, BASEPOINT),),
    Op.PAD_TO_HASHLEN: lambda data: (data.ljust(HASHLEN, b"\0"),),
    Op.PAD: lambda packet: (packet + bytes(-len(packet) % PADDING_MULTIPLE),),
    Op.CONSTANT: lambda value: (value,),
    Op.HASH: lambda *parts: (HASH(b"".join(parts)),),
    Op.MAC: lambda key, data: (MAC(key, data),),
    Op.KDF1: lambda key, data: (KDF1(key, data),),
    Op.KDF2: KDF2,
    Op.KDF3: KDF3,
    Op.SPLIT: _split,
    Op.DH: lambda private, public: (x25519(private, public),),
    Op.AEAD: _aead,
    Op.AEAD_DECRYPT: _aead_decrypt,
    Op.XAEAD: lambda key, nonce, plaintext, associated_data: (XAEAD(key, nonce, plaintext, associated_data),),
    Op.XAEAD_DECRYPT: lambda key, nonce, ciphertext, associated_data: (
        XAEAD_DECRYPT(key, nonce, ciphertext, associated_data),),
}


def verify(document: dict) -> tuple[list[str], int]:
    """Recompute every step of a walkthrough (as :func:`~wgpy.study.walkthrough.to_json` gives it) from its
    printed values alone. Returns (failures, steps recomputed: the steps that are not given)."""
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
            operation = Op.__members__.get(item.get("operation", ""))
            if operation is None:
                problem = f"no operation to recompute ({item.get('operation')!r})"
            else:
                problem = check_step(operation, item["inputs"], item["outputs"], values, chain)
            if problem:
                failures.append(f"{part['title']}: {item['formula']}: {problem}")
            else:
                count += not item.get("given")
            latest.update(values)
    return failures, count


def check_step(operation: Op, inputs: list[str], outputs: list[str], values: dict[str, bytes],
               chain: dict[str, bytes]) -> str:
    """Recompute one step of a party whose earlier outputs are ``chain``, and add its outputs to the chain.
    Returns what is wrong, or ""."""
    arguments = []
    for name in inputs:
        if name in values and name not in outputs:
            if name in chain and chain[name] != values[name]:
                return f"{name} is not the {name} of the previous step"
            arguments.append(values[name])
        elif name in LITERALS:
            arguments.append(LITERALS[name])
        elif name in chain:
            arguments.append(chain[name])
        else:
            return f"cannot recompute: no {name} before this step"
    recompute = RECOMPUTE[operation]
    try:
        results = tuple(values[name] for name in outputs) if recompute is None else recompute(*arguments)
    except (KeyError, ValueError, TypeError, Rejected) as err:   # TypeError: not the operation's inputs
        return f"cannot recompute ({err})"
    problem = ""
    for name, value in zip(outputs, results):
        if name in values and values[name] != value:
            problem = problem or f"{name} does not recompute"
        chain[name] = values.get(name, value)
    return problem


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
    handshake = wire[0] in (MessageType.INITIATION, MessageType.RESPONSE)
    if handshake and latest.get("msg_α") != wire[:-MAC1_OFFSET_FROM_END]:
        failures.append(f"{item['title']}: MAC1 was not computed over this message")
    return failures
