"""``wgpy IFACE``: create the interface and its UAPI socket, then serve them, as ``wireguard-go`` does.

The launching process exits 0 once the TUN interface exists and the UAPI socket listens, non-zero with a
message otherwise; the daemon itself continues in the background (``-f``/``--foreground`` or
``WG_PROCESS_FOREGROUND=1`` keep it in the foreground). ``LOG_LEVEL`` is ``verbose`` (or ``debug``),
``error`` (the default) or ``silent``; as with wireguard-go, a daemon only keeps its standard output for
logs when ``LOG_LEVEL`` asks for them. ``WGPY_KEYLOG=FILE`` appends every handshake's secrets to FILE in
Wireshark's WireGuard key log format (with a warning), so that captures of this interface can be decrypted.
"""

from __future__ import annotations

import _signal  # signal.py's C module: signal.py would bring enum (docs/performance.md, "Start-up")
import os
import sys
import time

from ..core.constants import DEFAULT_MTU
from ..core.device import Device
from .log import CRITICAL, configure as configure_logging, log
from .loop import Runtime
from .tun import Tun, valid_interface_name
from .uapi_socket import UapiServer
from .udp import Udp

def main(interface: str, foreground: bool, health: str | None = None) -> int:
    foreground = foreground or os.environ.get("WG_PROCESS_FOREGROUND") == "1"
    level_name = os.environ.get("LOG_LEVEL")
    level = configure_logging(interface, level_name)
    if not valid_interface_name(interface):
        print(f"wgpy: invalid interface name {interface!r}", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("wgpy: must be run as root (creating a TUN device needs CAP_NET_ADMIN)", file=sys.stderr)
        return 1
    try:
        tun = Tun(interface, DEFAULT_MTU)
    except OSError as err:
        print(f"wgpy: Failed to create TUN device {interface}: {err.strerror or err}", file=sys.stderr)
        return 1
    # From the moment the UAPI socket exists, whoever started us may stop us: a SIGTERM or SIGINT before
    # the loop runs is kept for it, not left to kill the process with the socket file behind.
    early_signals: list[int] = []
    for signum in (_signal.SIGTERM, _signal.SIGINT):
        _signal.signal(signum, lambda signum, frame: early_signals.append(signum))
    try:
        uapi = UapiServer(tun.name)
    except OSError as err:
        tun.close()
        print(f"wgpy: Failed to open UAPI socket for {interface}: {err.strerror or err}", file=sys.stderr)
        return 1
    device = Device(rng=os.urandom, epoch_offset=time.time() - time.monotonic(), mtu=tun.mtu() or DEFAULT_MTU)
    runtime = Runtime(device, tun, Udp(), uapi)
    if health is not None:
        # --health ADDR:PORT: /readyz and /metrics from this device's counters (runtime/health.py).
        from .health import PollHealthServer, device_health, parse_address

        try:
            runtime.health = PollHealthServer(*parse_address(health), lambda: device_health(device))
        except (ValueError, OSError) as err:
            print(f"wgpy: Failed to serve --health {health}: {getattr(err, 'strerror', None) or err}", file=sys.stderr)
            uapi.close()
            tun.close()
            return 1
    keylog_path = os.environ.get("WGPY_KEYLOG")
    if keylog_path:
        from .keylog import KeylogFile

        try:
            runtime.keylog = KeylogFile(keylog_path)
        except OSError as err:
            print(f"wgpy: Failed to open key log {keylog_path}: {err.strerror or err}", file=sys.stderr)
            uapi.close()
            tun.close()
            return 1
        device.keylog_enabled = True
        log.warning("WGPY_KEYLOG is set: writing session secrets to %s; whoever reads it can decrypt this "
                    "interface's traffic", keylog_path)
    try:
        runtime.bind(0, 0)
    except OSError as err:
        print(f"wgpy: Failed to open UDP sockets: {err.strerror or err}", file=sys.stderr)
        uapi.close()
        tun.close()
        return 1

    if foreground:
        log.debug("Device started")
        reason = runtime.run(early_signals)
        log.debug("Device stopping: %s", reason)
        return 0

    ready_read, ready_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork():
        # The launching process: report success only once the daemon says it is serving.
        os.close(ready_write)
        status = os.read(ready_read, 1)
        os._exit(0 if status == b"1" else 1)
    os.close(ready_read)
    os.setsid()
    _detach_stdio(keep_output=bool(level_name) and level <= CRITICAL)
    os.write(ready_write, b"1")
    os.close(ready_write)
    log.debug("Device started")
    reason = runtime.run(early_signals)
    log.debug("Device stopping: %s", reason)
    os._exit(0)


def _detach_stdio(keep_output: bool) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    if not keep_output:
        os.dup2(null, 1)
        os.dup2(null, 2)
    os.close(null)
