"""The TCP socket objects a Stack hands out: :class:`TcpSocket` around one ``TcpConnection``, and
:class:`TcpListener` (docs/netstack.md). The asyncio adapter (``wgpy.runtime.tunnel``) uses these.

A socket tells the stack when its user did something that may make segments leave (``send``, ``recv``
opening the window, ``close``...) through ``touch``; the stack then collects the connection's segments
and asks the socket what changed (:meth:`TcpSocket.changes`) to make the events.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from .addresses import to_text
from .events import Closed, Connected, Readable, SocketEvent, Writable
from .tcp.config import TcpState

# States in which the connection is synchronized (RFC 9293 3.3.2: after the handshake).
SYNCHRONIZED = frozenset({TcpState.ESTABLISHED, TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2, TcpState.CLOSE_WAIT,
                          TcpState.CLOSING, TcpState.LAST_ACK, TcpState.TIME_WAIT})
# States in which the user has nothing more to do with the connection.
FINISHED = frozenset({TcpState.CLOSED, TcpState.TIME_WAIT})


class TcpSocket:
    """One TCP connection, as its user sees it. ``local`` and ``remote`` are ``(address, port)`` with the
    address as the ``socket`` module writes it."""

    def __init__(self, connection, touch: Callable[[TcpSocket], None], listener: TcpListener | None = None) -> None:
        self.connection = connection
        local, remote = connection.local, connection.remote
        self.local = (to_text(local[0]), local[1])
        self.remote = (to_text(remote[0]), remote[1])
        self.listener = listener          # the listener it came from (a passive open), until accepted
        self._touch = touch
        # What the last look saw, to tell what changed (changes()).
        self._seen_state = connection.state
        self._seen_readable = 0
        self._seen_writable = connection.writable
        self._seen_eof = False
        self._finished = False
        self._unreachable: str | None = None

    # ---------------------------------------------------------------- the user's side (docs/netstack.md)

    def send(self, data: bytes) -> int:
        """Bytes of ``data`` taken into the send buffer (0 when it is full)."""
        taken = self.connection.send(data)
        if taken:
            self._touch(self)
        return taken

    def recv(self, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of received data; b"" when none is buffered (see ``at_eof``)."""
        data = self.connection.recv(max_bytes)
        if data:
            self._seen_readable = self.connection.readable
            self._touch(self)      # the window opened: a window update may be due
        return data

    def shutdown_write(self) -> None:
        """Send FIN after what is buffered (half-close)."""
        self.connection.shutdown_write()
        self._touch(self)

    def close(self) -> None:
        """``shutdown_write``; the stack forgets the connection once both sides are closed. With unread
        data, an abort (RST), as Linux does."""
        self.connection.close()
        self._touch(self)

    def abort(self) -> None:
        """Send RST now and forget the connection."""
        self.connection.abort()
        self._touch(self)

    @property
    def state(self) -> TcpState:
        return self.connection.state

    @property
    def readable(self) -> int:
        return self.connection.readable

    @property
    def writable(self) -> int:
        return self.connection.writable

    @property
    def at_eof(self) -> bool:
        return self.connection.at_eof

    @property
    def error(self) -> str | None:
        return self.connection.error or self._unreachable

    def unreachable(self, error: str) -> None:
        """An ICMP destination unreachable ended the connection attempt (called by the stack, in SYN-SENT
        only, as Linux's tcp_v4_err): the connection is closed with ``error`` ("connection refused"...)."""
        self._unreachable = error
        self.connection.abort()   # in SYN-SENT: CLOSED, nothing sent
        self._touch(self)

    # ---------------------------------------------------------------- the stack's side

    def changes(self) -> list[SocketEvent]:
        """The events since the last call: connected, readable, writable, finished."""
        connection, events = self.connection, []
        state = connection.state
        if state is not self._seen_state:
            if (self.listener is None and self._seen_state is TcpState.SYN_SENT and state in SYNCHRONIZED):
                events.append(Connected(self))
            self._seen_state = state
        readable, at_eof = connection.readable, connection.at_eof
        if readable > self._seen_readable or (at_eof and not self._seen_eof):
            events.append(Readable(self))
        self._seen_readable, self._seen_eof = readable, at_eof
        writable = connection.writable
        if writable > self._seen_writable and state in SYNCHRONIZED:
            events.append(Writable(self))
        self._seen_writable = writable
        if state in FINISHED and not self._finished:
            self._finished = True
            events.append(Closed(self))
        return events

    def __repr__(self) -> str:
        return f"TcpSocket({self.local[0]}:{self.local[1]} -> {self.remote[0]}:{self.remote[1]} {self.state.name})"


# A half-open connection younger than this is never reset for a new SYN: a floor for the round trip of a
# real client, under which a burst of them retries (its SYN retransmission) rather than evicts itself.
STALE_FLOOR = 0.05


class TcpListener:
    """Waits for connections on ``port`` at ``address`` (None: every address of the stack), or, transparent,
    for every address and port; ``accept`` hands them out established, oldest first.

    ``backlog`` bounds the connections it holds that are not yet accepted, half-open or established
    (Linux bounds the two separately, by ``backlog`` and ``tcp_max_syn_backlog``).

    When it is full and a SYN comes, the oldest half-open connection makes room if it is *stale*: older
    than four of this listener's recent handshake times (a smoothed SYN-to-ACK time, as SRTT is
    smoothed in RFC 6298 2), and at least ``STALE_FLOOR``. A real client answers its SYN,ACK within a
    round trip; a flood's spoofed SYNs never do, so they go stale first and a real client gets in
    (FreeBSD's syncache drops its oldest entry too). A burst of real clients finds only fresh ones: the
    new SYN is dropped and its retransmission finds room, as Linux does without SYN cookies.
    """

    def __init__(self, address: bytes | None, port: int | None, backlog: int, transparent: bool,
                 unlisten: Callable[[TcpListener], None]) -> None:
        self.address = address
        self.port = port
        self.backlog = backlog
        self.transparent = transparent
        self.closed = False
        self.half_open: dict[TcpSocket, float] = {}   # -> when its SYN came; oldest first
        self.handshake_time = STALE_FLOOR / 4           # smoothed, seconds from SYN to established
        self.ready: deque[TcpSocket] = deque()
        self._unlisten = unlisten

    @property
    def local(self) -> tuple[str, int | None]:
        return (to_text(self.address) if self.address is not None else "", self.port)

    @property
    def full(self) -> bool:
        return len(self.half_open) + len(self.ready) >= self.backlog

    def established(self, sock: TcpSocket, now: float) -> None:
        """Call me when a half-open connection completes its handshake: it waits for ``accept``."""
        born = self.half_open.pop(sock)
        self.handshake_time += (max(0.0, now - born) - self.handshake_time) / 8   # RFC 6298 2: alpha 1/8
        self.ready.append(sock)

    def drop_stale_half_open(self, now: float) -> bool:
        """Reset the oldest half-open connection if it is stale, to make room for a new SYN."""
        if not self.half_open:
            return False
        sock, born = next(iter(self.half_open.items()))
        if now - born < max(STALE_FLOOR, 4 * self.handshake_time):
            return False
        del self.half_open[sock]
        sock.listener = None
        sock.abort()
        return True

    def accept(self) -> TcpSocket | None:
        """The oldest established connection not yet accepted, or None."""
        if not self.ready:
            return None
        sock = self.ready.popleft()
        sock.listener = None
        return sock

    def close(self) -> None:
        """Stop listening; connections not yet accepted are reset (as Linux does)."""
        if self.closed:
            return
        self.closed = True
        for sock in [*self.half_open, *self.ready]:
            sock.listener = None
            sock.abort()
        self.half_open.clear()
        self.ready.clear()
        self._unlisten(self)

    def __repr__(self) -> str:
        where = "transparent" if self.transparent else f"{self.local[0] or '*'}:{self.port}"
        return f"TcpListener({where}, {len(self.ready)} ready, {len(self.half_open)} half-open)"
