"""The standard tools drive wgpy unchanged: wg setconf/addconf/syncconf/set/show, wg-quick, and wgpy's own
up/down and key commands.

    ns A: wgpy (wgt*)  <---- veth ---->  ns B: wireguard-go or wgpy (wgt*)
"""

import base64
import ipaddress
import os
import socket
import subprocess
import sys

import pytest

from wgpy.core.crypto import PrivateKey

from ..netns import ROOT, TUNNEL, UNDERLAY, Hosts, require, wait_for

WGPY_SHIM = "#!/bin/sh\nPYTHONPATH={root} exec {python} -m wgpy \"$@\"\n"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def key() -> PrivateKey:
    return PrivateKey.generate(os.urandom)


@pytest.fixture
def hosts():
    require("ip", "wg", "ping")
    with Hosts("t") as h:
        yield h


@pytest.fixture
def shim(tmp_path):
    """A ``wgpy`` command on PATH, as wg-quick looks for it (whatever Python runs the tests)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "wgpy"
    script.write_text(WGPY_SHIM.format(root=ROOT, python=sys.executable))
    script.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))


def many_prefixes(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct IPv4 /32 and IPv6 /128 prefixes, half each."""
    v4 = [f"{ipaddress.IPv4Address(0x0A000000 + (seed << 20) + n)}/32" for n in range(count // 2)]
    v6 = [f"{ipaddress.IPv6Address((0x20010DB8 << 96) + (seed << 64) + n)}/128" for n in range(count - count // 2)]
    return v4 + v6


def test_setconf_addconf_syncconf_with_tens_of_thousands_of_allowed_ips(hosts, tmp_path):
    hosts.start_wgpy(hosts.a, "wgt0")
    own, first, second = key(), key(), key()
    big = many_prefixes(30_000)
    conf = tmp_path / "wgt0.conf"
    conf.write_text(
        f"[Interface]\nPrivateKey = {b64(own.private_bytes())}\nListenPort = 51830\n\n"
        f"[Peer]\nPublicKey = {b64(first.public)}\nAllowedIPs = {', '.join(big)}\nEndpoint = 192.0.2.2:51820\n"
    )
    hosts.wg(hosts.a, "setconf", "wgt0", str(conf))
    shown = hosts.wg(hosts.a, "show", "wgt0", "allowed-ips").stdout.split()
    assert shown[0] == b64(first.public) and len(shown) - 1 == 30_000
    assert set(shown[1:]) == set(big)

    extra = tmp_path / "extra.conf"
    extra.write_text(f"[Peer]\nPublicKey = {b64(second.public)}\nAllowedIPs = 198.51.100.0/24\nPersistentKeepalive = 25\n")
    hosts.wg(hosts.a, "addconf", "wgt0", str(extra))
    assert sorted(hosts.wg(hosts.a, "show", "wgt0", "peers").stdout.split()) == sorted([b64(first.public), b64(second.public)])
    assert hosts.wg(hosts.a, "show", "wgt0", "persistent-keepalive").stdout.split().count("25") == 1

    # syncconf: only the difference is applied; the second peer goes, the first keeps a smaller list.
    conf.write_text(
        f"[Interface]\nPrivateKey = {b64(own.private_bytes())}\nListenPort = 51830\n\n"
        f"[Peer]\nPublicKey = {b64(first.public)}\nAllowedIPs = 198.18.9.0/24\n"
    )
    hosts.wg(hosts.a, "syncconf", "wgt0", str(conf))
    assert hosts.wg(hosts.a, "show", "wgt0", "peers").stdout.split() == [b64(first.public)]
    assert hosts.wg(hosts.a, "show", "wgt0", "allowed-ips").stdout.split()[1:] == ["198.18.9.0/24"]

    # showconf round-trips through setconf.
    saved = tmp_path / "saved.conf"
    saved.write_text(hosts.wg(hosts.a, "showconf", "wgt0").stdout)
    hosts.wg(hosts.a, "setconf", "wgt0", str(saved))
    assert hosts.wg(hosts.a, "showconf", "wgt0").stdout == saved.read_text()


def test_wg_set_every_option_and_removal(hosts, tmp_path):
    hosts.start_wgpy(hosts.a, "wgt1")
    own, peer = key(), key()
    psk = tmp_path / "psk"
    psk.write_text(b64(os.urandom(32)) + "\n")
    (tmp_path / "own").write_text(b64(own.private_bytes()) + "\n")
    hosts.wg(hosts.a, "set", "wgt1", "private-key", str(tmp_path / "own"), "listen-port", "51831", "fwmark", "7",
             "peer", b64(peer.public), "preshared-key", str(psk), "endpoint", "[2001:db8::2]:51820",
             "persistent-keepalive", "15", "allowed-ips", "198.18.5.0/24,2001:db8:5::/48")
    dump = hosts.wg(hosts.a, "show", "wgt1", "dump").stdout.splitlines()
    interface, peer_line = dump[0].split("\t"), dump[1].split("\t")
    assert interface == [b64(own.private_bytes()), b64(own.public), "51831", "0x7"]
    assert peer_line[0] == b64(peer.public) and peer_line[1] == psk.read_text().strip()
    assert peer_line[2] == "[2001:db8::2]:51820" and peer_line[3] == "198.18.5.0/24,2001:db8:5::/48"
    assert peer_line[7] == "15"
    hosts.wg(hosts.a, "set", "wgt1", "peer", b64(peer.public), "allowed-ips", "198.18.6.0/24")
    assert hosts.wg(hosts.a, "show", "wgt1", "allowed-ips").stdout.split()[1:] == ["198.18.6.0/24"]
    hosts.wg(hosts.a, "set", "wgt1", "peer", b64(peer.public), "remove")
    assert hosts.wg(hosts.a, "show", "wgt1", "peers").stdout.strip() == ""


def test_bad_uapi_input_loses_nothing(hosts):
    """Garbage on the socket gets an error answer; the configuration and the daemon stay."""
    import socket as sk

    from .test_daemon import uapi

    hosts.start_wgpy(hosts.a, "wgt2")
    own, peer = key(), key()
    good = f"set=1\nprivate_key={own.private_bytes().hex()}\npublic_key={peer.public.hex()}\nallowed_ip=198.18.7.0/24\n\n"
    assert uapi("wgt2", good.encode()) == b"errno=0\n\n"
    before = uapi("wgt2", b"get=1\n\n")
    for bad in (b"set=1\nlisten_port=99999999\n\n", b"set=1\nnot_a_key=1\n\n", b"set=1\npublic_key=zz\n\n",
                b"set=1\nallowed_ip=300.1.1.1/33\n\n"):
        answer = uapi("wgt2", bad)
        assert answer.startswith(b"errno=-") and answer.endswith(b"\n\n"), answer
    with sk.socket(sk.AF_UNIX, sk.SOCK_STREAM) as s:  # a client that hangs up mid-command
        s.connect("/var/run/wireguard/wgt2.sock")
        s.sendall(b"set=1\nprivate_key=")
    assert uapi("wgt2", b"get=1\n\n") == before


def test_wg_quick_up_and_down_with_wgpy_as_the_userspace_implementation(hosts, shim, tmp_path):
    require("wg-quick", "wireguard-go")
    own, other = key(), key()
    hosts.start_wireguard_go(hosts.b, "wgtb")
    (tmp_path / "k").write_text(b64(other.private_bytes()) + "\n")
    hosts.wg(hosts.b, "set", "wgtb", "private-key", str(tmp_path / "k"), "listen-port", "51820",
             "peer", b64(own.public), "allowed-ips", f"{TUNNEL['a'][0]}/32")
    hosts.ip(hosts.b, "addr", "add", f"{TUNNEL['b'][0]}/24", "dev", "wgtb")
    hosts.ip(hosts.b, "link", "set", "wgtb", "up")

    conf = tmp_path / "wgta.conf"
    conf.write_text(
        f"[Interface]\nPrivateKey = {b64(own.private_bytes())}\nAddress = {TUNNEL['a'][0]}/24\nMTU = 1380\n\n"
        f"[Peer]\nPublicKey = {b64(other.public)}\nAllowedIPs = {TUNNEL['b'][0]}/32\n"
        f"Endpoint = {UNDERLAY['b'][0]}:51820\n"
    )
    conf.chmod(0o600)
    hosts.interfaces.append("wgta")
    env = dict(shim, WG_QUICK_USERSPACE_IMPLEMENTATION="wgpy", WG_ENDPOINT_RESOLUTION_RETRIES="1")
    up = hosts.run(hosts.a, "wg-quick", "up", str(conf), env=env, check=False)
    assert up.returncode == 0, up.stderr
    assert "wgpy wgta" in up.stderr  # wg-quick ran us, not wireguard-go
    assert "mtu 1380" in hosts.ip(hosts.a, "link", "show", "wgta")
    assert hosts.ping(hosts.a, TUNNEL["b"][0])
    down = hosts.run(hosts.a, "wg-quick", "down", str(conf), env=env, check=False)
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not os.path.exists("/var/run/wireguard/wgta.sock"), "the daemon to exit after wg-quick down")


def test_wgpy_up_and_down_without_wireguard_tools(hosts, tmp_path):
    require("wireguard-go")
    own, other = key(), key()
    hosts.start_wireguard_go(hosts.b, "wgtd")
    hosts.run(hosts.b, "wg", "set", "wgtd", "listen-port", "51820", "peer", b64(own.public),
              "allowed-ips", f"{TUNNEL['a'][1]}/128")
    (tmp_path / "k").write_text(b64(other.private_bytes()) + "\n")
    hosts.wg(hosts.b, "set", "wgtd", "private-key", str(tmp_path / "k"))
    hosts.ip(hosts.b, "addr", "add", f"{TUNNEL['b'][1]}/64", "dev", "wgtd", "nodad")
    hosts.ip(hosts.b, "link", "set", "wgtd", "up")

    conf = tmp_path / "wgtc.conf"
    conf.write_text(
        f"[Interface]\nPrivateKey = {b64(own.private_bytes())}\nAddress = {TUNNEL['a'][1]}/64\nDNS = 192.0.2.53\n\n"
        f"[Peer]\nPublicKey = {b64(other.public)}\nAllowedIPs = {TUNNEL['b'][1]}/128\n"
        f"Endpoint = [{UNDERLAY['b'][1]}]:51820\n"
    )
    conf.chmod(0o600)
    hosts.interfaces.append("wgtc")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    up = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "up", str(conf), env=env, check=False)
    assert up.returncode == 0, up.stderr
    assert "DNS = 192.0.2.53: not applied" in up.stderr
    assert hosts.ping(hosts.a, TUNNEL["b"][1])
    down = hosts.run(hosts.a, sys.executable, "-m", "wgpy", "down", str(conf), env=env, check=False)
    assert down.returncode == 0, down.stderr
    wait_for(lambda: not os.path.exists("/var/run/wireguard/wgtc.sock"), "the daemon to exit after wgpy down")


def test_key_commands_match_wg():
    require("wg")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    wgpy = [sys.executable, "-m", "wgpy"]
    private = subprocess.run([*wgpy, "genkey"], capture_output=True, text=True, env=env, check=True).stdout
    assert len(base64.b64decode(private)) == 32
    ours = subprocess.run([*wgpy, "pubkey"], input=private, capture_output=True, text=True, env=env).stdout
    theirs = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True).stdout
    assert ours == theirs and ours.endswith("=\n")
    raw = base64.b64decode(private)
    assert raw[0] & 7 == 0 and raw[31] & 0xC0 == 0x40  # clamped, as wg genkey does
    psk = subprocess.run([*wgpy, "genpsk"], capture_output=True, text=True, env=env, check=True).stdout
    assert len(base64.b64decode(psk)) == 32
    bad_ours = subprocess.run([*wgpy, "pubkey"], input="nonsense\n", capture_output=True, text=True, env=env)
    bad_theirs = subprocess.run(["wg", "pubkey"], input="nonsense\n", capture_output=True, text=True)
    assert bad_ours.returncode == bad_theirs.returncode == 1
    assert bad_ours.stderr.split(":", 1)[1] == bad_theirs.stderr.split(":", 1)[1]


def test_allowed_ips_are_shown_in_the_order_given_as_wireguard_go_does(hosts):
    """wireguard-go keeps one list of prefixes per peer (EntriesForPeer): the order given, IPv4 and IPv6
    mixed, a prefix given again moving to the end. `wg show` prints that order for both daemons."""
    require("wireguard-go")
    hosts.start_wgpy(hosts.a, "wgma0")
    hosts.start_wireguard_go(hosts.b, "wgmb0")
    wait_for(lambda: os.path.exists("/var/run/wireguard/wgmb0.sock"), "wireguard-go's UAPI socket")
    peer = b64(key().public)
    given = "2001:db8:5::/48,198.18.5.0/24,10.9.0.1/32,2001:db8::7/128"
    shown = {}
    for ns, name in ((hosts.a, "wgma0"), (hosts.b, "wgmb0")):
        hosts.wg(ns, "set", name, "peer", peer, "allowed-ips", given)
        # Given again without replace_allowed_ips (wg has no command for it: addconf replaces): to the end.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as uapi:
            uapi.settimeout(10)
            uapi.connect(f"/var/run/wireguard/{name}.sock")
            uapi.sendall(f"set=1\npublic_key={base64.b64decode(peer).hex()}\nallowed_ip=198.18.5.0/24\n\n".encode())
            assert uapi.recv(64) == b"errno=0\n\n"
        shown[name] = hosts.wg(ns, "show", name, "allowed-ips").stdout.split()[1:]
    assert shown["wgma0"] == shown["wgmb0"], shown
    assert shown["wgma0"] == ["2001:db8:5::/48", "10.9.0.1/32", "2001:db8::7/128", "198.18.5.0/24"]
    assert shown["wgma0"] == shown["wgmb0"]
