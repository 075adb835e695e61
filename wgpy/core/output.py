"""What a device produces for the program around it, held until pulled (the three outputs of the core's
contract, and the counters): datagrams to send, IP packets to deliver, events, drops, key log entries.

``send``, ``deliver`` and ``emit`` are the lists' own ``append``: the hot path pays one call, no more.
"""

from __future__ import annotations

from collections import Counter, deque

from .constants import MAX_EVENTS
from .errors import Drop
from .events import Event, PacketDropped

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from .keylog import KeylogEntry


class Output:
    __slots__ = ("_datagrams", "_packets", "_events", "drops", "_keylog", "send", "deliver", "emit", "log_keys")

    def __init__(self) -> None:
        self._datagrams: list[tuple[bytes, tuple]] = []
        self._packets: list[bytes] = []
        self._events: deque[Event] = deque(maxlen=MAX_EVENTS)   # oldest dropped if nobody pulls them
        self._keylog: list[KeylogEntry] = []
        self.drops: Counter[Drop] = Counter()
        self.send = self._datagrams.append        # (datagram, endpoint)
        self.deliver = self._packets.append       # an IP packet for the TUN side
        self.emit = self._events.append           # an Event
        self.log_keys = self._keylog.append       # a KeylogEntry (only when the key log is enabled)

    def drop(self, reason: Drop, peer: bytes | None = None, source: tuple | None = None, detail: str = "") -> None:
        """Count a refused input and report it as a PacketDropped event."""
        self.drops[reason] += 1
        self._events.append(PacketDropped(reason, peer, source, detail))

    def datagrams(self) -> list[tuple[bytes, tuple]]:
        return _drain(self._datagrams)

    def packets(self) -> list[bytes]:
        return _drain(self._packets)

    def events(self) -> list[Event]:
        out = list(self._events)
        self._events.clear()
        return out

    def keylog(self) -> list[KeylogEntry]:
        return _drain(self._keylog)


def _drain(items: list) -> list:
    """A copy of ``items``, which is emptied (in place: ``send``, ``deliver`` and ``log_keys`` are its
    bound ``append``)."""
    out = items[:]
    items.clear()
    return out
