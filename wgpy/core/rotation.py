"""Key rotation without an outage: two identities for a grace period (a wgpy extension; docs/rotation.md).

WireGuard has one static key per interface, and changing it is abrupt: wireguard-go's ``SetPrivateKey``
expires every session (``ExpireCurrentKeypairs``), so each peer must handshake with the new identity, which
a peer that still has the old public key configured refuses. A rotating device instead keeps its old
private key for ``grace`` seconds beside the new one:

* as responder, it tells from MAC1 which of its identities a handshake message addresses
  (``msg.mac1 = MAC(HASH(LABEL_MAC1 || S_pub_r), msg_alpha)``, whitepaper 5.4.4) and consumes it with that
  private key; a cookie reply is sealed under that identity's cookie key (5.4.7);
* as initiator, it first uses the identity its last handshake with the peer used (``Peer.local_identity``:
  peers that knew the old key still do), and alternates on each retransmission, so a peer whose
  configuration changed answers at the latest to the first retransmission (REKEY_TIMEOUT later);
* established sessions are kept: their keys came from ephemeral Diffie-Hellman at handshake time and do
  not depend on the static key afterwards.

When the grace ends the old key is forgotten (dropped with its cookie checker: Python cannot overwrite the
bytes in place, as the kernel's ``memzero_explicit`` does), handshakes pending under it are forgotten, and
so are the sessions of the peers whose last handshake it made (wireguard-go, on a key change, only stops
sending on them); the next packet starts a handshake under the new identity.
"""

from __future__ import annotations

from .cookie import CookieChecker
from .crypto import PrivateKey
from .record import record

MAX_ROTATION_GRACE = 7 * 24 * 3600.0   # a week: more is a second identity, not a rotation

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from .peer import Peer


@record(frozen=False, hidden=("previous", "checker"))
class Rotation:
    """The old identity a rotating device still answers to, its cookie checker, and until when."""

    previous: PrivateKey
    checker: CookieChecker
    ends: float

    @property
    def previous_public(self) -> bytes:
        return self.previous.public


def check_grace(grace: float) -> float:
    """The grace in seconds, checked: a caller's mistake is a ValueError."""
    grace = float(grace)
    if not 0 <= grace <= MAX_ROTATION_GRACE:   # also refuses NaN
        raise ValueError(f"a rotation grace is 0..{MAX_ROTATION_GRACE:.0f} seconds")
    return grace


def addressed_identity(
    current: PrivateKey, checker: CookieChecker, rotation: Rotation | None, message: bytes
) -> tuple[PrivateKey, CookieChecker] | None:
    """Which of our identities a handshake message's MAC1 addresses, with its cookie checker; None when
    MAC1 fits none (a BAD_MAC1 drop). The current identity is checked first: outside a rotation, and for
    peers that already know the new key, this is the one BLAKE2s it always was."""
    if checker.check_mac1(message):
        return current, checker
    if rotation is not None and rotation.checker.check_mac1(message):
        return rotation.previous, rotation.checker
    return None


def initiation_identity(current: PrivateKey, rotation: Rotation | None, peer: Peer, attempt: int) -> PrivateKey:
    """The identity to send initiation number ``attempt`` (0 for the first, 1 for the first retransmission,
    ...) to ``peer`` as: the one its last handshake used, then the other one on every odd attempt."""
    if rotation is None:
        return current
    if peer.local_identity == rotation.previous.public:
        preferred, other = rotation.previous, current
    else:
        preferred, other = current, rotation.previous
    return other if attempt % 2 else preferred
