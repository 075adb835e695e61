"""Everything a device receives: handshake messages, cookie replies and transport data (kernel receive.c).

Each function raises :class:`~wgpy.core.errors.Rejected` for input it refuses; ``Device.receive_datagram``
turns that into a counted drop, so nothing here changes state before the input has proven itself.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from . import noise, tai64n
from . import timers as on
from .constants import (
    INITIATIONS_PER_SECOND,
    KEEPALIVE_TIMEOUT,
    REJECT_AFTER_TIME,
    REKEY_TIMEOUT,
    TRANSPORT_MIN_SIZE,
    MessageType,
)
from .cookie import MacStatus
from .crypto import PrivateKey
from .errors import Drop, Rejected
from .events import CookieReceived, HandshakeCompleted
from .keypairs import Keypair
from .messages import CookieReply, Initiation, Response
from .peer import InitiationSent, Peer
from .send import send_cookie_reply, send_handshake_initiation, send_handshake_response, send_keepalive, send_staged_packets

if TYPE_CHECKING:
    from .device import Device


def receive_handshake(device: Device, data: bytes, kind: MessageType, source: tuple, now: float) -> None:
    """An initiation or a response: check the MACs (and, under load, the cookie and the rate), then run
    the handshake (kernel ``wg_receive_handshake_packet``)."""
    local = device.private_key
    if local is None:
        raise Rejected(Drop.NO_PRIVATE_KEY)
    message = Initiation.parse(data) if kind == MessageType.INITIATION else Response.parse(data)
    under_load = device.under_load(now)
    status = device.cookie_checker.check_macs(data, source, now, check_cookie=under_load)
    if status is MacStatus.INVALID_MAC1:
        raise Rejected(Drop.BAD_MAC1)
    if under_load:
        if status is not MacStatus.VALID_MAC1_AND_MAC2:
            send_cookie_reply(device, data, source, now)
            raise Rejected(Drop.COOKIE_REPLY_SENT)
        if not device.ratelimiter.allow(ipaddress.ip_address(source[0]).packed, now):
            raise Rejected(Drop.RATE_LIMITED)

    if isinstance(message, Initiation):
        peer, consumed = _consume_initiation(device, local, message, now)
        device.set_endpoint(peer, source)
        send_handshake_response(device, peer, consumed, message.sender_index, now)
    else:
        peer = _consume_response(device, local, message, now)
        device.set_endpoint(peer, source)
        # Send what waited for this session, or a keepalive to confirm it at once (section 6.1).
        send_keepalive(device, peer, now)

    peer.rx_bytes += len(data)
    on.on_any_authenticated_packet_received(device.schedule, peer)
    on.on_any_authenticated_packet_traversal(device.schedule, peer, now)


def _consume_initiation(
    device: Device, local: PrivateKey, message: Initiation, now: float
) -> tuple[Peer, noise.ResponderHandshake]:
    """Decrypt an initiation; accept it only from a known peer, with a newer timestamp, at most
    INITIATIONS_PER_SECOND per peer (section 5.1). Commits to the peer only when all of that holds."""
    consumed = noise.consume_initiation(local, message)
    peer = device.peers.get(consumed.initiator_public)
    if peer is None:
        raise Rejected(Drop.UNKNOWN_PEER)
    if not tai64n.is_after(consumed.payload, peer.latest_timestamp):
        raise Rejected(Drop.STALE_TIMESTAMP, peer=peer.public_key)
    last = peer.last_initiation_consumption
    if last is not None and now - last < 1 / INITIATIONS_PER_SECOND:
        raise Rejected(Drop.INITIATION_FLOOD, peer=peer.public_key)
    peer.latest_timestamp = consumed.payload
    peer.last_initiation_consumption = now
    return peer, consumed


def _consume_response(device: Device, local: PrivateKey, message: Response, now: float) -> Peer:
    """Finish the handshake we initiated: the response must answer our pending initiation."""
    entry = device.lookup_index(message.receiver_index)
    if entry is None or not isinstance(entry[1], InitiationSent) or entry[0].handshake is not entry[1]:
        raise Rejected(Drop.NO_MATCHING_INITIATION)
    peer, pending = entry
    keys = noise.consume_response(pending.state, local, message, peer.preshared_key)
    # Success: the initiation's index now names the session.
    peer.handshake = None
    keypair = Keypair(keys, pending.local_index, message.sender_index, now)
    device.register_index(pending.local_index, peer, keypair)
    device.forget_keypairs(peer.keypairs.add(keypair))
    on.on_session_derived(device.schedule, peer, now)
    on.on_handshake_complete(device.schedule, peer, now + device.epoch_offset)
    device.emit(HandshakeCompleted(peer.public_key, is_initiator=True))
    return peer


def receive_cookie_reply(device: Device, data: bytes, now: float) -> None:
    """Keep the cookie a loaded peer sent us; the next retransmission carries MAC2 (section 5.4.7)."""
    reply = CookieReply.parse(data)
    entry = device.lookup_index(reply.receiver_index)
    if entry is None:
        raise Rejected(Drop.UNKNOWN_INDEX)
    peer = entry[0]
    try:
        peer.cookie.consume_reply(reply, now)
    except Rejected as refused:
        raise Rejected(refused.reason, refused.detail, peer=peer.public_key) from None
    device.emit(CookieReceived(peer.public_key))


def receive_transport(device: Device, data: bytes, source: tuple, now: float) -> None:
    """Decrypt a transport message, confirm sessions, keep timers, and deliver the inner packet if its
    source address belongs to the sending peer (cryptokey routing, section 2)."""
    entry = device.lookup_index(int.from_bytes(data[4:8], "little"))
    if entry is None or not isinstance(entry[1], Keypair):
        raise Rejected(Drop.UNKNOWN_INDEX)
    peer, keypair = entry
    if now - keypair.created >= REJECT_AFTER_TIME:
        raise Rejected(Drop.KEYPAIR_EXPIRED, peer=peer.public_key)
    try:
        plaintext = keypair.decrypt(data)
    except Rejected as refused:
        raise Rejected(refused.reason, peer=peer.public_key) from None

    # Authentic from here on.
    device.set_endpoint(peer, source)
    peer.rx_bytes += len(data)
    rotated = peer.keypairs.received_with(keypair)
    if rotated is not None:
        # The initiator used our new keypair: the handshake is complete on our side too.
        device.forget_keypairs(rotated)
        on.on_handshake_complete(device.schedule, peer, now + device.epoch_offset)
        device.emit(HandshakeCompleted(peer.public_key, is_initiator=False))
        send_staged_packets(device, peer, now)
    keep_key_fresh_on_receive(device, peer, now)
    on.on_any_authenticated_packet_received(device.schedule, peer)
    on.on_any_authenticated_packet_traversal(device.schedule, peer, now)
    if not plaintext:
        return  # a keepalive
    on.on_data_received(device.schedule, peer, now)
    packet, inner_source = inner_packet(plaintext)
    if device.allowed_ips.lookup(inner_source) is not peer:
        raise Rejected(Drop.UNALLOWED_SOURCE, str(ipaddress.ip_address(inner_source)), peer=peer.public_key)
    device.deliver(packet)


def inner_packet(plaintext: bytes) -> tuple[bytes, bytes]:
    """The IP packet inside a decrypted payload, without the padding, and its source address. Raises
    Rejected if it is not IPv4 or IPv6 or its length field does not fit (kernel "dishonest packet")."""
    version = plaintext[0] >> 4
    if version == 4 and len(plaintext) >= 20:
        length = int.from_bytes(plaintext[2:4], "big")
        if length < 20:
            raise Rejected(Drop.BAD_INNER_LENGTH)
        source = plaintext[12:16]
    elif version == 6 and len(plaintext) >= 40:
        length = 40 + int.from_bytes(plaintext[4:6], "big")
        source = plaintext[8:24]
    else:
        raise Rejected(Drop.NOT_IP)
    if length > len(plaintext):
        raise Rejected(Drop.BAD_INNER_LENGTH)
    return (plaintext[:length] if length < len(plaintext) else plaintext), source


def keep_key_fresh_on_receive(device: Device, peer: Peer, now: float) -> None:
    """An initiator whose session nears REJECT_AFTER_TIME and who is still receiving starts a handshake
    once, at REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT (165 s; section 6.2)."""
    keypair = peer.keypairs.current
    if (
        keypair is not None
        and keypair.is_initiator
        and now - keypair.created >= REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT
        and not peer.sent_lastminute_handshake
    ):
        peer.sent_lastminute_handshake = True
        send_handshake_initiation(device, peer, now)


_TRANSPORT_WORD = b"\x04\x00\x00\x00"
_from_bytes = int.from_bytes


def receive_batch(device: Device, datagrams: list, now: float) -> None:
    """Many datagrams at once, with the same outcome as ``receive_datagram`` on each in turn.

    The common case, a transport message under a confirmed keypair from the peer's known endpoint, is
    handled inline: decrypt, replay check, inner-source check, deliver. Timer bookkeeping is done once
    per peer per batch, which is exact because every timer hook is idempotent for one ``now`` (except
    ``on_data_received``, whose second call sets ``need_another_keepalive``: it is called twice when a
    batch holds two or more data packets for a peer). Anything else goes through the general path.
    """
    indices = device._indices
    lookup_source = device.allowed_ips.lookup
    deliver = device._packets.append
    data_packets: dict[Peer, int] = {}
    last_source, last_owner = None, None  # the allowed-IPs answer for the last inner source (a flow repeats it)
    for data, source in datagrams:
        entry = None
        if len(data) >= TRANSPORT_MIN_SIZE and data[:4] == _TRANSPORT_WORD:
            entry = indices.get(_from_bytes(data[4:8], "little"))
        if entry is None or entry[0].endpoint != source:
            if data_packets:   # a handshake may send or clear timers: first what the run so far owes
                _batch_timers(device, data_packets, now)
            device.receive_datagram(data, source, now)
            continue
        peer, keypair = entry
        if type(keypair) is not Keypair or keypair is peer.keypairs.next or now - keypair.created >= REJECT_AFTER_TIME:
            if data_packets:
                _batch_timers(device, data_packets, now)
            device.receive_datagram(data, source, now)  # handshakes, confirmations, expiry: the long way
            continue
        try:
            plaintext = keypair.decrypt(data)
            peer.rx_bytes += len(data)
            count = data_packets.get(peer, 0)
            if not plaintext:
                data_packets[peer] = count
                continue
            data_packets[peer] = count + 1
            packet, inner_source = inner_packet(plaintext)
            if inner_source != last_source:
                last_source, last_owner = inner_source, lookup_source(inner_source)
            if last_owner is not peer:
                raise Rejected(Drop.UNALLOWED_SOURCE, str(ipaddress.ip_address(inner_source)), peer=peer.public_key)
        except Rejected as refused:
            device.drop(refused.reason, peer.public_key, source, refused.detail)
            continue
        deliver(packet)
    _batch_timers(device, data_packets, now)


def _batch_timers(device: Device, data_packets: dict, now: float) -> None:
    """The timer bookkeeping ``receive_transport`` does per packet, once per peer for a run of the fast
    path; emptied, so a datagram on the general path finds the timers as one-at-a-time would leave them."""
    schedule = device.schedule
    for peer, count in data_packets.items():
        keep_key_fresh_on_receive(device, peer, now)
        on.on_any_authenticated_packet_received(schedule, peer)
        on.on_any_authenticated_packet_traversal(schedule, peer, now)
        for _ in range(min(count, 2)):
            on.on_data_received(schedule, peer, now)
    data_packets.clear()
