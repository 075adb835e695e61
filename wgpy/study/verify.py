"""The check of ``wgpy explain``'s walkthrough: every printed step recomputed from the printed values alone.

Each party's C and H are followed from step to step: a step's inputs are the previous step's outputs, so
one wrong value anywhere breaks the chain; each message's bytes must be the values computed for them.
"""

from __future__ import annotations

import re

from ..core.crypto import AEAD, HASH, KDF1, KDF2, KDF3, MAC, XAEAD, aead_nonce, x25519

BASEPOINT = bytes([9]) + bytes(31)  # X25519's base point u = 9 (RFC 7748)


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
