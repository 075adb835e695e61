"""Host-name endpoints, re-resolved while running: when to look a name up again, and whether its answer
moves the peer.

``wg`` resolves an ``Endpoint = host:port`` once, when the configuration is set; the kernel and
wireguard-go only ever hold an address. wireguard-tools' answer is ``contrib/reresolve-dns``, a script run
from cron that sets the endpoint again for each peer whose latest handshake is older than 135 seconds.
wgpy's daemon learns the name itself (``wgpy_endpoint_host=name:port``, uapi/set.py) and looks it up again:

* periodically, every :data:`RERESOLVE_PERIOD` seconds, give or take :data:`RERESOLVE_JITTER` of it (so a
  fleet started together does not ask its DNS server at the same second);
* at once when a handshake goes unanswered: the core's ``HandshakeInitiated`` with attempt >= 2 (the first
  initiation got no response within REKEY_TIMEOUT) or ``HandshakeGaveUp``; at most once per
  :data:`UNANSWERED_INTERVAL` per peer, as retransmissions come every REKEY_TIMEOUT for 90 seconds.

The rule for an answer (:meth:`Reresolver.resolved`), with roaming (whitepaper section 2.1) in mind:

1. If the peer's current endpoint is one of the name's addresses, nothing moves (a name with several
   addresses does not make the peer flap between them).
2. Otherwise, if the current endpoint is the address the name gave last (or there is none), the name
   moved: the endpoint becomes the name's first address, and the move is logged.
3. Otherwise the current endpoint came from roaming: an authenticated packet arrived from there after the
   name was last applied, which is fresher evidence than any DNS answer; the kernel and wireguard-go
   keep such an endpoint until the configuration sets another. So the roamed endpoint wins while the
   peer answers there, and the name's address replaces it only when the peer is unresponsive: the
   lookup was triggered by an unanswered handshake, or no handshake completed in the last
   :data:`STALE_HANDSHAKE` seconds (the threshold of wireguard-tools' reresolve-dns).

Sans-IO like the core: the clock (``now``) and the jitter's randomness (``rng``) come in; lookups to start
and moves to make come out. The lookups themselves are runtime/resolver.py's; the loop (runtime/loop.py)
joins the two to the device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ..core.constants import REKEY_TIMEOUT
from ..core.record import record

RERESOLVE_PERIOD = 300.0         # seconds between two periodic lookups of one name
RERESOLVE_JITTER = 0.1           # the period is drawn from [0.9, 1.1] x RERESOLVE_PERIOD
UNANSWERED_INTERVAL = REKEY_TIMEOUT   # at most one lookup per retransmission of an unanswered handshake
UNANSWERED_ATTEMPT = 2           # HandshakeInitiated.attempt from which a handshake counts as unanswered
STALE_HANDSHAKE = 135.0          # wireguard-tools contrib/reresolve-dns.sh: a handshake older than this is stale
LOOKUP_TIMEOUT = 30.0            # a lookup without an answer by then is forgotten (glibc: 5 s x 2 attempts x servers)


@record
class Lookup:
    """A name to look up for ``peer``; ``serial`` ties the answer to this request."""

    peer: bytes
    name: str        # "host:port", as configured
    host: str
    port: int
    serial: int


@record
class Move:
    """Set ``peer``'s endpoint to ``new`` (the name's address) in place of ``old``."""

    peer: bytes
    name: str
    old: tuple | None
    new: tuple


@record
class Kept:
    """The name now resolves to ``resolved``, but ``peer``'s roamed endpoint ``endpoint`` answers: kept."""

    peer: bytes
    name: str
    endpoint: tuple
    resolved: tuple


@record(frozen=False)
class _Name:
    name: str
    applied: tuple | None              # the address the name gave last (or the endpoint set with it)
    next_periodic: float
    unanswered: bool = False           # a handshake went unanswered since the last lookup started
    last_started: float | None = None
    in_flight: int | None = None       # serial of the lookup under way
    in_flight_since: float = 0.0
    in_flight_unanswered: bool = False


def split_name(name: str) -> tuple[str, int]:
    """``host:port`` (as uapi/values.py ``parse_endpoint_host`` accepted it) into its parts."""
    host, _, port = name.rpartition(":")
    return host, int(port)


class Reresolver:
    """The named endpoints of one device and when each is due for a lookup."""

    def __init__(self, rng: Callable[[], float], *, period: float = RERESOLVE_PERIOD,
                 jitter: float = RERESOLVE_JITTER) -> None:
        self._rng = rng
        self.period = period
        self.jitter = jitter
        self._names: dict[bytes, _Name] = {}
        self._serial = 0

    def __len__(self) -> int:
        return len(self._names)

    def name_of(self, peer: bytes) -> str | None:
        state = self._names.get(peer)
        return state.name if state is not None else None

    def _next_period(self, now: float) -> float:
        return now + self.period * (1 - self.jitter + 2 * self.jitter * self._rng())

    def sync(self, peers: Iterable[tuple[bytes, str | None, tuple | None]], now: float) -> None:
        """Call me with every peer of the device as (public key, endpoint name, endpoint), after the
        configuration may have changed: a new name is tracked (its current endpoint taken as the address
        the name gave, as ``wgpy up`` resolved it just before; looked up at once when there is none), a
        changed name starts afresh, and peers gone or without a name are forgotten."""
        seen = set()
        names = self._names
        for peer, name, endpoint in peers:
            if name is None:
                continue
            seen.add(peer)
            state = names.get(peer)
            if state is None or state.name != name:
                names[peer] = _Name(name, endpoint, now if endpoint is None else self._next_period(now))
        for peer in [peer for peer in names if peer not in seen]:
            del names[peer]

    def handshake_unanswered(self, peer: bytes, now: float) -> bool:
        """Call me when a handshake initiation to ``peer`` went unanswered (``HandshakeInitiated`` with
        attempt >= UNANSWERED_ATTEMPT) or the handshake was given up. True if the peer has a name."""
        state = self._names.get(peer)
        if state is None:
            return False
        state.unanswered = True
        return True

    def lookups(self, now: float) -> list[Lookup]:
        """The lookups due now; each is under way until :meth:`resolved` or :meth:`failed` (or until
        LOOKUP_TIMEOUT, after which it is forgotten and may start again)."""
        due = []
        for peer, state in self._names.items():
            if state.in_flight is not None:
                if now - state.in_flight_since < LOOKUP_TIMEOUT:
                    continue
                state.in_flight = None   # lost: its answer, if it ever comes, is ignored
            urgent = state.unanswered and (state.last_started is None
                                           or now - state.last_started >= UNANSWERED_INTERVAL)
            if not (urgent or now >= state.next_periodic):
                continue
            self._serial += 1
            state.in_flight, state.in_flight_since = self._serial, now
            state.in_flight_unanswered = state.unanswered
            state.unanswered = False
            state.last_started = now
            state.next_periodic = self._next_period(now)
            host, port = split_name(state.name)
            due.append(Lookup(peer, state.name, host, port, self._serial))
        return due

    def resolved(self, lookup: Lookup, addresses: list[tuple], endpoint: tuple | None,
                 handshake_age: float | None) -> Move | Kept | None:
        """The answer to ``lookup``: the name's ``addresses`` (endpoint tuples, in getaddrinfo's order),
        with the peer's current ``endpoint`` and the seconds since its latest handshake (None for
        never). Returns the :class:`Move` to make, a :class:`Kept` roamed endpoint, or None (nothing
        changed, or the answer is stale). The rule is the module's."""
        state = self._names.get(lookup.peer)
        if state is None or state.in_flight != lookup.serial:
            return None
        state.in_flight = None
        if not addresses:
            return None
        if endpoint in addresses:          # rule 1
            state.applied = endpoint
            return None
        new = addresses[0]
        roamed = endpoint is not None and endpoint != state.applied
        unresponsive = (state.in_flight_unanswered or handshake_age is None
                        or handshake_age > STALE_HANDSHAKE)
        if roamed and not unresponsive:    # rule 3: the roamed endpoint answers
            return Kept(lookup.peer, state.name, endpoint, new)
        state.applied = new                # rule 2, or rule 3 with the peer silent
        return Move(lookup.peer, state.name, endpoint, new)

    def failed(self, lookup: Lookup) -> None:
        """``lookup`` found nothing (or failed): the endpoint stays; the next lookup comes as scheduled."""
        state = self._names.get(lookup.peer)
        if state is not None and state.in_flight == lookup.serial:
            state.in_flight = None
