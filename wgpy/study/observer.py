"""The passive observer of ``wgpy decode``: datagrams in the order they were seen, checked and decrypted
with whatever keys a key log holds.

Given keys (a Wireshark WireGuard key log, see ``core/keylog.py``), it checks MAC1 against every static
public key it knows (section 5.4.4), decrypts each handshake as an observer holding one side's keys
(sections 5.4.2 and 5.4.3: any one side's private keys give every Diffie-Hellman result), derives the
session's keys (5.4.5), decrypts the transport data (5.4.6) and summarizes the IP packet inside. Cookie
replies need no secret: their key is derived from the responder's public key (5.4.7). It runs the core's
own :class:`~wgpy.core.noise.Transcript`, from whichever side's chair the key log allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.cookie import cookie_key, mac1_key
from ..core.crypto import AEAD_DECRYPT, MAC, XAEAD_DECRYPT, ZERO_KEY, PrivateKey, constant_time_equal
from ..core.encoding import key_to_base64
from ..core.errors import Rejected
from ..core.keylog import Keylog
from ..core.messages import ZERO_MAC, CookieReply, Initiation, Response, Transport, macs_of, parse
from ..core.noise import NOTHING, TIMESTAMP, Transcript, split
from ..core.trace import NULL_TRACE
from .ip import summarize_ip
from .labels import KIND, Field, fields
from .render import tai64n_text


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


class Observer:
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
        message = parse(data)
        decoded.kind, decoded.section = KIND[message.KIND]
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
        key = t.mix_dh_for_key(*es, ("E_priv_i", "S_pub_r"))
        initiator_public = t.decrypt_and_hash(key, message.encrypted_static, "S_pub_i", "msg.encrypted_static")
        handshake.initiator_public = initiator_public
        decoded.notes.append(f"encrypted_static decrypts to S_pub_i = {key_to_base64(initiator_public)}")
        initiator = self._static_private.get(initiator_public)
        if responder is None and initiator is None:
            decoded.notes.append("cannot decrypt the timestamp: neither S_priv_r nor S_priv_i is in the key log")
            return
        ss = (responder, initiator_public) if responder is not None else (initiator, receiver)
        key = t.mix_dh_for_key(*ss, ("S_priv_i", "S_pub_r"))
        timestamp = t.decrypt_and_hash(key, message.encrypted_timestamp, *TIMESTAMP)
        decoded.notes.append(f"encrypted_timestamp decrypts to {timestamp.hex()} = {tai64n_text(timestamp)}")
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
        t.mix_dh(*ee, ("E_priv_r", "E_pub_i"))
        t.mix_dh(*se, ("E_priv_r", "S_pub_i"))
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
