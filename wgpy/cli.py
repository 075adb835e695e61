"""The ``wgpy`` command.

    wgpy [-f|--foreground] [--health ADDR:PORT] IFACE
                           create IFACE and serve its UAPI socket (a drop-in for wireguard-go)
    wgpy demo              a real tunnel between two network namespaces, both ends wgpy (needs root)
    wgpy demo --in-memory  two peers in memory: a handshake and data both ways, narrated
    wgpy up CONF           bring up the interface a wg-quick file describes (without wireguard-tools)
    wgpy down CONF         take it down again
    wgpy proxy CONF ...    no root, no TUN: SOCKS5, an HTTP proxy and port forwards into the tunnel
    wgpy show [NAME]       what ``wg show`` prints, also for sockets wg does not look in (wgpy proxy's)
    wgpy mesh render|apply|status|rotate ROSTER ...
                           a fleet from a roster: wg-quick files, interfaces brought to it, who is reachable
    wgpy genkey            a new private key, base64 (as ``wg genkey``)
    wgpy pubkey            the public key of the private key on standard input (as ``wg pubkey``)
    wgpy genpsk            a new preshared key, base64 (as ``wg genpsk``)
    wgpy explain           one handshake and its first packets, every value as the whitepaper writes it
    wgpy decode INPUT...   label every field of WireGuard messages (hex, pcap or pcapng), decrypt with a key log
"""

from __future__ import annotations

import sys

from . import __version__

# Each command imports what it needs when it runs (the daemon, argparse, the core, the study wing): the
# daemon's start-up and idle memory are measured against wireguard-go's in benchmarks/bench_startup.py.


COMMANDS = ("demo", "up", "down", "proxy", "show", "mesh", "genkey", "pubkey", "genpsk", "explain", "decode")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv in (["--version"], ["-v"]):
        print(f"wgpy v{__version__}")
        return 0
    interface_args, foreground, health = _daemon_args(argv)
    if len(interface_args) == 1 and interface_args[0] not in COMMANDS and not interface_args[0].startswith("-"):
        import gc

        # The daemon's imports make objects that live as long as it does, no garbage: the collector's
        # passes over them would only delay the start. Frozen (gc.freeze), they are left out of its later
        # passes too: 0.5-1 ms of start-up (with gc.enable alone, the first pass after it took that back).
        gc.disable()
        try:
            from .runtime import daemon
        finally:
            gc.freeze()
            gc.enable()
        return daemon.main(interface_args[0], foreground=foreground, health=health)
    _plain_warnings()
    import argparse

    parser = argparse.ArgumentParser(
        prog="wgpy",
        usage="wgpy [-f|--foreground] IFACE\n       wgpy COMMAND [ARGS...]   (wgpy --help lists them)",
        description="WireGuard in Python",
        epilog="wgpy [-f|--foreground] [--health ADDR:PORT] IFACE creates the interface IFACE and serves its UAPI "
               "socket, as wireguard-go does (--health: /readyz and /metrics over HTTP).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="run a tunnel between two network namespaces and show it works")
    demo.add_argument("--in-memory", action="store_true", help="two peers in memory instead: no root, no OS")
    for verb in ("up", "down"):
        quick = commands.add_parser(verb, help=f"bring an interface {verb} from a wg-quick configuration file")
        quick.add_argument("config", metavar="CONF", help="path of the file (or a name under /etc/wireguard)")
    proxy = commands.add_parser(
        "proxy", help="reach a WireGuard network without root or TUN: SOCKS5, HTTP proxy, port forwards",
        description="A WireGuard peer in this process, with its own TCP/IP stack for the file's Address: no root, "
                    "no TUN. Names are resolved by the file's DNS servers, through the tunnel.",
        epilog="The SOCKS5 password comes from the environment variable WGPY_PROXY_PASSWORD or from "
               "--socks5-password-file, never from the command line, which every local user can read.")
    proxy.add_argument("config", metavar="CONF", help="a wg-quick file (Address, DNS, peers)")
    proxy.add_argument("--socks5", metavar="ADDR:PORT", help="serve SOCKS5 (CONNECT, UDP ASSOCIATE) here")
    proxy.add_argument("--socks5-user", metavar="USER", help="require this user name and the password (RFC 1929); "
                       "the HTTP proxy then asks for them too (Proxy-Authorization: Basic)")
    proxy.add_argument("--socks5-password-file", metavar="FILE", help="the password, first line of an owner-only file")
    proxy.add_argument("--http", metavar="ADDR:PORT", help="serve an HTTP proxy (CONNECT, and http:// requests) here")
    proxy.add_argument("--forward", action="append", default=[], metavar="tcp|udp:LOCALADDR:PORT:REMOTEHOST:PORT",
                       help="a local port to a host inside the tunnel (repeatable)")
    proxy.add_argument("--reverse", action="append", default=[], metavar="tcp|udp:TUNNELPORT:LOCALHOST:PORT",
                       help="a port on the tunnel's addresses to a local service (repeatable)")
    proxy.add_argument("--health", metavar="ADDR:PORT", help="serve /readyz and /metrics (Prometheus) here")
    proxy.add_argument("-v", "--verbose", action="store_true", help="log each refused client")
    show = commands.add_parser("show", help="show an interface as wg show does, from any UAPI socket")
    show.add_argument("name", nargs="?", metavar="NAME", help="the interface (all that are found when left out)")
    show.add_argument("--socket", metavar="PATH", help="the UAPI socket to ask, instead of finding NAME's")
    _mesh_parser(commands)
    commands.add_parser("genkey", help="print a new private key")
    commands.add_parser("pubkey", help="read a private key on stdin, print its public key")
    commands.add_parser("genpsk", help="print a new preshared key")
    explain = commands.add_parser("explain", help="show one handshake step by step, as the whitepaper writes it")
    explain.add_argument("--initiator-key", metavar="KEY", help="the initiator's private key (base64 or hex)")
    explain.add_argument("--responder-key", metavar="KEY", help="the responder's private key (base64 or hex)")
    explain.add_argument("--psk", metavar="KEY", help="a preshared key (base64 or hex); none by default")
    explain.add_argument("--seed", type=int, default=0, help="seed of the ephemeral keys, indices and nonces")
    explain.add_argument("--under-load", action="store_true", help="the responder is under load: add the cookie round trip")
    explain.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    decode = commands.add_parser("decode", help="label and decrypt WireGuard messages from hex or a capture file")
    decode.add_argument("inputs", nargs="+", metavar="INPUT", help="a pcap or pcapng file, or messages as hex")
    decode.add_argument("--keylog", metavar="FILE", help="a WireGuard key log (Wireshark's format, WGPY_KEYLOG's output)")
    decode.add_argument("--format", choices=("text", "json"), default="text")
    decode.add_argument("--full", action="store_true", help="print long fields whole")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("give the name of the interface to create (IFACE, as wireguard-go takes it) or a COMMAND")

    if args.command == "demo":
        if args.in_memory:
            from .study import memory_demo

            return 0 if memory_demo.run() else 1
        from .runtime import netns_demo

        return 0 if netns_demo.run() else 1
    if args.command in ("up", "down"):
        from .runtime import quick

        path = args.config
        if "/" not in path and not path.endswith(".conf"):
            path = f"/etc/wireguard/{path}.conf"
        return quick.up(path) if args.command == "up" else quick.down(path)
    if args.command == "proxy":
        from .runtime import proxy_command

        return proxy_command.main(args)
    if args.command == "show":
        from .runtime import show_command

        return show_command.main(args.name, args.socket)
    if args.command == "mesh":
        from .mesh import command as mesh

        return mesh.main(args)
    if args.command in ("genkey", "genpsk"):
        import os

        from .core.constants import KEY_LEN
        from .core.crypto import clamp
        from .core.encoding import key_to_base64

        _warn_if_world_accessible()
        raw = os.urandom(KEY_LEN)
        print(key_to_base64(clamp(raw) if args.command == "genkey" else raw))
        return 0
    if args.command == "pubkey":
        return _pubkey(sys.stdin.read())
    if args.command == "explain":
        from .study import explain as study

        return study.main(args.initiator_key, args.responder_key, args.psk, args.seed, args.under_load, args.format)
    if args.command == "decode":
        from .study import decode as study

        return study.main(args.inputs, args.keylog, args.format, args.full)
    return 2  # unreachable: every command returned above


def _mesh_parser(commands) -> None:
    mesh = commands.add_parser("mesh", help="a fleet from a roster: render wg-quick files, apply, status",
                                description="A fleet of hosts from one TOML roster (docs/mesh.md). Keys and preshared "
                                            "keys live in ROSTER's state directory (fleet.toml: fleet.state/), made on "
                                            "first use.")
    verbs = mesh.add_subparsers(dest="mesh_command", metavar="VERB", required=True)
    render = verbs.add_parser("render", help="one wg-quick file per host (DIR/HOST.conf, mode 0600)")
    apply = verbs.add_parser("apply", help="bring a local interface to the host's state (syncconf semantics)")
    status = verbs.add_parser("status", help="each peer's handshake, endpoint and transfer; who is unreachable")
    rotate = verbs.add_parser("rotate", help="a new key for HOST, its old one kept for a grace (docs/rotation.md)")
    for verb in (render, apply, status, rotate):
        verb.add_argument("roster", metavar="ROSTER", help="the roster (TOML)")
        verb.add_argument("--state", metavar="DIR", help="the state directory (default: beside ROSTER, NAME.state)")
    render.add_argument("--host", metavar="NAME", help="only this host")
    render.add_argument("--out", metavar="DIR", required=True, help="where to write the files")
    apply.add_argument("--host", metavar="NAME", required=True, help="the host this interface is")
    status.add_argument("--host", metavar="NAME", help="the host this interface is (default: found by its key)")
    rotate.add_argument("host", metavar="HOST", help="the host whose key changes (this interface is it)")
    rotate.add_argument("--grace", metavar="SECONDS", type=int, default=600,
                        help="how long the old key still answers (default 600): update the other hosts meanwhile")
    rotate.add_argument("--finish", action="store_true", help="end the grace now and remove the old key's file")
    for verb in (apply, status, rotate):
        verb.add_argument("--interface", metavar="IFACE", help="the interface (default: the roster's, wgmesh)")


def _daemon_args(argv: list[str]) -> tuple[list[str], bool, str | None]:
    """``wgpy [-f|--foreground] [--health ADDR:PORT] IFACE``: the words left, foreground, the health address."""
    words, foreground, health = [], False, None
    arguments = iter(argv)
    for word in arguments:
        if word in ("-f", "--foreground"):
            foreground = True
        elif word == "--health":
            health = next(arguments, "")
        elif word.startswith("--health="):
            health = word.partition("=")[2]
        else:
            words.append(word)
    return words, foreground, health


def _plain_warnings() -> None:
    """wgpy's own warnings (a world-readable configuration file) as one line for a user, as
    ``wgpy: warning: ...``, instead of Python's ``file.py:54: WorldAccessibleWarning`` and a source line."""
    import warnings

    python_format = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        # By name: importing wgpy.config here would cost every command its import.
        if category.__module__ == "wgpy.config" and category.__name__ == "WorldAccessibleWarning":
            print(f"wgpy: warning: {message}", file=file or sys.stderr)
        else:
            python_format(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _warn_if_world_accessible() -> None:
    """As ``wg genkey`` does: a secret written to a file others can read deserves a warning."""
    import os
    import stat

    try:
        info = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):
        return
    if stat.S_ISREG(info.st_mode) and info.st_mode & stat.S_IRWXO:
        print("Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.",
              file=sys.stderr)


def _pubkey(text: str) -> int:
    from .core.crypto import PrivateKey
    from .core.encoding import key_from_base64, key_to_base64

    try:
        raw = key_from_base64(text.strip())
    except ValueError:
        print("wgpy: Key is not the correct length or format", file=sys.stderr)
        return 1
    print(key_to_base64(PrivateKey(raw).public))
    return 0


if __name__ == "__main__":
    sys.exit(main())
