"""The TCP header and its options: RFC 9293 3.1, RFC 7323 (window scale, timestamps), RFC 2018 (SACK).

``parse`` is the one place that checks a segment (checksum over the pseudo-header, data offset, option
lengths); code after it trusts the fields. ``Segment.pack`` builds the header and computes the checksum.
Bulk data flows through both, so the common case is short: a header without options is one
``struct.unpack_from``, and the checksum is one call over the whole segment.

The payload of a parsed segment is a slice of what was given to ``parse`` (a ``memoryview`` slice when a
``memoryview`` came in, so no copy is made); the receive buffer copies it when it keeps it.
"""

from __future__ import annotations

import struct

from ..checksum import ones_complement_sum, pseudo_header_sum
from ..errors import NetDrop

PROTOCOL = 6  # IP protocol number of TCP

# Control bits, RFC 9293 3.1 (and RFC 3168 for ECE and CWR). Plain ints: the hot path tests them with &.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80
FLAG_NAMES = ((FIN, "FIN"), (SYN, "SYN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"), (URG, "URG"),
              (ECE, "ECE"), (CWR, "CWR"))

HEADER = struct.Struct("!HHIIBBHHH")  # ports, seq, ack, data offset, flags, window, checksum, urgent
HEADER_LEN = HEADER.size  # 20

# Option kinds (IANA "TCP Option Kind Numbers").
OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2  # RFC 9293 3.2
OPT_WINDOW_SCALE = 3  # RFC 7323 2.2
OPT_SACK_PERMITTED = 4  # RFC 2018 2
OPT_SACK = 5  # RFC 2018 3
OPT_TIMESTAMPS = 8  # RFC 7323 3.2

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_TIMESTAMPS = struct.Struct("!II")
# The options of nearly every segment once timestamps are on (RFC 7323 appendix A's layout): NOP, NOP, TS.
_TIMESTAMPS_WORD = OPT_NOP << 24 | OPT_NOP << 16 | OPT_TIMESTAMPS << 8 | 10
_TIMESTAMPS_BLOCK = struct.Struct("!III")  # that word, TSval, TSecr
_MAX_OPTIONS = 40  # data offset is 4 bits of 32-bit words: 60 bytes of header at most


_address_sums: dict[tuple[bytes, bytes], int] = {}


def _pseudo_sum(source: bytes, destination: bytes, length: int) -> int:
    """The pseudo-header's sum (RFC 9293 3.1, RFC 8200 8.1), the addresses' part remembered: a stack talks
    with few addresses, and this is per segment. Protocol and length add in (in either family they are
    words of their own, and the sum is not folded here: ones_complement_sum folds its ``start``)."""
    key = (source, destination)
    base = _address_sums.get(key)
    if base is None:
        if len(_address_sums) >= 256:
            _address_sums.clear()
        base = _address_sums[key] = pseudo_header_sum(source, destination, PROTOCOL, 0)
    return base + length


def flag_names(flags: int) -> str:
    return "|".join(name for bit, name in FLAG_NAMES if flags & bit) or "-"


class Segment:
    """One TCP segment. Options absent are ``None`` (``sack_permitted`` is a bool, ``sack_blocks`` a tuple).

    ``timestamps`` is ``(tsval, tsecr)``; ``sack_blocks`` is ``((left, right), ...)`` as RFC 2018 3 writes
    them. Sequence and acknowledgment numbers are the 32-bit values of the wire.
    """

    __slots__ = ("source_port", "destination_port", "seq", "ack", "flags", "window", "payload",
                 "mss", "window_scale", "sack_permitted", "sack_blocks", "timestamps", "urgent")

    def __init__(self, source_port: int, destination_port: int, seq: int, ack: int, flags: int,
                 window: int, payload: bytes | memoryview = b"", *, mss: int | None = None,
                 window_scale: int | None = None, sack_permitted: bool = False,
                 sack_blocks: tuple = (), timestamps: tuple[int, int] | None = None, urgent: int = 0) -> None:
        self.source_port = source_port
        self.destination_port = destination_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.payload = payload
        self.mss = mss
        self.window_scale = window_scale
        self.sack_permitted = sack_permitted
        self.sack_blocks = sack_blocks
        self.timestamps = timestamps
        self.urgent = urgent

    @property
    def length(self) -> int:
        """SEG.LEN of RFC 9293 3.3.1: the payload plus one for SYN and one for FIN."""
        return len(self.payload) + (self.flags & SYN and 1) + (self.flags & FIN and 1)

    def options(self) -> bytes:
        """The options field, padded to a multiple of four bytes (RFC 9293 3.1)."""
        out = b""
        if self.mss is not None:
            out += struct.pack("!BBH", OPT_MSS, 4, self.mss)
        if self.window_scale is not None:
            out += struct.pack("!BBBB", OPT_NOP, OPT_WINDOW_SCALE, 3, self.window_scale)
        if self.sack_permitted:
            out += struct.pack("!BBBB", OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2)
        if self.timestamps is not None:
            out += struct.pack("!BBBBII", OPT_NOP, OPT_NOP, OPT_TIMESTAMPS, 10, *self.timestamps)
        if self.sack_blocks:
            blocks = self.sack_blocks[:4 if self.timestamps is None else 3]
            out += struct.pack("!BBBB", OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * len(blocks))
            for left, right in blocks:
                out += struct.pack("!II", left, right)
        return out

    def pack(self, source: bytes, destination: bytes) -> bytes:
        """The segment on the wire, its checksum computed over the pseudo-header of ``source`` and
        ``destination`` (4-byte or 16-byte IP addresses)."""
        if self.mss is None and self.window_scale is None and not self.sack_permitted and not self.sack_blocks:
            timestamps = self.timestamps
            options = b"" if timestamps is None else _TIMESTAMPS_BLOCK.pack(_TIMESTAMPS_WORD, *timestamps)
        else:
            options = self.options()
        header_len = HEADER_LEN + len(options)
        payload = self.payload
        fields = (self.source_port, self.destination_port, self.seq, self.ack, header_len << 2, self.flags,
                  self.window)
        # The header's length is even, so its sum and the payload's add up to the segment's sum: the
        # header is packed twice (cheap) so the payload is summed once and copied once.
        total = ones_complement_sum(HEADER.pack(*fields, 0, self.urgent) + options,
                                    _pseudo_sum(source, destination, header_len + len(payload)))
        if payload:
            total = ones_complement_sum(payload, total)
        return HEADER.pack(*fields, ~total & 0xFFFF, self.urgent) + options + payload

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Segment):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = "".join(f" {name}={getattr(self, name)!r}" for name in
                        ("mss", "window_scale", "timestamps", "urgent") if getattr(self, name))
        if self.sack_permitted:
            extra += " sack_permitted"
        if self.sack_blocks:
            extra += f" sack={self.sack_blocks!r}"
        return (f"Segment({self.source_port}>{self.destination_port} {flag_names(self.flags)} seq={self.seq} "
                f"ack={self.ack} win={self.window} len={len(self.payload)}{extra})")


def parse(data: bytes | memoryview, source: bytes, destination: bytes, verify: bool = True) -> Segment | NetDrop:
    """The segment in ``data`` (the IP payload), checked; or the :class:`NetDrop` that refuses it.

    ``source`` and ``destination`` are the IP addresses (4 or 16 bytes) for the pseudo-header.
    ``verify=False`` skips the checksum (and only the checksum), for segments whose integrity is already
    proven: Linux's WireGuard marks a decrypted packet CHECKSUM_UNNECESSARY because its Poly1305 tag was
    verified (receive.c, wg_packet_consume_data_done), and the checksum is a third of TCP's cost here.
    """
    size = len(data)
    if size < HEADER_LEN:
        return NetDrop.BAD_TCP
    # RFC 9293 3.1: the checksum covers the pseudo-header, the header and the data; the sum of a correct
    # segment, its checksum field included, is 0xffff (0 is impossible for anything but all zeros).
    if verify and ones_complement_sum(data, _pseudo_sum(source, destination, size)) != 0xFFFF:
        return NetDrop.BAD_TCP
    source_port, destination_port, seq, ack, offset, flags, window, _, urgent = HEADER.unpack_from(data)
    header_len = (offset >> 4) << 2
    if header_len < HEADER_LEN or header_len > size:
        return NetDrop.BAD_TCP
    segment = Segment(source_port, destination_port, seq, ack, flags, window, data[header_len:],
                      urgent=urgent if flags & URG else 0)
    if header_len > HEADER_LEN:
        if header_len == 32:  # the usual options once timestamps are on, read at once
            word, tsval, tsecr = _TIMESTAMPS_BLOCK.unpack_from(data, HEADER_LEN)
            if word == _TIMESTAMPS_WORD:
                segment.timestamps = (tsval, tsecr)
                return segment
        if _parse_options(segment, data, header_len) is not None:
            return NetDrop.BAD_TCP_OPTIONS
    return segment


def _parse_options(segment: Segment, data: bytes | memoryview, end: int) -> bool | None:
    """Fill ``segment``'s options from ``data[20:end]``; ``True`` when they are malformed."""
    i = HEADER_LEN
    while i < end:
        kind = data[i]
        if kind == OPT_EOL:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= end:
            return True
        length = data[i + 1]
        if length < 2 or i + length > end:
            return True
        if kind == OPT_MSS:
            if length != 4:
                return True
            segment.mss = _U16.unpack_from(data, i + 2)[0]
        elif kind == OPT_WINDOW_SCALE:
            if length != 3:
                return True
            # RFC 7323 2.3: a shift count above 14 is used as 14 (and may be logged).
            segment.window_scale = min(data[i + 2], 14)
        elif kind == OPT_SACK_PERMITTED:
            if length != 2:
                return True
            segment.sack_permitted = True
        elif kind == OPT_SACK:
            if (length - 2) % 8 or length == 2:
                return True
            segment.sack_blocks = tuple(_TIMESTAMPS.unpack_from(data, j) for j in range(i + 2, i + length, 8))
        elif kind == OPT_TIMESTAMPS:
            if length != 10:
                return True
            segment.timestamps = _TIMESTAMPS.unpack_from(data, i + 2)
        # Any other kind is skipped by its length (RFC 9293 3.1: "must be prepared to handle" unknown ones).
        i += length
    return None
