"""``set=1``: a complete operation's ``key=value`` lines applied to a device, as wireguard-go's
``IpcSetOperation`` applies them (``device/uapi.go``).

Device lines come first, then a section per peer from its ``public_key`` line. The lines are applied in
order; the first bad one raises :class:`~wgpy.uapi.errors.UapiError` with the negative errno wireguard-go
answers (``ipc/uapi_unix.go``): ``-EINVAL`` for a bad key or value, ``-EPROTO`` for a line without
``=``, ``-EADDRINUSE`` when the UDP port cannot be bound or the fwmark set, ``-EIO`` when a line is
longer than :data:`MAX_LINE_SIZE` (wireguard-go's ``bufio.Scanner`` limit: "failed to read input").
What the lines before the bad one did stays done, as in wireguard-go, and the rest of the operation is
skipped. The peer section the bad line is in is not finished: nothing is sent for it (no keepalive, no
staged packet), unless the bad line was too long to read, after which wireguard-go's scanner stops and
finishes the section as at the end of the input.

Two device keys are wgpy extensions, which a stock ``wg`` never sends (docs/rotation.md):
``wgpy_rotate_private_key=HEX`` changes the private key as ``private_key`` does but keeps every session and
the old key, for the handshakes of peers that know only it, for :data:`DEFAULT_ROTATION_GRACE` seconds;
``wgpy_rotation_grace=SECONDS`` then sets the rotation in progress to end that many seconds from now (0: at
once). ``wireguard-go`` answers ``-EINVAL`` to both, as to any unknown key.

The peer key ``wgpy_endpoint_host=<name>:<port>`` (a wgpy extension too) gives the host name
a peer's endpoint was resolved from; the runtime re-resolves it while running (runtime/reresolve.py), and
``get`` answers it after ``endpoint``. An empty value forgets the name. ``endpoint=`` leaves it alone.

The ``allowed_ip=-<prefix>`` form removes that one prefix from the peer (only if the peer owns exactly it;
not a sub- or super-prefix): wireguard-go and ``wg`` added it in 2025 with the kernel's
``WGALLOWEDIP_F_REMOVE_ME`` flag.

Error messages (for the runtime's log) give the line number and what is wrong, and never quote a value
(wireguard-go quotes some; a key pasted on the wrong line would follow).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from itertools import islice

from ..core.constants import KEY_LEN
from ..core.crypto import PrivateKey, clamp, constant_time_equal
from ..core.device import Device
from ..core.record import record
from .errors import IPC_ERROR_INVALID, IPC_ERROR_IO, IPC_ERROR_PORT_IN_USE, IPC_ERROR_PROTOCOL, UapiError
from .values import (InterfaceIndex, expect_true, key_name, parse_endpoint, parse_endpoint_host, parse_key, parse_prefix,
                     parse_uint)

MAX_LINE_SIZE = 64 * 1024 - 1   # bufio.MaxScanTokenSize, less the newline that must fit in the buffer too
DEFAULT_ROTATION_GRACE = 600   # seconds, when a rotation gives none: time to update a fleet's configurations
MAX_PEERS = 1 << 16             # wireguard-go device/constants.go MaxPeers; NewPeer refuses more

Bind = Callable[[int, int], int]

_ZERO_KEY = bytes(KEY_LEN)

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from ..core.peer import Peer


@record(frozen=False)
class _Section:
    """The peer a ``set`` is configuring since its ``public_key`` line (wireguard-go ``ipcSetPeer``).
    ``peer`` is None for a placeholder: the device's own key, a peer just removed, or one not created
    because of ``update_only``; lines for it are checked and then ignored."""

    peer: Peer | None
    created: bool = False
    keepalive: int | None = None   # applied when the section ends (wireguard-go handlePostConfig)


class SetOperation:
    """A complete ``set`` body (the lines between ``set=1`` and the empty line) being applied to
    ``device``: its lines still to read, :attr:`number`, the number of the last one read, and the open
    peer section. ``bind`` and ``interface_index`` are the hooks :class:`~wgpy.uapi.UapiConnection`
    describes."""

    __slots__ = ("device", "number", "_bind", "_interface_index", "_lines", "_section", "_now")

    def __init__(
        self,
        device: Device,
        body: bytes | bytearray | memoryview,
        *,
        bind: Bind | None = None,
        interface_index: InterfaceIndex | None = None,
    ) -> None:
        self.device = device
        self.number = 0
        self._bind = bind
        self._interface_index = interface_index
        self._lines = io.BytesIO(body)   # a copy; iterating it gives the lines, each with its "\n"
        self._section: _Section | None = None
        self._now = 0.0

    def apply(self, now: float, budget: float = math.inf) -> bool:
        """wireguard-go ``IpcSetOperation``: device lines until the first ``public_key``, then peer
        sections; stop at the first bad line (raising :class:`UapiError`), keeping what the lines before it
        did. Applies at most ``budget`` lines; True once the operation is done, False if there may be more
        (call again)."""
        self._now = now
        count = None if budget == math.inf else int(budget)
        first, section = self.number, self._section
        number = first
        try:
            for raw in islice(self._lines, count):
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
                    self._section = section
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
            self.number = number
        self._end_section(section, now)
        return True

    def _device_line(self, key: str, value: str) -> None:
        """wireguard-go ``handleDeviceLine``."""
        device = self.device
        if key == "private_key":
            raw = parse_key(value, key)
            # FromMaybeZeroHex: all zeros removes the key; anything else is clamped, as wg genkey does.
            device.set_private_key(None if constant_time_equal(raw, _ZERO_KEY) else PrivateKey(clamp(raw)))
        elif key == "listen_port":
            port = parse_uint(value, 16, key)
            if self._bind is None:
                device.listen_port = port
                return
            try:
                device.listen_port = self._bind(port, device.fwmark)
            except OSError as error:
                # The port stays what the hook left bound. wireguard-go closes its sockets before opening
                # the new ones and so reports 0 (and listens nowhere); our hook keeps the old sockets, so
                # ``get`` reports the old port, where we still listen.
                raise UapiError(IPC_ERROR_PORT_IN_USE, f"failed to set listen_port {port}: {error}") from None
        elif key == "fwmark":
            mark = parse_uint(value, 32, key)
            if mark == device.fwmark:
                return   # BindSetMark: nothing to do
            device.fwmark = mark   # kept even if the socket refuses it, as in wireguard-go
            if self._bind is not None:
                try:
                    device.listen_port = self._bind(device.listen_port, mark)
                except OSError as error:
                    raise UapiError(IPC_ERROR_PORT_IN_USE, f"failed to update fwmark {mark}: {error}") from None
        elif key == "replace_peers":
            expect_true(key, value)
            device.remove_all_peers()
        elif key == "wgpy_rotate_private_key":
            raw = parse_key(value, key)
            if constant_time_equal(raw, _ZERO_KEY):
                raise UapiError(IPC_ERROR_INVALID, "failed to rotate the private key: a rotation needs a new key")
            device.rotate_private_key(PrivateKey(clamp(raw)), DEFAULT_ROTATION_GRACE, self._now)
        elif key == "wgpy_rotation_grace":
            grace = parse_uint(value, 32, key)
            if device.rotation is None:
                raise UapiError(IPC_ERROR_INVALID, "failed to set wgpy_rotation_grace: no key rotation in progress")
            try:
                device.set_rotation_grace(grace, self._now)
            except ValueError as error:
                raise UapiError(IPC_ERROR_INVALID, f"failed to set wgpy_rotation_grace: {error}") from None
        else:
            raise UapiError(IPC_ERROR_INVALID, f"invalid UAPI device key {key_name(key)}")

    def _begin_section(self, value: str) -> _Section:
        """wireguard-go ``handlePublicKeyLine``: find or create the peer."""
        device = self.device
        public_key = parse_key(value, "public_key")
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
            expect_true(key, value)
            if section.created and peer is not None:
                device.remove_peer(peer.public_key)
                section.peer = None
        elif key == "remove":
            expect_true(key, value)
            if peer is not None:
                device.remove_peer(peer.public_key)
            section.peer = None
        elif key == "preshared_key":
            preshared_key = parse_key(value, key)
            if peer is not None:
                peer.preshared_key = preshared_key   # all zeros is no preshared key
        elif key == "endpoint":
            endpoint = parse_endpoint(value, self._interface_index)
            if peer is not None:
                device.set_endpoint(peer, endpoint)   # a configured endpoint: routing picks our source
        elif key == "wgpy_endpoint_host":
            # wgpy's extension: the name the endpoint was resolved from, for the runtime to re-resolve
            # (runtime/reresolve.py); empty forgets it. A stock wg never sends it.
            name = parse_endpoint_host(value)
            if peer is not None:
                peer.endpoint_name = name
        elif key == "persistent_keepalive_interval":
            section.keepalive = parse_uint(value, 16, key)
        elif key == "replace_allowed_ips":
            expect_true(key, value)
            if peer is not None:
                device.allowed_ips.remove_by_peer(peer)
        elif key == "allowed_ip":
            removing = value.startswith("-")
            address, cidr = parse_prefix(value[1:] if removing else value)
            if peer is not None:
                if removing:
                    device.allowed_ips.remove(address, cidr, peer)
                else:
                    device.allowed_ips.insert(address, cidr, peer)
        elif key == "protocol_version":
            if value != "1":
                raise UapiError(IPC_ERROR_INVALID, "invalid protocol version: only 1 is known")
        else:
            raise UapiError(IPC_ERROR_INVALID, f"invalid UAPI peer key {key_name(key)}")

    def _end_section(self, section: _Section | None, now: float) -> None:
        """wireguard-go ``ipcSetPeer.handlePostConfig``: a keepalive if one was just turned on, then send
        what waited for this configuration (an endpoint, say)."""
        if section is None or section.peer is None:
            return
        if section.keepalive is not None:
            self.device.set_persistent_keepalive(section.peer, section.keepalive, now)
        self.device.send_staged_packets(section.peer, now)
