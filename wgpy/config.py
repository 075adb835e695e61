"""WireGuard configuration files, both dialects: the file model, parsing, and the text wg writes.

Two dialects share one file format (wg(8) CONFIGURATION FILE FORMAT, wg-quick(8)):

- the ``wg setconf`` dialect: ``[Interface]`` PrivateKey, ListenPort, FwMark; ``[Peer]`` PublicKey,
  PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive (wireguard-tools ``src/config.c``);
- the ``wg-quick`` dialect adds Address, DNS, MTU, Table, PreUp, PostUp, PreDown, PostDown and SaveConfig
  to ``[Interface]`` (wireguard-tools ``src/wg-quick/linux.bash``, ``parse_options``).

Everything here is pure: text in, frozen dataclasses and UAPI text out (wg-quick's plan of commands is
:mod:`wgpy.quick_plan`). Only :func:`load`
touches the file system. Name resolution, running commands and DNS are the runtime's and the caller's.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from dataclasses import dataclass, field, replace
from enum import Enum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Callable

from .core.constants import KEY_LEN
from .core.encoding import key_from_base64, key_from_hex, key_to_base64, key_to_hex
from .uapi.values import join_host_port

IPAddress = IPv4Address | IPv6Address
IPInterface = IPv4Interface | IPv6Interface
IPNetwork = IPv4Network | IPv6Network

# config.c char_is_space (ctype.h): the C locale's six, and bash's [[:space:]] under LC_ALL=C.
SPACE = " \t\n\v\f\r"
_DELETE_SPACE = str.maketrans("", "", SPACE)

# wg-quick's interface names (parse_options): what fits IFNAMSIZ and a file name.
_CONFIG_PATH = re.compile(r"(?:^|/)([a-zA-Z0-9_=+.-]{1,15})\.conf")
_DIGITS = re.compile(r"[0-9]+")
_HOSTNAME = re.compile(r"(?=.{1,254}\Z)[A-Za-z0-9_][A-Za-z0-9_-]{0,62}(?:\.[A-Za-z0-9_-]{1,63})*\.?")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PRINTABLE_KEY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,23}")

MTU_MIN = 68             # ETH_MIN_MTU, the smallest an IPv4 link may have (RFC 791)
MTU_MAX = 65535          # the TUN driver's MAX_MTU: our device is a TUN


class Reason(Enum):
    """A named reason for refusing a configuration file. The value is the human-readable sentence."""

    # Lines (config.c config_read_line and process_line; linux.bash parse_options)
    NOT_UTF8 = "file is not valid UTF-8"
    NUL_CHARACTER = "line contains a NUL character"
    UNKNOWN_SECTION = "unknown section: only [Interface] and [Peer] exist"
    KEY_OUTSIDE_SECTION = "key before any [Interface] or [Peer] section"
    NOT_KEY_VALUE = "line is neither a section header nor Key = Value"
    UNKNOWN_KEY = "unknown key in this section"
    DUPLICATE_KEY = "key given twice in one section"
    MISSING_VALUE = "key has an empty value"
    # Values (config.c parse_*; linux.bash)
    BAD_KEY = "not a base64 key of 32 bytes (44 characters ending in '=')"
    BAD_PORT = "not a port number 0-65535"
    BAD_FWMARK = "FwMark is neither off nor 0-0xffffffff"
    BAD_ADDRESS = "Address is not an IP address with an optional /prefix"
    BAD_DNS = "DNS entry is neither an IP address nor a search domain"
    BAD_MTU = f"MTU is not a number {MTU_MIN}-{MTU_MAX}"
    BAD_TABLE = "Table is neither off, auto, a number nor a table name"
    BAD_BOOL = "value is neither true nor false"
    BAD_ALLOWED_IP = "AllowedIPs entry is not an IP address with an optional /prefix"
    BAD_ENDPOINT = "Endpoint is not host:port or [IPv6]:port"
    BAD_KEEPALIVE = "PersistentKeepalive is neither off nor 0-65535"
    # Resolving (wgpy up, as wg setconf does before sending)
    UNRESOLVED_ENDPOINT = "host name does not resolve: check the name and this machine's DNS, or write an IP address"
    # The whole file (config.c config_read_finish)
    MISSING_PUBLIC_KEY = "peer has no PublicKey"
    DUPLICATE_PEER = "two peers have the same PublicKey"
    # File names (linux.bash parse_options)
    BAD_INTERFACE_NAME = "file name is not an interface name (1-15 of a-z A-Z 0-9 _ = + . -) and .conf"


class ConfigError(ValueError):
    """A configuration file was refused: ``reason`` says which rule, ``line`` (1-based) and ``key`` where.

    The message names the key, never its value: values may be secret keys. ``detail`` is for what is not
    secret and helps, such as the host name that did not resolve.
    """

    def __init__(self, reason: Reason, line: int | None = None, key: str | None = None, detail: str = "") -> None:
        self.reason = reason
        self.line = line
        self.key = key
        where = "".join([f"line {line}: " if line is not None else "", f"{key}: " if key else "",
                         f"{detail}: " if detail else ""])
        super().__init__(where + reason.value)


class WorldAccessibleWarning(UserWarning):
    """The configuration file can be read by anyone (wg-quick: "is world accessible")."""


# ---------------------------------------------------------------------------------------------------
# What a file says
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where a peer is: an IP address (canonical text, as getnameinfo prints it) or a host name, and a port.

    A host name is kept as written; resolving it is the runtime's job (see :func:`to_uapi_set`).
    """

    host: str
    port: int
    line: int | None = field(default=None, compare=False, repr=False)   # where the file gave it, for messages

    @property
    def is_name(self) -> bool:
        return _ip_or_none(self.host.partition("%")[0]) is None

    def __str__(self) -> str:
        return join_host_port(self.host, self.port)   # ipc-uapi.h userspace_set_device


@dataclass(frozen=True)
class PeerConfig:
    """One ``[Peer]`` section. ``None`` means the key was absent; ``persistent_keepalive == 0`` is "off"."""

    public_key: bytes
    preshared_key: bytes | None = field(default=None, repr=False)
    endpoint: Endpoint | None = None
    # As written, host bits and all: wg only warns about them and the kernel masks (config.c
    # validate_netmask); the routes use the masked network.
    allowed_ips: tuple[IPInterface, ...] = ()
    persistent_keepalive: int | None = None


@dataclass(frozen=True)
class InterfaceConfig:
    """A whole file: the ``[Interface]`` section (both dialects) and its peers, in file order."""

    private_key: bytes | None = field(default=None, repr=False)
    listen_port: int | None = None
    fwmark: int | None = None          # 0 is "off"
    peers: tuple[PeerConfig, ...] = ()
    # wg-quick only
    addresses: tuple[IPInterface, ...] = ()
    dns: tuple[IPAddress, ...] = ()
    dns_search: tuple[str, ...] = ()
    mtu: int | None = None
    table: str | None = None           # None (auto), "off", "auto", a number or a name, as text
    pre_up: tuple[str, ...] = ()
    post_up: tuple[str, ...] = ()
    pre_down: tuple[str, ...] = ()
    post_down: tuple[str, ...] = ()
    save_config: bool = False


# ---------------------------------------------------------------------------------------------------
# Keys and addresses, as wg reads and prints them
# ---------------------------------------------------------------------------------------------------


def parse_key(text: str) -> bytes:
    """A base64 key exactly as wg's ``key_from_base64`` (encoding.c) takes it: 44 characters, the last
    one '=', and the 32 bytes encoded canonically (the unused low bits of the 43rd character are zero)."""
    try:
        return key_from_base64(text)
    except ValueError:
        raise ConfigError(Reason.BAD_KEY) from None


def format_ip(address: IPAddress) -> str:
    """An address as glibc's ``inet_ntop`` prints it, which is what wg sends and shows.

    Python agrees with glibc except on IPv6 addresses whose first 96 bits are zero but for an optional
    ffff: glibc prints the last 32 bits dotted (``::ffff:1.2.3.4``, ``::0.2.0.3``).
    """
    if isinstance(address, IPv4Address):
        return str(address)
    words = [int.from_bytes(address.packed[i : i + 2], "big") for i in range(0, 16, 2)]
    # The longest run of zero words, the first of equals, if at least two long (inet_ntop6).
    best_base, best_len, base, length = -1, 0, -1, 0
    for i, word in enumerate(words + [1]):
        if word == 0:
            base, length = (i, 1) if base == -1 else (base, length + 1)
        elif base != -1:
            if length > best_len:
                best_base, best_len = base, length
            base = -1
    if best_len < 2:
        best_base = -1
    out = []
    for i, word in enumerate(words):
        if best_base != -1 and best_base <= i < best_base + best_len:
            if i == best_base:
                out.append(":")
            continue
        if i:
            out.append(":")
        if i == 6 and best_base == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF)):
            out.append(str(IPv4Address(address.packed[12:])))
            break
        out.append(f"{word:x}")
    if best_base != -1 and best_base + best_len == 8:
        out.append(":")
    return "".join(out)


def _parse_ip(text: str) -> IPAddress:
    """An address as ``inet_pton`` takes it (config.c parse_ip): IPv6 if it has a colon, else dotted IPv4.
    Raises ValueError."""
    if ":" in text:
        if "%" in text:
            raise ValueError("scope")
        return IPv6Address(text)
    return IPv4Address(text)


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        return _parse_ip(text)
    except ValueError:
        return None


def _decimal(digits: str) -> int:
    """Digits already checked, as a number; absurdly long ones become a number past every limit
    (Python's int() refuses strings of over 4300 digits)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 20 else 1 << 80


def _parse_prefix(text: str) -> IPInterface:
    """``ADDRESS[/CIDR]``, CIDR in decimal digits and within the family (config.c parse_allowedips).
    Raises ValueError."""
    address_text, slash, cidr_text = text.partition("/")
    address = _parse_ip(address_text)
    if not slash:
        cidr = address.max_prefixlen
    elif _DIGITS.fullmatch(cidr_text):
        cidr = _decimal(cidr_text)
    else:
        raise ValueError("cidr")
    if cidr > address.max_prefixlen:
        raise ValueError("cidr")
    return IPv4Interface((address, cidr)) if address.version == 4 else IPv6Interface((address, cidr))


def format_prefix(prefix: IPInterface | IPNetwork) -> str:
    """``ADDRESS/CIDR`` as wg prints it: an allowed IP as given, a network by its first address."""
    if isinstance(prefix, (IPv4Interface, IPv6Interface)):
        return f"{format_ip(prefix.ip)}/{prefix.network.prefixlen}"
    return f"{format_ip(prefix.network_address)}/{prefix.prefixlen}"


# ---------------------------------------------------------------------------------------------------
# Values, one parser per key (config.c parse_*; linux.bash)
# ---------------------------------------------------------------------------------------------------


def _number(value: str, maximum: int, reason: Reason, *, off: bool = False, hex_: bool = False) -> int:
    """strtoul as config.c uses it: a leading digit, nothing after the number; "off" is 0 where allowed."""
    if off and value.lower() == "off":
        return 0
    if hex_ and len(value) > 2 and value.startswith("0x"):
        if re.fullmatch(r"[0-9a-fA-F]+", value[2:]) is None:
            raise ConfigError(reason)
        hex_digits = value[2:].lstrip("0") or "0"
        number = int(hex_digits, 16) if len(hex_digits) <= 16 else 1 << 80
    elif _DIGITS.fullmatch(value):
        number = _decimal(value)
    else:
        raise ConfigError(reason)
    if number > maximum:
        raise ConfigError(reason)
    return number


def _endpoint(value: str) -> Endpoint:
    """config.c parse_endpoint's split: ``[host]:port`` or the last colon; the host must then be an
    address or a plausible host name (wg would hand it to getaddrinfo). Ports are numbers 1-65535."""
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ConfigError(Reason.BAD_ENDPOINT)
        port_text = rest[1:]
        address_text, _, scope = host.partition("%")
        if ":" not in address_text or _ip_or_none(address_text) is None:
            raise ConfigError(Reason.BAD_ENDPOINT)
    else:
        host, colon, port_text = value.rpartition(":")
        if not colon:
            raise ConfigError(Reason.BAD_ENDPOINT)
        address_text, _, scope = host.partition("%")
        if ":" in host or re.fullmatch(r"[0-9.]+", host):
            if _ip_or_none(address_text) is None or (scope and ":" not in host):
                raise ConfigError(Reason.BAD_ENDPOINT)
        elif not _HOSTNAME.fullmatch(host):
            raise ConfigError(Reason.BAD_ENDPOINT)
    if not _DIGITS.fullmatch(port_text) or not 0 < _decimal(port_text) <= 65535:
        raise ConfigError(Reason.BAD_ENDPOINT)
    if scope and not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", scope):
        raise ConfigError(Reason.BAD_ENDPOINT)
    if scope.isdigit() and _decimal(scope) > 0xFFFFFFFF:
        # glibc's getaddrinfo takes a numeric scope only below 2**32 (inet6_scopeid_pton): wg refuses it.
        raise ConfigError(Reason.BAD_ENDPOINT)
    address = _ip_or_none(address_text)
    if address is not None:
        host = format_ip(address) + (f"%{scope}" if scope else "")
    return Endpoint(host, _decimal(port_text))


def _allowed_ips(value: str) -> list[IPInterface]:
    result = []
    for entry in value.split(","):
        # A leading '+' or '-' asks wg to add to or remove from a running peer's list (config.c
        # parse_ip_prefix): meaningless in a whole configuration, so refused.
        try:
            result.append(_parse_prefix(entry))
        except ValueError:
            raise ConfigError(Reason.BAD_ALLOWED_IP) from None
    return result


def _words(value: str) -> list[str]:
    # linux.bash: ${value//,/ } then word splitting on IFS (space, tab, newline).
    return [word for word in re.split(r"[ \t\n,]", value) if word]


def _addresses(value: str) -> list[IPInterface]:
    result = []
    for word in _words(value):
        try:
            result.append(_parse_prefix(word))   # ip(8): a bare address gets /32 or /128
        except ValueError:
            raise ConfigError(Reason.BAD_ADDRESS) from None
    return result


def _dns(value: str) -> tuple[list[IPAddress], list[str]]:
    servers, search = [], []
    for word in _words(value):
        # linux.bash: [[ $v =~ (^[0-9.]+$)|(^.*:.*$) ]] is a server, anything else a search domain.
        if re.fullmatch(r"[0-9.]+", word) or ":" in word:
            try:
                servers.append(IPv6Address(word) if ":" in word else IPv4Address(word))
            except ValueError:
                raise ConfigError(Reason.BAD_DNS) from None
        elif _HOSTNAME.fullmatch(word):
            search.append(word)
        else:
            raise ConfigError(Reason.BAD_DNS)
    return servers, search


def _table(value: str) -> str:
    if value.lower() in ("off", "auto"):
        return value.lower()
    if _DIGITS.fullmatch(value):
        if _decimal(value) > 0xFFFFFFFF:
            raise ConfigError(Reason.BAD_TABLE)
        return str(_decimal(value))
    if not _TABLE_NAME.fullmatch(value):
        raise ConfigError(Reason.BAD_TABLE)
    return value


def _bool(value: str) -> bool:
    # linux.bash read_bool, under nocasematch.
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    raise ConfigError(Reason.BAD_BOOL)


# ---------------------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------------------

# Canonical spellings, looked up case-insensitively (config.c get_value uses strncasecmp).
_INTERFACE_KEYS = {k.lower(): k for k in ("PrivateKey", "ListenPort", "FwMark")}
_PEER_KEYS = {k.lower(): k for k in ("PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive")}
_QUICK_KEYS = {k.lower(): k for k in
               ("Address", "DNS", "MTU", "Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig")}
_HOOKS = {"PreUp": "pre_up", "PostUp": "post_up", "PreDown": "pre_down", "PostDown": "post_down"}
# Keys that may repeat: wg and wg-quick add each line's values to the list. Any other key repeated
# in one section is refused here (wg silently keeps the last one, which hides mistakes).
_LISTS = {"AllowedIPs", "Address", "DNS", "PreUp", "PostUp", "PreDown", "PostDown"}


def _printable_key(name: str) -> str | None:
    """The key as written, for an error message, only when it cannot be a pasted secret."""
    name = name.translate(_DELETE_SPACE)
    return name if _PRINTABLE_KEY_NAME.fullmatch(name) else None


def parse(text: str, *, quick: bool = True) -> InterfaceConfig:
    """Parse a configuration file's text; ``quick=False`` refuses the wg-quick keys as ``wg setconf`` does.

    Lines follow config.c ``config_read_line``: everything from the first '#' is a comment and every
    whitespace character anywhere in the line is removed, so ``Allowed IPs = 10.0.0.0/8`` is
    ``AllowedIPs=10.0.0.0/8``. The wg-quick keys follow linux.bash ``parse_options`` instead: the key is
    trimmed only at its ends, values are split on commas and blanks, and the hooks keep their whole text
    after '=' (a '#' in a hook is part of the hook). Raises :class:`ConfigError`, and nothing else.
    """
    interface: dict[str, object] = {}
    peers: list[dict[str, object]] = []
    seen_keys: set[str] = set()
    section: str | None = None
    interface_seen: set[str] = set()

    for number, raw in enumerate(text.split("\n"), start=1):
        if "\0" in raw:
            raise ConfigError(Reason.NUL_CHARACTER, number)   # wg would silently cut the line there
        uncommented = raw.partition("#")[0]
        compact = uncommented.translate(_DELETE_SPACE)
        if not compact:
            continue
        if compact.lower() == "[interface]":
            section, seen_keys = "interface", interface_seen
            continue
        if compact.lower() == "[peer]":
            section, seen_keys = "peer", set()
            peers.append({"line": number})
            continue
        if compact.startswith("["):
            raise ConfigError(Reason.UNKNOWN_SECTION, number)
        written_name, equals, _ = uncommented.partition("=")
        if not equals:
            raise ConfigError(Reason.NOT_KEY_VALUE, number)
        if section is None:
            raise ConfigError(Reason.KEY_OUTSIDE_SECTION, number, _printable_key(written_name))

        quick_name = _QUICK_KEYS.get(written_name.strip(SPACE).lower()) if section == "interface" else None
        if quick_name is not None and quick:
            name = quick_name
            if name in _HOOKS:
                value = raw.partition("=")[2].strip(SPACE)
            else:
                value = uncommented.partition("=")[2].strip(SPACE)
        else:
            compact_name, _, value = compact.partition("=")
            keys = _INTERFACE_KEYS if section == "interface" else _PEER_KEYS
            name = keys.get(compact_name.lower())
            if name is None:
                raise ConfigError(Reason.UNKNOWN_KEY, number, quick_name or _printable_key(compact_name))
        if not value:
            raise ConfigError(Reason.MISSING_VALUE, number, name)
        if name in seen_keys and name not in _LISTS:
            raise ConfigError(Reason.DUPLICATE_KEY, number, name)
        seen_keys.add(name)
        try:
            if section == "interface":
                _interface_value(interface, name, value)
            else:
                _peer_value(peers[-1], name, value, number)
        except ConfigError as error:
            raise ConfigError(error.reason, number, name) from None

    return _finish(interface, peers)


def _interface_value(interface: dict[str, object], name: str, value: str) -> None:
    if name == "PrivateKey":
        interface["private_key"] = parse_key(value)
    elif name == "ListenPort":
        interface["listen_port"] = _number(value, 65535, Reason.BAD_PORT)
    elif name == "FwMark":
        interface["fwmark"] = _number(value, 0xFFFFFFFF, Reason.BAD_FWMARK, off=True, hex_=True)
    elif name == "Address":
        interface.setdefault("addresses", []).extend(_addresses(value))
    elif name == "DNS":
        servers, search = _dns(value)
        interface.setdefault("dns", []).extend(servers)
        interface.setdefault("dns_search", []).extend(search)
    elif name == "MTU":
        mtu = _number(value, MTU_MAX, Reason.BAD_MTU)
        if mtu < MTU_MIN:
            raise ConfigError(Reason.BAD_MTU)
        interface["mtu"] = mtu
    elif name == "Table":
        interface["table"] = _table(value)
    elif name == "SaveConfig":
        interface["save_config"] = _bool(value)
    else:
        interface.setdefault(_HOOKS[name], []).append(value)


def _peer_value(peer: dict[str, object], name: str, value: str, number: int) -> None:
    if name == "PublicKey":
        peer["public_key"] = parse_key(value)
        peer["key_line"] = number
    elif name == "PresharedKey":
        peer["preshared_key"] = parse_key(value)
    elif name == "AllowedIPs":
        peer.setdefault("allowed_ips", []).extend(_allowed_ips(value))
    elif name == "Endpoint":
        peer["endpoint"] = replace(_endpoint(value), line=number)
    else:
        peer["persistent_keepalive"] = _number(value, 65535, Reason.BAD_KEEPALIVE, off=True)


def _finish(interface: dict[str, object], peers: list[dict[str, object]]) -> InterfaceConfig:
    # config.c config_read_finish: every peer needs its public key. Two sections for one key would
    # merge into one peer in the kernel, the second replacing the first's allowed IPs: refused.
    built, keys = [], set()
    for peer in peers:
        header = peer.pop("line")
        if "public_key" not in peer:
            raise ConfigError(Reason.MISSING_PUBLIC_KEY, header)
        key_line = peer.pop("key_line")
        if peer["public_key"] in keys:
            raise ConfigError(Reason.DUPLICATE_PEER, key_line, "PublicKey")
        keys.add(peer["public_key"])
        built.append(PeerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in peer.items()}))
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in interface.items()}
    return InterfaceConfig(peers=tuple(built), **fields)


def strip(text: str) -> str:
    """What ``wg-quick strip`` prints: the file without the wg-quick keys of ``[Interface]`` sections.

    This is linux.bash ``parse_options`` line by line, quirks included: ``read -r`` trims blanks at
    both ends of every line, a section is ``[Interface]`` only as written (any case, no inner blanks),
    and ``echo "$WG_CONFIG"`` ends the output with an empty line. SaveConfig must still be true or
    false (``read_bool`` dies otherwise): :class:`ConfigError` ``BAD_BOOL``.
    """
    lines = text.split("\n")
    if lines[-1].strip(" \t") == "":
        lines.pop()   # `read` fails on an empty last piece: there is no line after the final newline
    kept, interface_section = [], False
    for number, line in enumerate(lines, start=1):
        line = line.replace("\0", "").strip(" \t")    # bash drops NUL bytes; IFS trimming
        uncommented = line.partition("#")[0]
        key = uncommented.partition("=")[0].strip(SPACE)
        value = uncommented.partition("=")[2] if "=" in uncommented else uncommented
        if key.startswith("["):
            interface_section = False
        if key.lower() == "[interface]":
            interface_section = True
        name = _QUICK_KEYS.get(key.lower())
        if interface_section and name is not None:
            if name == "SaveConfig":
                try:
                    _bool(value.strip(SPACE))
                except ConfigError:
                    raise ConfigError(Reason.BAD_BOOL, number, name) from None
            continue
        kept.append(line + "\n")
    return "".join(kept) + "\n"


def interface_name(path: str) -> str:
    """The interface a configuration file is for, as wg-quick takes it: ``/etc/wireguard/wg0.conf`` is wg0."""
    match = _CONFIG_PATH.search(path)
    if match is None or match.end() != len(path):
        raise ConfigError(Reason.BAD_INTERFACE_NAME)
    return match.group(1)


def load(path: str, *, quick: bool = True) -> InterfaceConfig:
    """Read and parse a file. Warns (:class:`WorldAccessibleWarning`) when the file is readable by
    others, as wg-quick does: the file's and its directory's "other" permission bits both set."""
    real = os.path.realpath(path)
    mode = os.stat(real).st_mode
    directory_mode = os.stat(os.path.dirname(real) or ".").st_mode
    if stat.S_IMODE(mode) & stat.S_IMODE(directory_mode) & 0o007:
        warnings.warn(f"{path} is world accessible: anyone on this machine can read its private key; "
                      f"run chmod 600 {path}", WorldAccessibleWarning, stacklevel=2)
    with open(real, "rb") as file:
        data = file.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(Reason.NOT_UTF8, data[: error.start].count(b"\n") + 1) from None
    return parse(text, quick=quick)


# ---------------------------------------------------------------------------------------------------
# The UAPI operation `wg setconf` sends
# ---------------------------------------------------------------------------------------------------


def to_uapi_set(config: InterfaceConfig, *, resolve: Callable[[str, int], str] | None = None,
                endpoint_names: bool = False) -> str:
    """The ``set=1`` operation (wireguard.com/xplatform) that ``wg setconf`` sends for this file.

    ipc-uapi.h ``userspace_set_device`` with the flags config.c ``config_read_init`` sets for setconf:
    ``private_key`` (all zeros when the file has none), ``listen_port`` and ``fwmark`` (0 when absent) and
    ``replace_peers=true`` always; per peer ``replace_allowed_ips=true`` always. Keys are hex. The
    wg-quick keys play no part.

    wg resolves host names before sending; so must the caller: ``resolve(host, port)`` returns an IP
    address as text. Without it, an endpoint given by name is a ValueError.

    With ``endpoint_names`` (for wgpy's own daemon only) a peer whose endpoint is a name also gets
    ``wgpy_endpoint_host=name:port``, wgpy's extension, so that the daemon re-resolves it while running
    (runtime/reresolve.py).
    """
    lines = ["set=1", f"private_key={key_to_hex(config.private_key or bytes(KEY_LEN))}",
             f"listen_port={config.listen_port or 0}", f"fwmark={config.fwmark or 0}", "replace_peers=true"]
    for peer in config.peers:
        lines.append(f"public_key={key_to_hex(peer.public_key)}")
        if peer.preshared_key is not None:
            lines.append(f"preshared_key={key_to_hex(peer.preshared_key)}")
        if peer.endpoint is not None:
            lines.append(f"endpoint={_numeric_endpoint(peer.endpoint, resolve)}")
            if endpoint_names and peer.endpoint.is_name:
                lines.append(f"wgpy_endpoint_host={peer.endpoint}")
        if peer.persistent_keepalive is not None:
            lines.append(f"persistent_keepalive_interval={peer.persistent_keepalive}")
        lines.append("replace_allowed_ips=true")
        lines.extend(f"allowed_ip={format_prefix(allowed)}" for allowed in peer.allowed_ips)
    return "\n".join(lines) + "\n\n"


def _numeric_endpoint(endpoint: Endpoint, resolve: Callable[[str, int], str] | None) -> Endpoint:
    if not endpoint.is_name:
        return endpoint
    if resolve is None:
        raise ValueError("an endpoint is a host name: pass resolve= to turn it into an address")
    try:
        address = _parse_ip(str(resolve(endpoint.host, endpoint.port)))
    except OSError as error:   # socket.gaierror: "Name or service not known", "Temporary failure ..."
        cause = f" ({error.strerror})" if getattr(error, "strerror", None) else ""
        raise ConfigError(Reason.UNRESOLVED_ENDPOINT, endpoint.line, "Endpoint", endpoint.host + cause) from None
    return Endpoint(format_ip(address), endpoint.port)


# ---------------------------------------------------------------------------------------------------
# The file `wg showconf` prints, from a `get=1` answer
# ---------------------------------------------------------------------------------------------------


def showconf(get_answer: str) -> str:
    """What ``wg showconf`` prints for the device a ``get=1`` answer describes (wireguard-tools
    ``src/showconf.c``): ListenPort, FwMark and PrivateKey when set, then each peer's PublicKey,
    PresharedKey, AllowedIPs, Endpoint and PersistentKeepalive when set, a blank line between sections.
    An all-zero key is no key, as in the UAPI."""
    zero = key_to_hex(bytes(KEY_LEN))
    device: dict[str, str] = {}
    peers: list[dict[str, list[str]]] = []
    for line in get_answer.splitlines():
        key, _, value = line.partition("=")
        if key == "public_key":
            peers.append({})
        if peers:
            peers[-1].setdefault(key, []).append(value)
        else:
            device[key] = value

    def base64(hex_key: str) -> str:
        return key_to_base64(key_from_hex(hex_key))

    out = ["[Interface]\n"]
    if device.get("listen_port", "0") != "0":
        out.append(f"ListenPort = {device['listen_port']}\n")
    if device.get("fwmark", "0") != "0":
        out.append(f"FwMark = {int(device['fwmark']):#x}\n")
    if device.get("private_key", zero) != zero:
        out.append(f"PrivateKey = {base64(device['private_key'])}\n")
    for peer in peers:
        out.append(f"\n[Peer]\nPublicKey = {base64(peer['public_key'][0])}\n")
        if peer.get("preshared_key", [zero])[0] != zero:
            out.append(f"PresharedKey = {base64(peer['preshared_key'][0])}\n")
        if "allowed_ip" in peer:
            out.append(f"AllowedIPs = {', '.join(peer['allowed_ip'])}\n")
        if "endpoint" in peer:
            out.append(f"Endpoint = {peer['endpoint'][0]}\n")
        if peer.get("persistent_keepalive_interval", ["0"])[0] != "0":
            out.append(f"PersistentKeepalive = {peer['persistent_keepalive_interval'][0]}\n")
    return "".join(out)
