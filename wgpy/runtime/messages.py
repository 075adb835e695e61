"""What ``wgpy up`` and ``wgpy down`` print when something fails: one sentence a user can act on.

Each message says what failed, where (the file, and its line when there is one) and what to do, in the
manner of the configuration parser's ``FILE: line N: Key: reason``. No Python class names, no repeated
paths, no ``Command '[...]' returned non-zero exit status``.
"""

from __future__ import annotations

import errno
import os
import subprocess

from ..config import SPACE, ConfigError, interface_name

HOOK_NAMES = {name.lower(): name for name in ("PreUp", "PostUp", "PreDown", "PostDown")}


def describe(error: BaseException, path: str) -> str:
    """``error``, raised while bringing up or down the interface of the configuration file ``path``."""
    if isinstance(error, ConfigError):
        return f"{path}: {error}"
    if isinstance(error, subprocess.CalledProcessError):
        return _failed_command(error, path)
    if isinstance(error, OSError):
        return _os_error(error, path)
    return str(error)


def _failed_command(error: subprocess.CalledProcessError, path: str) -> str:
    command = [str(word) for word in error.cmd] if isinstance(error.cmd, (list, tuple)) else [str(error.cmd)]
    status = _status(error.returncode)
    if command[:2] == ["bash", "-c"] and len(command) == 3:
        where = _hook_line(path, command[2])
        return (f"{path}: {where}hook `{command[2]}' {status}; fix or remove it in the file "
                "(its own output, if any, is above)")
    if command[1:3] == ["-m", "wgpy"]:
        return (f"the wgpy daemon for {command[-1]} did not start ({status}; its reason is above): "
                "wgpy up must run as root, on a machine with /dev/net/tun")
    if command[:2] == ["nft", "-f"]:
        return f"nft refused wg-quick's firewall rules ({status}; its message is above)"
    return f"`{' '.join(command)}' {status} (its message is above)"


def _hook_line(path: str, run: str) -> str:
    """``line N: PreUp: `` for the hook line of ``path`` that became the command ``run`` (its ``%i``
    replaced by the interface name, as wg-quick does), or "" if none can be told."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().split("\n")
        interface = interface_name(path)
    except (OSError, UnicodeDecodeError, ConfigError):
        return ""
    for number, line in enumerate(lines, start=1):
        # As config.parse reads a hook: the key before '#' and '=', the whole rest of the line as the value.
        key, equals, value = line.partition("=")
        name = HOOK_NAMES.get(key.partition("#")[0].strip(SPACE).lower())
        if equals and name and value.strip(SPACE).replace("%i", interface) == run:
            return f"line {number}: {name}: "
    return ""


def _status(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by signal {-returncode}"
    return f"failed with exit status {returncode}"


def _os_error(error: OSError, path: str) -> str:
    reason = error.strerror or str(error)
    if error.filename is None:   # a socket, say: no file to name
        return f"{reason} (while bringing up or down {path})"
    # The configuration file is named as the user wrote it, not as the error's realpath.
    if error.filename in (path, os.path.realpath(path)):
        if error.errno == errno.ENOENT:
            return f"{path}: no such file: give the configuration's path, or NAME for /etc/wireguard/NAME.conf"
        if error.errno in (errno.EACCES, errno.EPERM):
            return f"{path}: permission denied: run wgpy up and down as root"
        return f"{path}: {reason}"
    if error.errno == errno.ENOENT and "/" not in str(error.filename):   # subprocess: the program itself
        return f"{error.filename}: command not found: install it and try again"
    return f"{error.filename}: {reason}"
