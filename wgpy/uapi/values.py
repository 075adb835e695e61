"""The values of the UAPI's ``key=value`` lines, read and written as wireguard-go does: keys, Go's
``strconv.ParseUint`` numbers, ``netip`` addresses, prefixes and endpoints.

A value that does not parse raises :class:`~wgpy.uapi.errors.UapiError` ``-EINVAL`` with a message that
never quotes it: a key pasted on the wrong line must not reach a log.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.encoding import key_from_hex
from .errors import IPC_ERROR_INVALID, UapiError

InterfaceIndex = Callable[[str], int]

_KEY_NAME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")   # a key name: 1 to 32 of these


def key_name(key: str) -> str:
    """An unknown key, quoted for an error message only if it looks like a key name: a secret pasted on
    the wrong side of the '=' must not reach a log."""
    return repr(key) if 0 < len(key) <= 32 and _KEY_NAME.issuperset(key) else f"of {len(key)} characters"


def parse_key(value: str, what: str) -> bytes:
    """64 hex digits, either case, exactly (wireguard-go ``loadExactHex``). The value is never quoted."""
    try:
        return key_from_hex(value)
    except ValueError as error:
        raise UapiError(IPC_ERROR_INVALID, f"failed to set {what}: {error}") from None


def parse_uint(value: str, bits: int, what: str) -> int:
    """Go ``strconv.ParseUint(value, 10, bits)``: ASCII digits only (leading zeros allowed), no sign, no
    spaces, no underscores, below 2**bits."""
    if not (value.isascii() and value.isdigit()):
        raise UapiError(IPC_ERROR_INVALID, f"failed to parse {what}: not a decimal number")
    digits = value.lstrip("0")
    if len(digits) > 20 or int(digits or "0") >> bits:   # the length check keeps int() cheap
        raise UapiError(IPC_ERROR_INVALID, f"failed to parse {what}: out of range")
    return int(digits or "0")


def expect_true(key: str, value: str) -> None:
    if value != "true":
        raise UapiError(IPC_ERROR_INVALID, f"failed to set {key}: the value is not 'true'")


def _parse_ipv4(text: str) -> bytes | None:
    """Dotted decimal as Go's ``netip.ParseAddr`` reads it: four fields of 1 to 3 digits, each at most 255,
    no leading zeros."""
    fields = text.split(".")
    if len(fields) != 4:
        return None
    out = bytearray(4)
    for i, field in enumerate(fields):
        if not (0 < len(field) <= 3 and field.isascii() and field.isdigit()) or (field[0] == "0" and len(field) > 1):
            return None
        octet = int(field)
        if octet > 255:
            return None
        out[i] = octet
    return bytes(out)


def parse_address(text: str) -> tuple[bytes, str] | None:
    """An IPv4 or IPv6 literal as Go's ``netip.ParseAddr`` reads it, as (4 or 16 packed bytes, zone); the
    zone is "" when absent. None if it is not one."""
    for char in text:   # Go decides the family by the first '.', ':' or '%'
        if char == ".":
            packed = _parse_ipv4(text)
            return None if packed is None else (packed, "")
        if char == ":":
            break
        if char == "%":
            return None
    else:
        return None
    address, percent, zone = text.partition("%")
    if percent and not zone:
        return None
    import ipaddress   # here, not at the top: its import costs the daemon's start-up (bench_startup.py)

    try:
        return ipaddress.IPv6Address(address).packed, zone
    except ValueError:  # ipaddress.AddressValueError
        return None


def parse_prefix(text: str) -> tuple[bytes, int]:
    """A prefix as Go's ``netip.ParsePrefix`` reads it: an address without a zone, '/', and a length with
    no sign and no leading zero, at most 32 or 128."""
    address, slash, length = text.rpartition("/")
    parsed = parse_address(address) if slash else None
    if parsed is None or parsed[1]:
        raise UapiError(IPC_ERROR_INVALID, "failed to set allowed ip: not an address/length prefix")
    packed = parsed[0]
    if not (0 < len(length) <= 3 and length.isascii() and length.isdigit()) or (length[0] == "0" and len(length) > 1):
        raise UapiError(IPC_ERROR_INVALID, "failed to set allowed ip: bad prefix length")
    cidr = int(length)
    if cidr > len(packed) * 8:
        raise UapiError(IPC_ERROR_INVALID, "failed to set allowed ip: prefix length out of range")
    return packed, cidr


def format_address(packed: bytes) -> str:
    """An address as Go's ``netip.Addr.String`` writes it (RFC 5952, IPv4-mapped as ``::ffff:a.b.c.d``)."""
    if len(packed) == 4:
        return "%d.%d.%d.%d" % tuple(packed)
    if packed[:12] == b"\0" * 10 + b"\xff\xff":
        return "::ffff:%d.%d.%d.%d" % tuple(packed[12:])
    import ipaddress

    return ipaddress.IPv6Address(packed).compressed


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with brackets around a host that has a colon (an IPv6 address, with its zone if any),
    as Go's ``net.JoinHostPort`` and wg's ``ipc-uapi.h`` write an endpoint."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_endpoint(endpoint: tuple) -> str:
    """``host:port``, or ``[host%scope]:port`` for IPv6, as wireguard-go's ``AddrPort.String`` writes it.
    ``endpoint`` is a socket-style tuple, ``(host, port)`` or ``(host, port, flowinfo, scope_id)``."""
    host, port = str(endpoint[0]), endpoint[1]
    scope = endpoint[3] if len(endpoint) >= 4 else 0
    if ":" not in host:
        return join_host_port(host, port)
    parsed = parse_address(host)
    if parsed is not None:
        host = format_address(parsed[0]) + (f"%{parsed[1]}" if parsed[1] and not scope else "")
    return join_host_port(f"{host}%{scope}" if scope else host, port)


def parse_endpoint(text: str, interface_index: InterfaceIndex | None = None) -> tuple:
    """Go's ``netip.ParseAddrPort`` (``StdNetBind.ParseEndpoint``): ``a.b.c.d:port`` or
    ``[ipv6%zone]:port``, literals only. The result has the runtime's socket form: ``(host, port)``,
    or ``(host, port, 0, scope_id)`` for a zoned IPv6 address. ``interface_index`` turns a named zone
    into a scope id (see :class:`~wgpy.uapi.connection.UapiConnection`)."""
    host, colon, port_text = text.rpartition(":")
    bracketed = host.startswith("[")
    if bracketed:
        host = host[1:-1] if len(host) >= 2 and host.endswith("]") else ""
    parsed = parse_address(host) if colon and port_text else None
    if parsed is None or bracketed != (len(parsed[0]) == 16):
        raise UapiError(IPC_ERROR_INVALID, "failed to set endpoint: not an ip:port or [ipv6]:port literal")
    port = parse_uint(port_text, 16, "endpoint port")
    packed, zone = parsed
    scope_id = _scope_id(zone, interface_index) if zone else 0
    return (format_address(packed), port, 0, scope_id) if scope_id else (format_address(packed), port)


def _scope_id(zone: str, interface_index: InterfaceIndex | None) -> int:
    if zone.isascii() and zone.isdigit():
        if len(zone) <= 10 and int(zone) < 1 << 32:
            return int(zone)
    elif interface_index is not None and len(zone.encode("utf-8", "surrogateescape")) < 16 and "\0" not in zone:
        try:
            return interface_index(zone)
        except (OSError, ValueError):
            pass
    raise UapiError(IPC_ERROR_INVALID, "failed to set endpoint: unknown zone")


_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def parse_endpoint_host(text: str) -> str | None:
    """wgpy's ``wgpy_endpoint_host`` value: ``name:port`` (a DNS name, RFC 1123 section 2.1: labels of
    letters, digits and hyphens, 1 to 63 characters, at most 253 in all; a port from 1 to 65535), as
    written; None for the empty value, which forgets the name."""
    if not text:
        return None
    host, colon, port_text = text.rpartition(":")
    labels = host.removesuffix(".").split(".")
    if (not colon or not host or len(host) > 253
            or not all(0 < len(label) <= 63 and set(label) <= _NAME_CHARACTERS
                       and not label.startswith("-") and not label.endswith("-") for label in labels)):
        raise UapiError(IPC_ERROR_INVALID, "failed to set wgpy_endpoint_host: not a host name and port")
    if parse_uint(port_text, 16, "wgpy_endpoint_host port") == 0:
        raise UapiError(IPC_ERROR_INVALID, "failed to set wgpy_endpoint_host: port 0")
    return text
