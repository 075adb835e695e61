"""Handshake messages waiting for their turn, and what "under load" means (whitepaper section 5.3; the
kernel's ``handshake_queue`` in receive.c, wireguard-go's ``queue.handshake``).

A handshake message costs a Diffie-Hellman or two; a transport message costs one AEAD call. So, as in the
kernel and wireguard-go, handshake messages that pass MAC1 (one BLAKE2s, cheap to ask of everything) wait
in a bounded queue of their own, and a batch of transport data is never behind more than a few of them.
The queue's depth is the device's load: at UNDER_LOAD_QUEUE_LENGTH waiting (an eighth of the queue) the
device is under load, and stays so for UNDER_LOAD_AFTER_TIME after the queue was last that deep.

A full queue drops what arrives, except a message whose MAC2 proves its source address (it carries the
cookie we gave that address): it takes the place of the oldest message waiting. A flood from spoofed
addresses can fill the queue but cannot prove an address, so a legitimate initiator that got its cookie
always gets in with its next attempt.
"""

from __future__ import annotations

import math
from collections import deque

from .constants import MAX_QUEUED_HANDSHAKES, UNDER_LOAD_AFTER_TIME, UNDER_LOAD_QUEUE_LENGTH, MessageType

QueuedHandshake = tuple[bytes, MessageType, tuple, object]
"""``(datagram, message type, source endpoint, local address)``: a message and where it came from."""


class HandshakeQueue(deque):
    """A bounded FIFO of handshake messages (a deque: ``len`` and truth cost the hot path nothing), and
    the load state its depth gives."""

    __slots__ = ("limit", "_under_load_until")

    def __init__(self, limit: int = MAX_QUEUED_HANDSHAKES) -> None:
        super().__init__()
        self.limit = limit
        self._under_load_until = -math.inf

    @property
    def full(self) -> bool:
        return len(self) >= self.limit

    def push(self, item: QueuedHandshake) -> None:
        """Queue a message (the caller saw the queue was not full)."""
        self.append(item)

    def push_proven(self, item: QueuedHandshake) -> QueuedHandshake:
        """Queue a message whose MAC2 proved its source into the full queue: the oldest message waiting
        makes room, and is returned so that its drop can be counted."""
        evicted = self.popleft()
        self.append(item)
        return evicted

    def pop(self) -> QueuedHandshake:
        """The oldest message waiting."""
        return self.popleft()

    @property
    def under_load_until(self) -> float:
        """When the load ends if the queue does not deepen again (-inf: never was under load)."""
        return self._under_load_until

    def under_load(self, now: float) -> bool:
        """Whether the device is under load at ``now``: the queue (with the message about to be handled)
        is at least UNDER_LOAD_QUEUE_LENGTH deep, or was within the last UNDER_LOAD_AFTER_TIME."""
        if len(self) >= UNDER_LOAD_QUEUE_LENGTH:
            self._under_load_until = now + UNDER_LOAD_AFTER_TIME
        return now < self._under_load_until
