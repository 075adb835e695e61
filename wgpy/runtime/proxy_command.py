"""``wgpy proxy CONF``: a WireGuard peer without root and without a TUN, serving SOCKS5, an HTTP proxy,
port forwards and health endpoints, each where asked (issue 13).

The password for ``--socks5-user`` is read from the environment variable ``WGPY_PROXY_PASSWORD`` or from
``--socks5-password-file`` (its first line), never from the command line: every local user can read a
process's arguments (``/proc/PID/cmdline``, ``ps``), while its environment and an owner-only file are the
owner's alone. A password file others can read is refused, as ssh refuses such a key.

The UAPI socket (``wg``'s text protocol, so peers and keys change while it runs) is
``/var/run/wireguard/NAME.sock`` for root, as wireguard-go's, and otherwise
``$XDG_RUNTIME_DIR/wgpy/NAME.sock`` (or ``/tmp/wgpy-UID/NAME.sock``) in a directory of mode 0700;
``wgpy show NAME`` reads either.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import sys
from dataclasses import dataclass, field

from . import health
from .forward import Forward, parse_forward, start as start_forward
from .proxy import Credentials, Proxy

log = logging.getLogger("wgpy.proxy")

PASSWORD_VARIABLE = "WGPY_PROXY_PASSWORD"


@dataclass
class Options:
    socks5: tuple[str, int] | None = None
    http: tuple[str, int] | None = None
    health: tuple[str, int] | None = None
    forwards: list[Forward] = field(default_factory=list)
    credentials: Credentials | None = None


def read_password(path: str | None, environ=os.environ) -> bytes:
    """The password from ``path`` (first line, owner-only file) or ``WGPY_PROXY_PASSWORD``."""
    if path is not None:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise PermissionError(f"{path} can be read by others (mode {stat.S_IMODE(mode):04o}): chmod 600 it")
            password = file.readline().rstrip(b"\r\n")
    else:
        password = environ.get(PASSWORD_VARIABLE, "").encode()
    if not 0 < len(password) < 256:
        raise ValueError(f"the SOCKS5 password must be 1 to 255 bytes (RFC 1929): set {PASSWORD_VARIABLE} "
                         "or give --socks5-password-file")
    return password


def uapi_path(name: str, *, uid: int | None = None, environ=os.environ) -> str:
    """Where the UAPI socket goes; the directory is created 0700."""
    uid = os.geteuid() if uid is None else uid
    if uid == 0:
        directory = "/var/run/wireguard"
    elif environ.get("XDG_RUNTIME_DIR"):
        directory = os.path.join(environ["XDG_RUNTIME_DIR"], "wgpy")
    else:
        directory = f"/tmp/wgpy-{uid}"
    os.makedirs(directory, mode=0o700, exist_ok=True)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or stat.S_IMODE(info.st_mode) & 0o077:
        raise PermissionError(f"{directory} is not a directory of mode 0700 owned by uid {uid}")
    return os.path.join(directory, f"{name}.sock")


class Serving:
    """Everything listening for one proxy: close() stops it all."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.listeners: list = []
        self.names: list[str] = []

    async def close(self) -> None:
        for listener in self.listeners:
            listener.close()
        for listener in self.listeners:
            if hasattr(listener, "wait_closed"):
                await listener.wait_closed()


async def serve(tunnel, options: Options) -> Serving:
    """Start every listener the options ask for over ``tunnel``."""
    proxy = Proxy(tunnel, options.credentials)
    serving = Serving(proxy)
    try:
        if options.socks5:
            serving.listeners.append(await asyncio.start_server(proxy.handle_socks5, *options.socks5))
            serving.names.append(f"SOCKS5 on {_join(*options.socks5)}")
        if options.http:
            serving.listeners.append(await asyncio.start_server(proxy.handle_http, *options.http))
            serving.names.append(f"HTTP proxy on {_join(*options.http)}")
        for forward in options.forwards:
            serving.listeners.append(await start_forward(proxy, forward))
            serving.names.append(str(forward))
        if options.health:
            def snapshot() -> health.Health:
                return health.device_health(tunnel.device, stack=tunnel.stack, proxy_counts=proxy.counts)
            serving.listeners.append(await health.serve(snapshot, *options.health))
            serving.names.append(f"health on {_join(*options.health)} (/readyz, /metrics)")
    except BaseException:
        await serving.close()
        raise
    return serving


def open_to_others(options: Options) -> list[str]:
    """Listeners anyone on the network may use to enter the tunnel: on an address other than loopback,
    without credentials (the SOCKS5 and HTTP proxies) or at all (a forward has none)."""
    import ipaddress

    def public(host: str) -> bool:
        try:
            return not ipaddress.ip_address(host.partition("%")[0]).is_loopback
        except ValueError:
            return True    # a name: whatever it resolves to
    warnings = []
    for what, address in (("SOCKS5", options.socks5), ("HTTP proxy", options.http)):
        if address and public(address[0]) and options.credentials is None:
            warnings.append(f"the {what} on {_join(*address)} asks no password: whoever reaches it uses the tunnel "
                            "(--socks5-user)")
    for forward in options.forwards:
        if not forward.reverse and public(forward.listen_host):
            warnings.append(f"{forward} is open to whoever reaches {_join(forward.listen_host, forward.listen_port)}")
    return warnings


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def main(args) -> int:
    """The command, from argparse's namespace (cli.py)."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="wgpy proxy: %(message)s")
    try:
        options = Options(
            socks5=health.parse_address(args.socks5) if args.socks5 else None,
            http=health.parse_address(args.http) if args.http else None,
            health=health.parse_address(args.health) if args.health else None,
            forwards=[parse_forward(f) for f in args.forward] + [parse_forward(r, reverse=True) for r in args.reverse])
        if args.socks5_user:
            user = args.socks5_user.encode()
            if not 0 < len(user) < 256:
                raise ValueError("the SOCKS5 user name must be 1 to 255 bytes (RFC 1929)")
            options.credentials = Credentials(user, read_password(args.socks5_password_file))
        elif args.socks5_password_file:
            raise ValueError("--socks5-password-file needs --socks5-user")
    except (ValueError, OSError) as error:
        print(f"wgpy proxy: {error}", file=sys.stderr)
        return 2
    if not (options.socks5 or options.http or options.forwards):
        print("wgpy proxy: nothing to serve: give --socks5, --http, --forward or --reverse", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args.config, options))
    except KeyboardInterrupt:
        return 0


async def _run(path: str, options: Options) -> int:
    from .. import config as config_module
    from .tunnel import Tunnel

    try:
        tunnel = Tunnel.from_file(path, uapi_path=uapi_path(args_name(path)))
        await tunnel.start()
    except (ValueError, OSError, config_module.ConfigError) as error:
        print(f"wgpy proxy: {error}", file=sys.stderr)
        return 1
    try:
        try:
            serving = await serve(tunnel, options)
        except OSError as error:
            print(f"wgpy proxy: cannot listen: {error.strerror or error}", file=sys.stderr)
            return 1
        print(f"wgpy proxy: {tunnel.public_key} at {', '.join(tunnel.addresses)}, UDP port {tunnel.listen_port}; "
              f"UAPI {tunnel.uapi_path}", file=sys.stderr)
        for name in serving.names:
            print(f"wgpy proxy: {name}", file=sys.stderr)
        for warning in open_to_others(options):
            print(f"wgpy proxy: warning: {warning}", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        await stop.wait()
        await serving.close()
        return 0
    finally:
        await tunnel.close()


def args_name(path: str) -> str:
    """The interface name of a configuration file, as wg-quick takes it (``wg0.conf`` -> ``wg0``)."""
    base = os.path.basename(path)
    return base[:-5] if base.endswith(".conf") else base
