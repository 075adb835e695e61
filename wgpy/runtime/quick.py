"""``wgpy up CONF`` and ``wgpy down CONF``: wg-quick for machines without wireguard-tools.

Reads the same file format (``/etc/wireguard/wg0.conf`` or any path; the interface is named after the
file), starts the daemon, configures it through its UAPI socket and runs the ``ip``, ``sysctl`` and
firewall commands wg-quick would (the plan is computed in :mod:`wgpy.quick_plan`). Each step is echoed
as ``[#] ...`` on standard error, as wg-quick does, in a form a shell takes back: quoted, standard input
as a here-document. The two steps done over the UAPI socket echo the ``wg`` command that sends the same
operation. A failed ``up`` undoes every step it took, newest first, so the host is left as it was.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys

from .. import config as wgconfig
from .. import quick_plan
from ..core.constants import DEFAULT_MTU, OUTER_OVERHEAD
from .messages import describe
from ..quick_plan import Command, command
from .uapi_socket import request as uapi_request

SRC_VALID_MARK = "/proc/sys/net/ipv4/conf/all/src_valid_mark"


class StepFailed(Exception):
    """A step of the plan did not succeed."""


def _echo(step: Command) -> None:
    print(f"[#] {step.shell()}", file=sys.stderr, flush=True)


def perform(step: Command, interface: str) -> None:
    """Carry out one step: echo it, then run it (or send its operation to the daemon)."""
    _echo(step)
    if step.uapi is not None:
        answer = uapi_request(interface, step.uapi)
        if "errno=0" not in answer:
            raise StepFailed(f"the daemon refused the configuration: {answer.strip()}")
        return
    result = subprocess.run(step.argv, input=step.input, text=True)
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, step.argv)   # runtime/messages.py words it


def firewall() -> str:
    """wg-quick's choice (``type -p nft``): nftables where nft is on PATH, else iptables-restore."""
    return "nft" if shutil.which("nft") else "iptables"


def _resolve(host: str, port: int) -> str:
    """A host name in an Endpoint, resolved at start-up as wg does; the daemon re-resolves it later
    (``wgpy_endpoint_host``, runtime/reresolve.py)."""
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


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _up_steps(conf: wgconfig.InterfaceConfig, path: str, interface: str, plan: quick_plan.Plan) -> list[Command]:
    """The whole of ``up`` in order: PreUp, the daemon, its configuration, the plan's commands, PostUp."""
    launch = Command((sys.executable, "-m", "wgpy", interface),
                     undo=(command("ip", "link", "delete", "dev", interface),))
    setconf = Command(("wg", "setconf", interface, f"<(wg-quick strip {shlex.quote(os.path.abspath(path))})"),
                      uapi=wgconfig.to_uapi_set(conf, resolve=_resolve, endpoint_names=True))
    steps = [*plan.before, launch, setconf]
    if plan.fwmark is not None:
        steps.append(Command(("wg", "set", interface, "fwmark", str(plan.fwmark)),
                             uapi=f"set=1\nfwmark={plan.fwmark}\n\n"))
    return [*steps, *plan.commands, *plan.after]


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _roll_back(done: list[Command], interface: str, path: str) -> None:
    """Undo the steps done, newest first; an undo that fails is reported and the rest still run."""
    for step in reversed(done):
        for undo in step.undo:
            try:
                perform(undo, interface)
            except (StepFailed, subprocess.CalledProcessError, OSError) as err:
                print(f"wgpy: {describe(err, path)}", file=sys.stderr)


def up(path: str) -> int:
    try:
        conf = wgconfig.load(path)
        interface = wgconfig.interface_name(path)
        plan = quick_plan.plan_up(conf, interface, default_mtu=_default_mtu(), firewall=firewall(),
                                  src_valid_mark=_read_int(SRC_VALID_MARK))
        steps = _up_steps(conf, path, interface, plan)
    except (wgconfig.ConfigError, OSError, ValueError) as err:
        print(f"wgpy: {describe(err, path)}", file=sys.stderr)
        return 1
    if os.path.exists(f"/sys/class/net/{interface}"):
        print(f"wgpy: `{interface}' already exists", file=sys.stderr)
        return 1
    done: list[Command] = []
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        for step in steps:
            perform(step, interface)
            done.append(step)
    except BaseException as err:  # Ctrl-C and SIGTERM too, as wg-quick's `trap del_if INT TERM EXIT`
        message = describe(err, path) if isinstance(err, Exception) else "interrupted: undoing what was done"
        print(f"wgpy: {message}", file=sys.stderr)
        _roll_back(done, interface, path)
        if os.path.exists(f"/sys/class/net/{interface}"):
            # The daemon came up but its launcher failed: the link is ours (it was not there before).
            _try(command("ip", "link", "delete", "dev", interface), interface)
        if not isinstance(err, Exception):
            raise
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    for notice in plan.notices:
        print(f"wgpy: {notice}", file=sys.stderr)
    return 0


def down(path: str) -> int:
    try:
        conf = wgconfig.load(path)
        interface = wgconfig.interface_name(path)
    except (wgconfig.ConfigError, OSError, ValueError) as err:
        print(f"wgpy: {describe(err, path)}", file=sys.stderr)
        return 1
    if not os.path.exists(f"/sys/class/net/{interface}"):
        print(f"wgpy: `{interface}' is not a WireGuard interface", file=sys.stderr)
        return 1
    status = 0
    try:
        running = uapi_request(interface, "get=1\n\n")
    except OSError as err:
        print(f"wgpy: {err}", file=sys.stderr)
        running, status = "", 1
    # wg-quick's get_fwmark: the device's own mark names the table its default routes went to.
    device_lines = running.partition("public_key=")[0].splitlines()
    marks = [line.partition("=")[2] for line in device_lines if line.startswith("fwmark=")]
    table_id = int(marks[0]) if marks and marks[0].isdigit() and int(marks[0]) else quick_plan.DEFAULT_TABLE_ID
    for hook in quick_plan.plan_down(conf, interface).before:
        status |= _try(hook, interface, path)
    if conf.save_config:
        status |= _save_config(conf, path, interface, running)
    # Listed after PreDown and the save, as wg-quick's remove_firewall lists them, just before use.
    nft_tables = _output("nft", "list", "tables") if shutil.which("nft") else None
    saved = [(tool, _output(f"{tool}-save")) for tool in ("iptables", "ip6tables") if shutil.which(f"{tool}-save")]
    plan = quick_plan.plan_down(conf, interface, table_id=table_id, nft_tables=nft_tables, saved_rules=saved)
    for step in [*plan.commands, *plan.after]:
        status |= _try(step, interface, path)
    for notice in plan.notices:
        print(f"wgpy: {notice}", file=sys.stderr)
    return status


def _try(step: Command, interface: str, path: str = "") -> int:
    try:
        perform(step, interface)
    except (StepFailed, subprocess.CalledProcessError, OSError) as err:
        print(f"wgpy: {describe(err, path)}", file=sys.stderr)
        return 1
    return 0


def _output(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def _save_config(conf: wgconfig.InterfaceConfig, path: str, interface: str, running: str) -> int:
    """linux.bash ``save_config``: the running configuration back into the file, atomically, mode 0600."""
    print(f"[#] wg showconf {interface}", file=sys.stderr, flush=True)
    if "errno=0" not in running:
        print(f"wgpy: could not read {interface}'s configuration; {path} is left as it is", file=sys.stderr)
        return 1
    brief = _output("ip", "-all", "-brief", "address", "show", "dev", interface).split()
    addresses = brief[2:] if brief[:1] == [interface] else []
    text = quick_plan.saved_config(conf, addresses, _read_int(f"/sys/class/net/{interface}/mtu"),
                                   wgconfig.showconf(running))
    temporary = f"{path}.tmp"
    old_umask = os.umask(0o077)
    try:
        with open(temporary, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as err:
        print(f"wgpy: could not write {path}: {err}", file=sys.stderr)
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return 1
    finally:
        os.umask(old_umask)
    return 0
