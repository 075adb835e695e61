"""wg-quick's plan (wgpy/quick_plan.py): the `ip` commands linux.bash runs for up and down, as data."""

from __future__ import annotations

import pytest

from wgpy.config import parse
from wgpy.quick_plan import plan_down, plan_up

from .test_config import PUBLIC_A, PUBLIC_B


def test_plan_up_ipv4():
    config = parse(
        "[Interface]\nAddress = 10.0.0.2/24\nPreUp = echo %i up\nPostUp = echo %i\n"
        f"[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = 10.0.0.0/24, 10.0.0.9/32, 192.168.7.0/24\n"
        f"[Peer]\nPublicKey = {PUBLIC_B}\nAllowedIPs = 172.16.0.0/12, 192.168.4.0/24\n"
    )
    plan = plan_up(config, "wg0")
    assert plan.before == [["bash", "-c", "echo wg0 up"]]
    assert plan.commands == [
        ["ip", "-4", "address", "add", "10.0.0.2/24", "dev", "wg0"],
        ["ip", "link", "set", "mtu", "1420", "up", "dev", "wg0"],
        # sort -nr -k 2 -t /: longest first; 10.0.0.9/32 and 10.0.0.0/24 lie in the address's own route
        ["ip", "-4", "route", "add", "192.168.7.0/24", "dev", "wg0"],
        ["ip", "-4", "route", "add", "192.168.4.0/24", "dev", "wg0"],
        ["ip", "-4", "route", "add", "172.16.0.0/12", "dev", "wg0"],
    ]
    assert plan.after == [["bash", "-c", "echo wg0"]]
    assert plan.fwmark is None and plan.notices == []
    assert plan_down(config, "wg0").commands == [["ip", "link", "delete", "dev", "wg0"]]


def test_plan_up_ipv6_with_mtu_and_dns():
    config = parse(
        "[Interface]\nAddress = fd00::2/64, fd01::2/128\nMTU = 1280\nDNS = fd00::53, example.com\n"
        f"[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = fd00::/64, fd01::/16, fd02::7\n"
    )
    plan = plan_up(config, "wg1", default_mtu=1300)
    assert plan.commands == [
        ["ip", "-6", "address", "add", "fd00::2/64", "dev", "wg1"],
        ["ip", "-6", "address", "add", "fd01::2/128", "dev", "wg1"],
        ["ip", "link", "set", "mtu", "1280", "up", "dev", "wg1"],
        ["ip", "-6", "route", "add", "fd02::7/128", "dev", "wg1"],
        ["ip", "-6", "route", "add", "fd01::/16", "dev", "wg1"],
    ]
    assert len(plan.notices) == 1 and "fd00::53" in plan.notices[0] and "example.com" in plan.notices[0]


def test_plan_default_mtu_is_the_callers():
    plan = plan_up(parse(""), "wg0", default_mtu=1372)
    assert plan.commands == [["ip", "link", "set", "mtu", "1372", "up", "dev", "wg0"]]


def test_plan_default_route_uses_policy_routing():
    config = parse(
        f"[Interface]\nAddress = 10.0.0.2/32, fd00::2/128\nSaveConfig = true\n[Peer]\nPublicKey = {PUBLIC_A}\n"
        "AllowedIPs = 0.0.0.0/0, ::/0\n"
    )
    plan = plan_up(config, "wg0")
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

    assert plan.commands == [
        ["ip", "-4", "address", "add", "10.0.0.2/32", "dev", "wg0"],
        ["ip", "-6", "address", "add", "fd00::2/128", "dev", "wg0"],
        ["ip", "link", "set", "mtu", "1420", "up", "dev", "wg0"],
        # "::/0" sorts after "0.0.0.0/0" in C order, so first under sort -r
        ["ip", "-6", "rule", "add", "not", "fwmark", "51820", "table", "51820"],
        ["ip", "-6", "rule", "add", "table", "main", "suppress_prefixlength", "0"],
        ["ip", "-6", "route", "add", "::/0", "dev", "wg0", "table", "51820"],
        ["nft", nft("ip6", "fd00::2")],
        ["ip", "-4", "rule", "add", "not", "fwmark", "51820", "table", "51820"],
        ["ip", "-4", "rule", "add", "table", "main", "suppress_prefixlength", "0"],
        ["ip", "-4", "route", "add", "0.0.0.0/0", "dev", "wg0", "table", "51820"],
        ["sysctl", "-q", "net.ipv4.conf.all.src_valid_mark=1"],
        ["nft", nft("ip", "10.0.0.2")],
    ]
    down = plan_down(config, "wg0")
    assert down.commands == [
        ["ip", "-4", "rule", "delete", "table", "51820"],
        ["ip", "-4", "rule", "delete", "table", "main", "suppress_prefixlength", "0"],
        ["ip", "-6", "rule", "delete", "table", "51820"],
        ["ip", "-6", "rule", "delete", "table", "main", "suppress_prefixlength", "0"],
        ["ip", "link", "delete", "dev", "wg0"],
        ["nft", "delete table ip wg-quick-wg0\ndelete table ip6 wg-quick-wg0\n"],
    ]
    assert down.notices == ["SaveConfig = true: not supported; the file is left as it is"]


def test_plan_default_route_with_the_files_fwmark():
    config = parse(f"[Interface]\nFwMark = 0x100\n[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = 0.0.0.0/0\n")
    plan = plan_up(config, "wg0", table_id=51821)
    assert plan.fwmark is None           # already set by the configuration itself
    assert ["ip", "-4", "rule", "add", "not", "fwmark", "256", "table", "256"] in plan.commands
    assert ["ip", "-4", "rule", "delete", "table", "256"] in plan_down(config, "wg0").commands


def test_plan_with_a_table_or_without_routes():
    text = f"[Peer]\nPublicKey = {PUBLIC_A}\nAllowedIPs = 0.0.0.0/0, 10.0.0.0/8\n"
    numbered = plan_up(parse("[Interface]\nTable = 1234\n" + text), "wg0")
    assert numbered.commands[1:] == [
        ["ip", "-4", "route", "add", "10.0.0.0/8", "dev", "wg0", "table", "1234"],
        ["ip", "-4", "route", "add", "0.0.0.0/0", "dev", "wg0", "table", "1234"],
    ]
    assert numbered.fwmark is None
    assert plan_down(parse("[Interface]\nTable = 1234\n" + text), "wg0").commands == [
        ["ip", "link", "delete", "dev", "wg0"]]
    assert plan_up(parse("[Interface]\nTable = Off\n" + text), "wg0").commands == [
        ["ip", "link", "set", "mtu", "1420", "up", "dev", "wg0"]]


def test_plan_refuses_a_bad_interface_name():
    for name in ["", "a" * 16, "wg 0", "wg0/x"]:
        with pytest.raises(ValueError):
            plan_up(parse(""), name)
