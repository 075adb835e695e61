"""``get=1``: the device as ``key=value`` lines, in wireguard-go's order (``IpcGetOperation``).

The answer holds the private and preshared keys, as the protocol requires; nothing else in the UAPI
writes a secret.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from ..core.constants import KEY_LEN
from ..core.device import Device
from ..core.encoding import key_to_hex
from .values import format_address, format_endpoint

_ZERO_KEY = bytes(KEY_LEN)


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
    if device.rotation is not None:
        # A wgpy extension (docs/rotation.md), only during a key rotation: a public key, no secret.
        # wireguard-tools' parser (ipc-uapi.h) skips a key it does not know, as it does here.
        yield "wgpy_previous_public_key=" + key_to_hex(device.rotation.previous_public)
    for peer in list(device.peers.values()):
        preshared_key = peer.preshared_key
        seconds, nanoseconds = _handshake_time(peer.last_handshake_time)
        yield "public_key=" + key_to_hex(peer.public_key)
        yield "preshared_key=" + key_to_hex(preshared_key or _ZERO_KEY)
        yield "protocol_version=1"
        if peer.endpoint is not None:
            yield "endpoint=" + format_endpoint(peer.endpoint)
        if peer.endpoint_name is not None:
            # A wgpy extension (set.py); wg ignores a key it does not know in a get answer (ipc-uapi.h
            # userspace_get_device has no else branch), so wg show and showconf are unchanged.
            yield "wgpy_endpoint_host=" + peer.endpoint_name
        yield f"last_handshake_time_sec={seconds}"
        yield f"last_handshake_time_nsec={nanoseconds}"
        yield f"tx_bytes={peer.tx_bytes}"
        yield f"rx_bytes={peer.rx_bytes}"
        yield f"persistent_keepalive_interval={peer.persistent_keepalive_interval}"
        for address, cidr in device.allowed_ips.iter_entries(peer):
            yield f"allowed_ip={format_address(address)}/{cidr}"


def _handshake_time(wall_clock: float | None) -> tuple[int, int]:
    """Seconds and nanoseconds since the epoch; 0 and 0 for never (wireguard-go's ``lastHandshakeNano``)."""
    if wall_clock is None or not math.isfinite(wall_clock) or wall_clock <= 0:
        return 0, 0
    seconds = math.floor(wall_clock)
    nanoseconds = round((wall_clock - seconds) * 1e9)   # the subtraction is exact; t * 1e9 would not be
    return (seconds + 1, 0) if nanoseconds == 1_000_000_000 else (seconds, nanoseconds)
