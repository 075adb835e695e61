"""The device: a WireGuard interface's protocol state, sans-IO (kernel device.c, peer.c).

The runtime feeds it three kinds of input and pulls three kinds of output::

    device.send_packets([ip_packet, ...], now)                 IP packets from the TUN side
    device.receive_datagrams([(data, source, local), ...], now)  UDP datagrams; never raises on them
    device.handle_timer(now)                                   when now >= device.next_deadline()

    device.datagrams_to_send()  -> [(bytes, endpoint)]   (send from device.reply_source(endpoint))
    device.packets_to_deliver() -> [bytes]                IP packets for the TUN side
    device.events()             -> [Event]

``send_packet`` and ``receive_datagram`` take one of each, as a batch of one. ``now`` is seconds on a
monotonic clock. Wall-clock time (for TAI64N timestamps and the last-handshake time) is
``now + epoch_offset``; randomness (keys, indices, cookie secrets, jitter) comes from ``rng``. Endpoints
are whatever tuples the runtime's sockets use, ``(host, port, ...)``, and ``local`` whatever names the
address a datagram reached; the core only compares them and reads an endpoint's address and port.

The parts the protocol code in send.py and receive.py works on are public attributes: ``indices``
(index_table.py), ``output`` (output.py), ``schedule`` (timers.py), ``handshake_queue``, ``cookie_checker``,
``ratelimiter``, ``allowed_ips``, ``peers``, ``to_prepare``.

One more input is optional: ``device.prepare_handshakes()`` when the runtime has nothing else to do,
while ``device.to_prepare`` is not empty, does the next handshake messages' work ahead of time
(prepare.py), so a first packet waits less for its session.
"""

from __future__ import annotations

from collections.abc import Callable

from .allowedips import AllowedIPs
from .constants import (
    HANDSHAKES_PER_CALL,
    MAX_TIMER_HANDSHAKES,
    REJECT_AFTER_TIME,
    KEEPALIVE_TIMEOUT,
    MessageType,
)
from .errors import Drop, Rejected
from .events import (EndpointChanged, Event, HandshakeGaveUp, KeyRotated, KeysZeroed, PeerAdded, PeerRemoved,
                     PreviousKeyRetired, PrivateKeyChanged, SessionExpired, UnderLoad)
from .handshake_queue import HandshakeQueue
from .index_table import IndexTable
from .output import Output
from .ratelimiter import RateLimiter
from .timers import Schedule, Timer, jitter_source

from .constants import DEFAULT_MTU

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from .crypto import PrivateKey, Rng
    from .keylog import KeylogEntry
    from .rotation import Rotation

# The protocol, send.py and receive.py with the peers, handshakes, messages and cookies they build on,
# is loaded with the device's first key, peer or packet (_load_protocol), not with the device: an idle
# daemon answers its UAPI socket sooner and holds less (benchmarks/bench_startup.py).
send = receive = prepare = Peer = CookieChecker = None

RATELIMITER_COLLECTION_PERIOD = 1.0  # seconds between sweeps of idle sources, while any are tracked


class Device:
    """One WireGuard interface: a private key, its peers, and everything in flight between them."""

    def __init__(
        self,
        private_key: PrivateKey | None = None,
        *,
        rng: Rng,
        epoch_offset: float = 0.0,
        mtu: int = DEFAULT_MTU,
    ) -> None:
        self.rng = rng
        self.epoch_offset = epoch_offset
        self.mtu = mtu
        self.listen_port = 0
        self.fwmark = 0
        self.peers: dict[bytes, Peer] = {}
        self.allowed_ips: AllowedIPs[Peer] = AllowedIPs()
        self.schedule = Schedule(jitter_source(rng))
        self.ratelimiter = RateLimiter()
        self._next_collection = 0.0
        self._private_key: PrivateKey | None = None
        self.cookie_checker: CookieChecker | None = None
        # The old identity during a key rotation's grace (rotation.py); None otherwise.
        self.rotation: Rotation | None = None
        self.indices = IndexTable(rng)
        self.output = Output()
        self.handshake_queue = HandshakeQueue()
        # Peers whose next handshake messages are not prepared yet (prepare.py), oldest first.
        self.to_prepare: dict[Peer, None] = {}
        self._queued_since = 0.0     # when the oldest queued handshake message arrived: its deadline
        self._was_under_load = False
        # Endpoint -> the local address a peer there last reached us on, from authenticated input only:
        # replies leave from it ("sticky sockets"; the kernel's endpoint.src, wireguard-go's StdNetEndpoint.src).
        self._reply_sources: dict[tuple, object] = {}
        # reply_source(endpoint) -> the local address to send to endpoint from, as the runtime gave it with
        # authenticated input from there; None when routing should choose (the dict's own get: the receive
        # path asks it for every datagram).
        self.reply_source: Callable[[tuple], object] = self._reply_sources.get
        # Off unless asked: when on, each ephemeral key we generate is kept for a key log (keylog.py).
        self.keylog_enabled = False
        if private_key is not None:
            self.set_private_key(private_key)

    # ------------------------------------------------------------------------------ configuration

    @property
    def private_key(self) -> PrivateKey | None:
        return self._private_key

    @property
    def drops(self):
        """How many inputs were refused, by :class:`Drop` reason (a Counter)."""
        return self.output.drops

    def set_private_key(self, private_key: PrivateKey | None) -> None:
        """Change the device's identity. As in wireguard-go: a peer with the new public key is removed,
        and every peer's handshake and sending keys are expired, since they belong to the old identity.
        A rotation in progress ends without its grace: the old identity is forgotten too."""
        if private_key == self._private_key:
            return
        self.rotation = None
        self._private_key = private_key
        self.output.emit(PrivateKeyChanged(private_key.public if private_key is not None else None))
        if private_key is not None and CookieChecker is None:
            _load_protocol()
        self.cookie_checker = CookieChecker(private_key.public, self.rng) if private_key else None
        if private_key is not None and private_key.public in self.peers:
            self.remove_peer(private_key.public)
        for peer in self.peers.values():
            self._precompute_static_static(peer)
            self.indices.forget_handshake(peer)
            for keypair in (peer.keypairs.current, peer.keypairs.next):
                if keypair is not None:
                    keypair.expire_sending()

    def rotate_private_key(self, private_key: PrivateKey, grace: float, now: float) -> None:
        """Change the device's identity without an outage (a wgpy extension; rotation.py, docs/rotation.md):
        sessions stay up, and for ``grace`` seconds the old key still answers the handshakes addressed to
        it and initiates to the peers that know only it. A second rotation during a grace replaces the
        first: the identity being left is then the one kept. Without a current key, or with the same
        one, this is ``set_private_key``."""
        from .rotation import Rotation, check_grace

        grace = check_grace(grace)
        previous = self._private_key
        if previous is None or private_key == previous:
            self.set_private_key(private_key)
            return
        if CookieChecker is None:
            _load_protocol()
        self._private_key = private_key
        self.cookie_checker = CookieChecker(private_key.public, self.rng)
        self.rotation = Rotation(previous, CookieChecker(previous.public, self.rng), now + grace)
        if private_key.public in self.peers:
            self.remove_peer(private_key.public)
        for peer in self.peers.values():
            self._precompute_static_static(peer)   # for the new key; the old one's handshakes compute theirs
        self.output.emit(PrivateKeyChanged(private_key.public))
        self.output.emit(KeyRotated(previous.public, private_key.public, now + grace))
        if grace == 0:
            self.end_rotation(now)

    def set_rotation_grace(self, grace: float, now: float) -> None:
        """End the rotation in progress ``grace`` seconds from ``now`` instead (0: at once), say once every
        peer has the new key. ValueError without a rotation in progress."""
        from .rotation import check_grace

        grace = check_grace(grace)
        if self.rotation is None:
            raise ValueError("no key rotation in progress")
        self.rotation.ends = now + grace
        if grace == 0:
            self.end_rotation(now)

    def end_rotation(self, now: float) -> None:
        """End a rotation's grace now (``handle_timer`` calls it when the grace is over): forget the old
        identity, the handshakes pending under it, and the sessions of the peers whose last handshake it
        made (stricter than wireguard-go's key change, which only stops sending on them: a retired key
        authenticates nothing more); their next packet starts a handshake as the new identity."""
        rotation = self.rotation
        if rotation is None:
            return
        self.rotation = None
        old = rotation.previous.public
        for peer in self.peers.values():
            if peer.handshake is not None and peer.handshake.local.public == old:
                self.indices.forget_handshake(peer)
            if peer.local_identity == old:
                peer.local_identity = None
                self.indices.forget_keypairs(peer.keypairs.clear())
        self.output.emit(PreviousKeyRetired(old))

    def add_peer(self, public_key: bytes) -> Peer | None:
        """The peer with this public key, created if new; None for the device's own key (ignored, as
        wireguard-go does)."""
        if self._private_key is not None and public_key == self._private_key.public:
            return None
        peer = self.peers.get(public_key)
        if peer is None:
            if Peer is None:
                _load_protocol()
            peer = self.peers[public_key] = Peer(public_key)
            self._precompute_static_static(peer)
            self.output.emit(PeerAdded(public_key))
        return peer

    def _precompute_static_static(self, peer: Peer) -> None:
        """Compute the static-static DH with ``peer`` once, not in each handshake, where it would add one
        X25519 to each side's work before the first packet can go (kernel noise.c, wireguard-go's
        precomputedStaticStatic): about 0.07 ms off link-up to first reply. Called whenever the peer or our
        key changes, it also drops an initiation prepared for the old key and queues the peer to prepare."""
        peer.static_static = None
        peer.prepared_initiation = None   # written for the old key, if any
        self.to_prepare[peer] = None
        if self._private_key is not None:
            try:
                peer.static_static = self._private_key.exchange(peer.public_key)
            except Rejected:
                pass   # a low-order key: each handshake computes it again and is refused, as before

    def remove_peer(self, public_key: bytes) -> None:
        """Remove a peer with its sessions, allowed IPs, staged packets and timers."""
        peer = self.peers.pop(public_key, None)
        if peer is None:
            return
        self.indices.forget_handshake(peer)
        self.indices.forget_keypairs(peer.keypairs.clear())
        self.to_prepare.pop(peer, None)
        peer.prepared_initiation = peer.prepared_response = None
        self._clear_endpoint_source(peer)
        self.allowed_ips.remove_by_peer(peer)
        peer.staged.clear()
        peer.timers.clear()
        self.output.emit(PeerRemoved(public_key))

    def remove_all_peers(self) -> None:
        for public_key in list(self.peers):
            self.remove_peer(public_key)

    def send_staged_packets(self, peer: Peer, now: float) -> None:
        """Send what waits for ``peer`` now that its configuration changed (an endpoint, a key), or start
        the handshake it waits for (wireguard-go's ``handlePostConfig``)."""
        send.send_staged_packets(self, peer, now)

    def set_persistent_keepalive(self, peer: Peer, interval: int, now: float) -> None:
        """Set a peer's persistent keepalive interval (seconds, 0 = off); turning it on sends a keepalive
        at once, as wireguard-go does, so that a peer behind NAT becomes reachable."""
        if not 0 <= interval <= 65535:
            raise ValueError("persistent keepalive interval is 0..65535 seconds")
        was = peer.persistent_keepalive_interval
        peer.persistent_keepalive_interval = interval
        if interval == 0:
            Schedule.clear(peer, Timer.PERSISTENT_KEEPALIVE)
        elif not was and self._private_key is not None:
            send.send_keepalive(self, peer, now)

    # ------------------------------------------------------------------------------ input

    def send_packet(self, packet: bytes, now: float) -> None:
        """Route an IP packet from the TUN side to its peer by destination address (cryptokey routing),
        stage it, and send it now or after a handshake."""
        self.send_packets([packet], now)

    def receive_datagram(self, data: bytes, source: tuple, now: float, local: object = None) -> None:
        """Handle one datagram from ``source`` that reached us at ``local`` (the runtime's name for one of
        its own addresses, or None). Whatever it holds, this never raises: a refused datagram is counted
        in ``drops`` and reported as a PacketDropped event with its reason."""
        self.receive_datagrams([(data, source, local)], now)

    def send_packets(self, packets: list[bytes], now: float) -> None:
        """``send_packet`` for a batch read from the TUN side in one go."""
        if send is None:
            _load_protocol()
        send.send_packets(self, packets, now)

    def receive_datagrams(self, datagrams: list[tuple[bytes, tuple, object]], now: float) -> None:
        """Datagrams ``(data, source, local)`` read in one go; never raises on network input. Transport
        data is handled at once; handshake messages that pass MAC1 join the handshake queue, and up to
        HANDSHAKES_PER_CALL of those waiting are handled after the batch (handshake_queue.py)."""
        if receive is None:
            _load_protocol()
        queue = self.handshake_queue
        waiting = len(queue)
        receive.receive_batch(self, datagrams, now)
        if queue:
            if not waiting:
                self._queued_since = now
            self._handle_handshakes(now)

    def prepare_handshakes(self, limit: int = 1) -> None:
        """Prepare the next handshake messages of up to ``limit`` peers in ``to_prepare`` (prepare.py),
        about 0.1 ms each: for the runtime to call when it would otherwise wait. A bug while preparing
        empties ``to_prepare`` before it propagates: what is left is computed when due, and a runtime that
        calls this while ``to_prepare`` is not empty cannot end up retrying it without sleeping."""
        to_prepare = self.to_prepare
        for _ in range(min(limit, len(to_prepare))):
            peer = next(iter(to_prepare))
            del to_prepare[peer]
            try:
                prepare.prepare(self, peer)
            except Exception:
                to_prepare.clear()
                raise

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now`` (section 6), handle more of the handshake queue, and forget
        rate-limited sources gone quiet."""
        for peer, timer in self.schedule.expired(now):
            if peer.public_key in self.peers:
                self._EXPIRE[timer](self, peer, now)
        self._handle_handshakes(now)
        if self.rotation is not None and now >= self.rotation.ends:
            self.end_rotation(now)
        if self._was_under_load and now >= self.handshake_queue.under_load_until:
            self._was_under_load = False
            self.output.emit(UnderLoad(False))
        if self.ratelimiter and now >= self._next_collection:
            self.ratelimiter.collect(now)
            self._next_collection = now + RATELIMITER_COLLECTION_PERIOD

    def next_deadline(self) -> float | None:
        """When ``handle_timer`` should next be called; None when no timer is pending. While handshake
        messages wait in the queue, that is now (the time the oldest arrived)."""
        deadline = self.schedule.next_deadline()
        if self.handshake_queue and (deadline is None or self._queued_since < deadline):
            deadline = self._queued_since
        if self.ratelimiter and (deadline is None or self._next_collection < deadline):
            deadline = self._next_collection
        if self._was_under_load and (deadline is None or self.handshake_queue.under_load_until < deadline):
            deadline = self.handshake_queue.under_load_until   # to say the load is over
        if self.rotation is not None and (deadline is None or self.rotation.ends < deadline):
            deadline = self.rotation.ends
        return deadline

    def _handle_handshakes(self, now: float) -> None:
        """Handle up to HANDSHAKES_PER_CALL queued handshake messages, under load while the queue is deep."""
        queue = self.handshake_queue
        for _ in range(min(len(queue), HANDSHAKES_PER_CALL)):
            under_load = queue.under_load(now)
            if under_load != self._was_under_load:
                self._was_under_load = under_load
                self.output.emit(UnderLoad(under_load))
            data, kind, source, local = queue.pop()
            try:
                if kind == MessageType.COOKIE_REPLY:
                    receive.receive_cookie_reply(self, data, now)
                else:
                    receive.receive_handshake(self, data, kind, source, local, now, under_load)
            except Rejected as refused:
                self.output.drop(refused.reason, refused.peer, source, refused.detail)
        if queue:
            self._queued_since = now

    # ------------------------------------------------------------------------------ output

    def datagrams_to_send(self) -> list[tuple[bytes, tuple]]:
        """The datagrams made since the last call, each with the endpoint to send it to."""
        return self.output.datagrams()

    def packets_to_deliver(self) -> list[bytes]:
        """The IP packets received since the last call, for the TUN side."""
        return self.output.packets()

    def events(self) -> list[Event]:
        """What happened since the last call (the newest MAX_EVENTS)."""
        return self.output.events()

    def keylog_entries(self) -> list[KeylogEntry]:
        """The session secrets of each handshake message we sent since the last call, for a Wireshark key
        log; always empty unless ``keylog_enabled`` was set. They are secrets: write them only on purpose."""
        return self.output.keylog()

    # ------------------------------------------------------------------------------ timers expiring

    def _expire_retransmit_handshake(self, peer: Peer, now: float) -> None:
        """No response to our initiation within REKEY_TIMEOUT: try again, up to REKEY_ATTEMPT_TIME."""
        if peer.handshake_attempts > MAX_TIMER_HANDSHAKES:
            Schedule.clear(peer, Timer.SEND_KEEPALIVE)
            for _ in range(len(peer.staged)):
                self.output.drop(Drop.HANDSHAKE_GAVE_UP, peer.public_key)
            peer.staged.clear()
            self.output.emit(HandshakeGaveUp(peer.public_key))
            if not Schedule.pending(peer, Timer.ZERO_KEY_MATERIAL):
                self.schedule.set(peer, Timer.ZERO_KEY_MATERIAL, now + 3 * REJECT_AFTER_TIME)
            return
        peer.handshake_attempts += 1
        # The address we reply from may be why no answer came: let routing choose it again (kernel).
        self._clear_endpoint_source(peer)
        send.send_handshake_initiation(self, peer, now, is_retry=True)

    def _expire_send_keepalive(self, peer: Peer, now: float) -> None:
        """We received data and sent nothing back for KEEPALIVE_TIMEOUT: send a keepalive."""
        send.send_keepalive(self, peer, now)
        if peer.need_another_keepalive:
            peer.need_another_keepalive = False
            self.schedule.set(peer, Timer.SEND_KEEPALIVE, now + KEEPALIVE_TIMEOUT)

    def _expire_new_handshake(self, peer: Peer, now: float) -> None:
        """We sent data and heard nothing for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT: start a new handshake."""
        self._clear_endpoint_source(peer)
        send.send_handshake_initiation(self, peer, now)

    def _expire_zero_key_material(self, peer: Peer, now: float) -> None:
        """Nothing new for 3 x REJECT_AFTER_TIME: erase every key of this peer."""
        self.indices.forget_handshake(peer)
        self.indices.forget_keypairs(peer.keypairs.clear())
        self.output.emit(KeysZeroed(peer.public_key))

    def _expire_persistent_keepalive(self, peer: Peer, now: float) -> None:
        if peer.persistent_keepalive_interval:
            send.send_keepalive(self, peer, now)

    def _expire_session(self, peer: Peer, now: float) -> None:
        keypair = peer.keypairs.current
        if keypair is not None and now - keypair.created >= REJECT_AFTER_TIME:
            self.output.emit(SessionExpired(peer.public_key))

    _EXPIRE: dict[Timer, Callable[[Device, Peer, float], None]] = {
        Timer.RETRANSMIT_HANDSHAKE: _expire_retransmit_handshake,
        Timer.SEND_KEEPALIVE: _expire_send_keepalive,
        Timer.NEW_HANDSHAKE: _expire_new_handshake,
        Timer.ZERO_KEY_MATERIAL: _expire_zero_key_material,
        Timer.PERSISTENT_KEEPALIVE: _expire_persistent_keepalive,
        Timer.SESSION_EXPIRY: _expire_session,
    }

    # ------------------------------------------------------------------------------ where a peer is

    def set_endpoint(self, peer: Peer, source: tuple, local: object = None) -> None:
        """Roaming (section 2.1): the peer is where its latest authenticated packet came from, and we
        reply from the address that packet reached (``local``; None lets routing choose). Call it only
        for authenticated input, or for an endpoint the configuration gives (without ``local``)."""
        sources = self._reply_sources
        if peer.endpoint != source:
            if peer.endpoint is not None:
                sources.pop(peer.endpoint, None)
            peer.endpoint = source
            self.output.emit(EndpointChanged(peer.public_key, source))
        if local is None:
            sources.pop(source, None)
        else:
            sources[source] = local

    def _clear_endpoint_source(self, peer: Peer) -> None:
        """Forget the address we reply to ``peer`` from (kernel ``wg_socket_clear_peer_endpoint_src``)."""
        if peer.endpoint is not None:
            self._reply_sources.pop(peer.endpoint, None)

    def forget_reply_source(self, endpoint: tuple) -> None:
        """The runtime could not send from the address ``reply_source`` gave (it is gone): forget it."""
        self._reply_sources.pop(endpoint, None)


def _load_protocol() -> None:
    global send, receive, prepare, Peer, CookieChecker
    from . import prepare, receive, send
    from .cookie import CookieChecker
    from .peer import Peer
