"""Everything a device receives: handshake messages, cookie replies and transport data (kernel receive.c).

Each function raises :class:`~wgpy.core.errors.Rejected` for input it refuses; ``Device.receive_datagram``
turns that into a counted drop, so nothing here changes state before the input has proven itself.
"""

from __future__ import annotations


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
from .cookie import source_bytes
from .crypto import PrivateKey
from .errors import Drop, Rejected
from .events import CookieReceived, HandshakeCompleted
from .keypairs import Keypair
from .messages import ZERO_MAC, CookieReply, Initiation, Response, check_size, message_type
from .peer import InitiationSent, Peer
from .rotation import addressed_identity
from .send import send_handshake_initiation, send_handshake_response, send_keepalive, send_staged_packets

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from .device import Device


def queue_handshake(device: Device, data: bytes, kind: MessageType, source: tuple, local: object, now: float) -> None:
    """Check a handshake message's size and MAC1, then queue it for ``receive_handshake`` (or a cookie
    reply for ``receive_cookie_reply``); handshake_queue.py says why there is a queue. Only what passes
    MAC1 is queued, so random bytes cost one BLAKE2s and never count toward the load. A full queue takes
    only a message whose MAC2 proves its source; anything else it refuses before any MAC is computed, so a
    flood costs as little as it can once the queue is full."""
    if device.private_key is None:
        raise Rejected(Drop.NO_PRIVATE_KEY)
    check_size(data, kind)
    queue = device.handshake_queue
    checker = device.cookie_checker
    item = (data, kind, source, local)
    if not queue.full:
        if kind != MessageType.COOKIE_REPLY and not checker.check_mac1(data):
            if device.rotation is None or not device.rotation.checker.check_mac1(data):
                raise Rejected(Drop.BAD_MAC1)
        queue.push(item)
        return
    # Full: a zero MAC2 proves nothing (and costs nothing to see).
    if kind == MessageType.COOKIE_REPLY or data[-16:] == ZERO_MAC:
        device.output.drop(Drop.HANDSHAKE_QUEUE_FULL, None, source)
        return
    addressed = addressed_identity(device.private_key, checker, device.rotation, data)
    if addressed is None:
        raise Rejected(Drop.BAD_MAC1)
    if not addressed[1].check_mac2(data, source, now):
        device.output.drop(Drop.HANDSHAKE_QUEUE_FULL, None, source)
        return
    evicted = queue.push_proven(item)
    device.output.drop(Drop.HANDSHAKE_QUEUE_FULL, None, evicted[2])


def receive_handshake(device: Device, data: bytes, kind: MessageType, source: tuple, local: object, now: float,
                      under_load: bool) -> None:
    """A queued initiation or response (its MAC1 already checked): under load, ask for the cookie and
    keep to the rate; then run the handshake (kernel ``wg_receive_handshake_packet``)."""
    private_key = device.private_key
    if private_key is None:
        raise Rejected(Drop.NO_PRIVATE_KEY)
    checker = device.cookie_checker
    if device.rotation is not None:
        # Rotating: MAC1 says which identity the sender knows (checked when queued; the grace may have
        # ended since). Outside a rotation the queue's check stands.
        addressed = addressed_identity(private_key, checker, device.rotation, data)
        if addressed is None:
            raise Rejected(Drop.BAD_MAC1)
        private_key, checker = addressed
    if under_load:
        cookie = checker.cookie(source, now)
        if not checker.check_mac2(data, source, now, cookie):
            # Section 5.3: prove your address first. The reply costs one MAC and one AEAD call.
            device.output.send((checker.reply(data, cookie), source))
            device.output.drop(Drop.COOKIE_REPLY_SENT, None, source)
            return
        if not device.ratelimiter.allow(source_bytes(source)[:-2], now):
            raise Rejected(Drop.RATE_LIMITED)
    message = Initiation.parse(data) if kind == MessageType.INITIATION else Response.parse(data)

    if isinstance(message, Initiation):
        peer, consumed = _consume_initiation(device, private_key, message, now)
        device.set_endpoint(peer, source, local)
        send_handshake_response(device, peer, consumed, message.sender_index, now, private_key)
    else:
        peer = _consume_response(device, message, now)
        device.set_endpoint(peer, source, local)
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
    # The precomputed static-static DH belongs to the device's current key; an initiation addressed to
    # the key a rotation is leaving (rotation.py) computes its own.
    known = (lambda public: _static_static(device.peers, public)) if local is device.private_key else None
    consumed = noise.consume_initiation(local, message, static_static=known)
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
    peer.local_identity = local.public   # the peer knows us by this key
    return peer, consumed


def _static_static(peers: dict, public_key: bytes) -> bytes | None:
    """The precomputed static-static DH with the peer that has ``public_key``, if it is one of ours."""
    peer = peers.get(public_key)
    return peer.static_static if peer is not None else None


def _consume_response(device: Device, message: Response, now: float) -> Peer:
    """Finish the handshake we initiated: the response must answer our pending initiation, and is read
    with the identity that initiation was sent as."""
    entry = device.indices.lookup(message.receiver_index)
    if entry is None or not isinstance(entry[1], InitiationSent) or entry[0].handshake is not entry[1]:
        raise Rejected(Drop.NO_MATCHING_INITIATION)
    peer, pending = entry
    keys = noise.consume_response(pending.state, pending.local, message, peer.preshared_key)
    # Success: the initiation's index now names the session.
    peer.handshake = None
    peer.local_identity = pending.local.public   # the peer knows us by this key
    keypair = Keypair(keys, pending.local_index, message.sender_index, now)
    device.indices.register(pending.local_index, peer, keypair)
    device.indices.forget_keypairs(peer.keypairs.add(keypair))
    on.on_session_derived(device.schedule, peer, now)
    on.on_handshake_complete(device.schedule, peer, now + device.epoch_offset)
    device.output.emit(HandshakeCompleted(peer.public_key, is_initiator=True))
    return peer


def receive_cookie_reply(device: Device, data: bytes, now: float) -> None:
    """Keep the cookie a loaded peer sent us; the next retransmission carries MAC2 (section 5.4.7)."""
    reply = CookieReply.parse(data)
    entry = device.indices.lookup(reply.receiver_index)
    if entry is None:
        raise Rejected(Drop.UNKNOWN_INDEX)
    peer = entry[0]
    try:
        peer.cookie.consume_reply(reply, now)
    except Rejected as refused:
        raise Rejected(refused.reason, refused.detail, peer=peer.public_key) from None
    device.output.emit(CookieReceived(peer.public_key))


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
    """Datagrams ``(data, source, local)`` read in one go (kernel ``wg_packet_receive`` and
    ``wg_packet_consume_data_done``). Transport messages are consumed here, in order: decrypt (the replay
    window inside), roam, confirm a responder's new session, deliver the inner packet if its source
    address belongs to the sending peer (cryptokey routing, section 2). Handshake messages and cookie
    replies are checked and queued (``queue_handshake``) for the device to handle after the batch.
    ``local`` is the address the datagram reached us on, opaque here.

    A peer's timer bookkeeping is recorded per batch and settled at its end, once per peer: exact, because
    every hook is idempotent for one ``now`` except ``on_data_received``, whose second call sets
    ``need_another_keepalive`` (it is called twice when a batch holds two or more data packets). What a
    peer owes is settled first when one of its packets confirms a new session, since that sends.
    """
    lookup_index = device.indices.lookup
    reply_source = device.reply_source
    lookup_source = device.allowed_ips.lookup
    deliver = device.output.deliver
    received: dict[Peer, int] = {}   # peer -> data packets in this batch (keepalives count 0)
    last_source, last_owner = None, None  # the allowed-IPs answer for the last inner source (a flow repeats it)
    last_index, entry = None, None   # the index table's answer for the last receiver index (so does a session)
    for data, source, local in datagrams:
        if len(data) < TRANSPORT_MIN_SIZE or data[:4] != _TRANSPORT_WORD:
            _receive_general(device, data, source, local, now)
            continue
        index = data[4:8]
        if index != last_index:
            last_index, entry = index, lookup_index(_from_bytes(index, "little"))
        if entry is None or type(entry[1]) is not Keypair:
            device.output.drop(Drop.UNKNOWN_INDEX, None, source)
            continue
        peer, keypair = entry
        try:
            if now - keypair.created >= REJECT_AFTER_TIME:
                raise Rejected(Drop.KEYPAIR_EXPIRED)
            plaintext = keypair.decrypt(data)
            # Authentic from here on: the peer is where this came from, and we answer from where it arrived.
            if peer.endpoint != source or reply_source(source) != local:
                device.set_endpoint(peer, source, local)
            peer.rx_bytes += len(data)
            if keypair is peer.keypairs.next:
                if peer in received:
                    _settle_timers(device, {peer: received.pop(peer)}, now)
                _confirm_session(device, peer, keypair, now)
                last_index = None   # the confirmation may have retired a keypair: look indices up afresh
            if not plaintext:
                received[peer] = received.get(peer, 0)   # a keepalive
                continue
            received[peer] = received.get(peer, 0) + 1
            # The IP packet inside, without its padding, and its source address (inner_packet, inlined for
            # the common case of an IPv4 header without options).
            if plaintext[0] == 0x45 and len(plaintext) >= 20:
                length = _from_bytes(plaintext[2:4], "big")
                if length < 20 or length > len(plaintext):
                    raise Rejected(Drop.BAD_INNER_LENGTH)
                packet = plaintext[:length] if length < len(plaintext) else plaintext
                inner_source = plaintext[12:16]
            else:
                packet, inner_source = inner_packet(plaintext)
            if inner_source != last_source:
                last_source, last_owner = inner_source, lookup_source(inner_source)
            if last_owner is not peer:
                import ipaddress   # only here: its import costs the daemon's start-up (bench_startup.py)

                raise Rejected(Drop.UNALLOWED_SOURCE, str(ipaddress.ip_address(inner_source)))
        except Rejected as refused:
            device.output.drop(refused.reason, peer.public_key, source, refused.detail)
            continue
        deliver(packet)
    _settle_timers(device, received, now)


def _confirm_session(device: Device, peer: Peer, keypair: Keypair, now: float) -> None:
    """The initiator's first packet under our new keypair: the handshake is complete on our side too, and
    what waited for it goes out (whitepaper 5.4.6: the responder may not send before this)."""
    device.indices.forget_keypairs(peer.keypairs.received_with(keypair))
    on.on_handshake_complete(device.schedule, peer, now + device.epoch_offset)
    device.output.emit(HandshakeCompleted(peer.public_key, is_initiator=False))
    send_staged_packets(device, peer, now)


def _receive_general(device: Device, data: bytes, source: tuple, local: object, now: float) -> None:
    """A datagram that is not a well-formed transport message: a handshake message or cookie reply to
    queue, or something to refuse by name."""
    try:
        kind = message_type(data)
        if kind == MessageType.TRANSPORT:
            raise Rejected(Drop.TOO_SHORT)
        queue_handshake(device, data, kind, source, local, now)
    except Rejected as refused:
        device.output.drop(refused.reason, refused.peer, source, refused.detail)


def _settle_timers(device: Device, received: dict, now: float) -> None:
    """What authenticated transport owes the timers (section 6), once per peer: ``received`` maps each
    peer to how many data packets (not keepalives) it sent in the batch."""
    schedule = device.schedule
    for peer, count in received.items():
        keep_key_fresh_on_receive(device, peer, now)
        on.on_any_authenticated_packet_received(schedule, peer)
        on.on_any_authenticated_packet_traversal(schedule, peer, now)
        if count:
            on.on_data_received(schedule, peer, now)
            if count > 1:
                on.on_data_received(schedule, peer, now)
