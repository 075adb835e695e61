"""What a device tells the program that embeds it (pulled with ``Device.events()``).

Each event names its peer by public key, so it can be logged, counted or acted on without holding a
reference into the device. None of them carries a secret.
"""

from __future__ import annotations

from .errors import Drop
from .record import record


@record
class HandshakeInitiated:
    """We sent a handshake initiation (``attempt`` counts retries, from 1)."""

    peer: bytes
    attempt: int


@record
class HandshakeResponded:
    """We accepted a handshake initiation from ``peer`` and sent our response; the new session waits in
    ``next`` until the initiator's first data packet confirms it (then HandshakeCompleted follows)."""

    peer: bytes


@record
class HandshakeCompleted:
    """A new session exists with ``peer``; ``is_initiator`` says which side we were."""

    peer: bytes
    is_initiator: bool


@record
class HandshakeGaveUp:
    """No handshake with ``peer`` completed within REKEY_ATTEMPT_TIME; its staged packets were dropped."""

    peer: bytes


@record
class CookieReceived:
    """``peer`` is under load and sent us a cookie: our next handshake message carries MAC2."""

    peer: bytes


@record
class SessionExpired:
    """The current session with ``peer`` reached REJECT_AFTER_TIME and can no longer carry data."""

    peer: bytes


@record
class KeysZeroed:
    """All key material for ``peer`` was erased (3 x REJECT_AFTER_TIME without a new session)."""

    peer: bytes


@record
class EndpointChanged:
    """``peer`` was last heard from a new address (roaming, section 2.1)."""

    peer: bytes
    endpoint: tuple


@record
class PeerAdded:
    """The configuration added ``peer`` (wireguard-go: "UAPI: Created")."""

    peer: bytes


@record
class PeerRemoved:
    """``peer`` was removed, with its sessions, allowed IPs and timers (wireguard-go: "UAPI: Removing")."""

    peer: bytes


@record
class PrivateKeyChanged:
    """The device has a new identity: ``public`` is its new public key, None once the key is removed
    (wireguard-go: "UAPI: Updating private key"). The key itself is not here: events carry no secret."""

    public: bytes | None


@record
class KeyRotated:
    """The device has a new identity, ``public``, and keeps the old one, ``previous``, for the
    handshakes of peers that still know only it, until ``grace_ends`` (seconds on the device's clock;
    docs/rotation.md). Established sessions are kept. A wgpy extension: wireguard-go has no such thing."""

    previous: bytes
    public: bytes
    grace_ends: float


@record
class PreviousKeyRetired:
    """The rotation's grace ended: the old identity ``previous`` is forgotten; an initiation addressed to
    it is now a BAD_MAC1 drop, and the sessions it authenticated no longer send."""

    previous: bytes


@record
class UnderLoad:
    """The device started (``True``) or stopped (``False``) answering handshakes with cookies."""

    active: bool


@record
class PacketDropped:
    """Something was refused. ``peer`` is set once the sender is known; ``source`` for datagrams."""

    reason: Drop
    peer: bytes | None = None
    source: tuple | None = None
    detail: str = ""


Event = (
    HandshakeInitiated
    | HandshakeResponded
    | HandshakeCompleted
    | HandshakeGaveUp
    | CookieReceived
    | SessionExpired
    | KeysZeroed
    | EndpointChanged
    | PeerAdded
    | PeerRemoved
    | PrivateKeyChanged
    | KeyRotated
    | PreviousKeyRetired
    | UnderLoad
    | PacketDropped
)
