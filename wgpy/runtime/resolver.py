"""Host-name lookups off the event loop: ``getaddrinfo`` blocks (for as long as the system's resolver
retries: resolv.conf's timeout x attempts per server), so it runs in a few worker threads, and the answers
come back to the loop through a queue and a byte on the loop's wake-up pipe.

At most :data:`MAX_WORKERS` lookups run at once, whatever the number of names; the others wait their turn
in order. Threads are started with the first lookup, so a daemon without names has none. A lookup that
never returns holds its thread, never the loop: the loop gives up on it after
``reresolve.LOOKUP_TIMEOUT`` and ignores a late answer.
"""

from __future__ import annotations

import collections
import os
import queue
import socket
import threading

from .reresolve import Lookup

MAX_WORKERS = 2


def endpoint_of(sockaddr: tuple) -> tuple:
    """A getaddrinfo address as the runtime's endpoint tuple (uapi/values.py ``parse_endpoint``'s form):
    ``(host, port)``, or ``(host, port, 0, scope_id)`` for a scoped IPv6 address."""
    if len(sockaddr) == 4 and sockaddr[3]:
        return (sockaddr[0], sockaddr[1], 0, sockaddr[3])
    return (sockaddr[0], sockaddr[1])


def lookup_addresses(host: str, port: int) -> list[tuple]:
    """The endpoints ``host`` resolves to for UDP, in getaddrinfo's order (RFC 6724 preference), each once.
    Raises OSError (``socket.gaierror``) when the name does not resolve."""
    seen: dict[tuple, None] = {}
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM):
        if family in (socket.AF_INET, socket.AF_INET6):
            seen.setdefault(endpoint_of(sockaddr))
    return list(seen)


class ThreadResolver:
    """Lookups in up to ``workers`` daemon threads; :meth:`answers` gives back (lookup, addresses or an
    OSError) in the loop's thread. ``wake_fd`` is written one byte per answer (the loop polls it): the
    resolver writes to its own duplicate of it, closed only if no thread ever started (a thread stuck in
    getaddrinfo may still write when the loop is gone; the descriptor stays its own until the process ends).
    """

    def __init__(self, wake_fd: int | None, workers: int = MAX_WORKERS, lookup=lookup_addresses) -> None:
        self._wake_fd = None if wake_fd is None else os.dup(wake_fd)
        self._workers = workers
        self._lookup = lookup
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._answers: collections.deque = collections.deque()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, lookup: Lookup) -> None:
        if self._closed:
            return
        if len(self._threads) < self._workers:
            thread = threading.Thread(target=self._work, name=f"wgpy-resolver-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()
        self._requests.put(lookup)

    @property
    def pending(self) -> bool:
        """Answers are waiting for :meth:`answers`."""
        return bool(self._answers)

    def answers(self) -> list[tuple[Lookup, list[tuple] | OSError]]:
        out = []
        while self._answers:
            out.append(self._answers.popleft())
        return out

    def close(self) -> None:
        """Stop taking lookups; idle threads end, one stuck in getaddrinfo ends with the process."""
        self._closed = True
        if not self._threads and self._wake_fd is not None:
            os.close(self._wake_fd)
            self._wake_fd = None
        for _ in self._threads:
            self._requests.put(None)

    def _work(self) -> None:
        while True:
            lookup = self._requests.get()
            if lookup is None or self._closed:
                return
            try:
                result: list[tuple] | OSError = self._lookup(lookup.host, lookup.port)
            except (OSError, UnicodeError) as error:   # gaierror; a label too long for IDNA
                result = error if isinstance(error, OSError) else OSError(str(error))
            self._answers.append((lookup, result))
            if self._wake_fd is not None:
                try:
                    os.write(self._wake_fd, b"r")
                except OSError:   # the pipe is full (the loop wakes anyway) or closed
                    pass
