"""The TUN side: one Linux TUN device, read and written as raw IP packets.

The device is made with one ``TUNSETIFF`` ioctl on ``/dev/net/tun`` (drivers/net/tun.c), as wireguard-go's
``tun.CreateTUN`` does; pytun-pmd3, which did it before, brings ``ctypes`` and ``subprocess`` along (4 ms
of start-up and a MiB of memory, benchmarks/bench_startup.py) for that one call. Packets are moved with
``os.read``/``os.writev`` on the descriptor. The device is opened with ``IFF_VNET_HDR`` so that writes can carry coalesced TCP segments
(offload.py); every packet read or written then has a 10-byte virtio-net header in front.
"""

from __future__ import annotations

import _socket
import errno
import fcntl
import os
import struct

from ..core.constants import DEFAULT_MTU
from .offload import NEEDS_CSUM, VNET_HDR_LEN, ZERO_HEADER, coalesce, complete_checksum

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
_IFREQ_FLAGS = struct.Struct("16sH22x")  # struct ifreq: the name, then ifr_flags in its 24-byte union
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
SIOCGIFFLAGS = 0x8913
SIOCSIFTXQLEN = 0x8943
TX_QUEUE_LENGTH = 4000  # the default 500 overflows under a fast TCP sender (PERFORMANCE-NOTES: retransmits)
IFF_UP = 0x1
IFNAMSIZ = 16
MAX_PACKET = 65535


def valid_interface_name(name: str) -> bool:
    """What Linux accepts as an interface name (dev_valid_name): 1-15 bytes, no '/', ':' or whitespace."""
    raw = name.encode()
    return 0 < len(raw) < IFNAMSIZ and name not in (".", "..") and not any(c in name for c in "/: \t\n")


class Tun:
    """A TUN interface in IFF_NO_PI mode: each read is one IP packet."""

    def __init__(self, name: str, mtu: int = DEFAULT_MTU, vnet_hdr: bool = True) -> None:
        if not valid_interface_name(name):
            raise ValueError(f"invalid interface name {name!r}")
        self.vnet_hdr = vnet_hdr
        self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
        try:
            answer = fcntl.ioctl(self.fd, TUNSETIFF, _IFREQ_FLAGS.pack(name.encode(), flags))
        except OSError:
            os.close(self.fd)
            raise
        self.name = answer[:IFNAMSIZ].split(b"\0", 1)[0].decode()
        self.set_mtu(mtu)
        try:
            self._interface_ioctl(SIOCSIFTXQLEN, self._ifreq(TX_QUEUE_LENGTH))
        except OSError:
            pass  # a longer queue is a refinement, not a requirement

    def read(self) -> bytes | None:
        """One packet, or None when none is waiting."""
        try:
            data = os.read(self.fd, MAX_PACKET + VNET_HDR_LEN)
        except BlockingIOError:
            return None
        if not self.vnet_hdr:
            return data
        if data[0] & NEEDS_CSUM:  # only if someone turned checksum offload on behind our back
            start, offset = struct.unpack_from("<HH", data, 6)
            return complete_checksum(data[VNET_HDR_LEN:], start, offset)
        return data[VNET_HDR_LEN:]

    def write(self, packet: bytes) -> bool:
        """Hand a packet to the kernel; False if it refused (interface down: EIO)."""
        try:
            if self.vnet_hdr:
                os.writev(self.fd, (ZERO_HEADER, packet))
            else:
                os.write(self.fd, packet)
            return True
        except OSError as err:
            if err.errno == errno.EBADFD:
                raise
            return False

    def write_many(self, packets: list[bytes]) -> None:
        """Hand packets to the kernel in order, TCP segments of one flow coalesced (offload.py)."""
        if not self.vnet_hdr:
            for packet in packets:
                self.write(packet)
            return
        fd, writev = self.fd, os.writev
        for parts in coalesce(packets):
            try:
                writev(fd, parts)
            except OSError as err:
                if err.errno == errno.EBADFD:
                    raise

    def exists(self) -> bool:
        """False once the interface was deleted, in whichever network namespace it now lives: a
        zero-length write answers EBADFD then (EINVAL otherwise), as wireguard-go's hack listener uses."""
        try:
            os.write(self.fd, b"")
        except OSError as err:
            return err.errno != errno.EBADFD
        return True

    def _ifreq(self, value: int = 0) -> bytearray:
        return bytearray(struct.pack("16si20x", self.name.encode(), value))

    def mtu(self) -> int | None:
        """The interface's MTU, or None when it is not visible here (moved to another namespace)."""
        request = self._ifreq()
        try:
            self._interface_ioctl(SIOCGIFMTU, request)
        except OSError:
            return None
        return struct.unpack_from("i", request, 16)[0]

    def set_mtu(self, mtu: int) -> None:
        self._interface_ioctl(SIOCSIFMTU, self._ifreq(mtu))

    @staticmethod
    def _interface_ioctl(request: int, ifreq: bytearray) -> None:
        """An interface ioctl (``ifreq`` is read and written in place), made on a throwaway socket as
        ``ip link`` does. ``_socket``, not ``socket``: see docs/performance.md, "Start-up"."""
        s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        try:
            fcntl.ioctl(s.fileno(), request, ifreq)
        finally:
            s.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
