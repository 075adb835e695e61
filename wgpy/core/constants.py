"""Protocol constants: whitepaper sections 5.4 and 6.1 (kernel messages.h, wireguard-go constants.go)."""

from enum import IntEnum

# Section 5.4: the Noise construction and WireGuard's identifier (the Noise prologue).
CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"

KEY_LEN = 32            # X25519 keys, symmetric keys, preshared keys, hashes
TAG_LEN = 16            # Poly1305 tag
TIMESTAMP_LEN = 12      # TAI64N
MAC_LEN = 16            # MAC1, MAC2 and the cookie itself
COOKIE_NONCE_LEN = 24   # XChaCha20-Poly1305 nonce of a cookie reply


class MessageType(IntEnum):
    """The first byte of every message; the next three are reserved zeros (section 5.4)."""

    INITIATION = 1
    RESPONSE = 2
    COOKIE_REPLY = 3
    TRANSPORT = 4


INITIATION_SIZE = 148
RESPONSE_SIZE = 92
COOKIE_REPLY_SIZE = 64
TRANSPORT_HEADER_SIZE = 16
TRANSPORT_MIN_SIZE = TRANSPORT_HEADER_SIZE + TAG_LEN   # an empty (keepalive) transport message
PADDING_MULTIPLE = 16

# Section 6.1 (seconds, messages).
REKEY_AFTER_MESSAGES = 2**60
REJECT_AFTER_MESSAGES = 2**64 - 2**13 - 1   # wireguard-go's value; the kernel's is 63 higher
REKEY_AFTER_TIME = 120.0
REJECT_AFTER_TIME = 180.0
REKEY_ATTEMPT_TIME = 90.0
REKEY_TIMEOUT = 5.0
KEEPALIVE_TIMEOUT = 10.0
COOKIE_SECRET_MAX_AGE = 120.0
COOKIE_SECRET_LATENCY = 5.0
REKEY_TIMEOUT_JITTER_MAX = 0.334
INITIATIONS_PER_SECOND = 50

# The anti-replay window (RFC 6479 ring of 64-bit blocks, as in the kernel and wireguard-go).
REPLAY_BLOCK_BITS = 64
REPLAY_RING_BLOCKS = 128
REPLAY_WINDOW_SIZE = (REPLAY_RING_BLOCKS - 1) * REPLAY_BLOCK_BITS   # 8128

# The device (whitepaper section 6; wireguard-go device/constants.go where the whitepaper is silent).
MAX_TIMER_HANDSHAKES = int(REKEY_ATTEMPT_TIME / REKEY_TIMEOUT)   # 18 attempts, then give up
MAX_STAGED_PACKETS = 128          # packets held per peer while a handshake is under way; oldest dropped
MAX_EVENTS = 4096                 # events kept for the embedding program; oldest dropped
# "Under load" (whitepaper 5.3), as the kernel and wireguard-go define it: handshake messages that pass MAC1
# wait in a bounded queue of their own, so transport data is never behind them, and the device is under
# load while that queue is at least an eighth full, and for UNDER_LOAD_AFTER_TIME after (wireguard-go's
# QueueHandshakeSize, 1024; the kernel's is 4096, for many CPUs). A message finding the queue full is dropped,
# unless its MAC2 proves its source, which then takes the place of the oldest waiting message.
MAX_QUEUED_HANDSHAKES = 1024
UNDER_LOAD_QUEUE_LENGTH = MAX_QUEUED_HANDSHAKES // 8
UNDER_LOAD_AFTER_TIME = 1.0
# The tunnel's MTU when nothing says otherwise (wg-quick, wireguard-go): a 1500-byte link less the largest
# overhead, an IPv6 header, UDP and a transport message's header and tag.
OUTER_OVERHEAD = 40 + 8 + TRANSPORT_HEADER_SIZE + TAG_LEN   # 80
DEFAULT_MTU = 1500 - OUTER_OVERHEAD                          # 1420
# Queued handshake messages handled per call of receive_datagrams or handle_timer: a batch of transport
# data waits for at most this many handshakes (a few milliseconds of Diffie-Hellman).
HANDSHAKES_PER_CALL = 8
