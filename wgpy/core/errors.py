"""Why the core refuses something: one exception, one enum of named reasons.

Network input that the core does not accept is *dropped*; every drop has a :class:`Drop` reason so that
logs, statistics, tests and fuzzers can say exactly why (the kernel's ``net_dbg_ratelimited`` lines and
wireguard-go's log messages name the same cases). Mistakes by the caller (a 31-byte key) are
``ValueError`` instead, raised at once.
"""

from __future__ import annotations

from enum import Enum


class Drop(Enum):
    """A named reason for refusing a message. The value is the human-readable sentence."""

    # Framing (messages.py)
    EMPTY = "message is empty"
    UNKNOWN_TYPE = "unknown message type"
    UNEXPECTED_TYPE = "message is not of the type expected here"
    RESERVED_NONZERO = "reserved header bytes are not zero"
    WRONG_SIZE = "message size does not match its type"
    TOO_SHORT = "transport message shorter than its header and tag"
    # Cryptography (crypto.py, noise.py, cookie.py)
    ZERO_SHARED_SECRET = "Diffie-Hellman result is all zeros (low-order point)"
    DECRYPTION_FAILED = "authenticated decryption failed"
    BAD_MAC1 = "MAC1 is not valid"
    BAD_MAC2 = "MAC2 is not valid"
    # Handshake state (noise.py, cookie.py)
    UNKNOWN_PEER = "static key of the initiator is not a known peer"
    NO_MATCHING_INITIATION = "response or cookie does not answer a pending initiation"
    # Transport (keypairs.py, replay.py)
    REPLAYED = "counter already seen or behind the replay window"
    COUNTER_EXHAUSTED = "counter reached REJECT_AFTER_MESSAGES"
    # The device (device.py, send.py, receive.py)
    NO_PRIVATE_KEY = "the device has no private key"
    UNKNOWN_INDEX = "receiver index names no session or pending handshake"
    STALE_TIMESTAMP = "initiation timestamp is not newer than the last one accepted (replay)"
    INITIATION_FLOOD = "more than INITIATIONS_PER_SECOND initiations from this peer"
    COOKIE_REPLY_SENT = "under load without a valid MAC2: answered with a cookie reply"
    HANDSHAKE_QUEUE_FULL = "too many handshake messages waiting: dropped before processing"
    RATE_LIMITED = "under load: this source sent more handshakes than its rate allows"
    KEYPAIR_EXPIRED = "session keys are past REJECT_AFTER_TIME"
    NOT_IP = "packet is neither IPv4 nor IPv6"
    BAD_INNER_LENGTH = "inner IP packet length does not match what was decrypted"
    UNALLOWED_SOURCE = "inner source address is not in the sending peer's allowed IPs"
    NO_ROUTE = "no peer's allowed IPs cover the destination address"
    NO_ENDPOINT = "the peer has no known endpoint"
    STAGED_OVERFLOW = "too many packets waiting for a handshake: the oldest was dropped"
    HANDSHAKE_GAVE_UP = "no handshake completed within REKEY_ATTEMPT_TIME: staged packets dropped"


class Rejected(Exception):
    """The core refused an input; ``reason`` says which rule.

    This is the one exception that malformed or unauthentic input raises inside the core. The device
    catches it at its single boundary and turns it into a counted drop. ``peer`` is the public key of
    the peer concerned, once it is known.
    """

    def __init__(self, reason: Drop, detail: str = "", *, peer: bytes | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.peer = peer
        super().__init__(f"{reason.name}: {reason.value}" + (f" ({detail})" if detail else ""))
