"""The UAPI's stream framing: one client's bytes in, answers out (wireguard-go ``IpcHandle``), sans-IO.

A connection carries any number of operations, one after the other: ``get=1`` and an empty line, or
``set=1``, ``key=value`` lines and an empty line (get.py and set.py say what they do). Each answer ends with
``errno=`` and an empty line.

An operation is applied only once it is complete (its empty line has arrived, or the client shut down its
side), so a slow client holds nobody up. Then it is applied, or a ``get`` answered, a slice of lines at a
time if the caller gives a budget, holding the device's :class:`IpcLock` from the first slice to the last:
another connection never sees half of one, which is what wireguard-go's ``ipcMutex`` guarantees, and the
answers and the device end up the same however the work was sliced. Buffering the operation first means
a bound: it may be up to :data:`MAX_OPERATION_SIZE` bytes (16 MiB, room for some 700,000 ``allowed_ip``
lines), and one line up to :data:`~wgpy.uapi.set.MAX_LINE_SIZE` bytes (wireguard-go's ``bufio.Scanner``
limit). A longer operation is discarded as it streams in, without being buffered, and answered ``-EIO``;
a longer line is answered ``-EIO`` like wireguard-go's "failed to read input".

A first line that is neither ``get=1`` nor ``set=1`` makes the server hang up without an answer, as
wireguard-go does (:attr:`UapiConnection.closed`). Nothing the client sends makes :meth:`~UapiConnection.feed`
raise: a bug in wgpy while applying an operation is answered ``-EIO`` (h11's error strategy).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import islice

from ..core.device import Device
from .errors import IPC_ERROR_INVALID, IPC_ERROR_IO, UapiError
from .get import get_lines
from .values import InterfaceIndex

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from .set import Bind, SetOperation

MAX_OPERATION_SIZE = 16 * 1024 * 1024


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
    ``OSError`` (the port is taken, or the mark cannot be set) is answered ``-EADDRINUSE``, and the hook
    then leaves ``device.listen_port`` at the port still bound, if any. Without it the
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
        self._set: SetOperation | None = None     # the set being applied
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
        from .set import SetOperation   # with the first set, not with the daemon (bench_startup.py)

        with memoryview(buffer) as view:
            self._set = SetOperation(self.device, view[:body_end], bind=self._bind,
                                     interface_index=self._interface_index)
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
        operation = self._set
        first = operation.number
        try:
            if not operation.apply(now, self._budget):
                self._more = True
                return False
        except UapiError as error:
            self.last_error = error
            out += b"errno=%d\n\n" % error.errno
        else:
            self.last_error = None
            out += b"errno=0\n\n"
        finally:
            self._budget -= operation.number - first
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
