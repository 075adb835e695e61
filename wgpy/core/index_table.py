"""Session indices: what each receiver index of ours names (kernel peerlookup.c, wireguard-go
device/indextable.go).

Every handshake we take part in gets a random 32-bit index of ours; the peer puts it in the
``receiver_index`` field of what it sends back, so one dictionary lookup finds the peer and either the
initiation that waits for a response or the keypair that decrypts a transport message. An index is
released only by its owner, so a keypair that outlived its slot cannot free an index reused since.
"""

from __future__ import annotations

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from typing import Union

    from .crypto import Rng
    from .keypairs import Keypair
    from .peer import InitiationSent, Peer

    Owner = Union[Keypair, InitiationSent]


class IndexTable:
    """Receiver index -> ``(peer, owner)``; ``lookup`` is the receive path's one dictionary lookup."""

    __slots__ = ("_entries", "_rng", "lookup")

    def __init__(self, rng: Rng) -> None:
        self._entries: dict[int, tuple[Peer, Owner]] = {}
        self._rng = rng
        self.lookup = self._entries.get   # index -> (peer, owner) or None

    def allocate(self) -> int:
        """A fresh random index, unused on this device (to be filled by :meth:`register`)."""
        while True:
            index = int.from_bytes(self._rng(4), "little")
            if index not in self._entries:
                return index

    def register(self, index: int, peer: Peer, owner: Owner) -> None:
        """Let ``index`` name ``owner`` of ``peer`` (a keypair takes over the index of its handshake)."""
        self._entries[index] = (peer, owner)

    def release(self, index: int, owner: object) -> None:
        """Free ``index`` if ``owner`` still holds it."""
        entry = self._entries.get(index)
        if entry is not None and entry[1] is owner:
            del self._entries[index]

    def forget_handshake(self, peer: Peer) -> None:
        """Drop the peer's pending initiation, if any, and free its index."""
        if peer.handshake is not None:
            self.release(peer.handshake.local_index, peer.handshake)
            peer.handshake = None

    def forget_keypairs(self, keypairs: list[Keypair]) -> None:
        """Free the indices of keypairs a rotation or a reset dropped."""
        for keypair in keypairs:
            self.release(keypair.local_index, keypair)

    def __len__(self) -> int:
        return len(self._entries)
