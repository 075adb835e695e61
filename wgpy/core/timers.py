"""Every timer of whitepaper section 6 (kernel timers.c), with the clock in the caller's hand.

A timer is a deadline: ``peer.timers[Timer.X] = now + delay``. The device keeps all of them in one heap
so that ``Device.next_deadline()`` is the earliest one; a timer that is modified or deleted leaves a stale
heap entry that is skipped when it surfaces (its deadline no longer matches ``peer.timers``).

The ``on_*`` functions are called when something happens and set or clear timers, each named after the
event that calls it, as the kernel names them. What happens when a timer expires is in ``Device``'s
``_expire_*`` methods, since that sends packets.
"""

from __future__ import annotations

import heapq
import itertools
from enum import IntEnum
from collections.abc import Callable, Iterator

from .constants import KEEPALIVE_TIMEOUT, REJECT_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from .peer import Peer


class Timer(IntEnum):
    """The timers of one peer. An IntEnum, because ``peer.timers`` is touched for every packet and an
    IntEnum hashes as fast as an int (a plain Enum's hash runs Python code)."""

    RETRANSMIT_HANDSHAKE = 1   # REKEY_TIMEOUT + jitter after an initiation
    SEND_KEEPALIVE = 2         # KEEPALIVE_TIMEOUT after data received, none sent
    NEW_HANDSHAKE = 3          # KEEPALIVE_TIMEOUT + REKEY_TIMEOUT after data sent, none received
    ZERO_KEY_MATERIAL = 4      # 3 x REJECT_AFTER_TIME after the last session
    PERSISTENT_KEEPALIVE = 5   # the configured interval after any authenticated packet
    SESSION_EXPIRY = 6         # REJECT_AFTER_TIME after a session was derived (an event)


# Re-filed stale entries one next_deadline() may meet before it compacts the heap: a few are a moved timer
# each; more are duplicates of one (see Schedule._compact).
MAX_REFILED = 8


class Schedule:
    """The deadlines of all peers of one device: a heap with lazy deletion."""

    __slots__ = ("_heap", "_order", "_jitter", "_compact_at")

    def __init__(self, jitter: Callable[[], float]) -> None:
        self._heap: list[tuple[float, int, Peer, Timer]] = []
        self._compact_at = 1024
        self._order = itertools.count()  # ties break in insertion order, never by comparing peers
        self._jitter = jitter

    def jitter(self) -> float:
        """A random delay in [0, REKEY_TIMEOUT_JITTER_MAX): spreads handshakes so peers do not collide."""
        return self._jitter()

    def set(self, peer: Peer, timer: Timer, deadline: float) -> None:
        """(Re)arm ``timer`` of ``peer`` for ``deadline`` (kernel ``mod_timer``).

        Moving a pending timer later (the persistent keepalive, pushed back by every packet) pushes
        nothing: the earlier heap entry finds the later deadline when it surfaces and re-files itself, so
        the heap holds one entry per pending timer however often timers move."""
        pending = peer.timers.get(timer)
        peer.timers[timer] = deadline
        if pending is not None and pending <= deadline:
            return
        heapq.heappush(self._heap, (deadline, next(self._order), peer, timer))
        if len(self._heap) > self._compact_at:
            self._compact()

    def _compact(self) -> None:
        """Keep one entry per pending timer, at its deadline: drops the entries of cleared timers and the
        duplicates that a timer cleared and set again leaves (each set after a clear pushes one, and a
        stale one re-files itself when it surfaces, so without this they pile up for as long as traffic
        flows, and every ``next_deadline`` re-files them all)."""
        live = {}
        for _, _, peer, timer in self._heap:
            deadline = peer.timers.get(timer)
            if deadline is not None:
                live[id(peer), timer] = (deadline, next(self._order), peer, timer)
        heap = list(live.values())
        heapq.heapify(heap)
        self._heap = heap
        self._compact_at = 2 * len(heap) + 1024

    @staticmethod
    def clear(peer: Peer, timer: Timer) -> None:
        """Disarm ``timer`` of ``peer`` (kernel ``del_timer``)."""
        peer.timers.pop(timer, None)

    @staticmethod
    def pending(peer: Peer, timer: Timer) -> bool:
        return timer in peer.timers

    def next_deadline(self) -> float | None:
        heap = self._heap
        refiled = 0
        while heap:
            deadline, _, peer, timer = heap[0]
            current = peer.timers.get(timer)
            if current == deadline:
                return deadline
            heapq.heappop(heap)  # stale: cleared, or moved
            if current is not None and current > deadline:
                heapq.heappush(heap, (current, next(self._order), peer, timer))  # moved later: re-file
                refiled += 1
                if refiled > MAX_REFILED:  # duplicates of pending timers: one entry each is enough
                    self._compact()
                    heap = self._heap
                    refiled = 0
        return None

    def expired(self, now: float) -> Iterator[tuple[Peer, Timer]]:
        """Pop and yield every timer due at ``now``, earliest first. A handler may arm new timers; those
        due by ``now`` are yielded too."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, peer, timer = heapq.heappop(heap)
            current = peer.timers.get(timer)
            if current == deadline:
                del peer.timers[timer]
                yield peer, timer
            elif current is not None and current > deadline:
                heapq.heappush(heap, (current, next(self._order), peer, timer))

    def __len__(self) -> int:
        return len(self._heap)


# --------------------------------------------------------------------------- events that set timers


def on_data_sent(schedule: Schedule, peer: Peer, now: float) -> None:
    """Call after sending a data packet (not a keepalive). Unless one is pending, expect an answer within
    KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, or start a new handshake (section 6.5)."""
    if not schedule.pending(peer, Timer.NEW_HANDSHAKE):
        schedule.set(peer, Timer.NEW_HANDSHAKE, now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + schedule.jitter())


def on_data_received(schedule: Schedule, peer: Peer, now: float) -> None:
    """Call after receiving a data packet (not a keepalive): if we send nothing back within
    KEEPALIVE_TIMEOUT, send a keepalive (section 6.5)."""
    if not schedule.pending(peer, Timer.SEND_KEEPALIVE):
        schedule.set(peer, Timer.SEND_KEEPALIVE, now + KEEPALIVE_TIMEOUT)
    else:
        peer.need_another_keepalive = True


def on_any_authenticated_packet_sent(schedule: Schedule, peer: Peer) -> None:
    """Call after sending any authenticated packet (handshake, data or keepalive): it stands in for the
    keepalive we owed."""
    schedule.clear(peer, Timer.SEND_KEEPALIVE)


def on_any_authenticated_packet_received(schedule: Schedule, peer: Peer) -> None:
    """Call after receiving any authenticated packet: the peer is alive, no new handshake is needed."""
    schedule.clear(peer, Timer.NEW_HANDSHAKE)


def on_any_authenticated_packet_traversal(schedule: Schedule, peer: Peer, now: float) -> None:
    """Call after an authenticated packet went either way: restart the persistent keepalive."""
    if peer.persistent_keepalive_interval:
        schedule.set(peer, Timer.PERSISTENT_KEEPALIVE, now + peer.persistent_keepalive_interval)


def on_handshake_initiated(schedule: Schedule, peer: Peer, now: float) -> None:
    """Call after sending a handshake initiation: retransmit it if no response comes (section 6.4)."""
    schedule.set(peer, Timer.RETRANSMIT_HANDSHAKE, now + REKEY_TIMEOUT + schedule.jitter())


def on_handshake_complete(schedule: Schedule, peer: Peer, epoch: float) -> None:
    """Call when a handshake completes: initiator on the response, responder on the first data packet."""
    schedule.clear(peer, Timer.RETRANSMIT_HANDSHAKE)
    peer.handshake_attempts = 0
    peer.sent_lastminute_handshake = False
    peer.last_handshake_time = epoch


def on_session_derived(schedule: Schedule, peer: Peer, now: float) -> None:
    """Call when a new keypair is derived: erase everything if no newer session comes in 3 x
    REJECT_AFTER_TIME (section 6.3), and report when this one expires."""
    schedule.set(peer, Timer.ZERO_KEY_MATERIAL, now + 3 * REJECT_AFTER_TIME)
    schedule.set(peer, Timer.SESSION_EXPIRY, now + REJECT_AFTER_TIME)


def jitter_source(rng: Callable[[int], bytes]) -> Callable[[], float]:
    """Jitter from the injected rng: uniform in whole milliseconds below REKEY_TIMEOUT_JITTER_MAX."""
    milliseconds = round(REKEY_TIMEOUT_JITTER_MAX * 1000)
    return lambda: int.from_bytes(rng(4), "little") % milliseconds / 1000
