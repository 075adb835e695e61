"""Why the core refuses something: one exception, one enum of named reasons.

Network input that the core does not accept is *dropped*; every drop has a :class:`Drop` reason so that
logs, statistics, tests and fuzzers can say exactly why (the kernel's ``net_dbg_ratelimited`` lines and
wireguard-go's log messages name the same cases). Mistakes by the caller (a 31-byte key) are
``ValueError`` instead, raised at once.
"""

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


class Rejected(Exception):
    """The core refused an input; ``reason`` says which rule.

    This is the one exception that malformed or unauthentic input raises inside the core. The device
    catches it at its single boundary and turns it into a counted, logged drop.
    """

    def __init__(self, reason: Drop, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.name}: {reason.value}" + (f" ({detail})" if detail else ""))
