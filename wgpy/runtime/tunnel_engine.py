"""The engine of a :class:`~wgpy.runtime.tunnel.Tunnel`: a Device and a Stack driven by asyncio.

    UDP sockets ──► device.receive_datagrams ──► device.packets_to_deliver ──► stack.receive_packets
    UDP sockets ◄── device.datagrams_to_send ◄── device.send_packets ◄── stack.packets_to_send
    loop.call_at(min(device.next_deadline(), stack.next_deadline())) ──► handle_timer / poll
    stack.events() ──► the owner of each socket (a stream transport, a server, a datagram endpoint)

Where the daemon's loop (loop.py) has a TUN device, the engine has the userspace stack (docs/netstack.md):
no root, no TUN. The UDP sockets are the daemon's (udp.py: batches, GSO/GRO, steering, sticky sources),
read with ``loop.add_reader``: one wake-up reads up to BATCH datagrams with ``recvmsg_into``, where an
asyncio datagram endpoint would make one callback per datagram. Work that the application causes (a
``write``, a window opened by a read) is done once per turn of the loop (``kick``), so many writes in
one turn leave in one batch.

The engine survives its own bugs as the daemon does (h11's error strategy): an exception out of one
wake-up's work is logged with its traceback, counted in :attr:`Engine.bugs`, and the engine goes on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time

from ..core.device import Device
from ..core.events import UnderLoad
from . import steering
from .udp import Udp

BATCH = 64                # datagrams read per wake-up and socket
ROUNDS = 16               # device <-> stack exchanges per wake-up before yielding to the loop
HOUSEKEEPING_PERIOD = 1.0  # seconds between refreshes of the wall clock offset and the peers' addresses
BUG_LOG_PERIOD = 1.0

log = logging.getLogger("wgpy.tunnel")


def _packed(host: str) -> bytes:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.inet_pton(family, host.partition("%")[0])


class Engine:
    """Moves packets between ``device``, ``stack`` and ``udp`` on ``loop``, and hands each stack event to
    the object registered for its socket (:meth:`register`): an object with ``on_stack_event(event)``."""

    def __init__(self, device: Device, stack, udp: Udp, loop: asyncio.AbstractEventLoop) -> None:
        self.device = device
        self.stack = stack
        self.udp = udp
        udp.reply_sources = device   # replies leave from where authenticated input arrived (udp.py)
        self.loop = loop
        self.bugs: collections.Counter[str] = collections.Counter()
        self._bug_logged: dict[str, float] = {}
        self._owners: dict[int, object] = {}     # id(stack socket) -> its owner
        self._readers: list[int] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._kicked = False
        self._preparing = False   # a _prepare is scheduled
        self._next_housekeeping = 0.0
        self.closed = False

    # ------------------------------------------------------------------------------ set-up

    def bind(self, port: int, fwmark: int) -> int:
        """The UAPI's hook for ``listen_port`` and ``fwmark`` (uapi/set.py): (re)open the UDP sockets."""
        self._remove_readers()
        try:
            bound = self.udp.bind(port, fwmark)
        finally:
            if not self.closed:
                for sock in self.udp.sockets:
                    self.loop.add_reader(sock.fileno(), self.contained, "UDP read batch", self._read, sock)
                    self._readers.append(sock.fileno())
        self.device.listen_port = bound
        return bound

    def _remove_readers(self) -> None:
        for fd in self._readers:
            self.loop.remove_reader(fd)
        self._readers = []

    def register(self, stack_socket: object, owner: object) -> None:
        """Send the events of ``stack_socket`` (a TcpSocket, TcpListener or UdpSocket) to ``owner``."""
        self._owners[id(stack_socket)] = owner

    def forget(self, stack_socket: object) -> None:
        self._owners.pop(id(stack_socket), None)

    @property
    def registered(self) -> int:
        """How many stack sockets have an owner (connections, servers, endpoints not yet closed)."""
        return len(self._owners)

    def shutdown(self) -> None:
        """The tunnel is closing: every owner hears it (``on_tunnel_closed``: connections are reset,
        servers and endpoints closed), and what that sends (RSTs) leaves before the sockets close."""
        for owner in list(self._owners.values()):
            self.contained("shutdown", owner.on_tunnel_closed)
        self._owners.clear()
        self.contained("exchange", self._exchange)

    def close(self) -> None:
        """Stop reading and stop the clock; the UDP sockets close. The stack is left as it is."""
        if self.closed:
            return
        self.closed = True
        self._remove_readers()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.udp.close()

    # ------------------------------------------------------------------------------ input

    def _read(self, sock: socket.socket) -> None:
        """A batch from one socket. The steered socket of plain handshake messages (steering.py) is read
        only as far as the device's handshake queue has room, as the daemon does (loop.py)."""
        limit = BATCH
        if self.udp.role(sock) == steering.HANDSHAKE:
            queue = self.device.handshake_queue
            limit = min(BATCH, queue.limit - len(queue))
            if limit <= 0:
                return
        datagrams: list = []
        self.udp.receive(sock, datagrams, limit)
        if datagrams:
            self.device.receive_datagrams(datagrams, self.loop.time())
            self._exchange()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self.loop.time()
        if now >= self._next_housekeeping:
            self._housekeeping(now)
        deadline = self.device.next_deadline()
        if deadline is not None and deadline <= now:
            self.device.handle_timer(now)
        deadline = self.stack.next_deadline()
        if deadline is not None and deadline <= now:
            self.stack.poll(now)
        self._exchange()

    def _housekeeping(self, now: float) -> None:
        self._next_housekeeping = now + HOUSEKEEPING_PERIOD
        self.device.epoch_offset = time.time() - now   # follow wall-clock steps for TAI64N
        self.udp.set_priority_addresses({_packed(peer.endpoint[0]) for peer in self.device.peers.values()
                                         if peer.endpoint is not None})

    # ------------------------------------------------------------------------------ the exchange

    def kick(self) -> None:
        """Something an application did (a write, a read that opens the window, a close) may have given
        the stack packets to send: exchange once, later in this turn of the loop."""
        if not self._kicked and not self.closed:
            self._kicked = True
            self.loop.call_soon(self.contained, "exchange", self._on_kick)

    def _on_kick(self) -> None:
        self._kicked = False
        self._exchange()

    def flush(self) -> None:
        """Exchange now (after a configuration change, say)."""
        self.contained("exchange", self._exchange)

    def _exchange(self) -> None:
        """Pass packets between the device and the stack until neither has more, send the datagrams,
        hand out the stack's events (whose owners may write more), and set the timer."""
        if self.closed:
            return
        device, stack, now = self.device, self.stack, self.loop.time()
        for _ in range(ROUNDS):
            delivered = device.packets_to_deliver()
            if delivered:
                stack.receive_packets(delivered, now)
            outgoing = stack.packets_to_send()
            if outgoing:
                device.send_packets(outgoing, now)
            datagrams = device.datagrams_to_send()
            if datagrams:
                self.udp.send_many(datagrams)
            for event in device.events():
                if type(event) is UnderLoad:
                    self.udp.set_under_load(event.active)
            events = stack.events()
            for event in events:
                owner = self._owners.get(id(event.socket))   # netstack/events.py
                if owner is not None:
                    self.contained("socket event", owner.on_stack_event, event)
            if not (delivered or outgoing or datagrams or events):
                break
        else:
            self.kick()   # more to do: after the loop's other callbacks had their turn
        if device.to_prepare and not self._preparing:
            self._preparing = True
            self.loop.call_soon(self.contained, "preparing handshakes", self._prepare)
        self._arm()

    def _prepare(self) -> None:
        """One peer's next handshake messages, ahead of time (core/prepare.py); again on the loop's next
        turn, after whatever I/O came in, while peers are left."""
        self._preparing = False
        if self.closed:
            return
        self.device.prepare_handshakes()   # after a bug, to_prepare is empty: no endless retry
        if self.device.to_prepare:
            self._preparing = True
            self.loop.call_soon(self.contained, "preparing handshakes", self._prepare)

    def _arm(self) -> None:
        deadlines = [d for d in (self.device.next_deadline(), self.stack.next_deadline(), self._next_housekeeping)
                     if d is not None]
        deadline = min(deadlines)
        if self._timer is not None:
            if self._timer_at == deadline:
                return
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self.contained, "timers", self._on_timer)

    # ------------------------------------------------------------------------------ errors

    def contained(self, kind: str, handle, *args) -> None:
        """The engine's error boundary: an exception out of ``handle`` is a bug in wgpy; what it was
        handling is dropped, the bug is logged (once a second per kind) and counted, the engine goes on."""
        try:
            handle(*args)
        except Exception as bug:
            self.bugs[kind] += 1
            now = time.monotonic()
            last = self._bug_logged.get(kind)
            if last is None or now - last >= BUG_LOG_PERIOD:
                self._bug_logged[kind] = now
                log.error("Bug in wgpy (%s, %d so far): %r; dropped, the tunnel goes on", kind, self.bugs[kind],
                          bug, exc_info=bug)
            if kind != "timers" and self._timer is None and not self.closed:
                try:
                    self._arm()
                except Exception:   # the clock must not stop because of a bug: try again in a second
                    self._timer = self.loop.call_later(1.0, self.contained, "timers", self._on_timer)
