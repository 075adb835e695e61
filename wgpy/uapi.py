"""The cross-platform UAPI: the text protocol ``wg`` speaks on ``/var/run/wireguard/<name>.sock``, mapped onto
calls on a :class:`~wgpy.core.device.Device` (https://www.wireguard.com/xplatform/, "Configuration
Protocol"; wireguard-go's ``device/uapi.go`` wherever that page is silent). Sans-IO like the core: the
runtime's socket server feeds each connection's bytes in and writes back what comes out::

    connection = UapiConnection(device, bind=runtime.bind, lock=lock)   # one IpcLock per device
    reply = connection.feed(data, now, budget=256)   # answers the operations ``data`` completes, 256 lines' worth
    while connection.working:                        # ... between packet batches, read nothing more meanwhile:
        reply += connection.resume(now, budget=256)  # the next slice
    ...                                              # write ``reply``; hang up when ``connection.closed``
    reply = connection.eof(now)                      # the client shut down its side: finish, then hang up

Without a budget a call does all the work there is (as a test or a one-shot caller wants).

A connection carries any number of operations, one after the other:

* ``get=1`` and an empty line. The answer is the device as ``key=value`` lines, in wireguard-go's order
  (``IpcGetOperation``), then ``errno=0`` and an empty line.
* ``set=1``, ``key=value`` lines, and an empty line. The lines are applied in order; the answer is
  ``errno=0``, or on the first bad line ``errno=`` the negative errno wireguard-go sends (``ipc/uapi_unix.go``:
  ``-EINVAL`` for a bad key or value, ``-EPROTO`` for a line without ``=``, ``-EADDRINUSE`` when the
  UDP port cannot be bound or the fwmark set, ``-EIO`` when the input cannot be read or applying it hit a
  bug in wgpy), and an empty line.
  What the lines before the bad one did stays done, as in wireguard-go, and the rest of the operation is
  skipped up to its empty line. The peer section the bad line is in is not finished: nothing is sent
  for it (no keepalive, no staged packet), unless the bad line was too long to read, after which
  wireguard-go's scanner stops and finishes the section as at the end of the input.

An operation is applied only once it is complete (its empty line has arrived, or the client shut down its
side), so a slow client holds nobody up. Then it is applied, or a ``get`` answered, a slice of lines at a
time if the caller gives a budget, holding the device's :class:`IpcLock` from the first slice to the last:
another connection never sees half of one, which is what wireguard-go's ``ipcMutex`` guarantees, and the
answers and the device end up the same however the work was sliced. Buffering the operation first means
a bound: it may be up to :data:`MAX_OPERATION_SIZE` bytes (16 MiB, room for some 700,000 ``allowed_ip``
lines), and one line up to :data:`MAX_LINE_SIZE` bytes (wireguard-go's ``bufio.Scanner`` limit). A longer
operation is discarded as it streams in, without being buffered, and answered ``-EIO``; a longer line is
answered ``-EIO`` like wireguard-go's "failed to read input".

A first line that is neither ``get=1`` nor ``set=1`` makes the server hang up without an answer, as
wireguard-go does (:attr:`UapiConnection.closed`). Nothing the client sends makes :meth:`feed` raise.

The ``allowed_ip=-<prefix>`` form removes that one prefix from the peer (only if the peer owns exactly it;
not a sub- or super-prefix): wireguard-go and ``wg`` added it in 2025 with the kernel's
``WGALLOWEDIP_F_REMOVE_ME`` flag.

Secrets: the answer to ``get`` holds the private and preshared keys, as the protocol requires. Nothing else
here does: :class:`UapiError` messages (for the runtime's log) give the line number and what is wrong, and
never quote a value (wireguard-go quotes some; a key pasted on the wrong line would follow).
"""

from __future__ import annotations

import errno
import io
import ipaddress
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice

from .core.constants import KEY_LEN
from .core.crypto import PrivateKey, clamp, constant_time_equal
from .core.device import Device
from .core.encoding import key_from_hex, key_to_hex
from .core.peer import Peer

MAX_OPERATION_SIZE = 16 * 1024 * 1024
MAX_LINE_SIZE = 64 * 1024 - 1   # bufio.MaxScanTokenSize, less the newline that must fit in the buffer too
MAX_PEERS = 1 << 16             # wireguard-go device/constants.go MaxPeers; NewPeer refuses more

# ipc/uapi_unix.go: the codes are the platform's errno values, sent negated.
IPC_ERROR_IO = -errno.EIO
IPC_ERROR_PROTOCOL = -errno.EPROTO
IPC_ERROR_INVALID = -errno.EINVAL
IPC_ERROR_PORT_IN_USE = -errno.EADDRINUSE

Bind = Callable[[int, int], int]
InterfaceIndex = Callable[[str], int]

_ZERO_KEY = bytes(KEY_LEN)
_KEY_NAME = re.compile(r"[a-z0-9_]{1,32}")


class UapiError(Exception):
    """An operation failed: ``errno`` is what the client is told (negative, as wireguard-go sends it)."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno

    def __repr__(self) -> str:
        return f"UapiError({self.errno}, {str(self)!r})"


# ---------------------------------------------------------------------------------- parsing values

def _key_name(key: str) -> str:
    """An unknown key, quoted for an error message only if it looks like a key name: a secret pasted on
    the wrong side of the '=' must not reach a log."""
    return repr(key) if _KEY_NAME.fullmatch(key) else f"of {len(key)} characters"


def _parse_key(value: str, what: str) -> bytes:
    """64 hex digits, either case, exactly (wireguard-go ``loadExactHex``). The value is never quoted."""
    try:
        return key_from_hex(value)
    except ValueError as error:
        raise UapiError(IPC_ERROR_INVALID, f"failed to set {what}: {error}") from None


def _parse_uint(value: str, bits: int, what: str) -> int:
    """Go ``strconv.ParseUint(value, 10, bits)``: ASCII digits only (leading zeros allowed), no sign, no
    spaces, no underscores, below 2**bits."""
    if not (value.isascii() and value.isdigit()):
        raise UapiError(IPC_ERROR_INVALID, f"failed to parse {what}: not a decimal number")
    digits = value.lstrip("0")
    if len(digits) > 20 or int(digits or "0") >> bits:   # the length check keeps int() cheap
        raise UapiError(IPC_ERROR_INVALID, f"failed to parse {what}: out of range")
    return int(digits or "0")


def _expect_true(key: str, value: str) -> None:
    if value != "true":
        raise UapiError(IPC_ERROR_INVALID, f"failed to set {key}: the value is not 'true'")


def _parse_ipv4(text: str) -> bytes | None:
    """Dotted decimal as Go's ``netip.ParseAddr`` reads it: four fields of 1 to 3 digits, each at most 255,
    no leading zeros."""
    fields = text.split(".")
    if len(fields) != 4:
        return None
    out = bytearray(4)
    for i, field in enumerate(fields):
        if not (0 < len(field) <= 3 and field.isascii() and field.isdigit()) or (field[0] == "0" and len(field) > 1):
            return None
        octet = int(field)
        if octet > 255:
            return None
        out[i] = octet
    return bytes(out)


def _parse_address(text: str) -> tuple[bytes, str] | None:
    """An IPv4 or IPv6 literal as Go's ``netip.ParseAddr`` reads it, as (4 or 16 packed bytes, zone); the
    zone is "" when absent. None if it is not one."""
    for char in text:   # Go decides the family by the first '.', ':' or '%'
        if char == ".":
            packed = _parse_ipv4(text)
            return None if packed is None else (packed, "")
        if char == ":":
            break
        if char == "%":
            return None
    else:
        return None
    address, percent, zone = text.partition("%")
    if percent and not zone:
        return None
    try:
        return ipaddress.IPv6Address(address).packed, zone
    except ValueError:  # ipaddress.AddressValueError
        return None


def _parse_prefix(text: str) -> tuple[bytes, int]:
    """A prefix as Go's ``netip.ParsePrefix`` reads it: an address without a zone, '/', and a length with
    no sign and no leading zero, at most 32 or 128."""
    address, slash, length = text.rpartition("/")
    parsed = _parse_address(address) if slash else None
    if parsed is None or parsed[1]:
        raise UapiError(IPC_ERROR_INVALID, "failed to set allowed ip: not an address/length prefix")
    packed = parsed[0]
    if not (0 < len(length) <= 3 and length.isascii() and length.isdigit()) or (length[0] == "0" and len(length) > 1):
        raise UapiError(IPC_ERROR_INVALID, "failed to set allowed ip: bad prefix length")
    cidr = int(length)
    if cidr > len(packed) * 8:
        raise UapiError(IPC_ERROR_INVALID, "failed to set allowed ip: prefix length out of range")
    return packed, cidr


def _format_address(packed: bytes) -> str:
    """An address as Go's ``netip.Addr.String`` writes it (RFC 5952, IPv4-mapped as ``::ffff:a.b.c.d``)."""
    if len(packed) == 4:
        return "%d.%d.%d.%d" % tuple(packed)
    if packed[:12] == b"\0" * 10 + b"\xff\xff":
        return "::ffff:%d.%d.%d.%d" % tuple(packed[12:])
    return ipaddress.IPv6Address(packed).compressed


def format_endpoint(endpoint: tuple) -> str:
    """``host:port``, or ``[host%scope]:port`` for IPv6, as wireguard-go's ``AddrPort.String`` writes it.
    ``endpoint`` is a socket-style tuple, ``(host, port)`` or ``(host, port, flowinfo, scope_id)``."""
    host, port = str(endpoint[0]), endpoint[1]
    scope = endpoint[3] if len(endpoint) >= 4 else 0
    if ":" not in host:
        return f"{host}:{port}"
    parsed = _parse_address(host)
    if parsed is not None:
        host = _format_address(parsed[0]) + (f"%{parsed[1]}" if parsed[1] and not scope else "")
    return f"[{host}%{scope}]:{port}" if scope else f"[{host}]:{port}"


# ---------------------------------------------------------------------------------- get

def get_operation(device: Device) -> str:
    """The ``key=value`` lines answering ``get=1`` (without the ``errno`` line), in wireguard-go's order:
    device keys, then for each peer its keys and its allowed IPs."""
    return "".join(line + "\n" for line in get_lines(device))


def get_lines(device: Device) -> Iterator[str]:
    """:func:`get_operation` a line at a time (without the newlines), so a long answer can be written in
    slices. The peers are those of the first line; each peer's values are read when its turn comes."""
    private_key = device.private_key
    if private_key is not None:
        yield "private_key=" + key_to_hex(private_key.private_bytes())
    if device.listen_port:
        yield f"listen_port={device.listen_port}"
    if device.fwmark:
        yield f"fwmark={device.fwmark}"
    for peer in list(device.peers.values()):
        preshared_key = peer.preshared_key
        seconds, nanoseconds = _handshake_time(peer.last_handshake_time)
        yield "public_key=" + key_to_hex(peer.public_key)
        yield "preshared_key=" + key_to_hex(preshared_key or _ZERO_KEY)
        yield "protocol_version=1"
        if peer.endpoint is not None:
            yield "endpoint=" + format_endpoint(peer.endpoint)
        yield f"last_handshake_time_sec={seconds}"
        yield f"last_handshake_time_nsec={nanoseconds}"
        yield f"tx_bytes={peer.tx_bytes}"
        yield f"rx_bytes={peer.rx_bytes}"
        yield f"persistent_keepalive_interval={peer.persistent_keepalive_interval}"
        for address, cidr in device.allowed_ips.iter_entries(peer):
            yield f"allowed_ip={_format_address(address)}/{cidr}"


def _handshake_time(wall_clock: float | None) -> tuple[int, int]:
    """Seconds and nanoseconds since the epoch; 0 and 0 for never (wireguard-go's ``lastHandshakeNano``)."""
    if wall_clock is None or not math.isfinite(wall_clock) or wall_clock <= 0:
        return 0, 0
    seconds = math.floor(wall_clock)
    nanoseconds = round((wall_clock - seconds) * 1e9)   # the subtraction is exact; t * 1e9 would not be
    return (seconds + 1, 0) if nanoseconds == 1_000_000_000 else (seconds, nanoseconds)


# ---------------------------------------------------------------------------------- set

@dataclass
class _Section:
    """The peer a ``set`` is configuring since its ``public_key`` line (wireguard-go ``ipcSetPeer``).
    ``peer`` is None for a placeholder: the device's own key, a peer just removed, or one not created
    because of ``update_only``; lines for it are checked and then ignored."""

    peer: Peer | None
    created: bool = False
    keepalive: int | None = None   # applied when the section ends (wireguard-go handlePostConfig)


class _SetOperation:
    """A complete ``set`` body being applied: its lines still to read, the number of the last one read,
    and the open peer section."""

    __slots__ = ("lines", "number", "section")

    def __init__(self, body: bytes | bytearray | memoryview) -> None:
        self.lines = io.BytesIO(body)   # a copy; iterating it gives the lines, each with its "\n"
        self.number = 0
        self.section: _Section | None = None


class IpcLock:
    """wireguard-go's ``ipcMutex``: one operation at a time per device. An operation applied or answered
    over several calls holds it from its first slice to its last, so no other connection of the device
    sees it half done. Give every connection of a device the same lock."""

    __slots__ = ("owner",)

    def __init__(self) -> None:
        self.owner: UapiConnection | None = None


class UapiConnection:
    """One client of the configuration socket (wireguard-go ``IpcHandle``), sans-IO.

    ``bind(listen_port, fwmark)`` is the runtime's hook for ``listen_port`` and ``fwmark``: it makes the
    UDP sockets use that port (0: any free one) and mark, and returns the port actually bound; an
    ``OSError`` (the port is taken, or the mark cannot be set) is answered ``-EADDRINUSE``. Without it the
    values are only stored on the device. ``interface_index(name)`` turns the zone of a link-local
    endpoint such as ``[fe80::1%eth0]:51820`` (what ``wg`` sends) into a scope id, raising ``OSError`` or
    ``ValueError`` when there is no such interface; without it only numeric zones are accepted. ``lock``
    is shared by the connections of one device (see :class:`IpcLock`); without it the connection has its
    own.
    """

    def __init__(
        self,
        device: Device,
        *,
        bind: Bind | None = None,
        interface_index: InterfaceIndex | None = None,
        max_operation_size: int = MAX_OPERATION_SIZE,
        lock: IpcLock | None = None,
    ) -> None:
        self.device = device
        self.closed = False                       # the server should hang up once it has written the reply
        self.last_error: UapiError | None = None  # why the latest failed operation failed, for the log
        self._bind = bind
        self._interface_index = interface_index
        self._max_operation_size = max_operation_size
        self._lock = lock if lock is not None else IpcLock()
        self._buffer = bytearray()
        self._state = self._read_operation
        self._searched = 0   # how much of a pending set's body has been searched for its end
        self._ended = False  # the client shut down its side
        self._set: _SetOperation | None = None    # the set being applied
        self._get: Iterator[str] | None = None    # the lines of the get being answered
        self._budget: float = math.inf            # lines this call may still apply or write
        self._more = False   # the last call stopped with work left (its budget spent, or the lock taken)

    @property
    def buffered(self) -> int:
        """How many bytes of the client's input wait for the rest of their operation (or their turn)."""
        return len(self._buffer)

    @property
    def working(self) -> bool:
        """The last call stopped with work left that needs no more input: an operation half applied or
        half answered, or a complete one waiting for its turn. Call :meth:`resume` again (and read no more
        from the client meanwhile)."""
        return self._more and not self.closed

    @property
    def idle(self) -> bool:
        """Between operations, with nothing of the next one received: closing now loses nothing."""
        return self._state == self._read_operation and not self._buffer and not self._more

    @property
    def in_operation(self) -> bool:
        """An operation is under way on this connection and holds the device's lock until it ends."""
        return self._lock.owner is self

    def feed(self, data: bytes, now: float, budget: int | None = None) -> bytes:
        """Take bytes from the client; return the answers to the operations they complete. Without a
        ``budget`` every complete operation is applied and answered here; with one, at most ``budget``
        lines are applied or written in this call (a slice), and :attr:`working` says whether to
        :meth:`resume`. Either way the answers and the device end up the same."""
        if self.closed:
            return b""
        self._buffer += data
        return self._run(now, budget)

    def resume(self, now: float, budget: int | None = None) -> bytes:
        """Go on with the work :attr:`working` announced; the answers it completes."""
        return b"" if self.closed else self._run(now, budget)

    def eof(self, now: float, budget: int | None = None) -> bytes:
        """The client shut down its side. As in wireguard-go, a ``set`` still open ends there and is
        applied and answered; a ``get=1`` line without its empty line, or a partial first line, is
        dropped. The connection is closed afterwards (once :attr:`working` is False, with a budget)."""
        if self.closed:
            return b""
        self._ended = True
        return self._run(now, budget)

    def _run(self, now: float, budget: int | None) -> bytes:
        self._budget = math.inf if budget is None else max(budget, 1)
        self._more = False
        out = bytearray()
        try:
            while not self.closed and self._state(out, now):
                pass
        except Exception as bug:
            # The one boundary between an operation and the connection (h11's error strategy): anything
            # but a UapiError (answered where it is raised) is a bug in wgpy. The operation is dropped, so
            # that the lock is not held by one nobody resumes, and answered -EIO (wireguard-go's I/O
            # error); what it did before stays done, as after a bad line. The exception, traceback and
            # all, is kept as last_error.__cause__ for the runtime's log; what the client sent after the
            # operation is served on the next call.
            self._drop_operation()
            self._more = bool(self._buffer) and not self.closed
            self.last_error = UapiError(IPC_ERROR_IO, "internal error (a bug in wgpy) while applying the operation")
            self.last_error.__cause__ = bug
            out += b"errno=%d\n\n" % IPC_ERROR_IO
        return bytes(out)

    # Each state takes the buffered input and returns True if it made progress, False to wait for more
    # input or, having set self._more, for the next call. At the end of input a state finishes instead.

    def _read_operation(self, out: bytearray, now: float) -> bool:
        buffer = self._buffer
        end = buffer.find(b"\n")
        if end < 0:
            # Hang up as soon as the line cannot become a valid one, rather than buffer it.
            if self._ended or not (b"set=1\n".startswith(buffer) or b"get=1\n".startswith(buffer)):
                self._hang_up()
            return False
        line = bytes(buffer[: end + 1])
        del buffer[: end + 1]
        if line == b"set=1\n":
            self._state, self._searched = self._read_set, 0
        elif line == b"get=1\n":
            self._state = self._read_get
        else:
            self._hang_up()   # wireguard-go: "invalid UAPI operation", and the connection is closed
        return True

    def _read_get(self, out: bytearray, now: float) -> bool:
        if not self._buffer:
            if self._ended:
                self._hang_up()   # wireguard-go: ReadByte fails, no answer
            return False
        byte = self._buffer[0]
        del self._buffer[:1]
        if byte == ord("\n"):
            self._state = self._write_get
        else:
            # wireguard-go reads exactly one byte after "get=1\n" and answers a wrong one with -EINVAL.
            self._state = self._read_operation
            self.last_error = UapiError(IPC_ERROR_INVALID, "trailing character in UAPI get")
            out += b"errno=%d\n\n" % IPC_ERROR_INVALID
        return True

    def _write_get(self, out: bytearray, now: float) -> bool:
        if not self._take_turn():
            return False
        if self._get is None:
            self._get = get_lines(self.device)
        budget = self._budget
        lines = list(islice(self._get, None if budget == math.inf else int(budget)))
        if lines:
            out += ("\n".join(lines) + "\n").encode()
        if len(lines) == budget:
            self._budget = 0
            self._more = True
            return False
        self._budget -= len(lines)
        self._get = None
        self._end_operation()
        self.last_error = None
        out += b"errno=0\n\n"
        return True

    def _read_set(self, out: bytearray, now: float) -> bool:
        buffer = self._buffer
        # The body ends at the first empty line; a line's "\r" before its "\n" is dropped, as Go's
        # bufio.ScanLines does, so "\r\n" is an empty line too.
        if buffer[:1] == b"\n":
            body_end, operation_end = 0, 1
        elif buffer[:2] == b"\r\n":
            body_end, operation_end = 0, 2
        else:
            start = max(self._searched - 2, 0)
            lf, crlf = buffer.find(b"\n\n", start), buffer.find(b"\n\r\n", start)
            if lf < 0 and crlf < 0:
                self._searched = len(buffer)
                if self._ended:   # the end of input ends the operation too
                    body_end = operation_end = len(buffer)
                    if buffer.endswith(b"\n"):
                        body_end -= 1
                elif len(buffer) > self._max_operation_size:
                    del buffer[:-2]   # keep what could begin the empty line
                    self._state = self._discard_set
                    return False
                else:
                    return False
            elif crlf < 0 or 0 <= lf < crlf:
                body_end, operation_end = lf, lf + 2
            else:
                body_end, operation_end = crlf, crlf + 3
        if body_end > self._max_operation_size:
            del buffer[:operation_end]
            self._state = self._read_operation
            out += self._answer_oversized()
            return True
        with memoryview(buffer) as view:
            self._set = _SetOperation(view[:body_end])
        del buffer[:operation_end]
        self._state = self._apply_set
        return True

    def _discard_set(self, out: bytearray, now: float) -> bool:
        """An operation past MAX_OPERATION_SIZE: skip it as it arrives, keeping only two bytes of it."""
        buffer = self._buffer
        ends = [(at, at + size) for at, size in ((buffer.find(b"\n\n"), 2), (buffer.find(b"\n\r\n"), 3)) if at >= 0]
        if not ends and not self._ended:
            del buffer[:-2]
            return False
        del buffer[: min(ends)[1] if ends else len(buffer)]
        self._state = self._read_operation
        out += self._answer_oversized()
        return True

    def _apply_set(self, out: bytearray, now: float) -> bool:
        if not self._take_turn():
            return False
        try:
            if not self._apply(self._set, now):
                self._more = True
                return False
        except UapiError as error:
            self.last_error = error
            out += b"errno=%d\n\n" % error.errno
        else:
            self.last_error = None
            out += b"errno=0\n\n"
        self._set = None
        self._end_operation()
        return True

    def _take_turn(self) -> bool:
        """Whether this call may work on its operation now: the budget is not spent and the device's lock
        is free or ours (then it is ours). If not, the call ends with work left."""
        lock = self._lock
        if self._budget <= 0 or lock.owner not in (None, self):
            self._more = True
            return False
        lock.owner = self
        return True

    def _end_operation(self) -> None:
        if self._lock.owner is self:
            self._lock.owner = None
        self._state = self._read_operation

    def _drop_operation(self) -> None:
        self._set = self._get = None
        self._more = False
        self._end_operation()

    def _hang_up(self) -> None:
        self.closed = True
        self._buffer.clear()
        self._drop_operation()

    def _answer_oversized(self) -> bytes:
        self.last_error = UapiError(IPC_ERROR_IO, f"failed to read input: operation longer than {self._max_operation_size} bytes")
        return b"errno=%d\n\n" % IPC_ERROR_IO

    def _apply(self, operation: _SetOperation, now: float) -> bool:
        """wireguard-go ``IpcSetOperation``: device lines until the first ``public_key``, then peer
        sections; stop at the first bad line, keeping what the lines before it did. Applies at most the
        budget's worth of lines; True once the operation is done."""
        budget = self._budget
        count = None if budget == math.inf else int(budget)
        first, section = operation.number, operation.section
        number = first
        try:
            for raw in islice(operation.lines, count):
                number += 1
                if len(raw) > MAX_LINE_SIZE + raw.endswith(b"\n"):
                    raise UapiError(IPC_ERROR_IO, f"failed to read input: line {number} is longer than {MAX_LINE_SIZE} bytes")
                if raw.endswith(b"\n"):
                    raw = raw[:-1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                if not raw:
                    break   # only at the very end of input: "\r" as the last line
                key, equals, value = raw.decode("utf-8", "surrogateescape").partition("=")
                if not equals:
                    raise UapiError(IPC_ERROR_PROTOCOL, f"failed to parse line {number}: no '='")
                try:
                    if key == "public_key":
                        self._end_section(section, now)
                        section = None
                        section = self._begin_section(value)
                    elif section is None:
                        self._device_line(key, value)
                    else:
                        self._peer_line(section, key, value)
                except UapiError as error:
                    raise UapiError(error.errno, f"line {number}: {error}") from None
            else:
                if number - first == count:   # the budget is spent; there may be more
                    operation.number, operation.section = number, section
                    self._budget = 0
                    return False
        except UapiError as error:
            if error.errno == IPC_ERROR_IO:
                # A line too long for wireguard-go's scanner ends its loop, and the open section is
                # finished as at the end of the input (keepalive, staged packets) before -EIO is answered.
                self._end_section(section, now)
            elif section is not None and section.peer is not None and section.keepalive is not None:
                # Any other bad line returns before the section is finished: wireguard-go has stored the
                # interval at its line but sends neither the keepalive nor the staged packets. Here the
                # interval waits for the section's end, so store it, and only it.
                section.peer.persistent_keepalive_interval = section.keepalive
            raise
        finally:
            self._budget = budget - (number - first)
        self._end_section(section, now)
        return True

    def _device_line(self, key: str, value: str) -> None:
        """wireguard-go ``handleDeviceLine``."""
        device = self.device
        if key == "private_key":
            raw = _parse_key(value, key)
            # FromMaybeZeroHex: all zeros removes the key; anything else is clamped, as wg genkey does.
            device.set_private_key(None if constant_time_equal(raw, _ZERO_KEY) else PrivateKey(clamp(raw)))
        elif key == "listen_port":
            port = _parse_uint(value, 16, key)
            device.listen_port = port
            if self._bind is not None:
                try:
                    device.listen_port = self._bind(port, device.fwmark)
                except OSError as error:
                    device.listen_port = 0   # BindUpdate: a failed Open leaves the port at 0
                    raise UapiError(IPC_ERROR_PORT_IN_USE, f"failed to set listen_port {port}: {error}") from None
        elif key == "fwmark":
            mark = _parse_uint(value, 32, key)
            if mark == device.fwmark:
                return   # BindSetMark: nothing to do
            device.fwmark = mark   # kept even if the socket refuses it, as in wireguard-go
            if self._bind is not None:
                try:
                    device.listen_port = self._bind(device.listen_port, mark)
                except OSError as error:
                    raise UapiError(IPC_ERROR_PORT_IN_USE, f"failed to update fwmark {mark}: {error}") from None
        elif key == "replace_peers":
            _expect_true(key, value)
            device.remove_all_peers()
        else:
            raise UapiError(IPC_ERROR_INVALID, f"invalid UAPI device key {_key_name(key)}")

    def _begin_section(self, value: str) -> _Section:
        """wireguard-go ``handlePublicKeyLine``: find or create the peer."""
        device = self.device
        public_key = _parse_key(value, "public_key")
        # The device's own key is ignored; without a private key wireguard-go's public key is all zeros.
        own = device.private_key.public if device.private_key is not None else _ZERO_KEY
        if public_key == own:
            return _Section(None)
        peer = device.peers.get(public_key)
        if peer is not None:
            return _Section(peer)
        if len(device.peers) >= MAX_PEERS:
            raise UapiError(IPC_ERROR_INVALID, "failed to create new peer: too many peers")
        return _Section(device.add_peer(public_key), created=True)

    def _peer_line(self, section: _Section, key: str, value: str) -> None:
        """wireguard-go ``handlePeerLine``: every value is checked, even for a placeholder peer."""
        device, peer = self.device, section.peer
        if key == "update_only":
            _expect_true(key, value)
            if section.created and peer is not None:
                device.remove_peer(peer.public_key)
                section.peer = None
        elif key == "remove":
            _expect_true(key, value)
            if peer is not None:
                device.remove_peer(peer.public_key)
            section.peer = None
        elif key == "preshared_key":
            preshared_key = _parse_key(value, key)
            if peer is not None:
                peer.preshared_key = preshared_key   # all zeros is no preshared key
        elif key == "endpoint":
            endpoint = self._parse_endpoint(value)
            if peer is not None:
                device.set_endpoint(peer, endpoint)   # a configured endpoint: routing picks our source
        elif key == "persistent_keepalive_interval":
            section.keepalive = _parse_uint(value, 16, key)
        elif key == "replace_allowed_ips":
            _expect_true(key, value)
            if peer is not None:
                device.allowed_ips.remove_by_peer(peer)
        elif key == "allowed_ip":
            removing = value.startswith("-")
            address, cidr = _parse_prefix(value[1:] if removing else value)
            if peer is not None:
                if removing:
                    device.allowed_ips.remove(address, cidr, peer)
                else:
                    device.allowed_ips.insert(address, cidr, peer)
        elif key == "protocol_version":
            if value != "1":
                raise UapiError(IPC_ERROR_INVALID, "invalid protocol version: only 1 is known")
        else:
            raise UapiError(IPC_ERROR_INVALID, f"invalid UAPI peer key {_key_name(key)}")

    def _end_section(self, section: _Section | None, now: float) -> None:
        """wireguard-go ``ipcSetPeer.handlePostConfig``: a keepalive if one was just turned on, then send
        what waited for this configuration (an endpoint, say)."""
        if section is None or section.peer is None:
            return
        if section.keepalive is not None:
            self.device.set_persistent_keepalive(section.peer, section.keepalive, now)
        self.device.send_staged_packets(section.peer, now)

    def _parse_endpoint(self, text: str) -> tuple:
        """Go's ``netip.ParseAddrPort`` (``StdNetBind.ParseEndpoint``): ``a.b.c.d:port`` or
        ``[ipv6%zone]:port``, literals only. The result has the runtime's socket form: ``(host, port)``,
        or ``(host, port, 0, scope_id)`` for a zoned IPv6 address."""
        host, colon, port_text = text.rpartition(":")
        bracketed = host.startswith("[")
        if bracketed:
            host = host[1:-1] if len(host) >= 2 and host.endswith("]") else ""
        parsed = _parse_address(host) if colon and port_text else None
        if parsed is None or bracketed != (len(parsed[0]) == 16):
            raise UapiError(IPC_ERROR_INVALID, "failed to set endpoint: not an ip:port or [ipv6]:port literal")
        port = _parse_uint(port_text, 16, "endpoint port")
        packed, zone = parsed
        scope_id = self._scope_id(zone) if zone else 0
        return (_format_address(packed), port, 0, scope_id) if scope_id else (_format_address(packed), port)

    def _scope_id(self, zone: str) -> int:
        if zone.isascii() and zone.isdigit():
            if len(zone) <= 10 and int(zone) < 1 << 32:
                return int(zone)
        elif self._interface_index is not None and len(zone.encode("utf-8", "surrogateescape")) < 16 and "\0" not in zone:
            try:
                return self._interface_index(zone)
            except (OSError, ValueError):
                pass
        raise UapiError(IPC_ERROR_INVALID, "failed to set endpoint: unknown zone")
