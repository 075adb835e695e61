"""wg-quick's plan on Linux: the ``ip``, ``sysctl`` and firewall (``nft``, else ``iptables-restore``)
commands that bring an interface up and down (wireguard-tools ``src/wg-quick/linux.bash``, ``cmd_up``,
``cmd_down`` and ``save_config``), as data.

Pure: a parsed :class:`~wgpy.config.InterfaceConfig` in, :class:`Command` lists out, each with the
commands that undo it. Running them is :mod:`wgpy.runtime.quick`'s job (``wgpy up``, ``wgpy down``).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from ipaddress import ip_interface
from typing import Iterable

from .config import InterfaceConfig, IPInterface, IPNetwork, format_ip, format_prefix
from .core.constants import DEFAULT_MTU

DEFAULT_TABLE_ID = 51820  # wg-quick add_default: the first table and fwmark it tries

# wg-quick's interface names (parse_options): what fits IFNAMSIZ and a file name.
_INTERFACE_NAME = re.compile(r"[a-zA-Z0-9_=+.-]{1,15}")


@dataclass(frozen=True)
class Command:
    """One step as data: ``argv`` run with ``input`` on its standard input, and what undoes it.

    ``undo`` is what a failed ``up`` runs, newest step first, to leave the host as it found it; a step
    that only changes the interface has none (deleting the link undoes it). ``uapi``, when set, is what
    the runner really does: it sends this operation to the daemon's UAPI socket, and ``argv`` is the
    wireguard-tools command that sends the same one, for the echo, as shell words already (it may hold a
    ``<(...)``). The operation holds keys, so it never prints.
    """

    argv: tuple[str, ...]
    input: str | None = None
    undo: tuple["Command", ...] = ()
    uapi: str | None = field(default=None, repr=False)

    def shell(self) -> str:
        """The step as a line to paste into a shell: quoted, its input a here-document."""
        line = " ".join(self.argv) if self.uapi is not None else shlex.join(self.argv)
        if self.input is None:
            return line
        text = self.input if self.input.endswith("\n") else self.input + "\n"
        return f"{line} <<'EOF'\n{text}EOF"


def command(*argv: str, input: str | None = None, undo: Iterable[Command] = ()) -> Command:
    return Command(tuple(argv), input, tuple(undo))


@dataclass(frozen=True)
class Plan:
    """What bringing an interface up or down takes, as data.

    Up, the caller: runs ``before`` (PreUp hooks); creates the device (the daemon); applies the
    configuration (:func:`~wgpy.config.to_uapi_set`, then ``fwmark`` when it is not None, which wg-quick
    sets with ``wg set INTERFACE fwmark``); runs ``commands``; runs ``after`` (PostUp hooks); prints
    ``notices``. When a step fails it runs the ``undo`` of every step done, newest first, and deletes
    the link. Down: ``before`` (PreDown), ``commands`` (which delete the link, and so stop the device,
    then the firewall rules), ``after`` (PostDown), ``notices``. A hook is ``["bash", "-c", text]`` with
    ``%i`` replaced by the interface name, as wg-quick's ``execute_hooks`` evals it.
    """

    before: list[Command]
    commands: list[Command]
    after: list[Command]
    fwmark: int | None = None
    notices: list[str] = field(default_factory=list)


def plan_up(config: InterfaceConfig, interface: str, *, default_mtu: int = DEFAULT_MTU,
            table_id: int = DEFAULT_TABLE_ID, firewall: str = "nft", src_valid_mark: int | None = None) -> Plan:
    """linux.bash ``cmd_up`` after ``add_if`` and ``set_config``: addresses, MTU and link up, routes.

    ``default_mtu`` is the MTU when the file has none: wg-quick measures the smallest route MTU towards
    the endpoints (or the default route's, or 1500) minus 80; the caller may measure the same. ``table_id``
    is the table and fwmark for default routes when the file sets no FwMark: wg-quick takes the first
    table from 51820 up that has no routes. ``firewall`` is ``"nft"`` or, where nft is missing,
    ``"iptables"`` (``iptables-restore``/``ip6tables-restore``), as wg-quick chooses with ``type -p nft``.
    ``src_valid_mark`` is the sysctl's value before, which undoing sets back (None: left as it is).
    """
    _check_interface(interface)
    if not 0 < default_mtu or not 0 < table_id <= 0xFFFFFFFF:
        raise ValueError("default_mtu must be positive and table_id a table number")
    if firewall not in ("nft", "iptables"):
        raise ValueError("firewall is 'nft' or 'iptables'")
    commands: list[Command] = []
    notices: list[str] = []
    for address in config.addresses:                                    # add_addr
        commands.append(command("ip", _family(address), "address", "add", format_prefix(address), "dev", interface))
    mtu = config.mtu if config.mtu is not None else default_mtu           # set_mtu_up
    commands.append(command("ip", "link", "set", "mtu", str(mtu), "up", "dev", interface))
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
            commands.append(command("ip", family, "route", "add", text, "dev", interface, "table", config.table))
        elif network.prefixlen == 0:
            mark = config.fwmark or table_id
            if not config.fwmark:
                fwmark = table_id
            commands.extend(_add_default(config, interface, network, mark, firewall, src_valid_mark))
        elif not any(network.version == route.version and network.subnet_of(route) for route in connected):
            # `ip route show dev INTERFACE match PREFIX`: an address's own prefix route already covers it.
            commands.append(command("ip", family, "route", "add", text, "dev", interface))
    return Plan(_hooks(config.pre_up, interface), commands, _hooks(config.post_up, interface), fwmark, notices)


def plan_down(config: InterfaceConfig, interface: str, *, table_id: int = DEFAULT_TABLE_ID,
              nft_tables: str | None = None, saved_rules: Iterable[tuple[str, str]] = ()) -> Plan:
    """linux.bash ``cmd_down``: the policy rules of default routes, the link, the firewall rules.

    The firewall rules go as ``remove_firewall`` finds them: ``nft_tables`` is what ``nft list tables``
    prints (None where nft is missing); ``saved_rules`` pairs ``iptables``/``ip6tables`` with what its
    ``-save`` prints. ``table_id`` is the device's fwmark (wg-quick's ``get_fwmark``).
    """
    _check_interface(interface)
    commands: list[Command] = []
    families = {network.version for network in _routes(config) if network.prefixlen == 0}
    if config.table in (None, "auto") and families:                      # del_if
        mark = str(config.fwmark or table_id)
        for version in sorted(families):
            family = f"-{version}"
            commands.append(command("ip", family, "rule", "delete", "table", mark))
            commands.append(command("ip", family, "rule", "delete", "table", "main", "suppress_prefixlength", "0"))
    commands.append(command("ip", "link", "delete", "dev", interface))
    commands.extend(remove_firewall(interface, nft_tables, saved_rules))
    return Plan(_hooks(config.pre_down, interface), commands, _hooks(config.post_down, interface))


def remove_firewall(interface: str, nft_tables: str | None, saved_rules: Iterable[tuple[str, str]]) -> list[Command]:
    """linux.bash ``remove_firewall``: delete the nft tables named ``wg-quick-INTERFACE`` and every
    iptables rule that carries wg-quick's comment for this interface."""
    commands = []
    script = "".join(f"delete {line.strip()}\n" for line in (nft_tables or "").splitlines()
                     if line.strip().endswith(f" wg-quick-{interface}"))
    if script:
        commands.append(command("nft", "-f", "-", input=script))
    marker = _iptables_marker(interface)
    for tool, saved in saved_rules:
        lines = [line for line in saved.splitlines()
                 if line.startswith("*") or line == "COMMIT" or (line.startswith("-A ") and marker in line)]
        if any(line.startswith("-A ") for line in lines):
            restore = "".join(("-D" + line[2:] if line.startswith("-A ") else line) + "\n" for line in lines)
            commands.append(command(f"{tool}-restore", "-n", input=restore))
    return commands


def saved_config(config: InterfaceConfig, addresses: Iterable[str], mtu: int | None, running: str) -> str:
    """linux.bash ``save_config``: the file ``down`` writes back when SaveConfig is true.

    ``running`` is what ``wg showconf`` prints for the device (:func:`~wgpy.config.showconf`);
    ``addresses`` are the interface's as ``ip -brief address show`` lists them; ``mtu`` is the link's,
    kept only when the file sets an MTU. The wg-quick keys go first in ``[Interface]``, as wg-quick
    writes them. wg-quick takes DNS from resolvconf, which it set; wgpy sets no DNS, so the file's stay.
    Unlike wg-quick, an IPv6 link-local address the file does not have is left out: the kernel gives
    our TUN device one of its own at every start, and saving it would add one more each time.
    """
    own = {format_prefix(address) for address in config.addresses}
    kept = [a for a in addresses if a in own or not (ip_interface(a).version == 6 and ip_interface(a).is_link_local)]
    lines = ["[Interface]", *(f"Address = {address}" for address in kept)]
    lines += [f"DNS = {server}" for server in [*map(str, config.dns), *config.dns_search]]
    if config.mtu is not None and mtu is not None:
        lines.append(f"MTU = {mtu}")
    if config.table is not None:
        lines.append(f"Table = {config.table}")
    lines.append("SaveConfig = true")
    for key, hooks in (("PreUp", config.pre_up), ("PostUp", config.post_up), ("PreDown", config.pre_down),
                       ("PostDown", config.post_down)):
        lines += [f"{key} = {hook}" for hook in hooks]
    # echo "${current_config/\[Interface\]$'\n'/$new_config}", current_config=$(wg showconf): the
    # running file without its trailing newlines, the first [Interface] line replaced, one newline after.
    return running.rstrip("\n").replace("[Interface]\n", "\n".join(lines) + "\n", 1) + "\n"


def _add_default(config: InterfaceConfig, interface: str, network: IPNetwork, mark: int, firewall: str,
                 src_valid_mark: int | None) -> list[Command]:
    """linux.bash ``add_default``: the default route goes to table ``mark``, which every packet not
    marked ``mark`` (all but the tunnel's own UDP) consults; the main table still answers for anything
    more specific than a default route. The firewall keeps packets for the tunnel's addresses from
    arriving on other interfaces and carries the mark across replies (conntrack), for rp_filter."""
    family, pf, table = _family(network), _nft_family(network.version), f"wg-quick-{interface}"
    not_marked = ("not", "fwmark", str(mark), "table", str(mark))
    suppress = ("table", "main", "suppress_prefixlength", "0")
    commands = [
        command("ip", family, "route", "add", format_prefix(network), "dev", interface, "table", str(mark)),
        command("ip", family, "rule", "add", *not_marked, undo=[command("ip", family, "rule", "delete", *not_marked)]),
        command("ip", family, "rule", "add", *suppress, undo=[command("ip", family, "rule", "delete", *suppress)]),
    ]
    addresses = [format_ip(a.ip) for a in config.addresses if a.version == network.version]
    if network.version == 4:
        before = [] if src_valid_mark is None else [
            command("sysctl", "-q", f"net.ipv4.conf.all.src_valid_mark={src_valid_mark}")]
        commands.append(command("sysctl", "-q", "net.ipv4.conf.all.src_valid_mark=1", undo=before))
    if firewall == "nft":
        script = [f"add table {pf} {table}",
                  f"add chain {pf} {table} preraw {{ type filter hook prerouting priority -300; }}",
                  f"add chain {pf} {table} premangle {{ type filter hook prerouting priority -150; }}",
                  f"add chain {pf} {table} postmangle {{ type filter hook postrouting priority -150; }}"]
        script += [f'add rule {pf} {table} preraw iifname != "{interface}" {pf} daddr {address} '
                   "fib saddr type != local drop" for address in addresses]
        script.append(f"add rule {pf} {table} postmangle meta l4proto udp mark {mark} ct mark set mark")
        script.append(f"add rule {pf} {table} premangle meta l4proto udp meta mark set ct mark")
        undo = command("nft", "delete", "table", pf, table)
        commands.append(command("nft", "-f", "-", input="".join(line + "\n" for line in script), undo=[undo]))
    else:
        tool = "iptables-restore" if network.version == 4 else "ip6tables-restore"
        marker = _iptables_marker(interface)
        raw = [f"PREROUTING ! -i {interface} -d {address} -m addrtype ! --src-type LOCAL -j DROP {marker}"
               for address in addresses]
        mangle = [f"POSTROUTING -m mark --mark {mark} -p udp -j CONNMARK --save-mark {marker}",
                  f"PREROUTING -p udp -j CONNMARK --restore-mark {marker}"]

        def restore(verb: str) -> str:
            return "".join(["*raw\n", *(f"{verb} {rule}\n" for rule in raw), "COMMIT\n",
                            "*mangle\n", *(f"{verb} {rule}\n" for rule in mangle), "COMMIT\n"])

        commands.append(command(tool, "-n", input=restore("-I"), undo=[command(tool, "-n", input=restore("-D"))]))
    return commands


def _iptables_marker(interface: str) -> str:
    return f'-m comment --comment "wg-quick(8) rule for {interface}"'


def _routes(config: InterfaceConfig) -> list[IPNetwork]:
    """The networks ``wg show INTERFACE allowed-ips`` lists once the kernel has masked and merged them,
    in the order of wg-quick's ``sort -nr -k 2 -t /`` under LC_ALL=C: longest prefix first, ties in
    descending byte order of the text."""
    networks = {allowed.network for peer in config.peers for allowed in peer.allowed_ips}
    return sorted(networks, key=lambda n: (n.prefixlen, format_prefix(n)), reverse=True)


def _hooks(hooks: Iterable[str], interface: str) -> list[Command]:
    return [command("bash", "-c", hook.replace("%i", interface)) for hook in hooks]


def _family(prefix: IPInterface | IPNetwork) -> str:
    return f"-{prefix.version}"


def _nft_family(version: int) -> str:
    return "ip" if version == 4 else "ip6"


def _check_interface(interface: str) -> None:
    if not _INTERFACE_NAME.fullmatch(interface):
        raise ValueError(f"not an interface name: {interface!r}")
