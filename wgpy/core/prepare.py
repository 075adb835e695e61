"""Handshake work done ahead of time, while the program around the device has nothing else to do.

Most of a handshake message does not depend on the moment it is sent. An initiation's ``e, es, s, ss``
(section 5.4.2) need only a fresh ephemeral key and the two static keys: everything but the timestamp
can be written before there is a packet to send (``noise.prepare_initiation``). A response's ephemeral
key and its ``se`` token, DH(E_priv_r, S_pub_i), need only the initiator's static key, which the
responder knows for each of its peers. Prepared, an initiation costs one AEAD and one hash when it is
sent instead of two X25519 operations more, and a response one X25519 instead of three: about 0.1 ms
of each side's Python off the path from a first packet to its reply (docs/performance.md, "Latency").
The kernel and wireguard-go compute all of it when the message is due; they are faster at it.

The rules that keep this the same protocol:

* Each prepared value is used for one message and then dropped; a new one is prepared at the next quiet
  moment. A retry is a new initiation with a new ephemeral key, prepared or not.
* A prepared initiation belongs to the device's private key and the peer's public key it was written
  for: it is dropped whenever either changes (``Device._precompute_static_static``, the one place that
  follows both), and used only for the device's current identity (not the one a rotation is leaving).
* What is prepared is as secret as a handshake in progress, and held in the same kind of object. It
  differs from the kernel in one way, written down in docs/performance.md: an ephemeral key exists
  before its handshake starts, for as long as the peer stays quiet. Reading the process's memory then
  gives the ephemeral key of that peer's next handshake; with the static keys, which such a reader has
  too, it could already impersonate either side.

The device keeps the peers with nothing prepared (``Device.prepare_handshakes``); nothing here runs
unless the runtime asks, so a device driven without it (the tests, ``wgpy.craft``) works as before.
"""

from __future__ import annotations

from . import noise
from .crypto import PrivateKey
from .errors import Rejected
from .record import record

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from .device import Device
    from .peer import Peer


@record(hidden=("ephemeral", "ephemeral_static"))
class PreparedResponse:
    """A response's ephemeral key and DH(E_priv_r, S_pub_i) with the peer it will answer."""

    ephemeral: PrivateKey
    ephemeral_static: bytes


def prepare(device: Device, peer: Peer) -> None:
    """Fill in what ``peer`` lacks of a prepared initiation and a prepared response (two X25519
    operations each). A low-order peer key prepares nothing: its handshakes fail as they always did."""
    local = device.private_key
    if peer.prepared_initiation is None and local is not None and peer.static_static is not None:
        try:
            peer.prepared_initiation = noise.prepare_initiation(local, peer.public_key, PrivateKey.generate(device.rng),
                                                                static_static=peer.static_static)
        except Rejected:
            pass
    if peer.prepared_response is None:
        ephemeral = PrivateKey.generate(device.rng)
        try:
            peer.prepared_response = PreparedResponse(ephemeral, ephemeral.exchange(peer.public_key))
        except Rejected:
            pass


def take_initiation(device: Device, peer: Peer, local: PrivateKey) -> noise.PreparedMessage1 | None:
    """The initiation prepared for ``peer`` as ``local``, if there is one, which no one else will get;
    the peer waits for its next one."""
    prepared = peer.prepared_initiation
    if prepared is None or prepared.initiator_public != local.public:
        return None
    peer.prepared_initiation = None
    device.to_prepare[peer] = None
    return prepared


def take_response(device: Device, peer: Peer) -> PreparedResponse | None:
    """The response ephemeral prepared for ``peer``, if there is one, which no one else will get; the
    peer waits for its next one."""
    prepared = peer.prepared_response
    peer.prepared_response = None
    device.to_prepare[peer] = None
    return prepared
