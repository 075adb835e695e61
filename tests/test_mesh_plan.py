"""The plan, the state directory and the rendered files: stable addresses, keepalive sides, hub routes,
one preshared key per pair, owner-only files, and files wgpy.config and ``wg-quick strip`` both read."""

import os
import shutil
import stat
import subprocess
from ipaddress import ip_network

import pytest

from wgpy import cli, config
from wgpy.mesh.command import Fleet
from wgpy.mesh.plan import FORWARDING_NOTE, assign_addresses
from wgpy.mesh.roster import parse
from wgpy.mesh.state import State, StateError

MESH = """[network]
ipv4 = "10.88.0.0/24"
ipv6 = "fd00:88::/64"
{network}
[[host]]
name = "hub"
endpoint = "198.51.100.1:51820"
subnets = ["192.168.10.0/24"]

[[host]]
name = "laptop"

[[host]]
name = "office"
endpoint = "office.example.net:51821"
subnets = ["192.168.20.0/24", "2001:db8:20::/48"]
extra = {{ MTU = 1380, PostUp = ["echo up"] }}

[[host]]
name = "phone"
"""


def fleet(tmp_path, text: str) -> Fleet:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return Fleet(str(path))


def routes(plan, name):
    return {peer.name: set(map(str, peer.allowed_ips)) for peer in plan.peers} [name]


def test_full_mesh_peers_keepalive_only_behind_nat_and_one_psk_per_pair(tmp_path):
    plans = fleet(tmp_path, MESH.format(network="")).plans
    assert {name: [p.name for p in plan.peers] for name, plan in plans.items()} == {
        "hub": ["laptop", "office", "phone"], "laptop": ["hub", "office", "phone"],
        "office": ["hub", "laptop", "phone"], "phone": ["hub", "laptop", "office"]}
    # A host with no endpoint keeps alive towards those that have one; never the other way.
    keepalives = {(name, p.name): p.keepalive for name, plan in plans.items() for p in plan.peers if p.keepalive}
    assert keepalives == {("laptop", "hub"): 25, ("laptop", "office"): 25,
                          ("phone", "hub"): 25, ("phone", "office"): 25}
    for name, plan in plans.items():
        for peer in plan.peers:
            other = plans[peer.name].peer(name)
            assert other.preshared_key == peer.preshared_key            # symmetric
            assert other.public_key == plan.public_key
    psks = {p.preshared_key for plan in plans.values() for p in plan.peers}
    assert len(psks) == 6                                               # one per pair, all different
    assert routes(plans["laptop"], "office") == {"10.88.0.3/32", "fd00:88::3/128", "192.168.20.0/24",
                                                 "2001:db8:20::/48"}
    assert any("cannot reach each other" in note for note in plans["laptop"].notes)   # laptop and phone


def test_hub_and_spoke_routes_the_network_and_other_spokes_subnets_through_the_hub(tmp_path):
    plans = fleet(tmp_path, MESH.format(network='topology = "hub"\nhubs = ["hub"]')).plans
    assert [p.name for p in plans["laptop"].peers] == ["hub"]
    assert [p.name for p in plans["hub"].peers] == ["laptop", "office", "phone"]
    assert routes(plans["laptop"], "hub") == {"10.88.0.0/24", "fd00:88::/64", "192.168.10.0/24", "192.168.20.0/24",
                                              "2001:db8:20::/48"}
    assert routes(plans["office"], "hub") == {"10.88.0.0/24", "fd00:88::/64", "192.168.10.0/24"}   # not its own
    assert routes(plans["hub"], "office") == {"10.88.0.3/32", "fd00:88::3/128", "192.168.20.0/24", "2001:db8:20::/48"}
    assert FORWARDING_NOTE in plans["hub"].notes and FORWARDING_NOTE not in plans["laptop"].notes
    assert plans["laptop"].peer("hub").keepalive == 25 and plans["hub"].peer("laptop").keepalive is None
    assert plans["office"].peer("hub").keepalive is None


def test_adding_a_host_renumbers_no_one(tmp_path):
    text = MESH.format(network="")
    first = fleet(tmp_path, text).plans
    # A new host in the middle of the file, a fixed address for another new one: the old keep theirs.
    grown = text.replace('[[host]]\nname = "laptop"', '[[host]]\nname = "early"\n\n[[host]]\nname = "laptop"')
    grown += '\n[[host]]\nname = "fixed"\naddress = "10.88.0.9"\n'
    second = fleet(tmp_path, grown).plans
    for name, plan in first.items():
        assert second[name].addresses == plan.addresses and second[name].public_key == plan.public_key
    assert str(second["early"].addresses[0]) == "10.88.0.5/24" and str(second["fixed"].addresses[0]) == "10.88.0.9/24"
    # A host removed gives its addresses back; the others still keep theirs.
    third = fleet(tmp_path, text.replace('[[host]]\nname = "laptop"\n', "")).plans
    assert all(third[name].addresses == first[name].addresses for name in third)


def test_a_fixed_address_that_takes_a_recorded_one_renumbers_and_says_so():
    roster = parse('[network]\nipv4 = "10.0.0.0/29"\n'
                   '[[host]]\nname = "a"\n[[host]]\nname = "b"\naddress = "10.0.0.1"\n')
    addresses, notes = assign_addresses(roster, {"a": {"ipv4": "10.0.0.1"}})
    assert addresses == {"a": {"ipv4": "10.0.0.2"}, "b": {"ipv4": "10.0.0.1"}}
    assert notes == ["a: 10.0.0.1 is no longer free in 10.0.0.0/29: renumbered"]


def test_the_state_directory_is_owner_only_and_never_follows_links(tmp_path):
    plans = fleet(tmp_path, MESH.format(network="")).plans
    state = tmp_path / "fleet.state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    files = [p for p in state.rglob("*") if p.is_file()]
    assert len(files) == 4 + 6 + 1                   # keys, preshared keys, addresses.json
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert (state / "psk" / "hub+laptop.psk").exists() and not (state / "psk" / "laptop+hub.psk").exists()
    assert "PrivateKey" not in (tmp_path / "fleet.toml").read_text()
    # The keys persist: a second run reads them.
    assert Fleet(str(tmp_path / "fleet.toml")).plans["hub"].private_key == plans["hub"].private_key
    # A planted link is not followed; a readable file is refused.
    (state / "keys" / "newhost.key").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StateError):
        State(str(state)).ensure_private_key("newhost")
    assert not (tmp_path / "elsewhere").exists()
    os.chmod(state / "keys" / "hub.key", 0o644)
    with pytest.raises(StateError, match="owner-only"):
        State(str(state)).private_key("hub")


def test_a_host_whose_key_is_kept_elsewhere(tmp_path):
    key = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
    text = MESH.format(network="").replace('name = "phone"', f'name = "phone"\npublic_key = "{key}"')
    plans = fleet(tmp_path, text).plans
    assert plans["phone"].private_key is None and not (tmp_path / "fleet.state" / "keys" / "phone.key").exists()
    assert config.parse_key(key) == plans["hub"].peer("phone").public_key


@pytest.mark.parametrize("topology", ["", 'topology = "hub"\nhubs = ["hub"]'])
def test_rendered_files_are_owner_only_and_read_by_wgpy_config_and_wg_quick(tmp_path, topology, capsys):
    roster = tmp_path / "fleet.toml"
    roster.write_text(MESH.format(network=topology))
    assert cli.main(["mesh", "render", str(roster), "--out", str(tmp_path / "out")]) == 0
    said = capsys.readouterr().out
    assert said.count("wrote ") == 4 and (("forwards between spokes" in said) == bool(topology))
    plans = Fleet(str(roster)).plans
    for name, plan in plans.items():
        path = tmp_path / "out" / f"{name}.conf"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        parsed = config.load(str(path))
        assert parsed.private_key == plan.private_key and parsed.addresses == plan.addresses
        assert [p.public_key for p in parsed.peers] == [p.public_key for p in plan.peers]
        for mine, theirs in zip(parsed.peers, plan.peers):
            assert mine.preshared_key == theirs.preshared_key
            assert {ip_network(a, strict=False) for a in mine.allowed_ips} == set(theirs.allowed_ips)
            assert mine.persistent_keepalive == theirs.keepalive
        stripped = config.strip(path.read_text())
        keys = {line.partition("=")[0].strip() for line in stripped.splitlines()}
        assert not keys & {"Address", "MTU"}   # as lines (a base64 key may spell "MTU": it did once in CI)
        config.parse(stripped, quick=False)      # what `wg setconf` takes
        if shutil.which("wg-quick") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("wg-quick is missing")
            continue
        real = subprocess.run(["wg-quick", "strip", str(path)], capture_output=True, text=True, check=True).stdout
        assert real == stripped
    office = (tmp_path / "out" / "office.conf").read_text()
    assert "MTU = 1380\nPostUp = echo up\n" in office and "ListenPort = 51821\n" in office
