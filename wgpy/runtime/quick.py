"""``wgpy up CONF`` and ``wgpy down CONF``: wg-quick for machines without wireguard-tools.

Reads the same file format (``/etc/wireguard/wg0.conf`` or any path; the interface is named after the
file), starts the daemon, configures it through its UAPI socket and runs the ``ip`` commands wg-quick would
(the plan is computed in :mod:`wgpy.quick_plan`). Each command is echoed as ``[#] ...`` on standard error, as
wg-quick does.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys

from .. import config as wgconfig
from .. import quick_plan
from ..core.constants import DEFAULT_MTU, OUTER_OVERHEAD
from .messages import describe
from .uapi_socket import request as uapi_request


def _echo(command: list[str]) -> None:
    shown = " ".join(command) if command[0] != "nft" else "nft -f <wg-quick rules>"
    print(f"[#] {shown}", file=sys.stderr)


def _run(command: list[str]) -> None:
    _echo(command)
    if command[0] == "nft":
        subprocess.run(["nft", "-f", "-"], input=command[1], text=True, check=True)
    else:
        subprocess.run(command, check=True)


def _resolve(host: str, port: int) -> str:
    """A host name in an Endpoint, resolved once at start-up as wg does."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    return address[0]


def _default_mtu() -> int:
    """wg-quick: the default route's MTU less the WireGuard and outer IPv6/UDP overhead, else DEFAULT_MTU."""
    try:
        out = subprocess.run(["ip", "route", "get", "192.0.2.1"], capture_output=True, text=True).stdout.split()
        device = out[out.index("dev") + 1]
        with open(f"/sys/class/net/{device}/mtu") as f:
            return int(f.read()) - OUTER_OVERHEAD
    except (ValueError, IndexError, OSError):
        return DEFAULT_MTU


def up(path: str) -> int:
    try:
        conf = wgconfig.load(path)
        interface = wgconfig.interface_name(path)
        plan = quick_plan.plan_up(conf, interface, default_mtu=_default_mtu())
    except (wgconfig.ConfigError, OSError, ValueError) as err:
        print(f"wgpy: {describe(err, path)}", file=sys.stderr)
        return 1
    if os.path.exists(f"/sys/class/net/{interface}"):
        print(f"wgpy: `{interface}' already exists", file=sys.stderr)
        return 1
    try:
        for hook in plan.before:
            _run(hook)
        launcher = [sys.executable, "-m", "wgpy", interface]
        _echo(["wgpy", interface])
        subprocess.run(launcher, check=True)
        if plan.fwmark is not None:
            conf = dataclasses.replace(conf, fwmark=plan.fwmark)
        answer = uapi_request(interface, wgconfig.to_uapi_set(conf, resolve=_resolve))
        _echo(["wg", "setconf", interface, path])
        if "errno=0" not in answer:
            raise RuntimeError(f"the daemon refused the configuration: {answer.strip()}")
        for command in plan.commands:
            _run(command)
        for hook in plan.after:
            _run(hook)
    except (subprocess.CalledProcessError, OSError, RuntimeError, ValueError) as err:
        print(f"wgpy: {describe(err, path)}", file=sys.stderr)
        subprocess.run(["ip", "link", "delete", "dev", interface], capture_output=True)
        return 1
    for notice in plan.notices:
        print(f"wgpy: {notice}", file=sys.stderr)
    return 0


def down(path: str) -> int:
    try:
        conf = wgconfig.load(path)
        interface = wgconfig.interface_name(path)
        plan = quick_plan.plan_down(conf, interface)
    except (wgconfig.ConfigError, OSError, ValueError) as err:
        print(f"wgpy: {describe(err, path)}", file=sys.stderr)
        return 1
    if not os.path.exists(f"/sys/class/net/{interface}"):
        print(f"wgpy: `{interface}' is not a WireGuard interface", file=sys.stderr)
        return 1
    status = 0
    for command in [*plan.before, *plan.commands, *plan.after]:
        try:
            _run(command)
        except (subprocess.CalledProcessError, OSError) as err:
            print(f"wgpy: {describe(err, path)}", file=sys.stderr)
            status = 1
    for notice in plan.notices:
        print(f"wgpy: {notice}", file=sys.stderr)
    return status
