"""One session's keys and the transport data messages they protect: whitepaper section 5.4.6.

A :class:`Keypair` is what a completed handshake leaves (kernel ``struct noise_keypair``): a sending key
with its counter, a receiving key with its anti-replay window, and the two session indices. Transport
encryption and decryption live here as two small methods because they are the hot path: each keeps one
``ChaCha20Poly1305`` context per direction and builds no objects it can avoid.

    msg.counter = N_send++                       (a 64-bit little-endian nonce; never reused)
    msg.encrypted_encapsulated_packet = AEAD(T_send, N_send, P || zero padding to a multiple of 16, e)
"""

from __future__ import annotations

import struct

from .constants import PADDING_MULTIPLE, REJECT_AFTER_MESSAGES, TRANSPORT_HEADER_SIZE, TRANSPORT_MIN_SIZE, MessageType
from . import crypto
from .crypto import aead_context
from .errors import Drop, Rejected
from .messages import TRANSPORT_HEADER
from .noise import TransportKeys
from .replay import ReplayFilter

_NONCE_PREFIX = bytes(4)
_NONCE = struct.Struct("<4xQ")  # 32 zero bits, then the 64-bit little-endian counter
_ZEROS = bytes(16)
_TRANSPORT = int(MessageType.TRANSPORT)


def padding_size(length: int, mtu: int | None = None) -> int:
    """How many zero bytes pad a plaintext of ``length``: up to a multiple of 16, but never past the MTU
    (kernel send.c ``calculate_skb_padding``, wireguard-go ``calculatePaddingSize``)."""
    if not mtu:
        return -length % PADDING_MULTIPLE
    last_unit = length % mtu if length > mtu else length
    return min(mtu, last_unit + (-last_unit % PADDING_MULTIPLE)) - last_unit


class Keypair:
    """The keys of one session and their counters."""

    __slots__ = (
        "local_index",
        "remote_index",
        "is_initiator",
        "created",
        "sending_counter",
        "replay",
        "_sender",
        "_receiver",
    )

    def __init__(self, keys: TransportKeys, local_index: int, remote_index: int, created: float) -> None:
        self.local_index = local_index
        self.remote_index = remote_index
        self.is_initiator = keys.is_initiator
        self.created = created
        self.sending_counter = 0
        self.replay = ReplayFilter()
        self._sender = aead_context(keys.sending_key)
        self._receiver = aead_context(keys.receiving_key)

    def encrypt(self, packet: bytes, mtu: int | None = None) -> bytes:
        """The transport message carrying ``packet`` (padded), using and advancing the sending counter.
        An empty ``packet`` makes a keepalive. Raises Rejected once the counter is exhausted."""
        counter = self.sending_counter
        if counter >= REJECT_AFTER_MESSAGES:
            raise Rejected(Drop.COUNTER_EXHAUSTED)
        self.sending_counter = counter + 1
        size = len(packet)
        if size & 15 and size != mtu:  # not a multiple of 16, nor the MTU (the usual full-sized packet)
            padding = padding_size(size, mtu)
            if padding:
                packet = packet + _ZEROS[:padding]
        return TRANSPORT_HEADER.pack(_TRANSPORT, self.remote_index, counter) + self._sender.encrypt(
            _NONCE.pack(counter), packet, None
        )

    def decrypt(self, message: bytes) -> bytes:
        """The padded plaintext of a transport message addressed to this keypair (its receiver index was
        already matched). Raises Rejected when it does not authenticate or its counter was seen before
        (decrypt first, then record the counter, so a forgery cannot move the window)."""
        if len(message) < TRANSPORT_MIN_SIZE:
            raise Rejected(Drop.TOO_SHORT)
        counter_bytes = message[8:TRANSPORT_HEADER_SIZE]
        try:
            plaintext = self._receiver.decrypt(_NONCE_PREFIX + counter_bytes, message[TRANSPORT_HEADER_SIZE:], None)
        except crypto.InvalidTag:   # looked up only on a failure; loaded with the contexts
            raise Rejected(Drop.DECRYPTION_FAILED) from None
        if not self.replay.accept(int.from_bytes(counter_bytes, "little")):
            raise Rejected(Drop.REPLAYED)
        return plaintext

    def expire_sending(self) -> None:
        """Never send with this keypair again (it still receives): wireguard-go's way to retire the keys
        of an old identity, by using up the counter."""
        self.sending_counter = REJECT_AFTER_MESSAGES

    def __repr__(self) -> str:
        return (
            f"Keypair(local_index={self.local_index:#010x}, remote_index={self.remote_index:#010x}, "
            f"initiator={self.is_initiator}, sent={self.sending_counter})"
        )


class Keypairs:
    """A peer's three keypair slots and their rotation (whitepaper 5.4.6 and 6.1; kernel noise.c).

    ``current`` sends. ``previous`` still receives, so packets in flight across a rekey are not lost.
    ``next`` is the responder's fresh keypair, which it may not send with until the initiator proves it
    has it by sending the first data packet under it.

    Every method that drops keypairs returns them, so the device can free their session indices.
    """

    __slots__ = ("previous", "current", "next")

    def __init__(self) -> None:
        self.previous: Keypair | None = None
        self.current: Keypair | None = None
        self.next: Keypair | None = None

    def add(self, keypair: Keypair) -> list[Keypair]:
        """Install a keypair from a completed handshake (kernel ``add_new_keypair``)."""
        if keypair.is_initiator:
            # We sent an initiation and received its response: the keypair can send right away.
            if self.next is not None:
                # An unconfirmed responder keypair is demoted to previous; the old current goes.
                dropped = [self.current, self.previous]
                self.previous, self.next = self.next, None
            else:
                dropped = [self.previous]
                self.previous = self.current
            self.current = keypair
        else:
            # Responder: wait for confirmation. Previous and any older next go; current stays usable.
            dropped = [self.next, self.previous]
            self.next, self.previous = keypair, None
        return [k for k in dropped if k is not None]

    def received_with(self, keypair: Keypair) -> list[Keypair] | None:
        """Call when an authenticated data packet arrived under ``keypair``. If it was ``next``, the
        initiator has confirmed it: slide next -> current -> previous; return the dropped keypairs
        (possibly none). Return None when nothing rotated."""
        if keypair is not self.next:
            return None
        dropped = [self.previous] if self.previous is not None else []
        self.previous, self.current, self.next = self.current, keypair, None
        return dropped

    def clear(self) -> list[Keypair]:
        """Forget every keypair (kernel ``wg_noise_keypairs_clear``)."""
        dropped = [k for k in (self.previous, self.current, self.next) if k is not None]
        self.previous = self.current = self.next = None
        return dropped

    def __iter__(self):
        return (k for k in (self.current, self.previous, self.next) if k is not None)
