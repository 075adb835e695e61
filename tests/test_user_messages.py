"""What ``wgpy up`` and ``wgpy down`` print when something is wrong (wgpy/runtime/messages.py): one line
a user can act on, naming the file (and its line where there is one), with no Python class names,
tracebacks, ``[Errno N]`` or paths said twice.

The commands run as a user runs them, ``python -m wgpy`` in a child process; the interface names start
with ``wgm`` (UAPI sockets are global). Only the unresolvable endpoint and the daemon that cannot start
need root: they run in a network namespace of their own.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from wgpy.config import ConfigError, Reason, parse, to_uapi_set
from wgpy.runtime.messages import describe

from .netns import require

ROOT = Path(__file__).resolve().parent.parent
KEY = "oHK00LPBnwuixvhQCf3njIW4AbHk5rHr3IQkZg5OZEc="
PEER = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
# What a message for a user never contains.
PYTHON_INTERNALS = re.compile(r"Traceback|Warning:|Error\b|\[Errno|\.py:\d+|Command '\[|non-zero exit status|\bself\b")


def wgpy(*args: str, cwd: Path | None = None, namespace: str | None = None, prefix: tuple = ()) -> subprocess.CompletedProcess:
    command = [*prefix, sys.executable, "-m", "wgpy", *args]
    if namespace is not None:
        command = ["ip", "netns", "exec", namespace, *command]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=cwd or ROOT, env=env)


def write_conf(directory: Path, name: str, text: str, mode: int = 0o600) -> Path:
    path = directory / f"{name}.conf"
    path.write_text(text)
    path.chmod(mode)
    return path


def assert_plain(stderr: str) -> None:
    assert not PYTHON_INTERNALS.search(stderr), stderr


def test_world_readable_file_is_one_warning_naming_the_file_and_the_fix(tmp_path):
    tmp_path.chmod(0o755)   # wg-quick's rule: the file's and its directory's "other" bits
    path = write_conf(tmp_path, "wgm0", f"[Interface]\nPrivateKey = {KEY}\n", mode=0o644)
    result = wgpy("down", str(path))
    warning = [line for line in result.stderr.splitlines() if "world accessible" in line]
    assert warning == [f"wgpy: warning: {path} is world accessible: anyone on this machine can read its private key; "
                       f"run chmod 600 {path}"], result.stderr
    assert_plain(result.stderr)
    assert "quick.py" not in result.stderr and "WorldAccessibleWarning" not in result.stderr


@pytest.mark.parametrize("verb", ["up", "down"])
def test_missing_file_is_named_once_with_what_to_give(tmp_path, verb):
    path = tmp_path / "wgm1.conf"
    result = wgpy(verb, str(path))
    assert result.returncode == 1
    assert result.stderr == (f"wgpy: {path}: no such file: give the configuration's path, "
                             "or NAME for /etc/wireguard/NAME.conf\n")


def test_missing_file_given_relative_is_named_as_written(tmp_path):
    result = wgpy("up", "wgm1.conf", cwd=tmp_path)
    assert result.stderr.startswith("wgpy: wgm1.conf: no such file:"), result.stderr
    assert str(tmp_path) not in result.stderr


def test_failing_hook_names_the_file_and_the_hook(tmp_path):
    require("ip", "bash")
    path = write_conf(tmp_path, "wgm2", f"[Interface]\nPrivateKey = {KEY}\nPreUp = true\n"
                                        "PreUp = [ %i = wgm9 ] # fails\n")
    result = wgpy("up", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (f"wgpy: {path}: line 4: PreUp: hook `[ wgm2 = wgm9 ] # fails' failed "
                                              "with exit status 1; fix or remove it in the file (its own output, if "
                                              "any, is above)")
    assert_plain(result.stderr)
    assert not os.path.exists("/sys/class/net/wgm2")


def test_unresolvable_endpoint_names_file_line_and_host():
    config = parse(f"[Interface]\nPrivateKey = {KEY}\n\n[Peer]\nPublicKey = {PEER}\nEndpoint = vpn.example.invalid:51820\n")

    def resolve(host: str, port: int) -> str:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ConfigError) as caught:
        to_uapi_set(config, resolve=resolve)
    assert caught.value.reason is Reason.UNRESOLVED_ENDPOINT and caught.value.line == 6
    assert describe(caught.value, "/etc/wireguard/wgm3.conf") == (
        "/etc/wireguard/wgm3.conf: line 6: Endpoint: vpn.example.invalid (Name or service not known): "
        "host name does not resolve: check the name and this machine's DNS, or write an IP address")


@pytest.fixture
def namespace():
    """A network namespace with only its loopback: no route to any name server, so names fail at once."""
    require("ip")
    name = f"wgmsg{os.getpid() % 10000}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_unresolvable_endpoint_from_wgpy_up(tmp_path, namespace):
    path = write_conf(tmp_path, "wgm3", f"[Interface]\nPrivateKey = {KEY}\nAddress = 198.18.7.1/24\n\n"
                                        f"[Peer]\nPublicKey = {PEER}\nAllowedIPs = 198.18.7.2/32\n"
                                        "Endpoint = vpn.example.invalid:51820\n")
    result = wgpy("up", str(path), namespace=namespace)
    assert result.returncode == 1, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"wgpy: {path}: line 8: Endpoint: vpn.example.invalid ("), result.stderr
    assert last.endswith("host name does not resolve: check the name and this machine's DNS, or write an IP address")
    assert_plain(result.stderr)
    links = subprocess.run(["ip", "-n", namespace, "link"], capture_output=True, text=True).stdout
    assert "wgm3" not in links   # removed again


def test_daemon_that_cannot_start_says_why_and_what_to_do(tmp_path, namespace):
    if shutil.which("setpriv") is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("needs setpriv (util-linux) to drop CAP_NET_ADMIN")
    path = write_conf(tmp_path, "wgm4", f"[Interface]\nPrivateKey = {KEY}\n")
    result = wgpy("up", str(path), namespace=namespace,
                  prefix=("setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == ("wgpy: the wgpy daemon for wgm4 did not start (failed with exit status 1; "
                                              "its reason is above): wgpy up must run as root, on a machine with /dev/net/tun")
    assert_plain(result.stderr)


def test_failed_command_and_signal():
    error = subprocess.CalledProcessError(2, ["ip", "link", "set", "wgm5", "up"])
    assert describe(error, "x.conf") == "`ip link set wgm5 up' failed with exit status 2 (its message is above)"
    killed = subprocess.CalledProcessError(-9, ["bash", "-c", "sleep 9"])
    assert describe(killed, "x.conf") == "x.conf: hook `sleep 9' was killed by signal 9; fix or remove it in the file (its own output, if any, is above)"
    assert describe(FileNotFoundError(2, "No such file or directory", "resolvconf"), "x.conf") == (
        "resolvconf: command not found: install it and try again")


def test_no_argument_names_iface_in_the_usage():
    result = wgpy()
    assert result.returncode == 2
    assert result.stderr.startswith("usage: wgpy [-f|--foreground] IFACE\n"), result.stderr
    assert "IFACE" in result.stderr.splitlines()[-1]


def test_an_error_without_a_file_does_not_blame_the_configuration():
    refused = ConnectionRefusedError(111, "Connection refused")
    assert describe(refused, "/etc/wireguard/wgm6.conf") == "Connection refused (while bringing up or down /etc/wireguard/wgm6.conf)"
    denied = PermissionError(13, "Permission denied", "/etc/wireguard/wgm6.conf")
    assert describe(denied, "/etc/wireguard/wgm6.conf") == "/etc/wireguard/wgm6.conf: permission denied: run wgpy up and down as root"
