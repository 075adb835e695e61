"""Stateful models (Hypothesis rule-based state machines): keypair rotation by its invariants, and the
allowed-IPs table against the linear scan of tests/test_allowedips.py. The replay window's model is
``ReplayModel`` in tests/test_replay.py; ``targets.replay_window`` drives it from bytes.

Each machine's rules are plain methods, so ``targets.py`` can drive the same machine from fuzz bytes
(atheris) while Hypothesis drives it from its own choices (tests/test_fuzz.py).
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from wgpy.core.allowedips import AllowedIPs
from wgpy.core.keypairs import Keypair, Keypairs
from wgpy.core.noise import TransportKeys

from ..test_allowedips import PEERS, LinearModel, addresses, prefixes


class KeypairRotation(RuleBasedStateMachine):
    """``Keypairs`` (core/keypairs.py) under any sequence of completed handshakes, received packets and
    clears, against the rules of whitepaper 5.4.6 and the kernel's ``add_new_keypair``:

    * each slot holds at most one keypair, and no keypair sits in two slots;
    * ``next`` only ever holds a responder's keypair;
    * ``current`` is never a responder's keypair that no packet has confirmed;
    * a new initiator keypair becomes ``current`` at once, a new responder keypair becomes ``next``;
      a packet under ``next`` promotes it to ``current`` and the old current to ``previous``;
    * every keypair ever added is either in a slot or was returned as dropped, exactly once (so the device
      frees each session index once, and never one still in use).
    """

    def __init__(self) -> None:
        super().__init__()
        self.keypairs = Keypairs()
        self.made: list[Keypair] = []
        self.dropped: dict[int, Keypair] = {}
        self.confirmed: set[int] = set()

    def _drop(self, dropped: list[Keypair]) -> None:
        for keypair in dropped:
            assert id(keypair) not in self.dropped, f"{keypair} dropped twice"
            self.dropped[id(keypair)] = keypair

    @rule(initiator=st.booleans())
    def handshake_completes(self, initiator: bool) -> None:
        keys = TransportKeys(bytes(32), bytes(32), initiator, bytes(32))
        keypair = Keypair(keys, len(self.made), len(self.made), created=float(len(self.made)))
        self.made.append(keypair)
        self._drop(self.keypairs.add(keypair))
        if initiator:
            assert self.keypairs.current is keypair
        else:
            assert self.keypairs.next is keypair

    @rule(which=st.integers(0, 2**16))
    def packet_received(self, which: int) -> None:
        if not self.made:
            return
        keypair = self.made[which % len(self.made)]
        before = (self.keypairs.previous, self.keypairs.current, self.keypairs.next)
        dropped = self.keypairs.received_with(keypair)
        if keypair is before[2]:
            assert dropped is not None
            assert (self.keypairs.previous, self.keypairs.current, self.keypairs.next) == (before[1], keypair, None)
            self.confirmed.add(id(keypair))
            self._drop(dropped)
        else:
            assert dropped is None
            assert (self.keypairs.previous, self.keypairs.current, self.keypairs.next) == before

    @rule()
    def cleared(self) -> None:
        self._drop(self.keypairs.clear())
        assert list(self.keypairs) == []

    @invariant()
    def slots_are_consistent(self) -> None:
        slots = [k for k in (self.keypairs.previous, self.keypairs.current, self.keypairs.next) if k is not None]
        assert len({id(k) for k in slots}) == len(slots), "a keypair sits in two slots"
        assert self.keypairs.next is None or not self.keypairs.next.is_initiator
        current = self.keypairs.current
        assert current is None or current.is_initiator or id(current) in self.confirmed
        live = {id(k) for k in slots}
        assert not live & set(self.dropped), "a dropped keypair is still in a slot"
        assert live | set(self.dropped) == {id(k) for k in self.made}, "a keypair was lost without being dropped"


class AllowedIPsModel(RuleBasedStateMachine):
    """``AllowedIPs`` (core/allowedips.py) against ``LinearModel`` (tests/test_allowedips.py), one
    operation at a time: every answer, the size, and each peer's entries in order agree."""

    def __init__(self) -> None:
        super().__init__()
        self.table: AllowedIPs = AllowedIPs()
        self.model = LinearModel()

    @rule(prefix=prefixes(), peer=st.sampled_from(PEERS))
    def insert(self, prefix, peer) -> None:
        self.table.insert(*prefix, peer)
        self.model.insert(*prefix, peer)

    @rule(prefix=prefixes(), peer=st.sampled_from(PEERS + [None]))
    def remove(self, prefix, peer) -> None:
        assert self.table.remove(*prefix, peer) is self.model.remove(*prefix, peer)

    @rule(peer=st.sampled_from(PEERS))
    def remove_by_peer(self, peer) -> None:
        self.table.remove_by_peer(peer)
        self.model.remove_by_peer(peer)

    @rule(address=addresses())
    def lookup(self, address: bytes) -> None:
        assert self.table.lookup(address) is self.model.lookup(address)

    @invariant()
    def agrees(self) -> None:
        assert len(self.table) == len(self.model.prefixes)
        for peer in PEERS:
            assert self.table.entries(peer) == self.model.entries(peer)
