"""wgpy.core.constants (and the TAI64N constants) against wireguard-go and the kernel
(vectors/wireguard_constants.json), and the handshake's initial values C0 and H0 from HASH."""

import importlib

import pytest

from wgpy.core import constants
from wgpy.core.crypto import HASH

from .vectors import cases, h, load


def _resolve(path: str):
    """``"constants.MessageType.INITIATION"`` -> the object under ``wgpy.core``."""
    module, *attributes = path.split(".")
    value = importlib.import_module(f"wgpy.core.{module}")
    for attribute in attributes:
        value = getattr(value, attribute)
    return value


def _expected(case):
    if isinstance(case["value"], str):
        return h(case["value"])
    return {"s": float(case["value"]), "ms": case["value"] / 1000}.get(case.get("unit"), case["value"])


WITH_CONSTANT = [p for p in cases("wireguard_constants") if "constant" in p.values[0]]


@pytest.mark.parametrize("case", WITH_CONSTANT)
def test_wgpy_constant_matches(case):
    value = _resolve(case["constant"])
    assert value == _expected(case)
    if case["kind"] == "string":
        assert value.decode("ascii") == case["ascii"]


def _value(case_id: str):
    (case,) = [c for c in load("wireguard_constants")["cases"] if c["id"] == case_id]
    return case["value"]


def test_initial_chaining_key_and_hash():
    """C0 = HASH(CONSTRUCTION), H0 = HASH(C0 || IDENTIFIER) (wireguard-go InitialChainKey, InitialHash)."""
    c0 = HASH(constants.CONSTRUCTION)
    assert c0 == h(_value("derived-C0"))
    assert HASH(c0 + constants.IDENTIFIER) == h(_value("derived-H0"))


def test_message_types_are_exactly_four():
    listed = {c["name"].upper(): c["value"] for c in load("wireguard_constants")["cases"] if c["kind"] == "message_type"}
    assert {t.name: t.value for t in constants.MessageType} == listed


def test_message_sizes_add_up():
    """Sections 5.4.2-5.4.7: the sizes follow from the field sizes."""
    key, tag, ts, mac = constants.KEY_LEN, constants.TAG_LEN, constants.TIMESTAMP_LEN, constants.MAC_LEN
    assert constants.INITIATION_SIZE == 4 + 4 + key + (key + tag) + (ts + tag) + 2 * mac
    assert constants.RESPONSE_SIZE == 4 + 4 + 4 + key + tag + 2 * mac
    assert constants.COOKIE_REPLY_SIZE == 4 + 4 + constants.COOKIE_NONCE_LEN + (mac + tag)
    assert constants.TRANSPORT_HEADER_SIZE == _value("transport-offset-content")
    assert (_value("transport-offset-receiver"), _value("transport-offset-counter")) == (4, 8)


def test_reject_after_messages_is_wireguard_gos():
    """wgpy keeps wireguard-go's limit; the 64-bit kernel's is 63 messages higher (window 8128, not 8192)."""
    go = _value("REJECT_AFTER_MESSAGES-wireguard-go")
    linux = _value("REJECT_AFTER_MESSAGES-linux-64bit")
    assert constants.REJECT_AFTER_MESSAGES == go == 2**64 - 2**13 - 1
    assert linux == 2**64 - 1 - constants.REPLAY_WINDOW_SIZE - 1
    assert linux - go == 63
    assert constants.REKEY_AFTER_MESSAGES < go


def test_timers_are_consistent():
    assert _value("MAX_TIMER_HANDSHAKES") == constants.REKEY_ATTEMPT_TIME / constants.REKEY_TIMEOUT
    assert constants.REKEY_AFTER_TIME < constants.REJECT_AFTER_TIME
    assert constants.KEEPALIVE_TIMEOUT + constants.REKEY_TIMEOUT < constants.REKEY_AFTER_TIME
