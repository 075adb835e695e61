"""Everything a device sends: handshake messages, cookie replies, data and keepalives (kernel send.c).

Functions here take the device and a peer and append datagrams to the device's output; they decide
*when* a handshake is needed (whitepaper sections 5.4.6 and 6) and keep the timers informed.
"""

from __future__ import annotations


from . import noise, prepare, tai64n
from . import timers as on
from .constants import MAX_STAGED_PACKETS, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_TIMEOUT
from .crypto import PrivateKey
from .errors import Drop, Rejected
from .events import HandshakeInitiated, HandshakeResponded
from .keylog import KeylogEntry
from .keypairs import Keypair
from .peer import InitiationSent, Peer
from .rotation import initiation_identity

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from .device import Device


def send_handshake_initiation(device: Device, peer: Peer, now: float, is_retry: bool = False) -> None:
    """Send a new initiation to ``peer`` (section 5.4.2), at most one per REKEY_TIMEOUT (kernel
    ``wg_packet_send_queued_handshake_initiation``)."""
    if not is_retry:
        peer.handshake_attempts = 0
    if peer.last_sent_handshake is not None and now - peer.last_sent_handshake < REKEY_TIMEOUT:
        return  # rate limited: one initiation per REKEY_TIMEOUT
    local = device.private_key
    if local is None:
        device.output.drop(Drop.NO_PRIVATE_KEY, peer.public_key)
        return
    if device.rotation is not None:   # which of our two identities this peer knows (rotation.py)
        local = initiation_identity(local, device.rotation, peer, peer.handshake_attempts)
    peer.last_sent_handshake = now
    device.indices.forget_handshake(peer)
    local_index = device.indices.allocate()
    timestamp = tai64n.encode(now + device.epoch_offset)
    # Written ahead of time (prepare.py), only as the device's current identity; else written now.
    prepared = prepare.take_initiation(device, peer, local) if local is device.private_key else None
    if prepared is not None:
        if device.keylog_enabled:
            _log_keys(device, peer, prepared.ephemeral, local)
        message, state = noise.finish_initiation(prepared, local_index, timestamp)
    else:
        ephemeral = PrivateKey.generate(device.rng)
        if device.keylog_enabled:
            _log_keys(device, peer, ephemeral, local)
        try:
            message, state = noise.create_initiation(
                local, peer.public_key, ephemeral, local_index, timestamp,
                static_static=peer.static_static if local is device.private_key else None,  # see receive.py
            )
        except Rejected as refused:
            # The peer's key is a low-order point: as the kernel's failed create_initiation, send nothing.
            device.output.drop(refused.reason, peer.public_key)
            return
    pending = InitiationSent(local_index, state, local)
    device.indices.register(local_index, peer, pending)
    peer.handshake = pending
    wire = peer.cookie.add_macs(message.pack(), now)
    on.on_any_authenticated_packet_traversal(device.schedule, peer, now)
    on.on_any_authenticated_packet_sent(device.schedule, peer)
    _send_to_peer(device, peer, wire)
    on.on_handshake_initiated(device.schedule, peer, now)
    device.output.emit(HandshakeInitiated(peer.public_key, peer.handshake_attempts + 1))


def send_handshake_response(
    device: Device, peer: Peer, consumed: noise.ResponderHandshake, remote_index: int, now: float,
    local: PrivateKey | None = None,
) -> None:
    """Answer a valid initiation from ``peer`` and derive the new session (sections 5.4.3 and 5.4.5).
    The responder's keypair waits in ``next`` until the initiator's first data packet confirms it.
    ``local`` is the identity the initiation addressed (the device's key unless it is rotating)."""
    local_index = device.indices.allocate()
    prepared = prepare.take_response(device, peer)   # the ephemeral and its ``se`` DH, if ready (prepare.py)
    if prepared is not None:
        ephemeral, ephemeral_static = prepared.ephemeral, prepared.ephemeral_static
    else:
        ephemeral, ephemeral_static = PrivateKey.generate(device.rng), None
    if device.keylog_enabled:
        _log_keys(device, peer, ephemeral, local or device.private_key)
    response, keys = noise.create_response(consumed, ephemeral, peer.preshared_key, local_index, remote_index,
                                           ephemeral_static=ephemeral_static)
    # Our own pending initiation, if any, is superseded by the one we answer (kernel: same handshake slot).
    device.indices.forget_handshake(peer)
    keypair = Keypair(keys, local_index, remote_index, now)
    device.indices.register(local_index, peer, keypair)
    device.indices.forget_keypairs(peer.keypairs.add(keypair))
    on.on_session_derived(device.schedule, peer, now)
    wire = peer.cookie.add_macs(response.pack(), now)
    on.on_any_authenticated_packet_traversal(device.schedule, peer, now)
    on.on_any_authenticated_packet_sent(device.schedule, peer)
    peer.last_sent_handshake = now
    _send_to_peer(device, peer, wire)
    device.output.emit(HandshakeResponded(peer.public_key))


def _send_to_peer(device: Device, peer: Peer, datagram: bytes) -> None:
    """Send a handshake message to the peer's endpoint, counted in its bytes sent."""
    if peer.endpoint is None:
        device.output.drop(Drop.NO_ENDPOINT, peer.public_key)
        return
    peer.tx_bytes += len(datagram)
    device.output.send((datagram, peer.endpoint))


def _log_keys(device: Device, peer: Peer, ephemeral: PrivateKey, local: PrivateKey) -> None:
    """Keep a key log entry for an ephemeral key just generated for ``peer`` as identity ``local`` (only
    when the device's ``keylog_enabled`` asks for it: these are secrets)."""
    device.output.log_keys(KeylogEntry(local.private_bytes(), peer.public_key,
                                       ephemeral.private_bytes(), peer.preshared_key or bytes(32)))


def send_keepalive(device: Device, peer: Peer, now: float) -> None:
    """Send an empty data packet, unless packets are waiting anyway (kernel ``wg_packet_send_keepalive``)."""
    if not peer.staged:
        peer.staged.append(b"")
    send_staged_packets(device, peer, now)


def send_staged_packets(device: Device, peer: Peer, now: float) -> None:
    """Encrypt and send every staged packet with the current keypair, or start a handshake and keep them
    staged if there is no usable keypair (kernel ``wg_packet_send_staged_packets``). The one place where
    data is encrypted: a packet from the TUN side, a batch of them and a keepalive all end here."""
    staged = peer.staged
    if not staged:
        return
    keypair = peer.keypairs.current
    if keypair is None or not _can_send(keypair, now, len(staged)):
        send_handshake_initiation(device, peer, now)
        return
    endpoint = peer.endpoint
    if endpoint is None:
        for _ in range(len(staged)):
            device.output.drop(Drop.NO_ENDPOINT, peer.public_key)
        staged.clear()
        return
    encrypt, mtu, out = keypair.encrypt, device.mtu, device.output.send
    sent = 0
    data_sent = any(staged)   # a keepalive is the empty packet
    for packet in staged:
        wire = encrypt(packet, mtu)
        sent += len(wire)
        out((wire, endpoint))
    staged.clear()
    peer.tx_bytes += sent
    schedule = device.schedule
    on.on_any_authenticated_packet_traversal(schedule, peer, now)
    on.on_any_authenticated_packet_sent(schedule, peer)
    if data_sent:
        on.on_data_sent(schedule, peer, now)
    keep_key_fresh_on_send(device, peer, now)


def _can_send(keypair: Keypair, now: float, count: int) -> bool:
    """A keypair sends until REJECT_AFTER_TIME or REJECT_AFTER_MESSAGES (section 6.1); like the kernel, a
    batch is only sent when nonces remain for all of it."""
    return now - keypair.created < REJECT_AFTER_TIME and keypair.sending_counter + count <= REJECT_AFTER_MESSAGES


def keep_key_fresh_on_send(device: Device, peer: Peer, now: float) -> None:
    """After sending: rekey after REKEY_AFTER_MESSAGES, or (initiator only) after REKEY_AFTER_TIME."""
    keypair = peer.keypairs.current
    if keypair is not None and (
        keypair.sending_counter > REKEY_AFTER_MESSAGES
        or (keypair.is_initiator and now - keypair.created >= REKEY_AFTER_TIME)
    ):
        send_handshake_initiation(device, peer, now)


def send_packets(device: Device, packets: list, now: float) -> None:
    """IP packets from the TUN side (kernel ``wg_xmit``): each is routed by its destination address
    (cryptokey routing), staged behind its peer's earlier packets, and every peer that got one sends
    what it has staged. A single packet is a batch of one."""
    lookup = device.allowed_ips.lookup
    by_peer: dict[Peer, list] = {}
    last_destination, peer = None, None  # a flow repeats its destination: look it up once per run
    for packet in packets:
        size = len(packet)
        version = packet[0] >> 4 if size else 0
        if version == 4 and size >= 20:
            destination = packet[16:20]
        elif version == 6 and size >= 40:
            destination = packet[24:40]
        else:
            device.output.drop(Drop.NOT_IP)
            continue
        if destination != last_destination:
            last_destination, peer = destination, lookup(destination)
        if peer is None:
            device.output.drop(Drop.NO_ROUTE)
            continue
        waiting = by_peer.get(peer)
        if waiting is None:
            by_peer[peer] = [packet]
        else:
            waiting.append(packet)
    for peer, batch in by_peer.items():
        staged = peer.staged
        staged.extend(batch)
        if len(staged) > MAX_STAGED_PACKETS:   # oldest first, as the kernel and wireguard-go drop them
            for _ in range(len(staged) - MAX_STAGED_PACKETS):
                staged.popleft()
                device.output.drop(Drop.STAGED_OVERFLOW, peer.public_key)
        send_staged_packets(device, peer, now)
