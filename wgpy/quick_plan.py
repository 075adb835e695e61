"""wg-quick's plan on Linux: the ``ip``, ``nft`` and ``sysctl`` commands that bring an interface up and
down (wireguard-tools ``src/wg-quick/linux.bash``, ``cmd_up`` and ``cmd_down``), as data.

Pure: a parsed :class:`~wgpy.config.InterfaceConfig` in, argv lists out. Running them is
:mod:`wgpy.runtime.quick`'s job (``wgpy up``, ``wgpy down``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from .config import InterfaceConfig, IPInterface, IPNetwork, format_ip, format_prefix
from .core.constants import DEFAULT_MTU

DEFAULT_TABLE_ID = 51820  # wg-quick add_default: the first table and fwmark it tries

# wg-quick's interface names (parse_options): what fits IFNAMSIZ and a file name.
_INTERFACE_NAME = re.compile(r"[a-zA-Z0-9_=+.-]{1,15}")




@dataclass(frozen=True)
class Plan:
    """What bringing an interface up or down takes, as data.

    Up, the caller: creates the device (the daemon); runs ``before`` (PreUp hooks); applies the
    configuration (:func:`~wgpy.config.to_uapi_set`, with ``fwmark`` when it is not None, which wg-quick sets with
    ``wg set INTERFACE fwmark``); runs ``commands``; runs ``after`` (PostUp hooks); prints ``notices``.
    Down: ``before`` (PreDown), ``commands`` (which delete the link, and so stop the device), ``after``
    (PostDown), ``notices``. A hook is ``["bash", "-c", text]`` with ``%i`` replaced by the interface name,
    as wg-quick's ``execute_hooks`` evals it.
    """

    before: list[list[str]]
    commands: list[list[str]]
    after: list[list[str]]
    fwmark: int | None = None
    notices: list[str] = field(default_factory=list)


def plan_up(config: InterfaceConfig, interface: str, *, default_mtu: int = DEFAULT_MTU,
            table_id: int = DEFAULT_TABLE_ID) -> Plan:
    """linux.bash ``cmd_up`` after ``add_if`` and ``set_config``: addresses, MTU and link up, routes.

    ``default_mtu`` is the MTU when the file has none: wg-quick measures the smallest route MTU towards
    the endpoints (or the default route's, or 1500) minus 80; the caller may measure the same. ``table_id``
    is the table and fwmark for default routes when the file sets no FwMark: wg-quick takes the first
    table from 51820 up that has no routes.
    """
    _check_interface(interface)
    if not 0 < default_mtu or not 0 < table_id <= 0xFFFFFFFF:
        raise ValueError("default_mtu must be positive and table_id a table number")
    commands: list[list[str]] = []
    notices: list[str] = []
    for address in config.addresses:                                    # add_addr
        commands.append(["ip", _family(address), "address", "add", format_prefix(address), "dev", interface])
    mtu = config.mtu if config.mtu is not None else default_mtu           # set_mtu_up
    commands.append(["ip", "link", "set", "mtu", str(mtu), "up", "dev", interface])
    if config.dns or config.dns_search:                                   # set_dns
        entries = ", ".join([*(str(server) for server in config.dns), *config.dns_search])
        notices.append(f"DNS = {entries}: not applied; wgpy leaves the system resolver alone "
                       "(wg-quick would run resolvconf)")
    fwmark = None
    connected = [a.network for a in config.addresses if a.network.prefixlen < a.max_prefixlen]
    for network in _routes(config):                                       # add_route
        text, family = format_prefix(network), _family(network)
        if config.table == "off":
            continue
        if config.table not in (None, "auto"):
            commands.append(["ip", family, "route", "add", text, "dev", interface, "table", config.table])
        elif network.prefixlen == 0:
            mark = config.fwmark or table_id
            if not config.fwmark:
                fwmark = table_id
            commands.extend(_add_default(config, interface, network, mark))
        elif not any(network.version == route.version and network.subnet_of(route) for route in connected):
            # `ip route show dev INTERFACE match PREFIX`: an address's own prefix route already covers it.
            commands.append(["ip", family, "route", "add", text, "dev", interface])
    return Plan(_hooks(config.pre_up, interface), commands, _hooks(config.post_up, interface), fwmark, notices)


def plan_down(config: InterfaceConfig, interface: str, *, table_id: int = DEFAULT_TABLE_ID) -> Plan:
    """linux.bash ``cmd_down``: the policy rules of default routes, the link, the firewall tables."""
    _check_interface(interface)
    commands: list[list[str]] = []
    notices: list[str] = []
    if config.save_config:
        notices.append("SaveConfig = true: not supported; the file is left as it is")
    families = {network.version for network in _routes(config) if network.prefixlen == 0}
    policy = config.table in (None, "auto") and families
    if policy:                                                            # del_if
        mark = str(config.fwmark or table_id)
        for version in sorted(families):
            family = f"-{version}"
            commands.append(["ip", family, "rule", "delete", "table", mark])
            commands.append(["ip", family, "rule", "delete", "table", "main", "suppress_prefixlength", "0"])
    commands.append(["ip", "link", "delete", "dev", interface])
    if policy:                                                            # remove_firewall
        script = "".join(f"delete table {_nft_family(v)} wg-quick-{interface}\n" for v in sorted(families))
        commands.append(["nft", script])
    return Plan(_hooks(config.pre_down, interface), commands, _hooks(config.post_down, interface), None, notices)


def _add_default(config: InterfaceConfig, interface: str, network: IPNetwork, mark: int) -> list[list[str]]:
    """linux.bash ``add_default``: the default route goes to table ``mark``, which every packet not
    marked ``mark`` (all but the tunnel's own UDP) consults; the main table still answers for anything
    more specific than a default route. nftables keeps packets for the tunnel's addresses from arriving
    on other interfaces and carries the mark across replies (conntrack), for rp_filter."""
    family, pf, table = _family(network), _nft_family(network.version), f"wg-quick-{interface}"
    commands = [
        ["ip", family, "rule", "add", "not", "fwmark", str(mark), "table", str(mark)],
        ["ip", family, "rule", "add", "table", "main", "suppress_prefixlength", "0"],
        ["ip", family, "route", "add", format_prefix(network), "dev", interface, "table", str(mark)],
    ]
    script = [f"add table {pf} {table}",
              f"add chain {pf} {table} preraw {{ type filter hook prerouting priority -300; }}",
              f"add chain {pf} {table} premangle {{ type filter hook prerouting priority -150; }}",
              f"add chain {pf} {table} postmangle {{ type filter hook postrouting priority -150; }}"]
    for address in config.addresses:
        if address.version == network.version:
            script.append(f'add rule {pf} {table} preraw iifname != "{interface}" {pf} daddr '
                          f"{format_ip(address.ip)} fib saddr type != local drop")
    script.append(f"add rule {pf} {table} postmangle meta l4proto udp mark {mark} ct mark set mark")
    script.append(f"add rule {pf} {table} premangle meta l4proto udp meta mark set ct mark")
    if network.version == 4:
        commands.append(["sysctl", "-q", "net.ipv4.conf.all.src_valid_mark=1"])
    commands.append(["nft", "".join(line + "\n" for line in script)])
    return commands


def _routes(config: InterfaceConfig) -> list[IPNetwork]:
    """The networks ``wg show INTERFACE allowed-ips`` lists once the kernel has masked and merged them,
    in the order of wg-quick's ``sort -nr -k 2 -t /`` under LC_ALL=C: longest prefix first, ties in
    descending byte order of the text."""
    networks = {allowed.network for peer in config.peers for allowed in peer.allowed_ips}
    return sorted(networks, key=lambda n: (n.prefixlen, format_prefix(n)), reverse=True)


def _hooks(hooks: Iterable[str], interface: str) -> list[list[str]]:
    return [["bash", "-c", hook.replace("%i", interface)] for hook in hooks]


def _family(prefix: IPInterface | IPNetwork) -> str:
    return f"-{prefix.version}"


def _nft_family(version: int) -> str:
    return "ip" if version == 4 else "ip6"


def _check_interface(interface: str) -> None:
    if not _INTERFACE_NAME.fullmatch(interface):
        raise ValueError(f"not an interface name: {interface!r}")
