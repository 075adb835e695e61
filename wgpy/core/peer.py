"""A peer: its configuration, its handshake and sessions, its timers and counters (kernel peer.h)."""

from __future__ import annotations

from collections import deque
from .constants import KEY_LEN, TIMESTAMP_LEN
from .cookie import CookieGenerator
from .crypto import ZERO_KEY, PrivateKey, constant_time_equal
from .keypairs import Keypairs
from .noise import InitiatorHandshake, PreparedMessage1
from .record import record

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from .prepare import PreparedResponse


@record(frozen=False, hidden=("state", "local"))
class InitiationSent:
    """We sent an initiation under ``local_index`` and wait for its response (kernel CREATED_INITIATION).
    ``local`` is the identity it was sent as: during a key rotation, the old one or the new one."""

    local_index: int
    state: InitiatorHandshake
    local: PrivateKey


class Peer:
    """One remote WireGuard peer, identified by its static public key."""

    __slots__ = (
        "public_key",
        "_preshared_key",
        "endpoint",
        "endpoint_name",
        "persistent_keepalive_interval",
        "cookie",
        "keypairs",
        "handshake",
        "latest_timestamp",
        "last_initiation_consumption",
        "last_sent_handshake",
        "handshake_attempts",
        "sent_lastminute_handshake",
        "need_another_keepalive",
        "timers",
        "staged",
        "rx_bytes",
        "tx_bytes",
        "last_handshake_time",
        "local_identity",
        "static_static",
        "prepared_initiation",
        "prepared_response",
    )

    def __init__(self, public_key: bytes) -> None:
        if len(public_key) != KEY_LEN:
            raise ValueError("a public key is 32 bytes")
        self.public_key = bytes(public_key)
        self._preshared_key: bytes | None = None
        self.endpoint: tuple | None = None
        # The host name and port the configuration gave the endpoint as ("host:port"), if it gave one: the
        # runtime re-resolves it (runtime/reresolve.py); the core only keeps it, as DNS is the OS's.
        self.endpoint_name: str | None = None
        self.persistent_keepalive_interval = 0  # seconds; 0 is off
        self.cookie = CookieGenerator(self.public_key)
        self.keypairs = Keypairs()
        self.handshake: InitiationSent | None = None
        self.latest_timestamp = bytes(TIMESTAMP_LEN)  # greatest TAI64N accepted from this peer
        self.last_initiation_consumption: float | None = None
        self.last_sent_handshake: float | None = None
        self.handshake_attempts = 0
        self.sent_lastminute_handshake = False
        self.need_another_keepalive = False
        self.timers: dict = {}  # Timer -> deadline of each pending timer (timers.py)
        self.staged: deque[bytes] = deque()  # IP packets waiting for a session
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.last_handshake_time: float | None = None  # wall-clock seconds of the last completed handshake
        # Our public key as this peer knows it: the identity of our last handshake with it. During a key
        # rotation it says which of our two identities to initiate with first (docs/rotation.md).
        self.local_identity: bytes | None = None
        # DH(our static private key, this public key), the same in every handshake with this peer: the
        # device computes it when the peer or its own key changes (kernel precomputed_static_static).
        # None without a private key, or for a low-order key, whose handshakes compute it and fail.
        self.static_static: bytes | None = None
        # The next handshake messages' work, done ahead of time while the runtime is idle (prepare.py):
        # an initiation written up to its timestamp, a response's ephemeral key with its ``se`` DH.
        self.prepared_initiation: PreparedMessage1 | None = None
        self.prepared_response: PreparedResponse | None = None

    @property
    def preshared_key(self) -> bytes | None:
        return self._preshared_key

    @preshared_key.setter
    def preshared_key(self, value: bytes | None) -> None:
        if value is not None and len(value) != KEY_LEN:
            raise ValueError("a preshared key is 32 bytes")
        self._preshared_key = None if value is None or constant_time_equal(value, ZERO_KEY) else bytes(value)

    def __repr__(self) -> str:
        return f"Peer({self.public_key.hex()[:16]}..., endpoint={self.endpoint})"
