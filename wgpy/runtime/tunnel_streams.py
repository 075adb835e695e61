"""TCP through the tunnel as asyncio knows it: a ``Transport`` over a stack ``TcpSocket``, and a server.

An application gets asyncio's own ``StreamReader``/``StreamWriter`` (or its protocol) on top of
:class:`TcpTransport`, so everything written for asyncio streams works unchanged. Flow control goes both
ways through the stack's bounded buffers (docs/netstack.md):

- reading: data is taken from the stack only while the protocol reads (``pause_reading`` stops taking
  it); what is not taken stays in the stack's receive buffer, whose free space is the window advertised
  to the peer (RFC 9293 3.8.6), so a slow reader closes the window instead of growing a buffer;
- writing: ``write`` gives the stack's send buffer what fits and keeps the rest; past the high-water mark
  the protocol is paused, and ``StreamWriter.drain()`` waits until the stack has taken it.

``write_eof`` is a FIN after what was written (half-close), ``close`` the same and then forgets the
connection, ``abort`` a RST. Errors are asyncio's: ConnectionRefusedError (RST to our SYN),
ConnectionResetError, TimeoutError (retransmissions gave up).
"""

from __future__ import annotations

import asyncio
import errno

READ_CHUNK = 65536
HIGH_WATER = 64 * 1024    # asyncio's default write-buffer limits
_ERRORS = (("refused", ConnectionRefusedError, errno.ECONNREFUSED), ("reset", ConnectionResetError, errno.ECONNRESET),
           ("timed out", TimeoutError, errno.ETIMEDOUT), ("unreachable", OSError, errno.EHOSTUNREACH))


def connection_error(reason: str, address: tuple | None = None) -> OSError:
    """The exception asyncio would raise for a stack socket's ``error`` ("connection refused", ...)."""
    where = f" ({address[0]}, {address[1]})" if address else ""
    for word, kind, number in _ERRORS:
        if word in reason:
            return kind(number, f"{reason}{where}")
    return ConnectionAbortedError(errno.ECONNABORTED, f"{reason}{where}")


def _name(tcp_socket, which: str) -> tuple:
    return tuple(getattr(tcp_socket, which))


class TcpTransport(asyncio.Transport):
    """One TCP connection through the tunnel. Created by the tunnel; the protocol comes with
    :meth:`attach` (``connection_made``)."""

    def __init__(self, engine, tcp_socket, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._engine = engine
        self._socket = tcp_socket
        self._loop = loop
        self._protocol: asyncio.BaseProtocol | None = None
        self._buffer = bytearray()
        self._high, self._low = HIGH_WATER, HIGH_WATER // 4
        self._writing_paused = False
        self._reading = True
        self._closing = False      # close() or abort() was called
        self._eof_asked = False    # write_eof(): FIN once the buffer is given to the stack
        self._eof_given = False
        self._eof_received = False
        self._lost = False
        self._connected: asyncio.Future | None = None
        self._extra = {"peername": _name(tcp_socket, "remote"), "sockname": _name(tcp_socket, "local"),
                       "socket": None}
        engine.register(tcp_socket, self)

    # ------------------------------------------------------------------------------ the tunnel's side

    async def wait_connected(self) -> None:
        """Until the handshake completes; raises ConnectionRefusedError, TimeoutError ... on failure.
        Cancelled, the connection is aborted."""
        self._connected = self._loop.create_future()
        self._engine.kick()   # the SYN
        try:
            await self._connected
        except BaseException:
            if not self._lost:
                self._lost = True
                self._socket.abort()
                self._engine.forget(self._socket)
                self._engine.kick()
            raise
        finally:
            self._connected = None

    def attach(self, protocol: asyncio.BaseProtocol) -> None:
        """Give the connection its protocol (``connection_made``) and deliver what already arrived."""
        self._protocol = protocol
        protocol.connection_made(self)
        self._update_names()
        self._deliver()
        if self._socket.error is not None or _closed_state(self._socket):
            self._on_closed()

    def on_stack_event(self, event) -> None:
        kind = type(event).__name__
        if kind == "Connected":
            self._update_names()
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(None)
        elif kind == "Readable":
            self._deliver()
        elif kind == "Writable":
            self._push()
        elif kind == "Closed":
            self._on_closed()

    def on_tunnel_closed(self) -> None:
        error = ConnectionAbortedError(errno.ECONNABORTED, "the tunnel was closed")
        if self._connected is not None and not self._connected.done():
            self._connected.set_exception(error)
        elif not self._lost:
            self._socket.abort()
            self._lose(error)

    def _update_names(self) -> None:
        self._extra["sockname"] = _name(self._socket, "local")
        self._extra["peername"] = _name(self._socket, "remote")

    def _deliver(self) -> None:
        protocol = self._protocol
        if protocol is None or self._lost:
            return
        taken = False
        while self._reading and not self._lost:
            data = self._socket.recv(READ_CHUNK)
            if not data:
                break
            taken = True
            protocol.data_received(data)
        if taken:
            self._engine.kick()   # the window opened: the stack may have an ACK to send
        if self._reading and not self._lost and not self._eof_received and self._socket.at_eof:
            self._eof_received = True
            if not protocol.eof_received():
                self.close()

    def _push(self) -> None:
        """Give the stack what fits of the buffer; FIN and close follow the last byte."""
        if self._lost:
            return
        buffer, tcp = self._buffer, self._socket
        while buffer:
            room = tcp.writable
            if room <= 0:
                break
            taken = tcp.send(bytes(buffer[:room]))
            if taken <= 0:
                break
            del buffer[:taken]
        if self._writing_paused and len(buffer) <= self._low:
            self._writing_paused = False
            self._protocol.resume_writing()
        if not buffer:
            if self._closing:
                self._finish_close()
            elif self._eof_asked and not self._eof_given:
                self._eof_given = True
                tcp.shutdown_write()
        self._engine.kick()

    def _on_closed(self) -> None:
        """The stack forgot the connection: an orderly end (``error`` None) or a failure."""
        error = self._socket.error
        self._engine.forget(self._socket)
        if self._connected is not None and not self._connected.done():
            self._lost = True
            self._connected.set_exception(connection_error(error or "connection closed", self._extra["peername"]))
            return
        if self._lost:
            return
        if error is None:
            reading = self._reading
            self._reading = True    # whatever is left is delivered before the end
            self._deliver()
            self._reading = reading
        self._lose(None if error is None else connection_error(error, self._extra["peername"]))

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._buffer.clear()
        self._engine.forget(self._socket)
        if self._protocol is not None:
            self._loop.call_soon(self._protocol.connection_lost, exc)

    def _finish_close(self) -> None:
        self._socket.close()
        self._engine.kick()
        self._lose(None)

    # ------------------------------------------------------------------------------ asyncio.Transport

    def get_extra_info(self, name, default=None):
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._reading = False
        if self._lost:
            return
        if not self._buffer:
            self._finish_close()

    def abort(self) -> None:
        self._closing = True
        if not self._lost:
            self._socket.abort()
            self._engine.kick()
            self._lose(None)

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol

    def get_protocol(self):
        return self._protocol

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if self._reading or self._closing:
            return
        self._reading = True
        self._loop.call_soon(self._engine.contained, "socket event", self._deliver)

    def write(self, data) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof_asked:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._closing or self._lost or not data:
            return   # as asyncio: writing to a closed transport is ignored
        if not self._buffer:
            room = self._socket.writable
            if room > 0:
                taken = self._socket.send(bytes(data[:room]))
                data = data[taken:]
            self._engine.kick()
        if data:
            self._buffer += data
            if not self._writing_paused and len(self._buffer) > self._high:
                self._writing_paused = True
                self._protocol.pause_writing()

    def writelines(self, list_of_data) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self._eof_asked or self._closing or self._lost:
            return
        self._eof_asked = True
        if not self._buffer:
            self._eof_given = True
            self._socket.shutdown_write()
            self._engine.kick()

    def can_write_eof(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        if high is None:
            high = HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low


def _closed_state(tcp_socket) -> bool:
    state = getattr(tcp_socket, "state", None)
    return state is not None and getattr(state, "name", "") == "CLOSED"


class ListeningSocket:
    """What :attr:`TunnelServer.sockets` lists, as ``asyncio.Server.sockets`` lists its sockets."""

    def __init__(self, address: str, port: int | None, transparent: bool) -> None:
        self._name = (address, port or 0)
        self.transparent = transparent

    def getsockname(self) -> tuple:
        return self._name

    def __repr__(self) -> str:
        return f"<ListeningSocket {self._name[0]}:{self._name[1]}{' transparent' if self.transparent else ''}>"


class TunnelServer:
    """A listener in the tunnel's stack, shaped like ``asyncio.Server``: an async context manager with
    ``close``, ``wait_closed``, ``is_serving``, ``serve_forever`` and ``sockets``."""

    def __init__(self, engine, listener, protocol_factory, loop: asyncio.AbstractEventLoop,
                 names: list[ListeningSocket]) -> None:
        self._engine = engine
        self._listener = listener
        self._factory = protocol_factory
        self._loop = loop
        self._names = names
        self._serving = True
        self._closed = loop.create_future()
        self._serving_forever: asyncio.Future | None = None
        engine.register(listener, self)

    def on_stack_event(self, event) -> None:
        if type(event).__name__ == "Incoming":
            self._accept()

    def on_tunnel_closed(self) -> None:
        self.close()

    def _accept(self) -> None:
        while self._serving:
            tcp_socket = self._listener.accept()
            if tcp_socket is None:
                return
            transport = TcpTransport(self._engine, tcp_socket, self._loop)
            self._engine.contained("new connection", transport.attach, self._factory())

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[ListeningSocket, ...]:
        return tuple(self._names) if self._serving else ()

    def close(self) -> None:
        """Stop listening (the stack refuses new connections with RST); connections already made go on."""
        if not self._serving:
            return
        self._serving = False
        self._engine.forget(self._listener)
        self._listener.close()
        self._engine.kick()
        if not self._closed.done():
            self._closed.set_result(None)
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    async def start_serving(self) -> None:
        """Already serving since it was made (as ``start_server(start_serving=True)``)."""

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if not self._serving:
            raise RuntimeError(f"server {self!r} is closed")
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    async def __aenter__(self) -> "TunnelServer":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<TunnelServer sockets={self.sockets!r}>"
