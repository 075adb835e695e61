"""The send buffer and the receive buffer of one connection (RFC 9293 3.10: SEND, RECEIVE; 3.8.6).

Both are bounded in bytes. Sequence numbers here are the connection's unwrapped ones (plain ints).

The send buffer keeps written bytes until they are acknowledged. Releasing acknowledged bytes from the
front of a ``bytearray`` is cheap in CPython (``del b[:n]`` moves the array's start, it does not copy),
so bulk transfer costs one copy in (``write``) and one copy out per segment sent (``read``).

The receive buffer keeps in-order bytes for the application and, apart, the segments that arrived beyond
a gap (RFC 9293 3.10.7.4: "segments with higher beginning sequence numbers may be held"), bounded in
bytes and in pieces; when the gap fills they move to the in-order bytes.
"""

from __future__ import annotations

import bisect

MAX_OUT_OF_ORDER_PIECES = 64  # a bound on the list walked per out-of-order segment, besides the bytes


class SendBuffer:
    __slots__ = ("capacity", "start", "_data")

    def __init__(self, capacity: int, start: int) -> None:
        self.capacity = capacity
        self.start = start  # the sequence number of the first byte kept (the oldest unacknowledged)
        self._data = bytearray()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def end(self) -> int:
        """The sequence number after the last byte written."""
        return self.start + len(self._data)

    @property
    def free(self) -> int:
        return self.capacity - len(self._data)

    def write(self, data: bytes) -> int:
        """Take as much of ``data`` as fits; returns how much."""
        n = min(len(data), self.capacity - len(self._data))
        if n:
            self._data += data if n == len(data) else memoryview(data)[:n]
        return n

    def read(self, seq: int, n: int) -> bytearray:
        """``n`` bytes from sequence number ``seq`` (a copy: the segment keeps it while the buffer moves)."""
        offset = seq - self.start
        return self._data[offset:offset + n]

    def release(self, seq: int) -> int:
        """Forget the bytes before ``seq`` (acknowledged); returns how many were released."""
        n = min(seq - self.start, len(self._data))
        if n > 0:
            del self._data[:n]
            self.start += n
            return n
        return 0


class ReceiveBuffer:
    __slots__ = ("capacity", "out_of_order_limit", "_data", "_starts", "_pieces", "out_of_order_bytes")

    def __init__(self, capacity: int, out_of_order_limit: int) -> None:
        self.capacity = capacity
        self.out_of_order_limit = out_of_order_limit
        self._data = bytearray()  # in order, for the application
        self._starts: list[int] = []  # out of order: sorted, disjoint pieces (start, bytes)
        self._pieces: list[bytearray] = []  # bytearrays: coalescing appends in place
        self.out_of_order_bytes = 0

    @property
    def readable(self) -> int:
        return len(self._data)

    @property
    def window(self) -> int:
        """Free space: what the receive window may offer (out-of-order bytes lie inside it)."""
        return self.capacity - len(self._data)

    @property
    def has_out_of_order(self) -> bool:
        return bool(self._starts)

    def read(self, max_bytes: int) -> bytes:
        data = bytes(self._data[:max_bytes])
        del self._data[:max_bytes]
        return data

    def append(self, payload: bytes | memoryview) -> None:
        """In-order bytes (the caller has trimmed them to the window)."""
        self._data += payload

    def insert(self, seq: int, payload: bytes | memoryview) -> bool:
        """Keep ``payload`` at ``seq`` beyond a gap; ``False`` when the bounds refuse it."""
        end = seq + len(payload)
        starts, pieces = self._starts, self._pieces
        # Cut what existing pieces already hold, keeping the new parts only.
        new: list[tuple[int, bytearray]] = []
        cursor = seq
        j = bisect.bisect_right(starts, seq) - 1
        if j >= 0:
            cursor = max(cursor, starts[j] + len(pieces[j]))
        j += 1  # the first piece starting after seq
        while cursor < end:
            upto = min(starts[j], end) if j < len(starts) else end
            if upto > cursor:
                new.append((cursor, bytearray(payload[cursor - seq:upto - seq])))
            if j >= len(starts):
                break
            cursor = max(cursor, starts[j] + len(pieces[j]))
            j += 1
        added = sum(len(piece) for _, piece in new)
        if not added:
            return True
        if self.out_of_order_bytes + added > self.out_of_order_limit or len(starts) + len(new) > MAX_OUT_OF_ORDER_PIECES:
            return False
        for start, piece in new:
            k = bisect.bisect_left(starts, start)
            # Coalesce with the piece just before when they touch, so a stream of segments stays one piece.
            if k and starts[k - 1] + len(pieces[k - 1]) == start:
                pieces[k - 1] += piece
                if k < len(starts) and starts[k] == start + len(piece):
                    pieces[k - 1] += pieces.pop(k)
                    starts.pop(k)
            elif k < len(starts) and starts[k] == start + len(piece):
                starts[k] = start
                pieces[k] = piece + pieces[k]
            else:
                starts.insert(k, start)
                pieces.insert(k, piece)
        self.out_of_order_bytes += added
        return True

    def take_in_order(self, rcv_nxt: int, right_edge: int) -> int:
        """Move pieces that now continue the in-order bytes; returns the new RCV.NXT.

        Bytes at or beyond ``right_edge`` (the window) stay where they are.
        """
        starts, pieces = self._starts, self._pieces
        while starts and starts[0] <= rcv_nxt:
            start, piece = starts[0], pieces[0]
            skip = rcv_nxt - start
            room = right_edge - rcv_nxt
            if skip >= len(piece):  # wholly old
                del starts[0], pieces[0]
                self.out_of_order_bytes -= len(piece)
                continue
            if room <= 0:
                break
            take = piece[skip:skip + room]
            self._data += take
            rcv_nxt += len(take)
            if skip + len(take) == len(piece):
                del starts[0], pieces[0]
                self.out_of_order_bytes -= len(piece)
            else:  # the window cut it: keep the rest
                rest = piece[skip + len(take):]
                starts[0], pieces[0] = rcv_nxt, rest
                self.out_of_order_bytes -= len(piece) - len(rest)
        return rcv_nxt

    def blocks(self) -> list[tuple[int, int]]:
        """The out-of-order pieces as (left, right) edges, for SACK blocks (RFC 2018 3)."""
        return [(start, start + len(piece)) for start, piece in zip(self._starts, self._pieces)]
