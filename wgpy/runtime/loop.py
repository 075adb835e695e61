"""The event loop: one thread, one ``poll`` over the TUN device, the UDP sockets and the UAPI socket.

One thread because ``cryptography``'s AEAD holds the GIL: a thread per direction measured slower on two
cores (../shared/PERFORMANCE-NOTES.md). Each wake-up reads a batch from whatever is ready, hands it to the
device, runs due timers, then writes out everything the device produced.

The loop stops (and the daemon exits, removing its socket) when the interface is deleted, when the UAPI
socket file is removed, or on SIGTERM/SIGINT. Never because of its own bug (h11's error strategy): any
other exception is caught in one place for each kind of input, a UAPI operation (``UapiConnection``
answers it ``-EIO``) or whatever one wake-up handles (:meth:`Runtime._contain`), logged with its
traceback, counted in :attr:`Runtime.bugs`, and what it was handling is dropped.
"""

from __future__ import annotations

import _signal
import _socket  # socket.socket's C type, without socket.py: see docs/performance.md, "Start-up"
import collections
import os
import select
import time

from ..core.constants import MAX_TIMER_HANDSHAKES, REJECT_AFTER_TIME
from ..core.device import Device
from ..core.encoding import key_to_base64
from ..core.events import (
    CookieReceived,
    EndpointChanged,
    HandshakeCompleted,
    HandshakeGaveUp,
    HandshakeInitiated,
    HandshakeResponded,
    KeyRotated,
    KeysZeroed,
    PacketDropped,
    PreviousKeyRetired,
    PeerAdded,
    PeerRemoved,
    PrivateKeyChanged,
    SessionExpired,
    UnderLoad,
)
from ..core.errors import Drop
from ..uapi import IpcLock, UapiConnection, format_endpoint
from .log import DEBUG, log
from .reresolve import UNANSWERED_ATTEMPT, Kept, Move, Reresolver
from .tun import Tun
from . import steering
from .udp import Udp
from .uapi_socket import MAX_CLIENTS, READ_SIZE, UapiServer

BATCH = 64                # packets or datagrams read per wake-up and source
HOUSEKEEPING_PERIOD = 1.0  # seconds between checks of the interface, the socket file and the MTU

MAX_PENDING_REPLY = 1 << 20  # bytes of answers a UAPI client may leave unread before we stop reading it
BUG_LOG_PERIOD = 1.0  # seconds: at most one traceback per kind of input this often; the others are counted
# A long UAPI operation is applied (or answered) in slices of UAPI_SLICE lines, for at most UAPI_SLICE_TIME
# seconds per wake-up, with the packets that came meanwhile read in between. An allowed_ip line costs
# about 3 us, a section that starts a handshake about 150 us.
UAPI_SLICE = 256
UAPI_SLICE_TIME = 0.004
SIGNAL_NAMES = {_signal.SIGTERM: "SIGTERM", _signal.SIGINT: "SIGINT"}  # the two the loop takes over


class _Client:
    """One UAPI connection: its socket, its protocol state, and answers not yet taken."""

    __slots__ = ("socket", "connection", "pending", "closing", "last_active")

    def __init__(self, sock: _socket.socket, connection: UapiConnection, now: float) -> None:
        self.socket = sock
        self.connection = connection
        self.pending = bytearray()
        self.closing = False
        self.last_active = now   # when it was accepted or last sent us something

    @property
    def idle(self) -> bool:
        """Nothing of an operation received and nothing to write: closing it loses no work."""
        return not (self.pending or self.closing) and self.connection.idle


def _packed(host: str) -> bytes:
    family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
    return _socket.inet_pton(family, host.partition("%")[0])


def _uniform() -> float:
    """A number in [0, 1), for the jitter of periodic lookups (without importing ``random``)."""
    return int.from_bytes(os.urandom(7), "big") / (1 << 56)


def peer_name(public_key: bytes) -> str:
    """How logs name a peer: the first characters of its base64 public key, as wireguard-go does."""
    text = key_to_base64(public_key)
    return f"peer({text[:4]}…{text[-5:-1]})"


class Runtime:
    def __init__(self, device: Device, tun: Tun, udp: Udp, uapi: UapiServer) -> None:
        self.device = device
        self.tun = tun
        self.udp = udp
        udp.reply_sources = device  # replies leave from where authenticated input arrived (core's verdict)
        self.uapi = uapi
        self.clients: dict[int, _Client] = {}
        self._uapi_lock = IpcLock()                 # one UAPI operation at a time, as wireguard-go's ipcMutex
        self._working: dict[int, None] = {}         # clients with an operation to go on with, in turn
        self.stopping = ""
        self._wakeup_r, self._wakeup_w = os.pipe()
        os.set_blocking(self._wakeup_r, False)
        os.set_blocking(self._wakeup_w, False)
        self._poll = select.poll()
        self._udp_by_fd: dict[int, _socket.socket] = {}
        self.keylog = None  # a KeylogFile when WGPY_KEYLOG asks for one (daemon.py)
        self.health = None  # a health.PollHealthServer when --health asks for one (daemon.py)
        self._queue_full_drops = 0  # handshake messages the full queue refused this second: logged as one line
        self.bugs: collections.Counter[str] = collections.Counter()  # exceptions survived, by what raised them
        self._bug_logged: dict[str, float] = {}
        # Host-name endpoints (wgpy_endpoint_host) looked up again while running: reresolve.py's rule,
        # resolver.py's threads (started with the first lookup).
        self.reresolver = Reresolver(_uniform)
        self.resolver = None
        self._names_stale = True   # a UAPI operation ran since the names were last read from the peers

    # ------------------------------------------------------------------------------ set-up

    def bind(self, port: int, fwmark: int) -> int:
        """The UAPI's hook for ``listen_port`` and ``fwmark``: reopen the UDP sockets. When that fails (the
        port is taken) the old sockets stay open, and the device's port stays the one they are bound to."""
        for fd in self._udp_by_fd:
            self._poll.unregister(fd)
        try:
            bound = self.udp.bind(port, fwmark)
        except OSError:
            self.device.listen_port = self.udp.port if self.udp.sockets else 0   # what get reports is true
            raise
        finally:
            self._udp_by_fd = {s.fileno(): s for s in self.udp.sockets}
            for fd in self._udp_by_fd:
                self._poll.register(fd, select.POLLIN)
        self.device.listen_port = bound
        self.device.fwmark = fwmark
        return bound

    def _stop(self, reason: str) -> None:
        if not self.stopping:
            self.stopping = reason

    def _on_signal(self, signum, frame) -> None:
        self._stop(f"received {SIGNAL_NAMES.get(signum, signum)}")

    def run(self, early_signals: list[int] | None = None) -> str:
        """Serve until something stops us; returns why. ``early_signals``: SIGTERM or SIGINT received
        before the loop took them over (daemon.py records them from the moment the UAPI socket exists)."""
        for signum in (_signal.SIGTERM, _signal.SIGINT):
            _signal.signal(signum, self._on_signal)
        for signum in early_signals or ():
            self._on_signal(signum, None)
        _signal.set_wakeup_fd(self._wakeup_w)
        self._poll.register(self.tun.fd, select.POLLIN)
        self._poll.register(self.uapi.listener.fileno(), select.POLLIN)
        self._poll.register(self._wakeup_r, select.POLLIN)
        if self.health is not None:
            self.health.register(self._poll)
        if not self.udp.sockets:
            self.bind(self.device.listen_port, self.device.fwmark)
        next_housekeeping = time.monotonic()
        try:
            while not self.stopping:
                now = time.monotonic()
                deadline = self.device.next_deadline()
                wake = next_housekeeping if deadline is None else min(deadline, next_housekeeping)
                timeout = 0 if self._working or wake <= now else int((wake - now) * 1000) + 1
                preparing = timeout and self.device.to_prepare
                events = self._poll.poll(0 if preparing else timeout)
                if preparing and not events:
                    # Nothing to read, nothing due: the next handshakes' work, ahead of time (core/prepare.py).
                    self._contain("preparing handshakes", self.device.prepare_handshakes)
                for fd, event in events:
                    self._contain(fd, self._ready, fd, event)
                if self._working:
                    self._contain("UAPI slices", self._go_on)
                if self.resolver is not None and self.resolver.pending:
                    self._contain("name lookups", self._apply_lookups)
                now = time.monotonic()
                deadline = self.device.next_deadline()
                if deadline is not None and deadline <= now:
                    self._contain("timers", self.device.handle_timer, now)
                if now >= next_housekeeping:
                    self._contain("housekeeping", self._housekeeping, now)
                    next_housekeeping = now + HOUSEKEEPING_PERIOD
                self._contain("flush", self._flush)
        finally:
            _signal.set_wakeup_fd(-1)
            self._close()
        return self.stopping

    # ------------------------------------------------------------------------------ input

    def _ready(self, fd: int, event: int) -> None:
        if fd == self.tun.fd:
            if event & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
                if not self.tun.exists():
                    self._stop("interface was deleted")
                return
            self._read_tun()
        elif fd in self._udp_by_fd:
            self._read_udp(self._udp_by_fd[fd])
        elif fd == self.uapi.listener.fileno():
            self._accept()
        elif fd == self._wakeup_r:
            try:
                os.read(self._wakeup_r, 512)
            except BlockingIOError:
                pass
        elif fd in self.clients:
            self._serve(fd, event)
        elif self.health is not None and self.health.owns(fd):
            self.health.ready(fd, event, time.monotonic())

    def _read_tun(self) -> None:
        tun, packets = self.tun, []
        for _ in range(BATCH):
            try:
                packet = tun.read()
            except OSError:
                if not tun.exists():
                    self._stop("interface was deleted")
                break
            if packet is None:
                break
            packets.append(packet)
        if packets:
            self.device.send_packets(packets, time.monotonic())

    def _read_udp(self, sock: _socket.socket) -> None:
        """A batch from one socket. The steered socket of plain handshake messages (steering.py) is read
        only as far as the device's handshake queue has room: what it cannot take yet waits in the kernel,
        which drops the rest of a flood without our spending a system call on it."""
        limit = BATCH
        if self.udp.role(sock) == steering.HANDSHAKE:
            queue = self.device.handshake_queue
            limit = min(BATCH, queue.limit - len(queue))
            if limit <= 0:
                return
        datagrams: list = []
        self.udp.receive(sock, datagrams, limit)
        if datagrams:
            self.device.receive_datagrams(datagrams, time.monotonic())

    def _accept(self) -> None:
        for _ in range(MAX_CLIENTS):  # every connection waiting, not one per wake-up
            client = self.uapi.accept()
            if client is None:
                return
            if len(self.clients) >= MAX_CLIENTS and not self._close_idle_client():
                client.close()
                log.error("UAPI: too many connections, all of them busy: refusing one")
                continue
            connection = UapiConnection(self.device, bind=self.bind, interface_index=_socket.if_nametoindex,
                                        lock=self._uapi_lock)
            self.clients[client.fileno()] = _Client(client, connection, time.monotonic())
            self._poll.register(client.fileno(), select.POLLIN)

    def _close_idle_client(self) -> bool:
        """Make room for a new client by closing the one idle longest, as a new ``wg show`` must be served
        whoever else holds a connection open; False if every client is in the middle of something."""
        idle = [(state.last_active, fd) for fd, state in self.clients.items() if state.idle]
        if not idle:
            return False
        fd = min(idle)[1]
        log.error("UAPI: too many connections, closing the one idle longest")
        self._hang_up(fd)
        return True

    def _serve(self, fd: int, event: int) -> None:
        """Read a client's operations and queue its answers; answers go out as the client takes them, so
        a client that never reads can delay nobody (it stops being read once MAX_PENDING_REPLY waits).
        Nothing more is read from a client while its operation is being applied."""
        state = self.clients[fd]
        if event & select.POLLOUT:
            self._write(fd, state)
        if not event & (select.POLLIN | select.POLLHUP | select.POLLERR) or fd not in self.clients:
            return
        if state.connection.working:
            return   # POLLHUP or POLLERR, reported whatever we asked for: read once its work is done
        try:
            data = state.socket.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        now = state.last_active = time.monotonic()
        state.closing = state.closing or not data
        # At end of input, a set sent without its final blank line is still applied (as wireguard-go does).
        connection = state.connection
        self._answered(fd, state, connection.feed(data, now, UAPI_SLICE) if data else connection.eof(now, UAPI_SLICE))

    def _go_on(self) -> None:
        """Apply or answer the next slices of operations left unfinished, taking turns, until
        UAPI_SLICE_TIME has passed; the loop then reads packets and comes back."""
        start = time.monotonic()
        working = self._working
        while working and time.monotonic() - start < UAPI_SLICE_TIME:
            fd = next(iter(working))
            del working[fd]
            state = self.clients[fd]
            self._answered(fd, state, state.connection.resume(time.monotonic(), UAPI_SLICE))

    def _answered(self, fd: int, state: "_Client", answer: bytes) -> None:
        connection = state.connection
        self._names_stale = True   # the configuration, peers and their endpoint names, may have changed
        state.pending += answer
        error = connection.last_error
        if error is not None:
            if error.__cause__ is not None:  # a bug, answered -EIO by the connection's own boundary
                self._bug("UAPI operation", error.__cause__)
            else:
                log.error("UAPI: %s", error)
            connection.last_error = None
        state.closing = state.closing or connection.closed
        self._write(fd, state)

    def _write(self, fd: int, state: "_Client") -> None:
        if state.pending:
            try:
                sent = state.socket.send(state.pending)
                del state.pending[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                state.pending.clear()
                state.closing = True
        connection = state.connection
        if state.closing and not state.pending and not connection.working:
            self._hang_up(fd)
            return
        room = len(state.pending) < MAX_PENDING_REPLY
        if connection.working and (room or connection.in_operation):
            # Its turn comes after the others' (_go_on took it out). A client that does not read gets no
            # new operation started, but one under way goes on: it holds the lock every client waits for.
            self._working.setdefault(fd)
        want = select.POLLOUT if state.pending else 0
        if not state.closing and room and not connection.working:
            want |= select.POLLIN
        self._poll.modify(fd, want)

    # ------------------------------------------------------------------------------ errors

    def _contain(self, source: int | str, handle, *args) -> None:
        """The loop's error boundary: ``handle(*args)`` deals with one wake-up's input from ``source`` (a
        descriptor poll named, or "timers", "housekeeping", "flush"). An exception out of it is a bug in
        wgpy: the packet batch it was handling is dropped, a UAPI connection it was serving is closed,
        and the daemon goes on."""
        try:
            handle(*args)
        except Exception as bug:
            if isinstance(source, str):
                kind = source
            elif source == self.tun.fd:
                kind = "TUN read batch"
            elif source in self._udp_by_fd:
                kind = "UDP read batch"
            elif source in self.clients:
                kind = "UAPI connection"
                self._hang_up(source)
            else:
                kind = "UAPI listener" if source == self.uapi.listener.fileno() else "signal wake-up"
            self._bug(kind, bug)

    def _bug(self, kind: str, bug: BaseException) -> None:
        """Count an exception that is a bug; log it with its traceback, at most once a BUG_LOG_PERIOD for
        each kind, so that a bug a peer can trigger with every packet cannot flood the log."""
        self.bugs[kind] += 1
        now = time.monotonic()
        last = self._bug_logged.get(kind)
        if last is None or now - last >= BUG_LOG_PERIOD:
            self._bug_logged[kind] = now
            outcome = "answered -EIO" if kind == "UAPI operation" else "dropped; the daemon goes on"
            log.error("Bug in wgpy (%s, %d so far): %r, %s", kind, self.bugs[kind], bug, outcome, exc_info=bug)

    def _hang_up(self, fd: int) -> None:
        """Close a UAPI client and forget it (after a bug, or when it is done)."""
        state = self.clients.pop(fd, None)
        self._working.pop(fd, None)
        if state is not None:
            try:
                self._poll.unregister(fd)
            except KeyError:
                pass
            state.socket.close()

    # ------------------------------------------------------------------------------ output

    def _flush(self) -> None:
        device = self.device
        if self.keylog is not None:  # before the handshake messages leave, so a live capture can use them
            self.keylog.write(device.keylog_entries())
        datagrams = device.datagrams_to_send()
        if datagrams:
            self.udp.send_many(datagrams)
        packets = device.packets_to_deliver()
        if packets:
            self.tun.write_many(packets)
        unanswered = False
        for event in device.events():
            kind = type(event)
            if kind is UnderLoad:
                self.udp.set_under_load(event.active)
            elif (kind is HandshakeInitiated and event.attempt >= UNANSWERED_ATTEMPT) or kind is HandshakeGaveUp:
                unanswered = self.reresolver.handshake_unanswered(event.peer, time.monotonic()) or unanswered
            self._log(event)
        if unanswered:
            self._start_lookups(time.monotonic())

    def _log(self, event) -> None:
        if isinstance(event, PacketDropped):
            if log.isEnabledFor(DEBUG):
                if event.reason is Drop.HANDSHAKE_QUEUE_FULL:  # a flood: one line each HOUSEKEEPING_PERIOD says how many
                    self._queue_full_drops += 1
                    return
                who = peer_name(event.peer) if event.peer else (format_endpoint(event.source) if event.source else "tun")
                detail = f" ({event.detail})" if event.detail else ""
                log.debug("%s - Dropped: %s%s", who, event.reason.value, detail)
            return
        if not log.isEnabledFor(DEBUG):
            return
        if isinstance(event, KeyRotated):   # wgpy's key rotation (docs/rotation.md)
            log.debug("Key rotated: public key now %s; the previous one, %s, is kept for %.0f s",
                      key_to_base64(event.public), key_to_base64(event.previous), event.grace_ends - time.monotonic())
        elif isinstance(event, PreviousKeyRetired):
            log.debug("Rotation grace over: previous public key %s forgotten", key_to_base64(event.previous))
        elif isinstance(event, HandshakeInitiated):
            log.debug("%s - Sending handshake initiation (attempt %d)", peer_name(event.peer), event.attempt)
        elif isinstance(event, HandshakeResponded):
            log.debug("%s - Received handshake initiation", peer_name(event.peer))
            log.debug("%s - Sending handshake response", peer_name(event.peer))
        elif isinstance(event, HandshakeCompleted):
            if event.is_initiator:
                log.debug("%s - Received handshake response: handshake completed, new session (initiator)", peer_name(event.peer))
            else:
                log.debug("%s - First data on the new keys: handshake completed, new session (responder)", peer_name(event.peer))
        elif isinstance(event, HandshakeGaveUp):
            # The figure the kernel and wireguard-go print (timers.c, timers.go: MAX_TIMER_HANDSHAKES + 2).
            log.debug("%s - Handshake did not complete after %d attempts, giving up", peer_name(event.peer),
                      MAX_TIMER_HANDSHAKES + 2)
        elif isinstance(event, CookieReceived):
            log.debug("%s - Received cookie reply: the peer is under load", peer_name(event.peer))
        elif isinstance(event, SessionExpired):
            log.debug("%s - Session expired", peer_name(event.peer))
        elif isinstance(event, KeysZeroed):
            log.debug("%s - Zeroing all keys (no new session for %d seconds)", peer_name(event.peer), 3 * REJECT_AFTER_TIME)
        elif isinstance(event, EndpointChanged):
            log.debug("%s - Endpoint changed to %s", peer_name(event.peer), format_endpoint(event.endpoint))
        elif isinstance(event, PeerAdded):
            log.debug("%s - Peer added", peer_name(event.peer))
        elif isinstance(event, PeerRemoved):
            log.debug("%s - Peer removed", peer_name(event.peer))
        elif isinstance(event, PrivateKeyChanged):
            if event.public is None:
                log.debug("Private key removed")
            else:
                log.debug("Private key changed: public key now %s", key_to_base64(event.public))
        elif isinstance(event, UnderLoad):
            log.debug("Device %s load: answering handshakes with cookies %s", "under" if event.active else "no longer under", "now" if event.active else "no more")

    # ------------------------------------------------------------------------------ endpoint names

    def _start_lookups(self, now: float) -> None:
        """Hand the lookups due (reresolve.py) to the resolver's threads."""
        lookups = self.reresolver.lookups(now)
        if not lookups:
            return
        if self.resolver is None:
            from .resolver import ThreadResolver

            self.resolver = ThreadResolver(self._wakeup_w)
        for lookup in lookups:
            self.resolver.submit(lookup)

    def _apply_lookups(self) -> None:
        """The resolver's answers, judged by reresolve.py's rule; a move sets the endpoint through the
        device as a ``wg set ... endpoint`` would, and is logged."""
        device = self.device
        for lookup, result in self.resolver.answers():
            peer = device.peers.get(lookup.peer)
            if isinstance(result, OSError) or peer is None:
                self.reresolver.failed(lookup)
                if peer is not None:
                    log.debug("%s - endpoint name %s did not resolve (%s): endpoint kept", peer_name(lookup.peer),
                              lookup.name, getattr(result, "strerror", None) or result)
                continue
            now = time.monotonic()
            last = peer.last_handshake_time
            age = None if last is None else now + device.epoch_offset - last
            decision = self.reresolver.resolved(lookup, result, peer.endpoint, age)
            if type(decision) is Move:
                old = "none" if decision.old is None else format_endpoint(decision.old)
                device.set_endpoint(peer, decision.new)
                device.send_staged_packets(peer, now)
                log.debug("%s - endpoint name %s moved from %s to %s", peer_name(lookup.peer), decision.name, old,
                          format_endpoint(decision.new))
            elif type(decision) is Kept:
                log.debug("%s - endpoint name %s now resolves to %s; keeping %s, where the peer roamed and answers",
                          peer_name(lookup.peer), decision.name, format_endpoint(decision.resolved),
                          format_endpoint(decision.endpoint))

    # ------------------------------------------------------------------------------ housekeeping

    def _housekeeping(self, now: float) -> None:
        self.device.epoch_offset = time.time() - now  # follow wall-clock steps for TAI64N
        if self.health is not None:
            self.health.expire(now)
        # Configured peers' handshakes keep a lane of their own through a flood (steering.py).
        self.udp.set_priority_addresses({_packed(peer.endpoint[0]) for peer in self.device.peers.values()
                                         if peer.endpoint is not None})
        if self._names_stale:   # only the UAPI changes names: no walk over every peer each second without it
            self._names_stale = False
            self.reresolver.sync(((peer.public_key, peer.endpoint_name, peer.endpoint)
                                  for peer in self.device.peers.values()), now)
        if len(self.reresolver):
            self._start_lookups(now)
        if self._queue_full_drops:
            log.debug("Dropped %d handshake messages in the last %g s: %s", self._queue_full_drops,
                      HOUSEKEEPING_PERIOD, Drop.HANDSHAKE_QUEUE_FULL.value)
            self._queue_full_drops = 0
        if not self.tun.exists():
            self._stop("interface was deleted")
        elif not self.uapi.still_ours():
            self._stop("UAPI socket was removed")
        mtu = self.tun.mtu()
        if mtu is not None and mtu != self.device.mtu:
            log.debug("MTU of %s is now %d", self.tun.name, mtu)
            self.device.mtu = mtu

    def _close(self) -> None:
        if self.resolver is not None:
            self.resolver.close()
        for state in self.clients.values():
            state.socket.close()
        self.clients.clear()
        if self.keylog is not None:
            self.keylog.close()
        if self.health is not None:
            self.health.close()
        self.uapi.close()
        self.udp.close()
        self.tun.close()
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)
