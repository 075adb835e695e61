"""Addresses: text as the ``socket`` module writes it at the API, 4 or 16 bytes inside the stack.

The stack's own addresses carry a prefix (``"10.0.0.2/24"``): the address is ours, the prefix says which
destinations are on the tunnel's side (``sendto`` to anything of the same family is routed there anyway:
the stack has one interface, the tunnel; the prefix is kept for the adapter and for source selection).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import NamedTuple


class InterfaceAddress(NamedTuple):
    address: bytes
    prefix_length: int

    @property
    def version(self) -> int:
        return 4 if len(self.address) == 4 else 6

    def contains(self, other: bytes) -> bool:
        """Whether ``other`` (bytes of the same family) lies in this address's prefix."""
        if len(other) != len(self.address):
            return False
        bits = len(other) * 8
        shift = bits - self.prefix_length
        return int.from_bytes(other, "big") >> shift == int.from_bytes(self.address, "big") >> shift


def interface_address(text: str) -> InterfaceAddress:
    """``"10.0.0.2/24"`` (or a bare address: a host prefix) as an :class:`InterfaceAddress`; ValueError
    for anything else."""
    interface = ipaddress.ip_interface(text)
    return InterfaceAddress(interface.ip.packed, interface.network.prefixlen)


@lru_cache(maxsize=1024)
def to_text(address: bytes) -> str:
    """``b"\\x0a\\0\\0\\x01"`` -> ``"10.0.0.1"``; IPv6 compressed, as ``socket.inet_ntop`` writes it."""
    return str(ipaddress.ip_address(address))


@lru_cache(maxsize=1024)
def from_text(text: str) -> bytes:
    """``"10.0.0.1"`` -> 4 bytes, an IPv6 address -> 16 bytes; ValueError if ``text`` is not a numeric address."""
    if not isinstance(text, str):
        raise ValueError(f"not an address: {text!r}")
    return ipaddress.ip_address(text).packed


def is_unusable_source(address: bytes) -> bool:
    """Whether a packet from ``address`` must be refused: unspecified, multicast or limited broadcast
    (RFC 1122 3.2.1.3, RFC 4291 2.7: such addresses are never a packet's source)."""
    if len(address) == 4:
        return address[0] >= 224 or address == b"\0\0\0\0"
    return address[0] == 0xFF or address == bytes(16)
