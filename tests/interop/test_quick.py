"""``wgpy up`` and ``wgpy down`` as wg-quick does them, in real namespaces: a full tunnel without nft
(iptables-restore instead), a failed ``up`` undone at every step, and SaveConfig written back at ``down``.

    ns A: wgpy up wgq*.conf (AllowedIPs = 0.0.0.0/0, ::/0)  <---- veth ---->  ns B: wgpy (wgq*b)
"""

from __future__ import annotations

import base64
import difflib
import os
import shutil
import stat
import sys
import time

import pytest

from wgpy.core.crypto import PrivateKey
from wgpy.core.encoding import key_to_hex
from wgpy.runtime.uapi_socket import request as uapi_request

from ..netns import ROOT, SOCKETS, TUNNEL, UNDERLAY, Hosts, require, wait_for

MARKER = "wg-quick(8) rule for"
TOOLS = ("ip", "sysctl", "bash", "iptables", "ip6tables", "iptables-restore", "ip6tables-restore",
         "iptables-save", "ip6tables-save")

# Runs `up` in the namespace with perform() failing at its Nth call (FAIL_AT); prints whether it did.
INJECT = """
import sys
from wgpy.runtime import quick
calls, fail_at = [0], int(sys.argv[2])
real = quick.perform
def perform(step, interface):
    calls[0] += 1
    if calls[0] == fail_at:
        raise quick.StepFailed("injected failure")
    real(step, interface)
quick.perform = perform
quick.firewall = lambda: "iptables"      # as where nft is missing, whether or not it is here
status = quick.up(sys.argv[1])
print("injected" if calls[0] >= fail_at else "completed", status)
"""


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def name(letter: str) -> str:
    return f"wgq{os.getpid() % 10000}{letter}"


@pytest.fixture
def hosts():
    require("ip", "ping", "sysctl", "bash", "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
    with Hosts("q") as h:
        yield h


@pytest.fixture
def without_nft(tmp_path):
    """An environment whose PATH has the tools wg-quick uses, nft left out (wg-quick's `type -p nft`)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return dict(os.environ, PATH=str(bin_dir), PYTHONPATH=str(ROOT))


def peer_b(hosts: Hosts, own: PrivateKey, other: PrivateKey) -> str:
    """wgpy in ns B, the other end of the tunnel: 198.18.0.2 and 2001:db8:1::2."""
    interface = name("b")
    hosts.start_wgpy(hosts.b, interface)
    answer = uapi_request(interface, f"set=1\nprivate_key={key_to_hex(other.private_bytes())}\nlisten_port=51820\n"
                          f"public_key={key_to_hex(own.public)}\nallowed_ip={TUNNEL['a'][0]}/32\n"
                          f"allowed_ip={TUNNEL['a'][1]}/128\n\n", timeout=5)
    assert "errno=0" in answer
    hosts.ip(hosts.b, "addr", "add", f"{TUNNEL['b'][0]}/24", "dev", interface)
    hosts.ip(hosts.b, "addr", "add", f"{TUNNEL['b'][1]}/64", "dev", interface, "nodad")
    hosts.ip(hosts.b, "link", "set", interface, "up")
    return interface


def full_tunnel(tmp_path, interface: str, own: PrivateKey, other: PrivateKey, extra: str = "") -> str:
    conf = tmp_path / f"{interface}.conf"
    conf.write_text(
        f"[Interface]\nPrivateKey = {b64(own.private_bytes())}\nAddress = {TUNNEL['a'][0]}/32, {TUNNEL['a'][1]}/128\n"
        f"{extra}\n[Peer]\nPublicKey = {b64(other.public)}\nAllowedIPs = 0.0.0.0/0, ::/0\n"
        f"Endpoint = {UNDERLAY['b'][0]}:51820\n"
    )
    conf.chmod(0o600)
    return str(conf)


def host_state(hosts: Hosts, ns: str) -> dict:
    """What `up` may change: policy rules, every routing table, links, firewall rules (the empty tables
    iptables-restore made may stay, as with wg-quick), the sysctl."""
    # The veth's own link-local address comes once its DAD is over, whatever we do: wait for it first.
    wait_for(lambda: "fe80" in hosts.ip(ns, "-6", "address", "show", "dev", "va")
             and not hosts.ip(ns, "-6", "address", "show", "tentative").strip(), "the veth's link-local address")
    run = lambda *command: hosts.run(ns, *command).stdout  # noqa: E731
    return {
        "rules": hosts.ip(ns, "-4", "rule") + hosts.ip(ns, "-6", "rule"),
        "routes": hosts.ip(ns, "-4", "route", "show", "table", "all") + hosts.ip(ns, "-6", "route", "show", "table", "all"),
        "links": hosts.ip(ns, "-o", "link"),
        "firewall": [line for line in (run("iptables-save") + run("ip6tables-save")).splitlines() if line.startswith("-A")],
        "src_valid_mark": run("sysctl", "-n", "net.ipv4.conf.all.src_valid_mark"),
    }


def assert_same(before: dict, after: dict, context: str) -> None:
    for key, value in before.items():
        lines = value.splitlines() if isinstance(value, str) else value
        now = after[key].splitlines() if isinstance(after[key], str) else after[key]
        assert now == lines, f"{key} changed {context}\n" + "\n".join(difflib.unified_diff(lines, now, lineterm=""))


def test_full_tunnel_without_nft_uses_iptables_restore_and_down_removes_it(hosts, without_nft, tmp_path):
    own, other = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom)
    peer_b(hosts, own, other)
    interface = name("a")
    hosts.interfaces.append(interface)
    conf = full_tunnel(tmp_path, interface, own, other, extra="PostUp = echo 'up on %i'\n")
    before = host_state(hosts, hosts.a)

    up = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "up", conf, env=without_nft, check=False, timeout=60)
    assert up.returncode == 0, up.stderr
    assert "[#] nft" not in up.stderr and "up on " + interface in up.stdout
    echoed = up.stderr
    assert f"[#] iptables-restore -n <<'EOF'\n*raw\n-I PREROUTING ! -i {interface} -d {TUNNEL['a'][0]} " in echoed
    assert f"[#] ip6tables-restore -n <<'EOF'\n*raw\n" in echoed
    assert f"[#] wg setconf {interface} <(wg-quick strip {conf})" in echoed
    assert f"[#] wg set {interface} fwmark 51820" in echoed
    assert f"[#] bash -c 'echo '\"'\"'up on {interface}'\"'\"''" in echoed
    rules = hosts.ip(hosts.a, "-4", "rule") + hosts.ip(hosts.a, "-6", "rule")
    assert rules.count("not from all fwmark 0xca6c lookup 51820") == 2
    assert rules.count("from all lookup main suppress_prefixlength 0") == 2
    assert hosts.run(hosts.a, "iptables-save").stdout.count(f"{MARKER} {interface}") == 3
    assert hosts.ping(hosts.a, TUNNEL["b"][0]) and hosts.ping(hosts.a, TUNNEL["b"][1])

    down = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "down", conf, env=without_nft, check=False, timeout=60)
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not (SOCKETS / f"{interface}.sock").exists(), "the daemon to exit after wgpy down")
    after = host_state(hosts, hosts.a)
    after["src_valid_mark"] = before["src_valid_mark"]  # set by up and left by down, as wg-quick does
    assert_same(before, after, "after down")

    # The echo is a shell's input: the ip6tables-restore step, pasted into bash in ns B, does the same.
    start = echoed.index("[#] ip6tables-restore") + 4
    pasted = echoed[start: echoed.index("\nEOF\n", start) + 5]
    hosts.run(hosts.b, "bash", "-c", pasted)
    assert hosts.run(hosts.b, "ip6tables-save").stdout.count(f"{MARKER} {interface}") == 3


def test_a_failed_up_leaves_the_host_as_it_was_whichever_step_fails(hosts, tmp_path):
    """Each step of a full tunnel's `up` fails in turn; every time, what the steps before it did is undone."""
    own, other = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom)
    interface = name("r")
    hosts.interfaces.append(interface)
    conf = full_tunnel(tmp_path, interface, own, other, extra="PreUp = true\nPostUp = true\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = host_state(hosts, hosts.a)
    assert before["src_valid_mark"].strip() == "0"
    deadline = time.monotonic() + 240
    for fail_at in range(1, 40):
        assert time.monotonic() < deadline, "the failures took too long"
        result = hosts.run(hosts.a, sys.executable, "-c", INJECT, conf, str(fail_at), env=env, timeout=60)
        outcome, status = result.stdout.split()
        if outcome == "completed":
            break
        assert status == "1", result.stderr
        assert "injected failure" in result.stderr
        wait_for(lambda: not (SOCKETS / f"{interface}.sock").exists(), f"the UAPI socket to go (step {fail_at})")
        assert_same(before, host_state(hosts, hosts.a), f"after a failure at step {fail_at}:\n{result.stderr}")
    else:
        pytest.fail("up never completed")
    assert status == "0" and fail_at > 15      # every step was failed once: PreUp ... PostUp
    down = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "down", conf, env=env, check=False)
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not (SOCKETS / f"{interface}.sock").exists(), "the daemon to exit after wgpy down")


def test_save_config_writes_the_running_configuration_back_at_down(hosts, tmp_path):
    require("wg")
    own, other, added = (PrivateKey.generate(os.urandom) for _ in range(3))
    interface = name("s")
    hosts.interfaces.append(interface)
    conf = tmp_path / f"{interface}.conf"
    conf.write_text(
        f"[Interface]\nPrivateKey = {b64(own.private_bytes())}\nAddress = {TUNNEL['a'][0]}/24\nMTU = 1400\n"
        f"SaveConfig = true\nPostUp = echo %i\n\n[Peer]\nPublicKey = {b64(other.public)}\n"
        f"AllowedIPs = {TUNNEL['b'][0]}/32\nEndpoint = {UNDERLAY['b'][0]}:51820\n"
    )
    conf.chmod(0o600)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    up = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "up", str(conf), env=env, check=False)
    assert up.returncode == 0, up.stderr
    # Changes made while it runs, which SaveConfig keeps:
    hosts.wg(hosts.a, "set", interface, "listen-port", "51999", "peer", b64(added.public), "allowed-ips",
             "198.18.9.0/24", "persistent-keepalive", "25")
    hosts.ip(hosts.a, "address", "add", "198.18.8.1/32", "dev", interface)
    hosts.ip(hosts.a, "link", "set", "mtu", "1380", "dev", interface)
    running = hosts.wg(hosts.a, "showconf", interface).stdout

    down = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "down", str(conf), env=env, check=False)
    assert down.returncode == 0, down.stderr
    assert "not supported" not in down.stderr and f"[#] wg showconf {interface}" in down.stderr
    wait_for(lambda: not (SOCKETS / f"{interface}.sock").exists(), "the daemon to exit after wgpy down")
    saved = conf.read_text()
    head = (f"[Interface]\nAddress = {TUNNEL['a'][0]}/24\nAddress = 198.18.8.1/32\n"
            "MTU = 1380\nSaveConfig = true\nPostUp = echo %i\n")
    assert saved.startswith(head), saved
    assert saved == running.rstrip("\n").replace("[Interface]\n", head, 1) + "\n"   # wg showconf's text
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600 and not os.path.exists(f"{conf}.tmp")

    # The saved file brings the same interface back.
    again = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "up", str(conf), env=env, check=False)
    assert again.returncode == 0, again.stderr
    assert hosts.wg(hosts.a, "showconf", interface).stdout == running
    assert hosts.run(hosts.a, sys.executable, "-m", "wgpy", "down", str(conf), env=env, check=False).returncode == 0


def test_up_killed_halfway_undoes_what_it_did(hosts, tmp_path):
    """SIGTERM during PostUp (the hook signals its parent, `wgpy up`): as wg-quick's trap, all is undone."""
    own, other = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom)
    interface = name("k")
    hosts.interfaces.append(interface)
    conf = full_tunnel(tmp_path, interface, own, other, extra="PostUp = kill -TERM $PPID; exec sleep 20 >/dev/null 2>&1\n")
    before = host_state(hosts, hosts.a)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.monotonic()
    up = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "up", conf, env=env, check=False, timeout=60)
    assert up.returncode == 128 + 15, up.stderr
    assert time.monotonic() - started < 15, up.stderr     # not waiting for the hook
    assert "[#] ip -4 rule delete not fwmark 51820 table 51820" in up.stderr
    wait_for(lambda: not (SOCKETS / f"{interface}.sock").exists(), "the UAPI socket to go")
    assert_same(before, host_state(hosts, hosts.a), "after SIGTERM")
