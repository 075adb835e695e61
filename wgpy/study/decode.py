"""``wgpy decode``: every field of every WireGuard message, from hex or from a capture file.

Input is one or more messages as hex, or a pcap or pcapng file (read here with the standard library:
Ethernet, Linux cooked SLL and SLL2, raw IP and BSD loopback link types; IPv4 and IPv6; UDP). A datagram is
taken for WireGuard as Wireshark's heuristic does: a known type byte, three zero bytes, the right size.

With keys (a Wireshark WireGuard key log, see ``core/keylog.py``, from ``--keylog FILE`` or from a pcapng
Decryption Secrets Block) the decoder also checks MAC1 against every static public key it knows (section
5.4.4), decrypts each handshake as an observer holding one side's keys (sections 5.4.2 and 5.4.3: any one
side's private keys give every Diffie-Hellman result), derives the session's keys (5.4.5), decrypts the
transport data (5.4.6) and summarizes the IP packet inside. Cookie replies need no secret: their key is
derived from the responder's public key (5.4.7).
"""

from __future__ import annotations

import ipaddress
import json
import os
import struct
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ..core import tai64n
from ..core.constants import PADDING_MULTIPLE, TAG_LEN, TRANSPORT_MIN_SIZE, MessageType
from ..core.cookie import cookie_key, mac1_key
from ..core.crypto import AEAD_DECRYPT, MAC, XAEAD_DECRYPT, ZERO_KEY, PrivateKey, constant_time_equal
from ..core.encoding import key_to_base64
from ..core.errors import Rejected
from ..core.keylog import DSB_SECRETS_TYPE, Keylog, parse_keylog
from ..core.messages import (
    COUNTER,
    INDEX,
    LAYOUTS,
    SIZES,
    ZERO_MAC,
    CookieReply,
    Initiation,
    Message,
    Response,
    Transport,
    WireField,
    macs_of,
    parse,
)
from ..core.noise import NOTHING, TIMESTAMP, Transcript, split
from ..core.trace import NULL_TRACE

KIND = {
    MessageType.INITIATION: ("handshake initiation", "5.4.2"),
    MessageType.RESPONSE: ("handshake response", "5.4.3"),
    MessageType.COOKIE_REPLY: ("cookie reply", "5.4.7"),
    MessageType.TRANSPORT: ("transport data", "5.4.6"),
}


# ------------------------------------------------------------------------------------- field layouts


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


# ------------------------------------------------------------------------------------- decoding


@dataclass
class Decoded:
    """One datagram, labelled and (given keys) checked and decrypted."""

    data: bytes
    kind: str = ""
    section: str = ""
    fields: list[Field] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""
    decrypted: bool = False
    inner: str = ""
    keepalive: bool = False


@dataclass
class _Handshake:
    """An observed initiation, and what decrypting it taught."""

    initiation: Initiation
    receiver_public: bytes | None = None  # S_pub_r, found by MAC1
    initiator_public: bytes | None = None  # S_pub_i, once decrypted
    chaining_key: bytes | None = field(default=None, repr=False)
    hash: bytes | None = None


class Decoder:
    """Decodes datagrams in order, remembering handshakes and sessions as a peer would."""

    def __init__(self, keylog: Keylog | None = None) -> None:
        self.keylog = Keylog()
        self._static_private: dict[bytes, PrivateKey] = {}  # public -> private
        self._static_public: set[bytes] = set()
        self._ephemeral: dict[bytes, PrivateKey] = {}  # public -> private
        self._preshared: dict[bytes, list[bytes]] = {}  # ephemeral public -> preshared keys
        self._handshakes: dict[int, _Handshake] = {}  # initiator's sender index -> handshake
        self._sessions: dict[int, tuple[bytes, str]] = {}  # receiver index -> (key, direction)
        self._cookies: dict[bytes, bytes] = {}  # responder's public key -> last cookie it gave
        if keylog is not None:
            self.add_keys(keylog)

    def add_keys(self, keylog: Keylog) -> None:
        self.keylog.extend(keylog)
        for raw in keylog.static_private:
            key = PrivateKey(raw)
            self._static_private[key.public] = key
            self._static_public.add(key.public)
        self._static_public.update(keylog.static_public)
        for raw in keylog.ephemeral_private:
            key = PrivateKey(raw)
            self._ephemeral[key.public] = key
            self._preshared.setdefault(key.public, []).extend(keylog.preshared.get(raw, []))

    @property
    def has_keys(self) -> bool:
        return bool(self._static_public)

    def decode(self, data: bytes) -> Decoded:
        decoded = Decoded(bytes(data))
        try:
            decoded.fields = fields(data)
        except Rejected as refused:
            decoded.error = f"not a WireGuard message: {refused}"
            return decoded
        decoded.kind, decoded.section = KIND[MessageType(data[0])]
        message = parse(data)
        try:
            if isinstance(message, Initiation):
                self._initiation(message, data, decoded)
            elif isinstance(message, Response):
                self._response(message, data, decoded)
            elif isinstance(message, CookieReply):
                self._cookie_reply(message, decoded)
            else:
                self._transport(message, decoded)
        except Rejected as refused:
            decoded.notes.append(f"does not decrypt: {refused.reason.value}")
        return decoded

    # -------------------------------------------------------------------- the four messages

    def _check_macs(self, data: bytes, candidates: list[bytes], decoded: Decoded) -> bytes | None:
        """Which known public key MAC1 was made for (section 5.4.4); and MAC2 against a cookie seen."""
        alpha, mac1, mac2 = macs_of(data)
        for public in candidates:
            if constant_time_equal(MAC(mac1_key(public), alpha), mac1):
                decoded.notes.append(f"MAC1 valid: addressed to {key_to_base64(public)}")
                cookie = self._cookies.get(public)
                if mac2 != ZERO_MAC and cookie is not None:
                    valid = constant_time_equal(MAC(cookie, alpha + mac1), mac2)
                    decoded.notes.append("MAC2 valid: made with the cookie seen" if valid
                                         else "MAC2 does not match the cookie seen")
                return public
        if self.has_keys:
            decoded.notes.append("MAC1 matches no public key in the key log")
        return None

    def _initiation(self, message: Initiation, data: bytes, decoded: Decoded) -> None:
        handshake = _Handshake(message)
        self._handshakes[message.sender_index] = handshake
        receiver = self._check_macs(data, sorted(self._static_public), decoded)
        handshake.receiver_public = receiver
        if receiver is None:
            return
        # Section 5.4.2 from the responder's chair, with whichever private key the key log holds.
        e_pub = message.unencrypted_ephemeral
        responder = self._static_private.get(receiver)
        ephemeral = self._ephemeral.get(e_pub)
        if responder is None and ephemeral is None:
            decoded.notes.append("cannot decrypt: neither S_priv_r nor E_priv_i is in the key log")
            return
        t = Transcript.start(receiver)
        t.mix_key(e_pub, "E_pub_i")
        t.mix_hash(e_pub, "E_pub_i")
        es = (responder, e_pub) if responder is not None else (ephemeral, receiver)
        key = t.mix_dh_for_key(*es, "DH(E_priv_i, S_pub_r)")
        initiator_public = t.decrypt_and_hash(key, message.encrypted_static, "S_pub_i", "msg.encrypted_static")
        handshake.initiator_public = initiator_public
        decoded.notes.append(f"encrypted_static decrypts to S_pub_i = {key_to_base64(initiator_public)}")
        initiator = self._static_private.get(initiator_public)
        if responder is None and initiator is None:
            decoded.notes.append("cannot decrypt the timestamp: neither S_priv_r nor S_priv_i is in the key log")
            return
        ss = (responder, initiator_public) if responder is not None else (initiator, receiver)
        key = t.mix_dh_for_key(*ss, "DH(S_priv_i, S_pub_r)")
        timestamp = t.decrypt_and_hash(key, message.encrypted_timestamp, *TIMESTAMP)
        decoded.notes.append(f"encrypted_timestamp decrypts to {timestamp.hex()} = {_tai64n_text(timestamp)}")
        handshake.chaining_key, handshake.hash = t.chaining_key, t.hash
        decoded.decrypted = True

    def _response(self, message: Response, data: bytes, decoded: Decoded) -> None:
        handshake = self._handshakes.get(message.receiver_index)
        candidates = sorted(self._static_public)
        if handshake is not None and handshake.initiator_public is not None:
            candidates = [handshake.initiator_public] + candidates
        if self._check_macs(data, candidates, decoded) is None:
            return
        if handshake is None or handshake.chaining_key is None:
            decoded.notes.append("cannot decrypt: its initiation was not seen or not decrypted")
            return
        # Section 5.4.3, again with whichever private keys the key log holds.
        e_pub_i, e_pub_r = handshake.initiation.unencrypted_ephemeral, message.unencrypted_ephemeral
        s_pub_i = handshake.initiator_public
        responder_ephemeral = self._ephemeral.get(e_pub_r)
        initiator_ephemeral = self._ephemeral.get(e_pub_i)
        initiator = self._static_private.get(s_pub_i)
        if responder_ephemeral is not None:
            ee, se = (responder_ephemeral, e_pub_i), (responder_ephemeral, s_pub_i)
        elif initiator_ephemeral is not None and initiator is not None:
            ee, se = (initiator_ephemeral, e_pub_r), (initiator, e_pub_r)
        else:
            decoded.notes.append("cannot decrypt: the key log holds neither E_priv_r nor E_priv_i with S_priv_i")
            return
        t = Transcript(handshake.chaining_key, handshake.hash, NULL_TRACE, "5.4.3")
        t.mix_key(e_pub_r, "E_pub_r")
        t.mix_hash(e_pub_r, "E_pub_r")
        t.mix_dh(*ee, "DH(E_priv_r, E_pub_i)")
        t.mix_dh(*se, "DH(E_priv_r, S_pub_i)")
        # The preshared key: the one logged with either ephemeral, else none (32 zero bytes).
        candidates_q = self._preshared.get(e_pub_r, []) + self._preshared.get(e_pub_i, []) + [ZERO_KEY]
        for psk in dict.fromkeys(candidates_q):
            attempt = Transcript(t.chaining_key, t.hash, NULL_TRACE, "5.4.3")
            key = attempt.mix_psk(psk)
            try:
                attempt.decrypt_and_hash(key, message.encrypted_nothing, *NOTHING)
            except Rejected:
                continue
            send_i, send_r = split(attempt.chaining_key)
            self._sessions[message.sender_index] = (send_i, "initiator to responder")
            self._sessions[message.receiver_index] = (send_r, "responder to initiator")
            which = "no preshared key" if constant_time_equal(psk, ZERO_KEY) else "the preshared key from the key log"
            decoded.notes.append(f"encrypted_nothing authenticates with {which}: handshake complete")
            decoded.notes.append(
                f"session keys derived (5.4.5): to index {message.sender_index:#010x} with T_send_i, "
                f"to index {message.receiver_index:#010x} with T_send_r"
            )
            decoded.decrypted = True
            return
        decoded.notes.append("encrypted_nothing does not authenticate with any preshared key known")

    def _cookie_reply(self, message: CookieReply, decoded: Decoded) -> None:
        handshake = self._handshakes.get(message.receiver_index)
        if handshake is None or handshake.receiver_public is None:
            decoded.notes.append("cannot decrypt: the initiation it answers (and so the responder's key) is unknown")
            return
        # The cookie's AEAD covers the MAC1 of the message it answers (section 5.4.7).
        mac1 = handshake.initiation.mac1
        cookie = XAEAD_DECRYPT(cookie_key(handshake.receiver_public), message.nonce, message.encrypted_cookie, mac1)
        self._cookies[handshake.receiver_public] = cookie
        decoded.notes.append(
            f"encrypted_cookie decrypts to τ = {cookie.hex()} (key HASH(LABEL_COOKIE || S_pub_r), no secret needed)"
        )
        decoded.decrypted = True

    def _transport(self, message: Transport, decoded: Decoded) -> None:
        session = self._sessions.get(message.receiver_index)
        if session is None:
            if self.has_keys:
                decoded.notes.append("no session key known for this receiver index")
            return
        key, direction = session
        plaintext = AEAD_DECRYPT(key, message.counter, message.encrypted_packet, b"")
        decoded.decrypted = True
        if not plaintext:
            decoded.keepalive = True
            decoded.inner = "keepalive (empty)"
        else:
            decoded.inner = summarize_ip(plaintext)
        decoded.notes.append(f"decrypts ({direction}): {decoded.inner}")


# ------------------------------------------------------------------------------------- inner packets

PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
ICMP_TYPES = {0: "echo reply", 3: "destination unreachable", 8: "echo request", 11: "time exceeded"}
ICMPV6_TYPES = {1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 128: "echo request",
                129: "echo reply", 133: "router solicitation", 134: "router advertisement",
                135: "neighbour solicitation", 136: "neighbour advertisement"}
IPV6_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options: skipped to the payload


def summarize_ip(plaintext: bytes) -> str:
    """One line about a decrypted packet: protocol, addresses, ports, length (and the padding after it)."""
    version = plaintext[0] >> 4
    if version == 4 and len(plaintext) >= 20:
        header = (plaintext[0] & 15) * 4
        length = int.from_bytes(plaintext[2:4], "big")
        protocol = plaintext[9]
        source, destination = ipaddress.IPv4Address(plaintext[12:16]), ipaddress.IPv4Address(plaintext[16:20])
        payload = plaintext[header:length]
        label = "IPv4"
    elif version == 6 and len(plaintext) >= 40:
        length = 40 + int.from_bytes(plaintext[4:6], "big")
        protocol = plaintext[6]
        source, destination = ipaddress.IPv6Address(plaintext[8:24]), ipaddress.IPv6Address(plaintext[24:40])
        offset = 40
        while protocol in IPV6_EXTENSIONS and offset + 8 <= len(plaintext):
            protocol, offset = plaintext[offset], offset + 8 + plaintext[offset + 1] * 8
        payload = plaintext[offset:length]
        label = "IPv6"
    else:
        return f"not an IP packet ({len(plaintext)} bytes)"
    name = PROTOCOLS.get(protocol, f"protocol {protocol}")
    detail = ""
    if protocol in (6, 17) and len(payload) >= 4:
        source_port, destination_port = struct.unpack_from(">HH", payload)
        text = f"{label} {name} {_host(source)}:{source_port} -> {_host(destination)}:{destination_port}"
    else:
        text = f"{label} {name} {source} -> {destination}"
        types = ICMP_TYPES if protocol == 1 else ICMPV6_TYPES if protocol == 58 else None
        if types is not None and len(payload) >= 8:
            detail = f" {types.get(payload[0], f'type {payload[0]}')}"
            if payload[0] in (0, 8, 128, 129):
                identifier, sequence = struct.unpack_from(">HH", payload, 4)
                detail += f" id={identifier} seq={sequence}"
    padding = len(plaintext) - length
    return f"{text}{detail}, {length} bytes" + (f" (+{padding} bytes of padding)" if padding > 0 else "")


def _host(address: ipaddress._BaseAddress) -> str:
    return f"[{address}]" if address.version == 6 else str(address)


# ------------------------------------------------------------------------------------- capture files

# Link types (tcpdump.org/linktypes.html) and how many bytes of link header precede the IP packet.
LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL = 0, 1, 101, 113
LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2 = 228, 229, 276
RAW_LINKTYPES = {LINKTYPE_RAW, 12, 14, LINKTYPE_IPV4, LINKTYPE_IPV6}  # 12 and 14 are raw IP on some systems

PCAP_MAGIC = {0xA1B2C3D4: 1e-6, 0xA1B23C4D: 1e-9}
PCAPNG_SECTION_HEADER = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
BLOCK_INTERFACE, BLOCK_PACKET, BLOCK_SIMPLE_PACKET, BLOCK_ENHANCED_PACKET = 1, 2, 3, 6
BLOCK_DECRYPTION_SECRETS = 0x0000000A
OPTION_IF_TSRESOL = 9


@dataclass(frozen=True)
class Frame:
    """A captured link-layer frame."""

    number: int
    time: float
    link_type: int
    data: bytes


@dataclass(frozen=True)
class Datagram:
    """A UDP datagram found in a frame."""

    frame: Frame
    source: tuple[str, int]
    destination: tuple[str, int]
    payload: bytes


class CaptureError(ValueError):
    """The file is not a capture this reader understands."""


def is_capture(data: bytes) -> bool:
    if len(data) < 4:
        return False
    return (struct.unpack("<I", data[:4])[0] in PCAP_MAGIC or struct.unpack(">I", data[:4])[0] in PCAP_MAGIC
            or struct.unpack("<I", data[:4])[0] == PCAPNG_SECTION_HEADER)


def read_capture(data: bytes) -> tuple[list[Frame], Keylog]:
    """The frames of a pcap or pcapng file, and the WireGuard key log of any Decryption Secrets Block."""
    if len(data) >= 4 and struct.unpack("<I", data[:4])[0] == PCAPNG_SECTION_HEADER:
        return _read_pcapng(data)
    return _read_pcap(data), Keylog()


def _read_pcap(data: bytes) -> list[Frame]:
    if len(data) < 24:
        raise CaptureError("too short for a pcap header")
    for order in "<>":
        magic = struct.unpack(order + "I", data[:4])[0]
        if magic in PCAP_MAGIC:
            resolution = PCAP_MAGIC[magic]
            break
    else:
        raise CaptureError("neither pcap nor pcapng")
    link_type = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF  # the high bits hold FCS flags
    frames, offset = [], 24
    record = struct.Struct(order + "IIII")
    while offset + record.size <= len(data):
        seconds, fraction, captured, _ = record.unpack_from(data, offset)
        offset += record.size
        if offset + captured > len(data):
            break  # a truncated last record: keep what came before
        frames.append(Frame(len(frames) + 1, seconds + fraction * resolution, link_type, data[offset : offset + captured]))
        offset += captured
    return frames


def _read_pcapng(data: bytes) -> tuple[list[Frame], Keylog]:
    frames: list[Frame] = []
    keylog = Keylog()
    interfaces: list[tuple[int, float, int]] = []  # (link type, seconds per tick, snap length)
    order, offset = "<", 0
    while offset + 12 <= len(data):
        block_type = struct.unpack_from(order + "I", data, offset)[0]
        if block_type == PCAPNG_SECTION_HEADER:
            magic = data[offset + 8 : offset + 12]
            order = "<" if struct.unpack("<I", magic)[0] == PCAPNG_BYTE_ORDER_MAGIC else ">"
            if struct.unpack(order + "I", magic)[0] != PCAPNG_BYTE_ORDER_MAGIC:
                raise CaptureError("pcapng section header with a bad byte-order magic")
            interfaces = []  # interface numbers restart in each section
        length = struct.unpack_from(order + "I", data, offset + 4)[0]
        if length < 12 or length % 4 or offset + length > len(data):
            raise CaptureError(f"pcapng block at byte {offset} has a bad length {length}")
        body = data[offset + 8 : offset + length - 4]
        if block_type == BLOCK_INTERFACE:
            link_type, _, snap_length = struct.unpack_from(order + "HHI", body)
            interfaces.append((link_type, _tsresol(_options(body[8:], order)), snap_length))
        elif block_type == BLOCK_ENHANCED_PACKET:
            interface, high, low, captured, _ = struct.unpack_from(order + "IIIII", body)
            frames.append(_pcapng_frame(len(frames) + 1, interfaces, interface, high, low, body[20 : 20 + captured]))
        elif block_type == BLOCK_PACKET:
            interface, _, high, low, captured, _ = struct.unpack_from(order + "HHIIII", body)
            frames.append(_pcapng_frame(len(frames) + 1, interfaces, interface, high, low, body[20 : 20 + captured]))
        elif block_type == BLOCK_SIMPLE_PACKET:
            (original,) = struct.unpack_from(order + "I", body)
            snap = interfaces[0][2] if interfaces and interfaces[0][2] else original
            frames.append(_pcapng_frame(len(frames) + 1, interfaces, 0, 0, 0, body[4 : 4 + min(original, snap)]))
        elif block_type == BLOCK_DECRYPTION_SECRETS:
            secrets_type, secrets_length = struct.unpack_from(order + "II", body)
            if secrets_type == DSB_SECRETS_TYPE:
                keylog.extend(parse_keylog(body[8 : 8 + secrets_length].decode("ascii", "replace")))
        offset += length
    return frames, keylog


def _pcapng_frame(number: int, interfaces: list, interface: int, high: int, low: int, data: bytes) -> Frame:
    if interface >= len(interfaces):
        raise CaptureError(f"packet names interface {interface}, which was not described")
    link_type, tick, _ = interfaces[interface]
    return Frame(number, ((high << 32) | low) * tick, link_type, data)


def _options(data: bytes, order: str) -> dict[int, bytes]:
    options, offset = {}, 0
    while offset + 4 <= len(data):
        code, length = struct.unpack_from(order + "HH", data, offset)
        if code == 0:
            break
        options[code] = data[offset + 4 : offset + 4 + length]
        offset += 4 + length + (-length % 4)
    return options


def _tsresol(options: dict[int, bytes]) -> float:
    value = options.get(OPTION_IF_TSRESOL)
    if not value:
        return 1e-6
    exponent = value[0] & 0x7F
    return 2.0**-exponent if value[0] & 0x80 else 10.0**-exponent


def datagrams(frames: list[Frame]) -> Iterator[Datagram]:
    """The UDP datagrams in the frames (first fragments only; the rest cannot hold a UDP header)."""
    for frame in frames:
        packet = _network_layer(frame)
        if packet is not None:
            found = _udp(packet)
            if found is not None:
                yield Datagram(frame, *found)


def _network_layer(frame: Frame) -> bytes | None:
    data, link = frame.data, frame.link_type
    if link == LINKTYPE_ETHERNET:
        offset, ethertype = 14, int.from_bytes(data[12:14], "big") if len(data) >= 14 else 0
        while ethertype in (0x8100, 0x88A8) and len(data) >= offset + 4:  # VLAN tags
            ethertype, offset = int.from_bytes(data[offset + 2 : offset + 4], "big"), offset + 4
        return data[offset:] if ethertype in (0x0800, 0x86DD) else None
    if link == LINKTYPE_LINUX_SLL:
        return data[16:] if int.from_bytes(data[14:16], "big") in (0x0800, 0x86DD) else None
    if link == LINKTYPE_LINUX_SLL2:
        return data[20:] if int.from_bytes(data[0:2], "big") in (0x0800, 0x86DD) else None
    if link == LINKTYPE_NULL:
        return data[4:] if len(data) > 4 else None
    if link in RAW_LINKTYPES:
        return data
    return None


def _udp(packet: bytes) -> tuple[tuple[str, int], tuple[str, int], bytes] | None:
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4 and len(packet) >= 20:
        header = (packet[0] & 15) * 4
        fragment = int.from_bytes(packet[6:8], "big") & 0x1FFF
        if packet[9] != 17 or fragment:
            return None
        end = min(len(packet), int.from_bytes(packet[2:4], "big"))
        source, destination = str(ipaddress.IPv4Address(packet[12:16])), str(ipaddress.IPv4Address(packet[16:20]))
        udp = packet[header:end]
    elif version == 6 and len(packet) >= 40:
        next_header, offset = packet[6], 40
        while next_header in IPV6_EXTENSIONS | {44} and offset + 8 <= len(packet):
            if next_header == 44 and int.from_bytes(packet[offset + 2 : offset + 4], "big") & 0xFFF8:
                return None  # a later fragment
            next_header, offset = packet[offset], offset + (8 if next_header == 44 else 8 + packet[offset + 1] * 8)
        if next_header != 17:
            return None
        source, destination = str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40]))
        udp = packet[offset : 40 + int.from_bytes(packet[4:6], "big")]
    else:
        return None
    if len(udp) < 8:
        return None
    source_port, destination_port, length = struct.unpack_from(">HHH", udp)
    payload = udp[8:length] if 8 <= length <= len(udp) else udp[8:]
    return (source, source_port), (destination, destination_port), payload


def looks_like_wireguard(payload: bytes) -> bool:
    """Wireshark's heuristic: a known type, three zero bytes, and the size that type must have."""
    if len(payload) < 4 or payload[1:4] != b"\0\0\0" or payload[0] not in SIZES:
        return False
    if payload[0] == MessageType.TRANSPORT:
        return len(payload) >= TRANSPORT_MIN_SIZE and len(payload) % PADDING_MULTIPLE == 0
    return len(payload) == SIZES[payload[0]]


# ------------------------------------------------------------------------------------- output


@dataclass
class Report:
    """Everything decoded, in order; ``entries`` pairs each decoded message with where it was found."""

    entries: list[tuple[Datagram | None, Decoded]] = field(default_factory=list)
    frames: int = 0

    def counts(self) -> dict[str, int]:
        decoded = [d for _, d in self.entries if not d.error]
        return {
            "messages": len(decoded),
            "initiations": sum(d.kind == "handshake initiation" for d in decoded),
            "responses": sum(d.kind == "handshake response" for d in decoded),
            "cookie_replies": sum(d.kind == "cookie reply" for d in decoded),
            "transport": sum(d.kind == "transport data" for d in decoded),
            "transport_decrypted": sum(d.kind == "transport data" and d.decrypted for d in decoded),
            "keepalives": sum(d.keepalive for d in decoded),
            "handshakes_decrypted": sum(d.kind == "handshake response" and d.decrypted for d in decoded),
        }


def decode_capture(data: bytes, keylog: Keylog | None = None) -> Report:
    frames, embedded = read_capture(data)
    decoder = Decoder(keylog)
    decoder.add_keys(embedded)
    report = Report(frames=len(frames))
    for datagram in datagrams(frames):
        if looks_like_wireguard(datagram.payload):
            report.entries.append((datagram, decoder.decode(datagram.payload)))
    return report


def decode_hex(messages: list[str], keylog: Keylog | None = None) -> Report:
    decoder = Decoder(keylog)
    report = Report()
    for text in messages:
        digits = "".join(text.split()).replace(":", "").removeprefix("0x")
        try:
            data = bytes.fromhex(digits)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is neither a capture file nor a message in hex") from None
        report.entries.append((None, decoder.decode(data)))
    return report


def field_lines(items: list[Field], full: bool = True, dim=lambda text: text) -> list[str]:
    """A message's fields as aligned lines: offset, size, name, hex, and what it means (beside a short
    value, under a long one). Without ``full``, fields past 48 bytes show their first 16 bytes."""
    width = max(len(f.name) for f in items)
    lines = []
    for f in items:
        text = f.value.hex()
        if not full and f.size > 48:
            text = f"{f.value[:16].hex()}... ({f.size} bytes)"
        chunks = [text[i : i + 64] for i in range(0, len(text), 64)] or [""]
        head = f"{f.offset:5d} {f.size:4d}  {f.name:<{width}}  "
        if len(chunks) == 1 and len(chunks[0]) <= 32:
            lines.append(head + (f"{chunks[0]:<32}  {dim(f.meaning)}" if f.meaning else chunks[0]))
            continue
        lines.append(head + chunks[0])
        lines += [" " * len(head) + chunk for chunk in chunks[1:]]
        if f.meaning:
            lines.append(" " * len(head) + dim(f.meaning))
    return lines


def render_text(report: Report, full: bool = False) -> str:
    lines: list[str] = []
    start = next((datagram.frame.time for datagram, _ in report.entries if datagram is not None), 0.0)
    for datagram, decoded in report.entries:
        if datagram is not None:
            (s, sp), (d, dp) = datagram.source, datagram.destination
            elapsed = datagram.frame.time - start
            where = f"frame {datagram.frame.number}  +{elapsed:.6f} s  {_endpoint(s, sp)} -> {_endpoint(d, dp)}  "
        else:
            where = ""
        if decoded.error:
            lines.append(f"{where}{len(decoded.data)} bytes: {decoded.error}")
            continue
        lines.append(f"{where}{decoded.kind}, {len(decoded.data)} bytes (whitepaper {decoded.section})")
        lines += ["  " + line for line in field_lines(decoded.fields, full)]
        lines.extend(f"  => {note}" for note in decoded.notes)
    counts = report.counts()
    summary = (
        f"{_count(counts['messages'], 'WireGuard message')}: {_count(counts['initiations'], 'initiation')}, "
        f"{_count(counts['responses'], 'response')}, {_count(counts['cookie_replies'], 'cookie reply', 'cookie replies')}, "
        f"{counts['transport']} transport ({counts['transport_decrypted']} decrypted, "
        f"{_count(counts['keepalives'], 'keepalive')})"
    )
    if report.frames:
        summary = f"{_count(report.frames, 'frame')}, " + summary
    lines.append(summary)
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    entries = []
    for datagram, decoded in report.entries:
        entry: dict = {"length": len(decoded.data)}
        if datagram is not None:
            entry.update(frame=datagram.frame.number, time=datagram.frame.time,
                         source=f"{_endpoint(*datagram.source)}", destination=f"{_endpoint(*datagram.destination)}")
        if decoded.error:
            entry["error"] = decoded.error
        else:
            entry.update(kind=decoded.kind, section=decoded.section, decrypted=decoded.decrypted, inner=decoded.inner,
                         fields=[{"offset": f.offset, "size": f.size, "name": f.name, "hex": f.value.hex(),
                                  "meaning": f.meaning} for f in decoded.fields],
                         notes=decoded.notes)
        entries.append(entry)
    return json.dumps({"frames": report.frames, "counts": report.counts(), "messages": entries}, indent=2,
                      ensure_ascii=False) + "\n"


def _count(n: int, word: str, plural: str = "") -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tai64n_text(timestamp: bytes) -> str:
    seconds, nanoseconds = tai64n.decode(timestamp)
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        moment = f"{seconds} s after 1970"
    return f"{moment}.{nanoseconds:09d} UTC"


# ------------------------------------------------------------------------------------- command


def main(inputs: list[str], keylog_path: str | None = None, output_format: str = "text", full: bool = False) -> int:
    """``wgpy decode``: ``inputs`` is one capture file, or messages as hex."""
    keylog = None
    try:
        if keylog_path:
            keylog = parse_keylog(Path(keylog_path).read_text())
        if len(inputs) == 1 and Path(inputs[0]).is_file():
            data = Path(inputs[0]).read_bytes()
            if not is_capture(data):
                raise CaptureError(f"{inputs[0]} is neither a pcap nor a pcapng file")
            report = decode_capture(data, keylog)
        else:
            report = decode_hex(inputs, keylog)
    except (OSError, ValueError) as err:
        print(f"wgpy decode: {err}", file=sys.stderr)
        return 1
    write_stdout(render_json(report) if output_format == "json" else render_text(report, full))
    return 0


def write_stdout(text: str) -> None:
    """Print, and stop quietly when the reader has gone (``wgpy decode ... | head``)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's exit does not complain again
