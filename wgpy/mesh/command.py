"""The ``wgpy mesh`` subcommands: render, apply, status, rotate. Reads the roster, then (only once it is
valid) the state directory; then does the one thing asked.

``render`` makes keys, preshared keys and addresses on first use. ``apply`` and ``status`` only read the
state, and refuse a host the state does not know yet: a copy of the state on a host that made its own key
for a new host would disagree with every other copy. ``rotate`` writes one thing, the rotated host's new
key (and keeps the old one beside it): the other hosts' copies must then be updated before they apply."""

from __future__ import annotations

import os
import sys
import time

from . import roster as rosters
from .plan import HostPlan, assign_addresses, pairs, plan
from .state import State, StateError, state_directory


class Fleet:
    """A valid roster with its state: every host's plan."""

    def __init__(self, path: str, state_dir: str | None = None, *, create: bool = True) -> None:
        from ..core.crypto import public_key

        with open(path, encoding="utf-8") as file:
            text = file.read()
        self.roster = rosters.parse(text, path)          # RosterError: nothing written yet
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.state = State(state_dir or state_directory(path))
        recorded = self.state.addresses()
        addresses, self.notes = assign_addresses(self.roster, recorded)
        if not create and addresses != recorded:
            missing = sorted(name for name in addresses if addresses[name] != recorded.get(name))
            raise LookupError(f"{self.state.directory} has no addresses for {', '.join(missing)} yet: "
                              "run wgpy mesh render first (it is the one command that writes the state)")
        private: dict[str, bytes | None] = {}
        public: dict[str, bytes] = {}
        for host in self.roster.hosts:
            if host.public_key is None:
                private[host.name] = self._key(create, host.name)
                public[host.name] = public_key(private[host.name])
            else:      # kept elsewhere; used here only if the state holds the matching private key
                stored = self.state.private_key(host.name)
                private[host.name] = stored if stored is not None and public_key(stored) == host.public_key else None
                public[host.name] = host.public_key
        psks = {pair: self._key(create, *pair) for pair in pairs(self.roster)}
        if create and addresses != recorded:     # a host removed from the roster gives its addresses back
            self.state.save_addresses(addresses)
        self.plans = plan(self.roster, addresses, public, private, psks)

    def _key(self, create: bool, *names: str) -> bytes:
        """A host's private key (one name) or a pair's preshared key (two)."""
        if create:
            return self.state.ensure_private_key(*names) if len(names) == 1 else self.state.ensure_preshared_key(*names)
        key = self.state.private_key(*names) if len(names) == 1 else self.state.preshared_key(*names)
        if key is None:
            raise LookupError(f"{self.state.directory} has no {'key' if len(names) == 1 else 'preshared key'} for "
                              f"{' and '.join(names)} yet: run wgpy mesh render first")
        return key

    def host(self, name: str) -> HostPlan:
        if name not in self.plans:
            raise LookupError(f"{name} is not a host of the roster (hosts: {', '.join(self.roster.names)})")
        return self.plans[name]


def main(args) -> int:
    try:
        fleet = Fleet(args.roster, args.state, create=args.mesh_command == "render")
        for note in fleet.notes:
            print(f"wgpy mesh: {note}", file=sys.stderr)
        if args.mesh_command == "render":
            return _render(fleet, args.host, args.out)
        if args.mesh_command == "rotate":
            return _rotate(fleet, args)
        if args.mesh_command == "apply":
            return _apply(fleet, args.host, args.interface or fleet.roster.interface)
        return _status(fleet, args.host, args.interface or fleet.roster.interface)
    except rosters.RosterError as error:
        print(f"wgpy mesh: the roster is not valid; nothing was written:\n{error}", file=sys.stderr)
        return 1
    except (OSError, LookupError, StateError) as error:
        print(f"wgpy mesh: {error}", file=sys.stderr)
        return 1


def _render(fleet: Fleet, only: str | None, out: str) -> int:
    from .render import render

    hosts = [fleet.host(only)] if only else list(fleet.plans.values())
    os.makedirs(out, mode=0o700, exist_ok=True)
    for host in hosts:
        path = os.path.join(out, f"{host.name}.conf")
        _write_private(path, render(host, fleet.name))
        print(f"wrote {path}")
        for note in host.notes:
            print(f"  {host.name}: {note}")
    return 0


def _write_private(path: str, text: str) -> None:
    """Owner-only (the file holds a private key), replaced whole by a rename."""
    temporary = f"{path}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def _apply(fleet: Fleet, name: str, interface: str) -> int:
    from .apply import apply

    host = fleet.host(name)
    said = apply(host, interface)
    for line in said:
        print(f"{interface}: {line}")
    if not said:
        print(f"{interface}: unchanged")
    for note in host.notes:
        print(f"note: {note}")
    return 0


def _rotate(fleet: Fleet, args) -> int:
    from .rotate import finish, rotate

    host = fleet.host(args.host)
    interface = args.interface or fleet.roster.interface
    if args.finish:
        said = finish(fleet.state, host.name, interface)
    else:
        said = rotate(fleet.state, host.name, interface, args.grace)
    for line in said:
        print(f"{interface}: {line}")
    if not args.finish:
        others = [name for name in fleet.roster.names if name != host.name]
        print(f"next, within {args.grace} s: copy {fleet.state.directory} to {', '.join(others)} "
              f"(it holds {host.name}'s new key), then on each: wgpy mesh apply {args.roster} --host NAME")
    return 0


def _status(fleet: Fleet, name: str | None, interface: str) -> int:
    from ..core.crypto import public_key
    from ..runtime.uapi_socket import request
    from .apply import parse_get
    from .status import status

    current = parse_get(request(interface, "get=1\n\n"))
    if name is None:
        mine = public_key(bytes.fromhex(current.private_key)) if current.private_key.strip("0") else None
        found = [host for host in fleet.plans.values() if host.public_key == mine]
        if not found:
            raise LookupError(f"{interface}'s key is no host's in the roster: say which host with --host")
        host = found[0]
    else:
        host = fleet.host(name)
    text, _ = status(host, fleet.roster.names, current, int(time.time()), fleet.roster.hubs)
    print(f"interface {interface}: " + text, end="")
    return 0
