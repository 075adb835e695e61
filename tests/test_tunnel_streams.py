"""The asyncio transport and server of wgpy.Tunnel against the stack's socket contract (docs/netstack.md),
with a stand-in stack whose TCP sockets are joined back to back: no packets, just the contract's calls and
events, bounded buffers included. So the transport's flow control, half-close and errors are checked on
their own, whatever the TCP underneath does.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from wgpy.core.device import Device
from wgpy.netstack.events import Closed, Connected, Incoming, Readable, Writable
from wgpy.runtime.tunnel_engine import Engine
from wgpy.runtime.tunnel_streams import ListeningSocket, TcpTransport, TunnelServer
from wgpy.runtime.udp import Udp

BUFFER = 4096   # each socket's receive buffer: small, so that flow control shows


class Joined:
    """One end of a connection joined back to back with another (``peer``): what one sends lands in the
    other's bounded receive buffer; ``writable`` is the room left there."""

    def __init__(self, stack: "JoinedStack", local: tuple, remote: tuple) -> None:
        self.stack, self.local, self.remote = stack, local, remote
        self.peer: Joined | None = None
        self.buffer = bytearray()
        self.fin = False            # the peer will send nothing more
        self.sent_fin = False
        self.error: str | None = None
        self.gone = False

    @property
    def readable(self) -> int:
        return len(self.buffer)

    @property
    def writable(self) -> int:
        return 0 if self.sent_fin or self.peer is None else BUFFER - len(self.peer.buffer)

    @property
    def at_eof(self) -> bool:
        return self.fin and not self.buffer

    def send(self, data: bytes) -> int:
        taken = bytes(data[: self.writable])
        if taken:
            self.peer.buffer += taken
            self.stack.event(Readable(self.peer))
        return len(taken)

    def recv(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        if data and self.peer is not None:
            self.stack.event(Writable(self.peer))
        return data

    def shutdown_write(self) -> None:
        if not self.sent_fin:
            self.sent_fin = True
            self.peer.fin = True
            self.stack.event(Readable(self.peer))
            self.stack.closing(self)

    def close(self) -> None:
        self.shutdown_write()

    def abort(self) -> None:
        if self.peer is not None and not self.peer.gone:
            self.peer.error = "connection reset"
            self.peer.gone = True
            self.stack.event(Closed(self.peer))
        self.gone = True


class Listener:
    def __init__(self, stack, port) -> None:
        self.stack, self.port, self.queue, self.closed = stack, port, [], False

    def accept(self):
        return self.queue.pop(0) if self.queue else None

    def close(self) -> None:
        self.closed = True
        self.stack.listeners.pop(self.port, None)


class JoinedStack:
    """The stack's calls the tunnel makes, with connections joined in memory."""

    def __init__(self) -> None:
        self.listeners: dict[int, Listener] = {}
        self._events: dict = {}
        self._next_port = 40000

    def event(self, event) -> None:
        self._events[event] = None

    def events(self) -> list:
        events, self._events = list(self._events), {}
        return events

    def receive_packets(self, packets, now) -> None:
        pass

    def packets_to_send(self) -> list:
        return []

    def poll(self, now) -> None:
        pass

    def next_deadline(self):
        return None

    def tcp_listen(self, port, address=None, backlog=128, transparent=False) -> Listener:
        listener = self.listeners[port] = Listener(self, port)
        return listener

    def tcp_connect(self, remote, now, local=None) -> Joined:
        self._next_port += 1
        mine = Joined(self, ("10.0.0.1", self._next_port), tuple(remote))
        listener = self.listeners.get(remote[1])
        if listener is None:
            mine.error, mine.gone = "connection refused", True
            self.event(Closed(mine))
            return mine
        theirs = Joined(self, tuple(remote), mine.local)
        mine.peer, theirs.peer = theirs, mine
        listener.queue.append(theirs)
        self.event(Connected(mine))
        self.event(Incoming(listener))
        return mine

    def closing(self, end: Joined) -> None:
        """Both ends have sent their FIN: the connection is over for both (orderly)."""
        peer = end.peer
        if end.sent_fin and peer.sent_fin:
            for side in (end, peer):
                if not side.gone:
                    side.gone = True
                    self.event(Closed(side))


def with_engine(test):
    async def main():
        loop = asyncio.get_running_loop()
        stack = JoinedStack()
        engine = Engine(Device(rng=os.urandom), stack, Udp(), loop)
        try:
            await asyncio.wait_for(test(engine, stack, loop), 30)
        finally:
            engine.close()
        assert not engine.bugs, engine.bugs

    asyncio.run(main())


async def open_connection(engine, stack, loop, port: int):
    transport = TcpTransport(engine, stack.tcp_connect(("10.0.0.2", port), loop.time()), loop)
    await transport.wait_connected()
    reader = asyncio.StreamReader(limit=BUFFER, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport.attach(protocol)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


def serve(engine, stack, loop, port: int, handle) -> TunnelServer:
    def factory():
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=BUFFER, loop=loop), handle, loop=loop)

    return TunnelServer(engine, stack.tcp_listen(port), factory, loop, [ListeningSocket("10.0.0.2", port, False)])


def test_a_transfer_larger_than_every_buffer_arrives_whole_and_drain_waits():
    data = os.urandom(300_000)

    async def test(engine, stack, loop):
        received = loop.create_future()

        async def slow(reader, writer):
            await asyncio.sleep(0.2)   # meanwhile the writer's drain() must wait: 4 KiB buffers
            received.set_result(await reader.read())
            writer.close()

        serve(engine, stack, loop, 80, slow)
        reader, writer = await open_connection(engine, stack, loop, 80)
        writer.write(data)
        drained = asyncio.ensure_future(writer.drain())
        await asyncio.sleep(0.1)
        assert not drained.done()                      # the reader reads nothing yet: the buffers are full
        assert writer.transport.get_write_buffer_size() > 0
        await drained
        writer.write_eof()
        assert await received == data
        assert await reader.read() == b""              # the server's close: our EOF
        writer.close()
        await writer.wait_closed()

    with_engine(test)


def test_a_paused_reader_leaves_data_in_the_stack():
    """StreamReader pauses the transport past twice its limit: what is left stays in the socket's buffer,
    whose room (the window) is then zero for the sender."""
    async def test(engine, stack, loop):
        ends = []
        serve(engine, stack, loop, 81, lambda reader, writer: ends.append((reader, writer)))
        reader, writer = await open_connection(engine, stack, loop, 81)
        await asyncio.sleep(0)
        server_reader, server_writer = ends[0]
        for _ in range(10):
            writer.write(os.urandom(BUFFER))
            await asyncio.sleep(0.01)
        assert not server_writer.transport.is_reading()        # paused by the StreamReader
        assert writer.transport.get_write_buffer_size() > 0    # the rest waits on our side
        got = await server_reader.readexactly(10 * BUFFER)      # reading resumes the transport
        assert len(got) == 10 * BUFFER
        writer.close()

    with_engine(test)


def test_refused_and_reset_are_asyncios_errors():
    async def test(engine, stack, loop):
        with pytest.raises(ConnectionRefusedError):
            await open_connection(engine, stack, loop, 9)

        async def reset(reader, writer):
            writer.transport.abort()

        serve(engine, stack, loop, 82, reset)
        reader, writer = await open_connection(engine, stack, loop, 82)
        with pytest.raises(ConnectionResetError):
            await reader.read()

    with_engine(test)


def test_write_eof_then_the_answer():
    async def test(engine, stack, loop):
        async def answer(reader, writer):
            body = await reader.read()
            writer.write(b"%d" % len(body))
            writer.close()

        serve(engine, stack, loop, 83, answer)
        reader, writer = await open_connection(engine, stack, loop, 83)
        assert writer.can_write_eof()
        writer.write(b"12345")
        writer.write_eof()
        with pytest.raises(RuntimeError):
            writer.write(b"after the FIN")
        assert await reader.read() == b"5"
        assert writer.get_extra_info("peername") == ("10.0.0.2", 83)

    with_engine(test)


def test_server_close_and_serve_forever():
    async def test(engine, stack, loop):
        server = serve(engine, stack, loop, 84, lambda r, w: w.close())
        assert server.is_serving() and [s.getsockname() for s in server.sockets] == [("10.0.0.2", 84)]
        forever = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)
        server.close()
        with pytest.raises(asyncio.CancelledError):
            await forever
        await server.wait_closed()
        assert not server.is_serving() and stack.listeners == {}
        with pytest.raises(ConnectionRefusedError):
            await open_connection(engine, stack, loop, 84)

    with_engine(test)


def test_a_cancelled_connect_aborts():
    async def test(engine, stack, loop):
        listener = stack.tcp_listen(85)   # nobody accepts: the far end waits in the queue
        transport = TcpTransport(engine, stack.tcp_connect(("10.0.0.2", 85), loop.time()), loop)
        waiting = asyncio.ensure_future(transport.wait_connected())
        await asyncio.sleep(0)
        waiting.cancel()                  # before the Connected event is handed out
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert listener.queue[0].error == "connection reset"   # our abort reached the far end

    with_engine(test)
