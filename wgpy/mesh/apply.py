"""Bring an interface to a host's plan with ``wg syncconf`` semantics, through any UAPI socket (wgpy's
daemon, wireguard-go; wireguard.com/xplatform).

``wg syncconf`` (wireguard-tools ``src/setconf.c``) removes the peers the file no longer names and sets
the rest without ``replace_peers``, so sessions survive. This goes one step further: it compares with
the interface's ``get=1`` answer and sends only the fields that differ, so an unchanged peer is not
touched at all, and each change is said in a line. One more difference from syncconf: a peer with a
live session (a handshake within the last 180 s) keeps the endpoint it roamed to (whitepaper section
2.1), since that is the address that works; the roster's endpoint is set on a new peer, or on one that
has not answered. Secrets are never
printed: a changed key is said to have changed.

:func:`changes` is pure (two texts in, an operation and sentences out); :func:`apply` talks to the socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network

from ..core.constants import KEY_LEN
from ..core.encoding import key_to_base64, key_to_hex
from .plan import HostPlan

_ZERO = "0" * (2 * KEY_LEN)


@dataclass
class Current:
    """An interface as a ``get=1`` answer describes it."""

    private_key: str = _ZERO                    # hex, as the UAPI writes keys
    listen_port: int = 0
    peers: dict[str, dict] = field(default_factory=dict)   # public key (hex) -> fields


def parse_get(answer: str) -> Current:
    current = Current()
    peer: dict | None = None
    for line in answer.splitlines():
        key, _, value = line.partition("=")
        if key == "errno":
            if value != "0":
                raise OSError(f"the interface answered get with errno={value}")
        elif key == "public_key":
            peer = current.peers.setdefault(value, {"preshared_key": _ZERO, "endpoint": None, "keepalive": 0,
                                                    "allowed_ips": set(), "handshake": 0, "handshake_nsec": 0,
                                                    "rx": 0, "tx": 0})
        elif peer is None:
            if key == "private_key":
                current.private_key = value
            elif key == "listen_port":
                current.listen_port = int(value)
        elif key == "preshared_key":
            peer["preshared_key"] = value
        elif key == "endpoint":
            peer["endpoint"] = _endpoint(value)
        elif key == "persistent_keepalive_interval":
            peer["keepalive"] = int(value)
        elif key == "allowed_ip":
            peer["allowed_ips"].add(ip_network(value, strict=False))
        elif key == "last_handshake_time_sec":
            peer["handshake"] = int(value)
        elif key == "last_handshake_time_nsec":
            peer["handshake_nsec"] = int(value)
        elif key == "rx_bytes":
            peer["rx"] = int(value)
        elif key == "tx_bytes":
            peer["tx"] = int(value)
    return current


def _endpoint(text: str) -> tuple:
    """``1.2.3.4:5`` or ``[::1]:5`` (or ``[fe80::1%eth0]:5``) as (address, port) for comparing."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]").partition("%")[0]
    return ip_address(host), int(port)


def format_endpoint(endpoint: tuple) -> str:
    address, port = endpoint
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


LIVE_SESSION = 180     # seconds since a handshake during which a roamed endpoint is kept


def changes(host: HostPlan, current: Current, resolve, now: float) -> tuple[str | None, list[str]]:
    """The ``set=1`` operation that brings ``current`` to ``host`` (None when nothing differs) and one
    sentence per change. ``resolve(name, port)`` turns an endpoint's host name into an address; ``now``
    is Unix time, to tell a live session."""
    lines: list[str] = []
    said: list[str] = []
    if host.private_key is not None and key_to_hex(host.private_key) != current.private_key:
        lines.append(f"private_key={key_to_hex(host.private_key)}")
        said.append("private key set")
    if host.listen_port is not None and host.listen_port != current.listen_port:
        lines.append(f"listen_port={host.listen_port}")
        said.append(f"listen port {current.listen_port} -> {host.listen_port}")
    wanted = {key_to_hex(peer.public_key) for peer in host.peers}
    for public in current.peers:
        if public not in wanted:
            lines += [f"public_key={public}", "remove=true"]
            said.append(f"removed peer {key_to_base64(bytes.fromhex(public))}")
    for peer in host.peers:
        public = key_to_hex(peer.public_key)
        old = current.peers.get(public)
        fields: list[str] = []
        what: list[str] = []
        psk = key_to_hex(peer.preshared_key)
        if old is None or old["preshared_key"] != psk:
            fields.append(f"preshared_key={psk}")
            what.append("preshared key")
        if peer.endpoint is not None:
            endpoint = _endpoint_of(peer.endpoint, resolve)
            live = old is not None and old["handshake"] and now - old["handshake"] <= LIVE_SESSION
            if old is None or (old["endpoint"] != endpoint and not live):
                fields.append(f"endpoint={format_endpoint(endpoint)}")
                what.append(f"endpoint {format_endpoint(endpoint)}")
        keepalive = peer.keepalive or 0
        if (old is None and keepalive) or (old is not None and old["keepalive"] != keepalive):
            fields.append(f"persistent_keepalive_interval={keepalive}")
            what.append(f"keepalive {keepalive or 'off'}")
        allowed = set(peer.allowed_ips)
        if old is None or old["allowed_ips"] != allowed:
            fields.append("replace_allowed_ips=true")
            fields += [f"allowed_ip={network}" for network in peer.allowed_ips]
            if old is None:
                what.append("allowed IPs " + ", ".join(map(str, peer.allowed_ips)))
            else:
                gained = sorted(map(str, allowed - old["allowed_ips"]))
                lost = sorted(map(str, old["allowed_ips"] - allowed))
                what.append("allowed IPs" + "".join(f" +{n}" for n in gained) + "".join(f" -{n}" for n in lost))
        if fields:
            lines += [f"public_key={public}", *fields]
            said.append(f"{'added' if old is None else 'changed'} peer {peer.name}: {', '.join(what)}")
    if not lines:
        return None, []
    return "set=1\n" + "\n".join(lines) + "\n\n", said


def _endpoint_of(endpoint, resolve) -> tuple:
    try:
        return ip_address(endpoint.host), endpoint.port
    except ValueError:
        return ip_address(resolve(endpoint.host, endpoint.port)), endpoint.port


def apply(host: HostPlan, interface: str, *, request=None, resolve=None) -> list[str]:
    """Bring ``interface`` to ``host``; returns what changed (empty when nothing did)."""
    if request is None:
        from ..runtime.uapi_socket import request
    if resolve is None:
        resolve = _resolve
    current = parse_get(request(interface, "get=1\n\n"))
    import time

    operation, said = changes(host, current, resolve, time.time())
    if operation is not None:
        answer = request(interface, operation)
        if "errno=0" not in answer.splitlines():
            raise OSError(f"{interface} refused the change: {answer.strip()}")
    return said


def _resolve(host: str, port: int) -> str:
    import socket

    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0]
    except socket.gaierror as error:
        raise OSError(f"endpoint {host} does not resolve ({error.strerror})") from None
