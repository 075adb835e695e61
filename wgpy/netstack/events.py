"""What the stack tells its user, pulled with ``Stack.events()`` as the core's events are (docs/netstack.md).

Each event names the socket object it concerns (``event.socket``). An event says "look again", not "this
much": between two pulls the stack reports each kind of change of a socket once, in the order the changes
first happened, so a bulk transfer does not make one ``Readable`` per segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SocketEvent:
    socket: Any


class Connected(SocketEvent):
    """A ``tcp_connect`` socket is established (its SYN was answered and acknowledged)."""

    __slots__ = ()


class Readable(SocketEvent):
    """A TCP socket has data to ``recv``, or the peer's FIN arrived (``at_eof`` may now be true)."""

    __slots__ = ()


class Writable(SocketEvent):
    """A TCP socket's send buffer has space again (acknowledged data was released)."""

    __slots__ = ()


class Closed(SocketEvent):
    """The connection is over for its user: ``socket.error`` says why, None for an orderly close. (After an
    active close the stack may keep the connection in TIME-WAIT; the user has nothing more to do with it.)"""

    __slots__ = ()


class Incoming(SocketEvent):
    """An established connection waits in ``listener.accept()``."""

    __slots__ = ()


class DatagramReceived(SocketEvent):
    """A UDP socket has a datagram for ``recvfrom``."""

    __slots__ = ()
