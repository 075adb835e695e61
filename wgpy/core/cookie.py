"""MAC1, MAC2 and cookie replies: whitepaper sections 5.3 and 5.4.4, 5.4.7 (kernel cookie.c).

Every handshake message ends with two MACs::

    msg.mac1 = MAC(HASH(LABEL_MAC1 || S_pub_m), msg[:offset of mac1])
    msg.mac2 = MAC(cookie, msg[:offset of mac2])     (16 zero bytes without a fresh cookie)

MAC1 proves the sender knows the receiver's public key, so a responder can refuse garbage for the cost of
one BLAKE2s. Under load the responder answers with a cookie reply instead of doing Diffie-Hellman::

    cookie = MAC(R_secret, source IP address || source UDP port)      (R_secret rotates every 2 minutes)
    reply.encrypted_cookie = XAEAD(HASH(LABEL_COOKIE || S_pub_r), nonce, cookie, mac1 of the message)

and the initiator puts that cookie in MAC2 of its next attempt, proving it owns its source address.

Two classes, as in the kernel: :class:`CookieChecker` is the receiving side of one device (it validates
MACs and makes cookies), :class:`CookieGenerator` is kept per peer (it stamps our MACs and keeps the cookie
the peer sent us).

The ``trace`` parameters show each computation for ``wgpy explain``; they are off (:data:`NULL_TRACE`) on
the device's path.
"""

from __future__ import annotations

from enum import Enum

from .constants import COOKIE_SECRET_LATENCY, COOKIE_SECRET_MAX_AGE, KEY_LEN, LABEL_COOKIE, LABEL_MAC1
from .crypto import HASH, MAC, XAEAD_DECRYPT, Rng, XAEADSealer, constant_time_equal
from .errors import Drop, Rejected
from .constants import MessageType
from .messages import COOKIE_REPLY, MAC1_OFFSET_FROM_END, MAC2_OFFSET_FROM_END, ZERO_MAC, CookieReply
from .trace import NULL_TRACE, NullTrace, Op

Endpoint = tuple  # (host, port, ...) as the runtime's sockets report it


class MacStatus(Enum):
    """What the MACs of a handshake message prove (kernel ``enum cookie_mac_state``)."""

    INVALID_MAC1 = "MAC1 is wrong: drop"
    VALID_MAC1 = "MAC1 is right, MAC2 is absent or wrong"
    VALID_MAC1_AND_MAC2 = "MAC1 and MAC2 are both right: the sender owns its source address"


def mac1_key(public: bytes) -> bytes:
    """HASH(LABEL_MAC1 || S_pub): the key of MAC1 for messages sent to the owner of ``public``."""
    return HASH(LABEL_MAC1 + public)


def cookie_key(public: bytes) -> bytes:
    """HASH(LABEL_COOKIE || S_pub): the XAEAD key of cookie replies sent by the owner of ``public``."""
    return HASH(LABEL_COOKIE + public)


def source_bytes(source: Endpoint) -> bytes:
    """The source of a datagram as the cookie covers it: the IP address's bytes, then the port (big-endian)."""
    host = source[0]
    port = int(source[1]).to_bytes(2, "big")
    if ":" not in host:  # a dotted quad, as sockets write it, without ipaddress's cost (a flood asks often)
        try:
            packed = bytes(map(int, host.split(".")))
        except ValueError:
            packed = b""
        if len(packed) == 4 and host.count(".") == 3:
            return packed + port
    import ipaddress   # only here: its import costs the daemon's start-up (bench_startup.py)

    return ipaddress.ip_address(host).packed + port


def _trace_cookie_key(trace: NullTrace, public: bytes, key: bytes) -> None:
    trace.step(Op.HASH, "cookie_key = HASH(LABEL_COOKIE || S_pub_m)", "5.4.7", ("LABEL_COOKIE", "S_pub_m"),
               ("cookie_key",), LABEL_COOKIE=LABEL_COOKIE, S_pub_m=public, cookie_key=key)


class CookieChecker:
    """The responder's side: checks the MACs of incoming handshake messages and makes cookie replies."""

    __slots__ = ("_rng", "_local_public", "_mac1_key", "_cookie_key", "_sealer", "_secret", "_secret_birthdate")

    def __init__(self, local_public: bytes, rng: Rng) -> None:
        self._rng = rng
        self._local_public = local_public
        self._mac1_key = mac1_key(local_public)
        self._cookie_key = cookie_key(local_public)
        self._sealer = XAEADSealer(self._cookie_key, rng)
        self._secret = bytes(KEY_LEN)
        self._secret_birthdate: float | None = None  # no secret yet: the first cookie makes one

    def check_macs(self, message: bytes, source: Endpoint, now: float, check_cookie: bool) -> MacStatus:
        """Validate MAC1 and, when ``check_cookie`` (the device is under load), MAC2 of a packed message."""
        if not self.check_mac1(message):
            return MacStatus.INVALID_MAC1
        if check_cookie and self.check_mac2(message, source, now):
            return MacStatus.VALID_MAC1_AND_MAC2
        return MacStatus.VALID_MAC1

    def check_mac1(self, message: bytes) -> bool:
        """Whether MAC1 proves that the sender knows our public key (one BLAKE2s: cheap enough to ask of
        every handshake message before it is queued or counted)."""
        mac1_end = len(message) - MAC1_OFFSET_FROM_END
        return constant_time_equal(MAC(self._mac1_key, message[:mac1_end]), message[mac1_end : mac1_end + 16])

    def check_mac2(self, message: bytes, source: Endpoint, now: float, cookie: bytes | None = None) -> bool:
        """Whether MAC2 carries our current cookie for ``source`` (``cookie``, if the caller made it
        already): the sender owns that address."""
        mac2_end = len(message) - MAC2_OFFSET_FROM_END
        if cookie is None:
            cookie = self._make_cookie(source, now)
        return constant_time_equal(MAC(cookie, message[:mac2_end]), message[mac2_end:])

    def cookie(self, source: Endpoint, now: float) -> bytes:
        """Our current cookie for ``source``: MAC(R_secret, address || port)."""
        return self._make_cookie(source, now)

    def reply(self, message: bytes, cookie: bytes) -> bytes:
        """The packed cookie reply carrying ``cookie`` to a handshake message: ``create_reply`` for the
        device's hot path under load (no trace, no message object)."""
        mac1_end = len(message) - MAC1_OFFSET_FROM_END
        nonce = self._sealer.nonce()
        encrypted_cookie = self._sealer.seal(nonce, cookie, message[mac1_end : mac1_end + 16])
        return COOKIE_REPLY.pack(MessageType.COOKIE_REPLY, int.from_bytes(message[4:8], "little"), nonce, encrypted_cookie)

    def create_reply(
        self, message: bytes, receiver_index: int, source: Endpoint, now: float, trace: NullTrace = NULL_TRACE
    ) -> CookieReply:
        """The cookie reply to a handshake message from ``source``; ``receiver_index`` is that message's
        sender index."""
        mac1_end = len(message) - MAC1_OFFSET_FROM_END
        mac1 = message[mac1_end : mac1_end + len(ZERO_MAC)]
        nonce = self._sealer.nonce()
        cookie = self._make_cookie(source, now, trace)
        encrypted_cookie = self._sealer.seal(nonce, cookie, mac1)
        if trace.enabled:
            _trace_cookie_key(trace, self._local_public, self._cookie_key)
            trace.step(Op.XAEAD, "msg.encrypted_cookie = XAEAD(cookie_key, msg.nonce, τ, M)", "5.4.7",
                       ("cookie_key", "msg.nonce", "τ", "M"), ("msg.encrypted_cookie",), **{
                           "cookie_key": self._cookie_key, "msg.nonce": nonce, "M": mac1, "τ": cookie,
                           "msg.encrypted_cookie": encrypted_cookie})
        return CookieReply(receiver_index, nonce, encrypted_cookie)

    def _make_cookie(self, source: Endpoint, now: float, trace: NullTrace = NULL_TRACE) -> bytes:
        """MAC(R_secret, source), with R_secret replaced by fresh random bytes every two minutes."""
        if self._secret_birthdate is None or now - self._secret_birthdate >= COOKIE_SECRET_MAX_AGE:
            self._secret = self._rng(KEY_LEN)
            self._secret_birthdate = now
        cookie = MAC(self._secret, source_bytes(source))
        if trace.enabled:
            trace.step(Op.MAC, "τ = MAC(R_m, A_m')", "5.4.7", ("R_m", "A_m'"), ("τ",),
                       R_m=self._secret, **{"A_m'": source_bytes(source), "τ": cookie})
        return cookie

    def __repr__(self) -> str:
        return "CookieChecker(<secret redacted>)"


class CookieGenerator:
    """Our side toward one peer: stamps MAC1 and MAC2 on what we send it, keeps the cookie it gave us."""

    __slots__ = ("_remote_public", "_mac1_key", "_cookie_key", "_cookie", "_cookie_birthdate", "_last_mac1_sent")

    def __init__(self, remote_public: bytes) -> None:
        self._remote_public = remote_public
        self._mac1_key = mac1_key(remote_public)
        self._cookie_key = cookie_key(remote_public)
        self._cookie: bytes | None = None
        self._cookie_birthdate = 0.0
        self._last_mac1_sent: bytes | None = None

    def add_macs(self, message: bytes, now: float, trace: NullTrace = NULL_TRACE) -> bytes:
        """Return the packed handshake message with MAC1 and (given a fresh cookie) MAC2 filled in."""
        mac1_end = len(message) - MAC1_OFFSET_FROM_END
        mac1 = MAC(self._mac1_key, message[:mac1_end])
        self._last_mac1_sent = mac1
        covered = message[:mac1_end] + mac1
        cookie = self._cookie if self.has_fresh_cookie(now) else None
        mac2 = ZERO_MAC if cookie is None else MAC(cookie, covered)
        if trace.enabled:
            self._trace_macs(trace, message[:mac1_end], mac1, covered, cookie, mac2)
        return covered + mac2

    def _trace_macs(self, trace: NullTrace, alpha: bytes, mac1: bytes, beta: bytes, cookie: bytes | None, mac2: bytes) -> None:
        trace.step(Op.HASH, "mac1_key = HASH(LABEL_MAC1 || S_pub_m)", "5.4.4", ("LABEL_MAC1", "S_pub_m"), ("mac1_key",),
                   LABEL_MAC1=LABEL_MAC1, S_pub_m=self._remote_public, mac1_key=self._mac1_key)
        trace.step(Op.MAC, "msg.mac1 = MAC(mac1_key, msg_α)", "5.4.4", ("mac1_key", "msg_α"), ("msg.mac1",),
                   **{"mac1_key": self._mac1_key, "msg_α": alpha, "msg.mac1": mac1})
        if cookie is None:
            trace.step(Op.CONSTANT, "msg.mac2 = 0^16 (no cookie, or one older than 120 s)", "5.4.4", ("0^16",),
                       ("msg.mac2",), **{"msg.mac2": mac2})
        else:
            trace.step(Op.MAC, "msg.mac2 = MAC(L_m, msg_β)", "5.4.4", ("L_m", "msg_β"), ("msg.mac2",),
                       **{"L_m": cookie, "msg_β": beta, "msg.mac2": mac2})

    def has_fresh_cookie(self, now: float) -> bool:
        """A cookie is used for 2 minutes less the latency allowance (kernel: 120 s - 5 s)."""
        return self._cookie is not None and now - self._cookie_birthdate < COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY

    def consume_reply(self, reply: CookieReply, now: float, trace: NullTrace = NULL_TRACE) -> None:
        """Decrypt a cookie reply to our last handshake message and keep the cookie. Raises Rejected and
        keeps nothing if the reply does not answer a message we sent or does not decrypt."""
        if self._last_mac1_sent is None:
            raise Rejected(Drop.NO_MATCHING_INITIATION, "no handshake message awaits a cookie")
        cookie = XAEAD_DECRYPT(self._cookie_key, reply.nonce, reply.encrypted_cookie, self._last_mac1_sent)
        if trace.enabled:
            _trace_cookie_key(trace, self._remote_public, self._cookie_key)
            trace.step(Op.XAEAD_DECRYPT, "τ = XAEAD-DECRYPT(cookie_key, msg.nonce, msg.encrypted_cookie, M)", "5.4.7",
                       ("cookie_key", "msg.nonce", "msg.encrypted_cookie", "M"), ("τ",), **{
                           "cookie_key": self._cookie_key, "msg.nonce": reply.nonce, "M": self._last_mac1_sent,
                           "msg.encrypted_cookie": reply.encrypted_cookie, "τ": cookie})
        self._cookie = cookie
        self._cookie_birthdate = now
        self._last_mac1_sent = None  # one reply per message, as in the kernel

    def __repr__(self) -> str:
        return f"CookieGenerator(has_cookie={self._cookie is not None})"
