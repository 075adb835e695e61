"""``--health ADDR:PORT``: ``/readyz`` and ``/metrics`` (Prometheus text format 0.0.4) over HTTP/1.1.

``/readyz`` is 200 while some peer completed a handshake within the last REJECT_AFTER_TIME (180 s, after
which its keys are refused anyway, whitepaper 6.1), else 503. ``/metrics`` has, per peer, the bytes
received and sent and the latest handshake (Unix seconds, 0 for never), and every drop counted, by layer
(``device``: the core's :class:`~wgpy.core.errors.Drop`; ``stack``: the userspace stack's ``NetDrop``;
``proxy``: refused clients) and reason.

The answer is computed from a :class:`Health` snapshot by :func:`answer`, bytes in and bytes out, so any
runtime can serve it: ``wgpy proxy`` on asyncio (:func:`serve`), the TUN daemon from its poll loop later,
each with a snapshot of its own ``Device`` (:func:`device_health`).
"""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from ..core.constants import REJECT_AFTER_TIME
from ..core.encoding import key_to_base64

MAX_REQUEST_HEAD = 8192
READ_TIMEOUT = 10.0


def parse_address(text: str) -> tuple[str, int]:
    """ADDR:PORT, ``[v6]:PORT``, or a bare PORT (on 127.0.0.1: what is served is for this host unless told)."""
    if text.isdigit():
        host, port = "127.0.0.1", text
    elif text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not ADDR:PORT")
    return host, int(port)


@dataclass(frozen=True)
class PeerHealth:
    public_key: bytes
    rx_bytes: int
    tx_bytes: int
    last_handshake: float | None     # wall-clock seconds, None before the first handshake


@dataclass(frozen=True)
class Health:
    peers: tuple[PeerHealth, ...] = ()
    drops: tuple[tuple[str, str, int], ...] = ()     # (layer, reason, count)


def device_health(device, *, stack=None, proxy_counts: Counter | None = None) -> Health:
    """A snapshot of a Device's peers and drops (and a stack's, and a proxy's refusals, when given)."""
    peers = tuple(PeerHealth(peer.public_key, peer.rx_bytes, peer.tx_bytes, peer.last_handshake_time)
                  for peer in device.peers.values()) if device is not None else ()
    drops = []
    for layer, counter in (("device", device.drops if device is not None else None),
                           ("stack", stack.drops if stack is not None else None)):
        for reason, count in sorted((counter or {}).items(), key=lambda item: item[0].name):
            drops.append((layer, reason.name, count))
    for key, count in sorted((proxy_counts or {}).items()):
        if key.startswith("refused:"):
            drops.append(("proxy", key.removeprefix("refused:"), count))
    return Health(peers, tuple(drops))


def is_ready(health: Health, now: float) -> bool:
    """Some peer's latest handshake is less than REJECT_AFTER_TIME old (``now`` is wall-clock seconds)."""
    return any(peer.last_handshake is not None and 0 <= now - peer.last_handshake < REJECT_AFTER_TIME
               for peer in health.peers)


def _label(value: str) -> str:
    # Exposition format: a label value escapes backslash, double quote and line feed.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(health: Health, now: float) -> str:
    lines = ["# HELP wgpy_up 1 while some peer had a handshake in the last 180 seconds (as /readyz).",
             "# TYPE wgpy_up gauge", f"wgpy_up {int(is_ready(health, now))}",
             "# HELP wgpy_peers Peers configured.", "# TYPE wgpy_peers gauge", f"wgpy_peers {len(health.peers)}"]
    per_peer = (("wgpy_peer_receive_bytes_total", "counter", "Bytes of transport data received from the peer.",
                 lambda p: p.rx_bytes),
                ("wgpy_peer_transmit_bytes_total", "counter", "Bytes of transport data sent to the peer.",
                 lambda p: p.tx_bytes),
                ("wgpy_peer_latest_handshake_seconds", "gauge",
                 "Unix time of the peer's latest handshake, 0 for never.", lambda p: int(p.last_handshake or 0)))
    for name, kind, text, value in per_peer:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f'{name}{{public_key="{_label(key_to_base64(peer.public_key))}"}} {value(peer)}' for peer in health.peers]
    lines += ["# HELP wgpy_drops_total Inputs refused, by layer and named reason.", "# TYPE wgpy_drops_total counter"]
    lines += [f'wgpy_drops_total{{layer="{_label(layer)}",reason="{_label(reason)}"}} {count}'
              for layer, reason, count in health.drops]
    return "\n".join(lines) + "\n"


def _response(status: int, reason: str, body: str, content_type: str = "text/plain; charset=utf-8") -> bytes:
    payload = body.encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n").encode() + payload


def answer(head: bytes, health: Callable[[], Health], now: float) -> bytes:
    """The response to one request head (RFC 9112 3): GET or HEAD of /readyz or /metrics."""
    line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(line) != 3 or not line[2].startswith(b"HTTP/1."):
        return _response(400, "Bad Request", "not an HTTP/1.x request line\n")
    method, target = line[0], line[1].split(b"?", 1)[0]
    if method not in (b"GET", b"HEAD"):
        return _response(405, "Method Not Allowed", "GET /readyz or /metrics\n")
    if target == b"/readyz":
        ready = is_ready(health(), now)
        response = (_response(200, "OK", "ready: a peer had a handshake in the last 180 s\n") if ready else
                    _response(503, "Service Unavailable", "not ready: no peer had a handshake in the last 180 s\n"))
    elif target == b"/metrics":
        response = _response(200, "OK", metrics(health(), now), "text/plain; version=0.0.4; charset=utf-8")
    else:
        response = _response(404, "Not Found", "GET /readyz or /metrics\n")
    return response.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" if method == b"HEAD" else response


async def serve(health: Callable[[], Health], host: str, port: int, *, clock: Callable[[], float] = time.time):
    """An asyncio server answering one request per connection."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            writer.write(answer(head, health, clock()))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            writer.write(_response(400, "Bad Request", "incomplete or oversized request head\n"))
        finally:
            writer.close()

    return await asyncio.start_server(client, host, port, limit=MAX_REQUEST_HEAD)


class PollHealthServer:
    """The same answers from a poll loop (the TUN daemon's, runtime/loop.py): a non-blocking listening
    socket and its clients, one request each. The loop hands it the events of the descriptors it owns
    (``owns``/``ready``) and calls ``expire`` now and then; a client never blocks the loop."""

    MAX_CLIENTS = 16

    def __init__(self, host: str, port: int, health: Callable[[], Health], *,
                 clock: Callable[[], float] = time.time) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, port), family=family, backlog=16)
        self.listener.setblocking(False)
        self.health, self.clock = health, clock
        self.clients: dict[int, list] = {}    # fd -> [socket, received, answer to send, when accepted]
        self.poll = None

    def register(self, poll) -> None:
        self.poll = poll
        poll.register(self.listener.fileno(), select.POLLIN)

    def owns(self, fd: int) -> bool:
        return fd == self.listener.fileno() or fd in self.clients

    def ready(self, fd: int, event: int, now: float) -> None:
        if fd == self.listener.fileno():
            for _ in range(self.MAX_CLIENTS):
                try:
                    client, _ = self.listener.accept()
                except (BlockingIOError, InterruptedError):
                    return
                if len(self.clients) >= self.MAX_CLIENTS:
                    client.close()
                    continue
                client.setblocking(False)
                self.clients[client.fileno()] = [client, bytearray(), b"", now]
                self.poll.register(client.fileno(), select.POLLIN)
            return
        state = self.clients[fd]
        client, received = state[0], state[1]
        if not state[2]:
            try:
                data = client.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._close(fd)
                return
            received += data
            if b"\r\n\r\n" not in received and len(received) <= MAX_REQUEST_HEAD:
                return
            state[2] = (answer(bytes(received), self.health, self.clock()) if b"\r\n\r\n" in received
                        else _response(400, "Bad Request", "oversized request head\n"))
            self.poll.modify(fd, select.POLLOUT)
        try:
            sent = client.send(state[2])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            sent = len(state[2])
        state[2] = state[2][sent:]
        if not state[2]:
            self._close(fd)

    def expire(self, now: float) -> None:
        for fd in [fd for fd, state in self.clients.items() if now - state[3] > READ_TIMEOUT]:
            self._close(fd)

    def _close(self, fd: int) -> None:
        state = self.clients.pop(fd)
        self.poll.unregister(fd)
        state[0].close()

    def close(self) -> None:
        for fd in list(self.clients):
            self._close(fd)
        self.listener.close()
