"""The roster: a fleet described in TOML (read with the standard library's ``tomllib``), validated.

    [network]
    interface = "wgmesh"          # the interface apply and status use unless told otherwise
    ipv4 = "10.88.0.0/24"         # the tunnel prefixes (one or both)
    ipv6 = "fd00:88::/64"
    topology = "hub"              # "mesh" (every pair, the default) or "hub" (spokes reach each other via hubs)
    hubs = ["hub"]

    [[host]]
    name = "hub"
    endpoint = "hub.example.net:51820"   # host:port or [IPv6]:port; none when behind NAT
    subnets = ["192.168.10.0/24"]         # routed behind this host
    address = "10.88.0.1"                 # optional fixed addresses (address6 for IPv6)
    extra = { MTU = 1380 }                # wg-quick settings passed through

Secrets never appear here (a host may give its ``public_key`` when its private key is kept elsewhere).
``tomllib`` gives no positions, so every problem is traced back to its line by :class:`Lines`, a small
scan of the text for table headers and keys. All problems are collected: :class:`RosterError` lists each
with its line, and nothing is written anywhere until a roster parses.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from .. import config as wgconfig
from ..core.encoding import key_from_base64

IPNetwork = IPv4Network | IPv6Network

DEFAULT_INTERFACE = "wgmesh"
DEFAULT_KEEPALIVE = 25          # seconds: wg(8)'s suggestion for a peer behind NAT
TOPOLOGIES = ("mesh", "hub")
# A host's name is also an interface name (wg-quick up DIR/NAME.conf) and a file name in the state directory.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,14}")
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?")
# What the roster decides itself, so it may not come through ``extra``.
_OWNED = {"privatekey", "address", "listenport"}
# The wg-quick [Interface] settings that may pass through (wg-quick(8); FwMark is wg's).
_EXTRA = {k.lower(): k for k in ("DNS", "MTU", "Table", "PreUp", "PostUp", "PreDown", "PostDown", "SaveConfig",
                                 "FwMark")}

_NETWORK_FIELDS = {"interface", "ipv4", "ipv6", "topology", "hubs", "keepalive"}
_HOST_FIELDS = {"name", "endpoint", "subnets", "address", "address6", "listen_port", "public_key", "extra"}


class Problem(Enum):
    """A named reason for refusing a roster. The value is the sentence shown."""

    SYNTAX = "not valid TOML"
    UNKNOWN_FIELD = "unknown field"
    WRONG_TYPE = "wrong type"
    MISSING_FIELD = "required field missing"
    NO_HOSTS = "the roster has no [[host]]"
    NO_PREFIX = "[network] needs ipv4 or ipv6 (a prefix such as 10.88.0.0/24 or fd00:88::/64)"
    BAD_PREFIX = "not a network of this family (host bits must be zero)"
    PREFIX_TOO_SMALL = "the prefix has fewer usable addresses than the roster has hosts"
    BAD_INTERFACE = "not an interface name (1-15 of a-z A-Z 0-9 _ = + . -)"
    BAD_TOPOLOGY = "topology is neither \"mesh\" nor \"hub\""
    NO_HUBS = "topology \"hub\" needs hubs = [...]"
    HUBS_WITHOUT_HUB_TOPOLOGY = "hubs are given but topology is not \"hub\""
    HUB_NOT_A_HOST = "a hub that is not a host"
    HUB_WITHOUT_ENDPOINT = "a hub needs an endpoint: its spokes must be able to reach it"
    BAD_KEEPALIVE = "keepalive is not 1-65535 seconds"
    BAD_NAME = "host name is not 1-15 of a-z 0-9 _ - starting with a letter or digit"
    DUPLICATE_NAME = "two hosts have this name"
    BAD_ENDPOINT = "endpoint is not host:port or [IPv6]:port"
    BAD_PORT = "not a port number 1-65535"
    BAD_SUBNET = "subnet is not an IP network (host bits must be zero)"
    OVERLAPPING_SUBNETS = "subnets overlap"
    BAD_ADDRESS = "fixed address is not a usable address in the network's prefix"
    DUPLICATE_ADDRESS = "two hosts have the same fixed address"
    BAD_KEY = "not a base64 public key of 32 bytes (44 characters ending in '=')"
    DUPLICATE_KEY = "two hosts have the same public key"
    OWNED_SETTING = "the roster sets this itself (PrivateKey, Address, ListenPort): not in extra"
    BAD_EXTRA = "not a wg-quick [Interface] setting, or a value wg-quick refuses"


@dataclass(frozen=True)
class Issue:
    problem: Problem
    line: int | None
    detail: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return where + (f"{self.detail}: " if self.detail else "") + self.problem.value


class RosterError(ValueError):
    """The roster was refused; ``issues`` names every problem found, each with its line."""

    def __init__(self, issues: list[Issue], path: str = "") -> None:
        self.issues = issues
        prefix = f"{path}: " if path else ""
        super().__init__("\n".join(prefix + str(issue) for issue in issues))


@dataclass(frozen=True)
class Endpoint:
    host: str       # an IP address or a host name, as written (without brackets)
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Host:
    name: str
    line: int | None = None
    endpoint: Endpoint | None = None
    subnets: tuple[IPNetwork, ...] = ()
    address: IPv4Address | None = None
    address6: IPv6Address | None = None
    listen_port: int | None = None
    public_key: bytes | None = None
    extra: tuple[tuple[str, str], ...] = ()      # (wg-quick key, value), one pair a line
    index: int = field(default=0, compare=False, repr=False)   # its place among the [[host]] tables

    @property
    def port(self) -> int | None:
        """The port this host listens on: its own setting, else its endpoint's."""
        if self.listen_port is not None:
            return self.listen_port
        return self.endpoint.port if self.endpoint else None


@dataclass(frozen=True)
class Roster:
    hosts: tuple[Host, ...]
    ipv4: IPv4Network | None = None
    ipv6: IPv6Network | None = None
    interface: str = DEFAULT_INTERFACE
    topology: str = "mesh"
    hubs: tuple[str, ...] = ()
    keepalive: int = DEFAULT_KEEPALIVE
    lines: dict = field(default_factory=dict, compare=False, repr=False)

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [host.name for host in self.hosts]


# ---------------------------------------------------------------------------------------------------
# Lines: where each key was written
# ---------------------------------------------------------------------------------------------------

_ARRAY_HEADER = re.compile(r"\s*\[\[\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]")
_TABLE_HEADER = re.compile(r"\s*\[\s*([A-Za-z0-9_.\-\" ]+?)\s*\]")
_KEY = re.compile(r"\s*((?:\"[^\"]*\"|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:\"[^\"]*\"|[A-Za-z0-9_-]+))*)\s*=")
_INLINE_KEY = re.compile(r"[{,]\s*(\"[^\"]*\"|[A-Za-z0-9_-]+)\s*=")


class Lines:
    """Maps a key's path, such as ``("host", 2, "subnets")``, to the line that wrote it.

    Arrays of tables count from 0 in file order, as ``tomllib`` lists them. Lines inside multi-line
    strings are skipped; a key of an inline table is given its table's line."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple, int] = {}
        counts: dict[str, int] = {}
        current: tuple = ()
        in_string = False
        for number, raw in enumerate(text.splitlines(), start=1):
            quotes = raw.count('"""') + raw.count("'''")
            if in_string:
                in_string = quotes % 2 == 0
                continue
            line = raw.split("#", 1)[0] if '"' not in raw and "'" not in raw else raw
            if match := _ARRAY_HEADER.match(line):
                name = _path(match.group(1))
                counts[name[0]] = counts.get(name[0], -1) + 1
                current = (name[0], counts[name[0]], *name[1:])
                self.lines.setdefault(current, number)
            elif match := _TABLE_HEADER.match(line):
                name = _path(match.group(1))
                if name[0] in counts:           # [host.extra] belongs to the latest [[host]]
                    name = (name[0], counts[name[0]], *name[1:])
                current = name
                self.lines.setdefault(current, number)
            elif match := _KEY.match(line):
                key = current + _path(match.group(1))
                self.lines.setdefault(key, number)
                for inner in _INLINE_KEY.finditer(line, match.end()):
                    self.lines.setdefault(key + (inner.group(1).strip('"'),), number)
            if quotes % 2 == 1:
                in_string = True

    def __call__(self, *path) -> int | None:
        """The line of ``path``, or of its nearest enclosing key or table."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _path(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip().strip('"') for part in dotted.split("."))


# ---------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------


def parse(text: str, path: str = "") -> Roster:
    """The roster in ``text``, or :class:`RosterError` naming every problem with its line."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"line (\d+)", str(error))
        raise RosterError([Issue(Problem.SYNTAX, int(found.group(1)) if found else None, str(error).split(" (at")[0])],
                          path) from None
    lines = Lines(text)
    issues: list[Issue] = []
    check = _Checker(lines, issues)
    roster = check.document(document)
    if issues:
        raise RosterError(issues, path)
    return roster


class _Checker:
    def __init__(self, lines: Lines, issues: list[Issue]) -> None:
        self.lines = lines
        self.issues = issues

    def issue(self, problem: Problem, *path, detail: str = "") -> None:
        self.issues.append(Issue(problem, self.lines(*path), detail))

    def typed(self, value, kind, *path):
        """``value`` if it is of ``kind``, else None and a WRONG_TYPE issue."""
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        names = {str: "a string", int: "an integer", list: "an array", dict: "a table"}
        self.issue(Problem.WRONG_TYPE, *path, detail=f"{path[-1]} must be {names.get(kind, kind.__name__)}")
        return None

    def unknown(self, table: dict, allowed: set[str], *path) -> None:
        for key in table:
            if key not in allowed:
                self.issue(Problem.UNKNOWN_FIELD, *path, key, detail=key)

    def document(self, document: dict) -> Roster:
        self.unknown(document, {"network", "host"})
        network = self.typed(document.get("network", {}), dict, "network") or {}
        self.unknown(network, _NETWORK_FIELDS, "network")
        ipv4 = self.prefix(network, "ipv4", IPv4Network)
        ipv6 = self.prefix(network, "ipv6", IPv6Network)
        if "ipv4" not in network and "ipv6" not in network:
            self.issue(Problem.NO_PREFIX, "network")
        interface = self.typed(network.get("interface", DEFAULT_INTERFACE), str, "network", "interface")
        if interface is not None and not re.fullmatch(r"[a-zA-Z0-9_=+.-]{1,15}", interface):
            self.issue(Problem.BAD_INTERFACE, "network", "interface")
        topology = self.typed(network.get("topology", "mesh"), str, "network", "topology")
        if topology is not None and topology not in TOPOLOGIES:
            self.issue(Problem.BAD_TOPOLOGY, "network", "topology")
        keepalive = self.typed(network.get("keepalive", DEFAULT_KEEPALIVE), int, "network", "keepalive")
        if keepalive is not None and not 1 <= keepalive <= 65535:
            self.issue(Problem.BAD_KEEPALIVE, "network", "keepalive")
        hubs = self.strings(network.get("hubs", []), "network", "hubs")

        raw_hosts = self.typed(document.get("host", []), list, "host") or []
        hosts = [self.host(raw, index) for index, raw in enumerate(raw_hosts)]
        hosts = [host for host in hosts if host is not None]
        if not raw_hosts:
            self.issue(Problem.NO_HOSTS, "network")
        self.across_hosts(hosts, ipv4, ipv6)
        self.capacity(len(raw_hosts), ipv4, "ipv4")
        self.capacity(len(raw_hosts), ipv6, "ipv6")
        self.hubs(hubs, topology, hosts)
        return Roster(tuple(hosts), ipv4, ipv6, interface or DEFAULT_INTERFACE, topology or "mesh", tuple(hubs),
                      keepalive or DEFAULT_KEEPALIVE, self.lines.lines)

    def prefix(self, network: dict, key: str, kind):
        if key not in network or self.typed(network[key], str, "network", key) is None:
            return None
        try:
            prefix = ip_network(network[key])
        except ValueError:
            prefix = None
        if not isinstance(prefix, kind):
            self.issue(Problem.BAD_PREFIX, "network", key, detail=network[key])
            return None
        return prefix

    def strings(self, value, *path) -> list[str]:
        items = self.typed(value, list, *path) or []
        if not all(isinstance(item, str) for item in items):
            self.issue(Problem.WRONG_TYPE, *path, detail=f"{path[-1]} must be an array of strings")
            return []
        return items

    def host(self, raw, index: int) -> Host | None:
        at = ("host", index)
        if self.typed(raw, dict, *at) is None:
            return None
        self.unknown(raw, _HOST_FIELDS, *at)
        name = raw.get("name")
        if name is None:
            self.issue(Problem.MISSING_FIELD, *at, detail="name")
            return None
        if self.typed(name, str, *at, "name") is None:
            return None
        if not _NAME.fullmatch(name):
            self.issue(Problem.BAD_NAME, *at, "name", detail=name)
        endpoint = None
        if "endpoint" in raw and self.typed(raw["endpoint"], str, *at, "endpoint") is not None:
            endpoint = _endpoint(raw["endpoint"])
            if endpoint is None:
                self.issue(Problem.BAD_ENDPOINT, *at, "endpoint", detail=f"host {name}")
        subnets = []
        for text in self.strings(raw.get("subnets", []), *at, "subnets"):
            try:
                subnets.append(ip_network(text))
            except ValueError:
                self.issue(Problem.BAD_SUBNET, *at, "subnets", detail=text)
        listen_port = None
        if "listen_port" in raw and self.typed(raw["listen_port"], int, *at, "listen_port") is not None:
            listen_port = raw["listen_port"]
            if not 1 <= listen_port <= 65535:
                self.issue(Problem.BAD_PORT, *at, "listen_port")
        public_key = None
        if "public_key" in raw and self.typed(raw["public_key"], str, *at, "public_key") is not None:
            try:
                public_key = key_from_base64(raw["public_key"])
            except ValueError:
                self.issue(Problem.BAD_KEY, *at, "public_key", detail=f"host {name}")
        address = self.fixed(raw, "address", IPv4Address, *at)
        address6 = self.fixed(raw, "address6", IPv6Address, *at)
        extra = self.extra(raw.get("extra", {}), *at, "extra")
        return Host(name, self.lines(*at, "name"), endpoint, tuple(subnets), address, address6, listen_port,
                    public_key, extra, index)

    def fixed(self, raw: dict, key: str, kind, *at):
        if key not in raw or self.typed(raw[key], str, *at, key) is None:
            return None
        try:
            address = ip_address(raw[key])
        except ValueError:
            address = None
        if not isinstance(address, kind):
            self.issue(Problem.BAD_ADDRESS, *at, key, detail=raw[key])
            return None
        return address

    def extra(self, value, *at) -> tuple[tuple[str, str], ...]:
        table = self.typed(value, dict, *at) or {}
        pairs = []
        for key, item in table.items():
            if key.lower() in _OWNED:
                self.issue(Problem.OWNED_SETTING, *at, key, detail=key)
                continue
            name = _EXTRA.get(key.lower())
            values = item if isinstance(item, list) else [item]
            texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in values
                     if isinstance(v, (str, int, bool))]
            if name is None or len(texts) != len(values) or any("\n" in t for t in texts):
                self.issue(Problem.BAD_EXTRA, *at, key, detail=key)
                continue
            lines = [f"{name} = {text}" for text in texts]
            try:   # what wg-quick (and wgpy up) would make of it, with the same rules
                wgconfig.parse("[Interface]\n" + "\n".join(lines) + "\n")
            except wgconfig.ConfigError as error:
                self.issue(Problem.BAD_EXTRA, *at, key, detail=f"{key} ({error.reason.value})")
                continue
            pairs.extend((name, text) for text in texts)
        return tuple(pairs)

    def across_hosts(self, hosts: list[Host], ipv4, ipv6) -> None:
        names: dict[str, int] = {}
        keys: dict[bytes, str] = {}
        addresses: dict[object, str] = {}
        owners: list[tuple[IPNetwork, str]] = [(p, f"network {p}") for p in (ipv4, ipv6) if p is not None]
        for host in hosts:
            at = ("host", host.index)
            if host.name in names:
                self.issue(Problem.DUPLICATE_NAME, *at, "name", detail=host.name)
            names.setdefault(host.name, host.index)
            if host.public_key is not None:
                if host.public_key in keys:
                    self.issue(Problem.DUPLICATE_KEY, *at, "public_key",
                               detail=f"{keys[host.public_key]} and {host.name}")
                keys.setdefault(host.public_key, host.name)
            for key, address, prefix in (("address", host.address, ipv4), ("address6", host.address6, ipv6)):
                if address is None:
                    continue
                if prefix is None or address not in usable(prefix):
                    self.issue(Problem.BAD_ADDRESS, *at, key, detail=str(address))
                elif address in addresses:
                    self.issue(Problem.DUPLICATE_ADDRESS, *at, key, detail=f"{addresses[address]} and {host.name}")
                addresses.setdefault(address, host.name)
            for subnet in host.subnets:
                for other, owner in owners:
                    if subnet.version == other.version and subnet.overlaps(other):
                        self.issue(Problem.OVERLAPPING_SUBNETS, *at, "subnets",
                                   detail=f"{subnet} of {host.name} and {other} of {owner}")
                owners.append((subnet, host.name))

    def capacity(self, count: int, prefix, key: str) -> None:
        if prefix is not None and count > usable_count(prefix):
            self.issue(Problem.PREFIX_TOO_SMALL, "network", key,
                       detail=f"{prefix} has {usable_count(prefix)} for {count} hosts")

    def hubs(self, hubs: list[str], topology, hosts: list[Host]) -> None:
        by_name = {host.name: host for host in hosts}
        if topology == "hub" and not hubs:
            self.issue(Problem.NO_HUBS, "network", "topology")
        if topology == "mesh" and hubs:
            self.issue(Problem.HUBS_WITHOUT_HUB_TOPOLOGY, "network", "hubs")
        for hub in hubs:
            if hub not in by_name:
                self.issue(Problem.HUB_NOT_A_HOST, "network", "hubs", detail=hub)
            elif by_name[hub].endpoint is None:
                self.issue(Problem.HUB_WITHOUT_ENDPOINT, "network", "hubs", detail=hub)


def _endpoint(text: str) -> Endpoint | None:
    """``host:port`` or ``[IPv6]:port``; the host an IP address or a name (resolved when applied)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if not rest.startswith(":"):
            return None
        port = rest[1:]
        try:
            if ip_address(host).version != 6:
                return None
        except ValueError:
            return None
    else:
        host, _, port = text.rpartition(":")
        if not host or ":" in host:
            return None
        try:
            ip_address(host)
        except ValueError:
            if not _HOSTNAME.fullmatch(host):
                return None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return None
    return Endpoint(host, int(port))


def usable(prefix: IPNetwork):
    """The addresses hosts may have: IPv4 without the network and broadcast addresses (below /31), IPv6
    without the Subnet-Router anycast address (RFC 4291 section 2.6.1)."""
    if prefix.version == 4 and prefix.prefixlen < 31:
        return range_of(prefix, 1, prefix.num_addresses - 1)
    if prefix.version == 6 and prefix.prefixlen < 127:
        return range_of(prefix, 1, prefix.num_addresses)
    return range_of(prefix, 0, prefix.num_addresses)


def usable_count(prefix: IPNetwork) -> int:
    return usable(prefix).count


class range_of:
    """Addresses ``prefix[start:stop]`` without listing them (an IPv6 /64 has 2**64)."""

    def __init__(self, prefix: IPNetwork, start: int, stop: int) -> None:
        self.prefix, self.start, self.stop = prefix, start, stop

    @property
    def count(self) -> int:     # not __len__: len() stops at sys.maxsize
        return max(0, self.stop - self.start)

    def __contains__(self, address) -> bool:
        if address.version != self.prefix.version or address not in self.prefix:
            return False
        offset = int(address) - int(self.prefix.network_address)
        return self.start <= offset < self.stop

    def __iter__(self):
        for offset in range(self.start, self.stop):
            yield self.prefix.network_address + offset
