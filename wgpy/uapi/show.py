"""``wgpy show``: a UAPI ``get`` answer printed as ``wg show`` prints it (wireguard-tools ``show.c``,
``pretty_print``), for the sockets ``wg`` does not look in (``wgpy proxy``'s, an ordinary user's).

Text in, text out: the socket is the command's business. No colours (``wg`` uses none off a terminal).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KEY_HIDDEN = "(hidden)"


@dataclass
class ShownPeer:
    public_key: bytes
    preshared: bool = False
    endpoint: str | None = None
    endpoint_name: str | None = None   # wgpy_endpoint_host: wgpy's extension (uapi/set.py)
    allowed_ips: list[str] = field(default_factory=list)
    handshake: int = 0          # Unix seconds, 0 for never
    rx_bytes: int = 0
    tx_bytes: int = 0
    keepalive: int = 0


@dataclass
class ShownDevice:
    private_key: bytes | None = None
    listen_port: int = 0
    fwmark: int = 0
    peers: list[ShownPeer] = field(default_factory=list)


def parse_get(answer: str) -> ShownDevice:
    """The lines of a ``get=1`` answer (wireguard.com/xplatform); ValueError if it ends in a nonzero errno."""
    device = ShownDevice()
    peer: ShownPeer | None = None
    for line in answer.splitlines():
        key, _, value = line.partition("=")
        if key == "errno":
            if value != "0":
                raise ValueError(f"the UAPI answered errno={value}")
        elif key == "private_key":
            device.private_key = bytes.fromhex(value)
        elif key == "listen_port":
            device.listen_port = int(value)
        elif key == "fwmark":
            device.fwmark = int(value)
        elif key == "public_key":
            peer = ShownPeer(bytes.fromhex(value))
            device.peers.append(peer)
        elif peer is None:
            continue
        elif key == "preshared_key":
            peer.preshared = any(bytes.fromhex(value))
        elif key == "endpoint":
            peer.endpoint = value
        elif key == "wgpy_endpoint_host":
            peer.endpoint_name = value
        elif key == "allowed_ip":
            peer.allowed_ips.append(value)
        elif key == "last_handshake_time_sec":
            peer.handshake = int(value)
        elif key == "rx_bytes":
            peer.rx_bytes = int(value)
        elif key == "tx_bytes":
            peer.tx_bytes = int(value)
        elif key == "persistent_keepalive_interval":
            peer.keepalive = int(value)
    return device


def pretty_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    for unit, power in (("KiB", 1), ("MiB", 2), ("GiB", 3)):
        if count < 1024 ** (power + 1):
            return f"{count / 1024 ** power:.2f} {unit}"
    return f"{count / 1024 ** 4:.2f} TiB"


def pretty_time(seconds: int) -> str:
    parts = []
    for unit, size in (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}{'' if amount == 1 else 's'}")
    return ", ".join(parts)


def ago(when: int, now: int) -> str:
    if now == when:
        return "Now"
    if now < when:
        return "(System clock wound backward; connection problems may ensue.)"
    return pretty_time(now - when) + " ago"


def show(name: str, device: ShownDevice, now: int, base64_key, public_of) -> str:
    """``wg show NAME``'s text. ``base64_key`` writes a key; ``public_of`` derives the public key from the
    private one (passed in, so this module needs no cryptography)."""
    lines = [f"interface: {name}"]
    if device.private_key is not None and any(device.private_key):
        lines += [f"  public key: {base64_key(public_of(device.private_key))}", f"  private key: {KEY_HIDDEN}"]
    if device.listen_port:
        lines.append(f"  listening port: {device.listen_port}")
    if device.fwmark:
        lines.append(f"  fwmark: 0x{device.fwmark:x}")
    # wg sorts peers by their latest handshake, newest first (show.c sort_peers); the sort is stable.
    for peer in sorted(device.peers, key=lambda p: -p.handshake):
        lines += ["", f"peer: {base64_key(peer.public_key)}"]
        if peer.preshared:
            lines.append(f"  preshared key: {KEY_HIDDEN}")
        if peer.endpoint:
            lines.append(f"  endpoint: {peer.endpoint}")
        if peer.endpoint_name:
            lines.append(f"  endpoint name: {peer.endpoint_name} (re-resolved while running)")
        lines.append(f"  allowed ips: {', '.join(peer.allowed_ips) if peer.allowed_ips else '(none)'}")
        if peer.handshake:
            lines.append(f"  latest handshake: {ago(peer.handshake, now)}")
        if peer.rx_bytes or peer.tx_bytes:
            lines.append(f"  transfer: {pretty_bytes(peer.rx_bytes)} received, {pretty_bytes(peer.tx_bytes)} sent")
        if peer.keepalive:
            lines.append(f"  persistent keepalive: every {pretty_time(peer.keepalive)}")
    return "\n".join(lines) + "\n"
