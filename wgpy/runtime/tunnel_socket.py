"""A real socket for blocking code: one end of ``socket.socketpair()``, the other pumped to a tunnel
connection by the event loop.

Libraries that want a socket (``ssl.wrap_socket``, ``http.client``, ``requests`` through an adapter) get
one: what they write to it goes out through the tunnel, what the tunnel receives they read from it, and
each direction's end (shutdown, FIN) follows to the other side. Use it from another thread than the
loop's (``asyncio.to_thread``): a blocking call on the loop's thread would stop the tunnel itself.
"""

from __future__ import annotations

import asyncio
import socket

PUMP_CHUNK = 65536


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the end of ``reader``; then end ``writer``'s direction. Flow control is ``drain``'s."""
    try:
        while True:
            data = await reader.read(PUMP_CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()


async def bridge(tunnel_reader: asyncio.StreamReader, tunnel_writer: asyncio.StreamWriter) -> tuple[socket.socket, asyncio.Task]:
    """The application's end of a socket pair whose other end is copied to and from a tunnel
    connection; and the task that copies (done when both directions have ended)."""
    theirs, ours = socket.socketpair()
    try:
        ours.setblocking(False)
        local_reader, local_writer = await asyncio.open_connection(sock=ours)
    except BaseException:
        theirs.close()
        ours.close()
        raise

    async def pump() -> None:
        try:
            await asyncio.gather(_copy(local_reader, tunnel_writer), _copy(tunnel_reader, local_writer))
        finally:
            for writer in (tunnel_writer, local_writer):
                writer.close()

    return theirs, asyncio.get_running_loop().create_task(pump())
