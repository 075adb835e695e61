"""Every byte of a WireGuard message labelled: offset, size, the whitepaper's name, and what it means.

The layouts are the tables of ``core/messages.py``; this module only words them, with the numbers a
field holds (an index, the counter, whether MAC2 is zero). ``wgpy decode`` and ``wgpy explain`` show the
same labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.constants import PADDING_MULTIPLE, TAG_LEN, TRANSPORT_MIN_SIZE, MessageType
from ..core.messages import COUNTER, INDEX, LAYOUTS, SIZES, ZERO_MAC, Message, WireField, parse

# What each message is called, and the whitepaper section that defines it.
KIND = {
    MessageType.INITIATION: ("handshake initiation", "5.4.2"),
    MessageType.RESPONSE: ("handshake response", "5.4.3"),
    MessageType.COOKIE_REPLY: ("cookie reply", "5.4.7"),
    MessageType.TRANSPORT: ("transport data", "5.4.6"),
}


@dataclass(frozen=True)
class Field:
    """One field of a message: where it is, what the whitepaper calls it, its bytes, and what they mean."""

    offset: int
    size: int
    name: str
    value: bytes
    meaning: str = ""


def fields(data: bytes) -> list[Field]:
    """Label every byte of a WireGuard message (section 5.4), from its table in messages.py. Raises Rejected
    (with the named reason) if it is not one."""
    message = parse(data)
    out = []
    for f in LAYOUTS[message.KIND]:
        value = data[f.offset :] if f.size is None else data[f.offset : f.offset + f.size]
        out.append(Field(f.offset, len(value), f.name, value, _meaning(f, value, message)))
    return out


def _meaning(f: WireField, value: bytes, message: Message) -> str:
    """What a field's bytes mean: the whitepaper's words from the table, with the numbers they hold."""
    if f.name == "message_type":
        return f"{value[0]} = {KIND[message.KIND][0]}"
    if f.code == INDEX:
        return f"{f.whitepaper} = {int.from_bytes(value, 'little'):#010x} (little-endian)"
    if f.code == COUNTER:
        return f"{f.whitepaper} = {int.from_bytes(value, 'little')} (little-endian): the AEAD nonce"
    if f.name == "mac2" and value == ZERO_MAC:
        return "zero: the sender holds no fresh cookie"
    if f.name in ("mac1", "mac2"):
        return f"MAC({f.whitepaper}, bytes 0-{f.offset - 1})"
    if f.size is None:
        if len(value) == TAG_LEN:
            return "AEAD(T_send, N, ε, ε): the tag alone, a keepalive"
        return f"{f.whitepaper}: {len(value) - TAG_LEN} bytes of padded packet and a 16-byte tag"
    return f.whitepaper


def looks_like_wireguard(payload: bytes) -> bool:
    """Wireshark's heuristic: a known type, three zero bytes, and the size that type must have."""
    if len(payload) < 4 or payload[1:4] != b"\0\0\0" or payload[0] not in SIZES:
        return False
    if payload[0] == MessageType.TRANSPORT:
        return len(payload) >= TRANSPORT_MIN_SIZE and len(payload) % PADDING_MULTIPLE == 0
    return len(payload) == SIZES[payload[0]]
