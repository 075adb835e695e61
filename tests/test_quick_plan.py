"""wg-quick's plan (wgpy/quick_plan.py): the `ip` commands linux.bash runs for up and down, as data."""

from __future__ import annotations

import base64

import pytest

from wgpy.config import parse, showconf
from wgpy.quick_plan import plan_down, plan_up, saved_config

from .test_config import PUBLIC_A, PUBLIC_B


def argv(commands):
    return [list(c.argv) for c in commands]


def test_plan_up_ipv4():
    config = parse(
        "[Interface]\nAddress = 10.0.0.2/24\nPreUp = echo %i up\nPostUp = echo %i\n"
        f"[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = 10.0.0.0/24, 10.0.0.9/32, 192.168.7.0/24\n"
        f"[Peer]\nPublicKey = {PUBLIC_B}\nAllowedIPs = 172.16.0.0/12, 192.168.4.0/24\n"
    )
    plan = plan_up(config, "wg0")
    assert argv(plan.before) == [["bash", "-c", "echo wg0 up"]]
    assert argv(plan.commands) == [
        ["ip", "-4", "address", "add", "10.0.0.2/24", "dev", "wg0"],
        ["ip", "link", "set", "mtu", "1420", "up", "dev", "wg0"],
        # sort -nr -k 2 -t /: longest first; 10.0.0.9/32 and 10.0.0.0/24 lie in the address's own route
        ["ip", "-4", "route", "add", "192.168.7.0/24", "dev", "wg0"],
        ["ip", "-4", "route", "add", "192.168.4.0/24", "dev", "wg0"],
        ["ip", "-4", "route", "add", "172.16.0.0/12", "dev", "wg0"],
    ]
    assert argv(plan.after) == [["bash", "-c", "echo wg0"]]
    assert plan.fwmark is None and plan.notices == []
    assert argv(plan_down(config, "wg0").commands) == [["ip", "link", "delete", "dev", "wg0"]]


def test_plan_up_ipv6_with_mtu_and_dns():
    config = parse(
        "[Interface]\nAddress = fd00::2/64, fd01::2/128\nMTU = 1280\nDNS = fd00::53, example.com\n"
        f"[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = fd00::/64, fd01::/16, fd02::7\n"
    )
    plan = plan_up(config, "wg1", default_mtu=1300)
    assert argv(plan.commands) == [
        ["ip", "-6", "address", "add", "fd00::2/64", "dev", "wg1"],
        ["ip", "-6", "address", "add", "fd01::2/128", "dev", "wg1"],
        ["ip", "link", "set", "mtu", "1280", "up", "dev", "wg1"],
        ["ip", "-6", "route", "add", "fd02::7/128", "dev", "wg1"],
        ["ip", "-6", "route", "add", "fd01::/16", "dev", "wg1"],
    ]
    assert len(plan.notices) == 1 and "fd00::53" in plan.notices[0] and "example.com" in plan.notices[0]


def test_plan_default_mtu_is_the_callers():
    plan = plan_up(parse(""), "wg0", default_mtu=1372)
    assert argv(plan.commands) == [["ip", "link", "set", "mtu", "1372", "up", "dev", "wg0"]]


FULL_TUNNEL = (f"[Interface]\nAddress = 10.0.0.2/32, fd00::2/128\nSaveConfig = true\n[Peer]\nPublicKey = {PUBLIC_A}\n"
               "AllowedIPs = 0.0.0.0/0, ::/0\n")


def test_plan_default_route_uses_policy_routing():
    config = parse(FULL_TUNNEL)
    plan = plan_up(config, "wg0", src_valid_mark=0)
    assert plan.fwmark == 51820          # wg-quick: `wg set wg0 fwmark 51820`, for the caller to apply

    def nft(pf, address):
        return (
            f"add table {pf} wg-quick-wg0\n"
            f"add chain {pf} wg-quick-wg0 preraw {{ type filter hook prerouting priority -300; }}\n"
            f"add chain {pf} wg-quick-wg0 premangle {{ type filter hook prerouting priority -150; }}\n"
            f"add chain {pf} wg-quick-wg0 postmangle {{ type filter hook postrouting priority -150; }}\n"
            f'add rule {pf} wg-quick-wg0 preraw iifname != "wg0" {pf} daddr {address} fib saddr type != local drop\n'
            f"add rule {pf} wg-quick-wg0 postmangle meta l4proto udp mark 51820 ct mark set mark\n"
            f"add rule {pf} wg-quick-wg0 premangle meta l4proto udp meta mark set ct mark\n"
        )

    # "::/0" sorts after "0.0.0.0/0" in C order, so first under sort -r; add_default's order within.
    assert argv(plan.commands) == [
        ["ip", "-4", "address", "add", "10.0.0.2/32", "dev", "wg0"],
        ["ip", "-6", "address", "add", "fd00::2/128", "dev", "wg0"],
        ["ip", "link", "set", "mtu", "1420", "up", "dev", "wg0"],
        ["ip", "-6", "route", "add", "::/0", "dev", "wg0", "table", "51820"],
        ["ip", "-6", "rule", "add", "not", "fwmark", "51820", "table", "51820"],
        ["ip", "-6", "rule", "add", "table", "main", "suppress_prefixlength", "0"],
        ["nft", "-f", "-"],
        ["ip", "-4", "route", "add", "0.0.0.0/0", "dev", "wg0", "table", "51820"],
        ["ip", "-4", "rule", "add", "not", "fwmark", "51820", "table", "51820"],
        ["ip", "-4", "rule", "add", "table", "main", "suppress_prefixlength", "0"],
        ["sysctl", "-q", "net.ipv4.conf.all.src_valid_mark=1"],
        ["nft", "-f", "-"],
    ]
    assert [c.input for c in plan.commands if c.input] == [nft("ip6", "fd00::2"), nft("ip", "10.0.0.2")]
    # What a failed `up` runs to undo each step (the link's deletion undoes the rest).
    assert [(" ".join(c.argv), argv(c.undo)) for c in plan.commands if c.undo] == [
        ("ip -6 rule add not fwmark 51820 table 51820", [["ip", "-6", "rule", "delete", "not", "fwmark", "51820", "table", "51820"]]),
        ("ip -6 rule add table main suppress_prefixlength 0", [["ip", "-6", "rule", "delete", "table", "main", "suppress_prefixlength", "0"]]),
        ("nft -f -", [["nft", "delete", "table", "ip6", "wg-quick-wg0"]]),
        ("ip -4 rule add not fwmark 51820 table 51820", [["ip", "-4", "rule", "delete", "not", "fwmark", "51820", "table", "51820"]]),
        ("ip -4 rule add table main suppress_prefixlength 0", [["ip", "-4", "rule", "delete", "table", "main", "suppress_prefixlength", "0"]]),
        ("sysctl -q net.ipv4.conf.all.src_valid_mark=1", [["sysctl", "-q", "net.ipv4.conf.all.src_valid_mark=0"]]),
        ("nft -f -", [["nft", "delete", "table", "ip", "wg-quick-wg0"]]),
    ]
    down = plan_down(config, "wg0", nft_tables="table ip filter\ntable ip wg-quick-wg0\ntable ip6 wg-quick-wg0\n"
                     "table ip wg-quick-wg01\n")
    assert argv(down.commands) == [
        ["ip", "-4", "rule", "delete", "table", "51820"],
        ["ip", "-4", "rule", "delete", "table", "main", "suppress_prefixlength", "0"],
        ["ip", "-6", "rule", "delete", "table", "51820"],
        ["ip", "-6", "rule", "delete", "table", "main", "suppress_prefixlength", "0"],
        ["ip", "link", "delete", "dev", "wg0"],
        ["nft", "-f", "-"],
    ]
    assert down.commands[-1].input == "delete table ip wg-quick-wg0\ndelete table ip6 wg-quick-wg0\n"
    assert down.notices == []


def test_plan_default_route_without_nft_uses_iptables_restore():
    """linux.bash add_default where `type -p nft` fails: the same rules through iptables-restore -n."""
    plan = plan_up(parse(FULL_TUNNEL), "wg0", firewall="iptables")
    marker = '-m comment --comment "wg-quick(8) rule for wg0"'
    six, four = plan.commands[6], plan.commands[-1]
    assert list(six.argv) == ["ip6tables-restore", "-n"] and list(four.argv) == ["iptables-restore", "-n"]
    assert four.input == (
        "*raw\n"
        f"-I PREROUTING ! -i wg0 -d 10.0.0.2 -m addrtype ! --src-type LOCAL -j DROP {marker}\n"
        "COMMIT\n"
        "*mangle\n"
        f"-I POSTROUTING -m mark --mark 51820 -p udp -j CONNMARK --save-mark {marker}\n"
        f"-I PREROUTING -p udp -j CONNMARK --restore-mark {marker}\n"
        "COMMIT\n"
    )
    assert "-d fd00::2 " in six.input
    assert argv(four.undo) == [["iptables-restore", "-n"]] and four.undo[0].input == four.input.replace("-I ", "-D ")
    assert four.shell() == f"iptables-restore -n <<'EOF'\n{four.input}EOF"
    assert "src_valid_mark" in " ".join(plan.commands[-2].argv) and plan.commands[-2].undo == ()  # value unknown

    saved = ("# Generated by iptables-save\n*raw\n:PREROUTING ACCEPT [0:0]\n"
             f"-A PREROUTING -d 10.0.0.2/32 ! -i wg0 -m addrtype ! --src-type LOCAL {marker} -j DROP\n"
             '-A PREROUTING -d 10.9.9.9/32 -m comment --comment "wg-quick(8) rule for wg01" -j DROP\n'
             "COMMIT\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n")
    down = plan_down(parse(FULL_TUNNEL), "wg0", saved_rules=[("iptables", saved), ("ip6tables", "*raw\nCOMMIT\n")])
    assert argv(down.commands[-1:]) == [["iptables-restore", "-n"]]
    assert down.commands[-1].input == (f"*raw\n-D PREROUTING -d 10.0.0.2/32 ! -i wg0 -m addrtype ! --src-type LOCAL "
                                       f"{marker} -j DROP\nCOMMIT\n*filter\nCOMMIT\n")


def test_steps_print_as_a_shell_takes_them():
    plan = plan_up(parse("[Interface]\nPostUp = echo '%i' up; logger \"x y\"\n"), "wg0")
    assert plan.after[0].shell() == """bash -c 'echo '"'"'wg0'"'"' up; logger "x y"'"""
    assert plan.commands[0].shell() == "ip link set mtu 1420 up dev wg0"


def test_plan_default_route_with_the_files_fwmark():
    config = parse(f"[Interface]\nFwMark = 0x100\n[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = 0.0.0.0/0\n")
    plan = plan_up(config, "wg0", table_id=51821)
    assert plan.fwmark is None           # already set by the configuration itself
    assert ["ip", "-4", "rule", "add", "not", "fwmark", "256", "table", "256"] in argv(plan.commands)
    assert ["ip", "-4", "rule", "delete", "table", "256"] in argv(plan_down(config, "wg0").commands)


def test_plan_with_a_table_or_without_routes():
    text = f"[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = 0.0.0.0/0, 10.0.0.0/8\n"
    numbered = plan_up(parse("[Interface]\nTable = 1234\n" + text), "wg0")
    assert argv(numbered.commands[1:]) == [
        ["ip", "-4", "route", "add", "10.0.0.0/8", "dev", "wg0", "table", "1234"],
        ["ip", "-4", "route", "add", "0.0.0.0/0", "dev", "wg0", "table", "1234"],
    ]
    assert numbered.fwmark is None
    assert argv(plan_down(parse("[Interface]\nTable = 1234\n" + text), "wg0").commands) == [
        ["ip", "link", "delete", "dev", "wg0"]]
    assert argv(plan_up(parse("[Interface]\nTable = Off\n" + text), "wg0").commands) == [
        ["ip", "link", "set", "mtu", "1420", "up", "dev", "wg0"]]


def test_plan_refuses_a_bad_interface_name():
    for name in ["", "a" * 16, "wg 0", "wg0/x"]:
        with pytest.raises(ValueError):
            plan_up(parse(""), name)


def test_save_config_writes_the_running_configuration_under_the_files_wg_quick_keys():
    """linux.bash save_config: wg-quick's keys first in [Interface], then what `wg showconf` prints."""
    config = parse("[Interface]\nAddress = 10.0.0.2/24\nDNS = 10.0.0.53, example.com\nMTU = 1400\nTable = 1234\n"
                   "SaveConfig = true\nPreUp = echo %i\nPostDown = echo down\n"
                   f"[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = 10.0.0.0/24\n")
    zero = "00" * 32
    running = showconf(f"private_key={'11' * 32}\nlisten_port=51820\nfwmark=51820\n"
                       f"public_key={'22' * 32}\npreshared_key={zero}\nprotocol_version=1\nendpoint=[2001:db8::2]:51820\n"
                       "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
                       "persistent_keepalive_interval=25\nallowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\n"
                       f"public_key={'33' * 32}\npreshared_key={'44' * 32}\npersistent_keepalive_interval=0\nerrno=0\n")
    b64 = {n: base64.b64encode(bytes.fromhex(n * 32)).decode() for n in ("11", "22", "33", "44")}
    assert running == (f"[Interface]\nListenPort = 51820\nFwMark = 0xca6c\nPrivateKey = {b64['11']}\n\n"
                       f"[Peer]\nPublicKey = {b64['22']}\nAllowedIPs = 10.0.0.0/24, fd00::/64\n"
                       "Endpoint = [2001:db8::2]:51820\nPersistentKeepalive = 25\n\n"
                       f"[Peer]\nPublicKey = {b64['33']}\nPresharedKey = {b64['44']}\n")
    saved = saved_config(config, ["10.0.0.2/24", "10.0.0.3/32"], 1380, running)
    assert saved == ("[Interface]\nAddress = 10.0.0.2/24\nAddress = 10.0.0.3/32\nDNS = 10.0.0.53\nDNS = example.com\n"
                     "MTU = 1380\nTable = 1234\nSaveConfig = true\nPreUp = echo %i\nPostDown = echo down\n"
                     + running[len("[Interface]\n"):])
    assert parse(saved).save_config and len(parse(saved).peers) == 2
    assert showconf("errno=0\n") == "[Interface]\n"


def test_save_config_leaves_out_the_link_local_address_the_kernel_gave():
    config = parse("[Interface]\nAddress = fe80::7/64\nSaveConfig = true\n")
    saved = saved_config(config, ["10.0.0.2/24", "fe80::7/64", "fe80::4dc4:80a6:c6a3:499a/64", "169.254.0.1/16"],
                         1420, "[Interface]\nListenPort = 1\n")
    assert saved == ("[Interface]\nAddress = 10.0.0.2/24\nAddress = fe80::7/64\nAddress = 169.254.0.1/16\n"
                     "SaveConfig = true\nListenPort = 1\n")
