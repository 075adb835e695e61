"""From a roster to each host's interface: addresses, peers, routes, keepalives. Pure: keys come in.

Addresses are assigned stably: a host keeps the addresses recorded for it in the state directory
(``addresses.json``), and a new host takes the lowest free ones. Why a record and not a hash of the name
or key: a hash spreads hosts over the prefix, so in a /24 two of twenty hosts already collide with even
odds (the birthday bound), and the collision rule then makes an address depend on which hosts exist,
which is what stability forbids. The record gives a dense, readable numbering and the guarantee without
conditions; it costs nothing, since the keys already need the state directory. What still renumbers a
host: a changed prefix, or another host's new fixed address taking its place (both said when they happen).

Topologies:

- ``mesh``: every host is a peer of every other.
- ``hub``: spokes are peers of the hubs only; hubs are peers of everyone. A spoke routes the whole
  network prefix and the other spokes' subnets through the first hub (AllowedIPs may not overlap between
  peers, so one hub carries them); other hubs are reached directly. A hub forwards between spokes.

PersistentKeepalive goes only on the side behind NAT: a host without an endpoint keeps alive towards
the peers that have one (wg(8): "to keep NAT mappings valid").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface, ip_address, ip_interface, ip_network

from .roster import Endpoint, Host, IPNetwork, Roster, usable

Addresses = dict[str, dict[str, str]]     # name -> {"ipv4": "10.88.0.1", "ipv6": "fd00:88::1"}

FORWARDING_NOTE = ("this host forwards between spokes: enable forwarding "
                   "(sysctl -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1)")


@dataclass(frozen=True)
class PeerPlan:
    name: str
    public_key: bytes
    preshared_key: bytes = field(repr=False)
    allowed_ips: tuple[IPNetwork, ...]
    endpoint: Endpoint | None = None
    keepalive: int | None = None


@dataclass(frozen=True)
class HostPlan:
    name: str
    public_key: bytes
    private_key: bytes | None = field(repr=False)       # None: kept elsewhere (the roster gave the public key)
    addresses: tuple[IPv4Interface | IPv6Interface, ...]
    listen_port: int | None
    peers: tuple[PeerPlan, ...]
    extra: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    def peer(self, name: str) -> PeerPlan:
        for peer in self.peers:
            if peer.name == name:
                return peer
        raise KeyError(name)


def assign_addresses(roster: Roster, recorded: Addresses) -> tuple[Addresses, list[str]]:
    """Each host's addresses: fixed ones first, then those recorded for it (while still free and in the
    prefix), then the lowest free for new hosts in roster order. Returns them and a note per renumbering."""
    notes: list[str] = []
    result: Addresses = {host.name: {} for host in roster.hosts}
    for family, prefix, fixed in (("ipv4", roster.ipv4, "address"), ("ipv6", roster.ipv6, "address6")):
        if prefix is None:
            continue
        taken: set = set()
        for host in roster.hosts:
            if getattr(host, fixed) is not None:
                result[host.name][family] = str(getattr(host, fixed))
                taken.add(getattr(host, fixed))
        pending: list[Host] = []
        for host in roster.hosts:
            if family in result[host.name]:
                continue
            old = recorded.get(host.name, {}).get(family)
            address = _address_or_none(old)
            if address is not None and address in usable(prefix) and address not in taken:
                result[host.name][family] = str(address)
                taken.add(address)
            else:
                if old is not None:
                    notes.append(f"{host.name}: {old} is no longer free in {prefix}: renumbered")
                pending.append(host)
        free = (address for address in usable(prefix) if address not in taken)
        for host in pending:
            result[host.name][family] = str(next(free))   # the roster's capacity check makes room
    return result, notes


def _address_or_none(text):
    try:
        return ip_address(text) if isinstance(text, str) else None
    except ValueError:
        return None


def pairs(roster: Roster) -> list[tuple[str, str]]:
    """The pairs of hosts that are peers, each once, names sorted within a pair."""
    names = roster.names
    hubs = set(roster.hubs)
    result = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if roster.topology == "mesh" or a in hubs or b in hubs:
                result.append((min(a, b), max(a, b)))
    return result


def plan(roster: Roster, addresses: Addresses, public_keys: dict[str, bytes], private_keys: dict[str, bytes | None],
         preshared_keys: dict[tuple[str, str], bytes]) -> dict[str, HostPlan]:
    """Every host's interface. ``preshared_keys`` holds one key per pair of :func:`pairs`."""
    def own(host: Host) -> list[IPNetwork]:
        recorded = addresses[host.name]
        mine = [ip_network(recorded[family]) for family in ("ipv4", "ipv6") if family in recorded]
        return mine + list(host.subnets)

    hubs = list(roster.hubs)
    network = [prefix for prefix in (roster.ipv4, roster.ipv6) if prefix is not None]
    by_name = {host.name: host for host in roster.hosts}
    peers_of: dict[str, list[PeerPlan]] = {name: [] for name in by_name}
    notes: dict[str, list[str]] = {name: [] for name in by_name}

    def allowed(me: Host, peer: Host) -> list[IPNetwork]:
        if roster.topology == "hub" and me.name not in hubs and peer.name == hubs[0]:
            others = [subnet for host in roster.hosts if host.name not in (me.name,) and host.name not in hubs[1:]
                      for subnet in host.subnets]
            return network + others
        return own(peer)

    for a, b in pairs(roster):
        for me, peer in ((by_name[a], by_name[b]), (by_name[b], by_name[a])):
            keepalive = roster.keepalive if me.endpoint is None and peer.endpoint is not None else None
            peers_of[me.name].append(PeerPlan(peer.name, public_keys[peer.name], preshared_keys[(a, b)],
                                              tuple(_sorted(allowed(me, peer))), peer.endpoint, keepalive))
        if by_name[a].endpoint is None and by_name[b].endpoint is None:
            for name, other in ((a, b), (b, a)):
                notes[name].append(f"neither this host nor {other} has an endpoint: they cannot reach each other "
                                   "(give one an endpoint, or use a hub)")
    for hub in hubs:
        if roster.topology == "hub":
            notes[hub].append(FORWARDING_NOTE)

    order = {name: index for index, name in enumerate(roster.names)}
    result = {}
    for host in roster.hosts:
        host_addresses = tuple(ip_interface(f"{addresses[host.name][family]}/{prefix.prefixlen}")
                               for family, prefix in (("ipv4", roster.ipv4), ("ipv6", roster.ipv6))
                               if prefix is not None)
        peers = tuple(sorted(peers_of[host.name], key=lambda p: order[p.name]))
        result[host.name] = HostPlan(host.name, public_keys[host.name], private_keys.get(host.name), host_addresses,
                                     host.port, peers, host.extra, tuple(notes[host.name]))
    return result


def _sorted(networks: list[IPNetwork]) -> list[IPNetwork]:
    return sorted(set(networks), key=lambda n: (n.version, n))
