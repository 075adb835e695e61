"""apply (syncconf by difference: only what changed is sent, unchanged peers untouched) and status, on
``get=1`` answers written here; the real daemons are in tests/interop/test_mesh.py."""

from wgpy.core.encoding import key_to_base64, key_to_hex
from wgpy.mesh.apply import Current, changes, parse_get
from wgpy.mesh.command import Fleet
from wgpy.mesh.status import status

ROSTER = """[network]
ipv4 = "10.88.0.0/24"
ipv6 = "fd00:88::/64"

[[host]]
name = "a"
endpoint = "198.51.100.1:51820"

[[host]]
name = "b"
endpoint = "b.example.net:51821"

[[host]]
name = "c"
"""

NOW = 1_800_000_000


def plans(tmp_path, text=ROSTER):
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return Fleet(str(path)).plans


def resolve(host, port):
    assert (host, port) == ("b.example.net", 51821)
    return "203.0.113.2"


def get_answer(plan, handshake=NOW - 10, endpoints=None) -> str:
    """What an interface already at ``plan`` answers, with every peer's session ``handshake``."""
    lines = [f"private_key={key_to_hex(plan.private_key)}"]
    if plan.listen_port:
        lines.append(f"listen_port={plan.listen_port}")
    for peer in plan.peers:
        lines += [f"public_key={key_to_hex(peer.public_key)}", f"preshared_key={key_to_hex(peer.preshared_key)}",
                  "protocol_version=1"]
        endpoint = (endpoints or {}).get(peer.name)
        if endpoint is None and peer.endpoint is not None:
            endpoint = "203.0.113.2:51821" if peer.name == "b" else str(peer.endpoint)
        if endpoint:
            lines.append(f"endpoint={endpoint}")
        lines += [f"last_handshake_time_sec={handshake}", "last_handshake_time_nsec=5", "tx_bytes=2048",
                  "rx_bytes=1024", f"persistent_keepalive_interval={peer.keepalive or 0}"]
        lines += [f"allowed_ip={network}" for network in peer.allowed_ips]
    return "\n".join(lines) + "\nerrno=0\n\n"


def test_an_interface_at_its_plan_is_left_alone(tmp_path):
    plan = plans(tmp_path)["c"]
    assert changes(plan, parse_get(get_answer(plan)), resolve, NOW) == (None, [])


def test_a_fresh_interface_gets_everything_and_no_secret_is_said(tmp_path):
    plan = plans(tmp_path)["c"]
    operation, said = changes(plan, Current(), resolve, NOW)
    a, b = plan.peers
    assert operation == (
        f"set=1\nprivate_key={key_to_hex(plan.private_key)}\n"
        f"public_key={key_to_hex(a.public_key)}\npreshared_key={key_to_hex(a.preshared_key)}\n"
        "endpoint=198.51.100.1:51820\npersistent_keepalive_interval=25\n"
        "replace_allowed_ips=true\nallowed_ip=10.88.0.1/32\nallowed_ip=fd00:88::1/128\n"
        f"public_key={key_to_hex(b.public_key)}\npreshared_key={key_to_hex(b.preshared_key)}\n"
        "endpoint=203.0.113.2:51821\npersistent_keepalive_interval=25\n"
        "replace_allowed_ips=true\nallowed_ip=10.88.0.2/32\nallowed_ip=fd00:88::2/128\n\n")
    assert said == ["private key set",
                    "added peer a: preshared key, endpoint 198.51.100.1:51820, keepalive 25, "
                    "allowed IPs 10.88.0.1/32, fd00:88::1/128",
                    "added peer b: preshared key, endpoint 203.0.113.2:51821, keepalive 25, "
                    "allowed IPs 10.88.0.2/32, fd00:88::2/128"]
    secrets = [plan.private_key] + [p.preshared_key for p in plan.peers]
    for secret in secrets:
        assert key_to_base64(secret) not in "\n".join(said) and key_to_hex(secret) not in "\n".join(said)


def test_a_host_added_to_the_roster_is_one_added_peer_and_nothing_else(tmp_path):
    before = plans(tmp_path)
    after = plans(tmp_path, ROSTER + '\n[[host]]\nname = "d"\nsubnets = ["192.168.4.0/24"]\n')
    operation, said = changes(after["a"], parse_get(get_answer(before["a"])), resolve, NOW)
    assert said == ["added peer d: preshared key, allowed IPs 10.88.0.4/32, 192.168.4.0/24, fd00:88::4/128"]
    assert operation.count("public_key=") == 1 and "private_key" not in operation and "replace_peers" not in operation


def test_removed_and_changed_peers(tmp_path):
    before = plans(tmp_path)
    changed = ROSTER.replace('name = "c"', 'name = "c"\nsubnets = ["192.168.3.0/24"]').replace(
        '[[host]]\nname = "b"\nendpoint = "b.example.net:51821"\n', "")
    after = plans(tmp_path, changed)
    operation, said = changes(after["a"], parse_get(get_answer(before["a"])), resolve, NOW)
    b_key = key_to_hex(before["a"].peer("b").public_key)
    assert f"public_key={b_key}\nremove=true\n" in operation
    assert said == [f"removed peer {key_to_base64(before['a'].peer('b').public_key)}",
                    "changed peer c: allowed IPs +192.168.3.0/24"]


def test_a_live_session_keeps_its_roamed_endpoint_a_dead_one_is_reset(tmp_path):
    plan = plans(tmp_path)["c"]
    roamed = {"a": "192.0.2.77:40000"}
    assert changes(plan, parse_get(get_answer(plan, endpoints=roamed)), resolve, NOW) == (None, [])
    operation, said = changes(plan, parse_get(get_answer(plan, handshake=NOW - 500, endpoints=roamed)), resolve, NOW)
    assert said == ["changed peer a: endpoint 198.51.100.1:51820"] and "endpoint=198.51.100.1:51820" in operation


def test_status_names_the_unreachable(tmp_path):
    plan = plans(tmp_path)["c"]
    answer = get_answer(plan)
    stale = answer.replace(f"last_handshake_time_sec={NOW - 10}", f"last_handshake_time_sec={NOW - 500}", 1)
    text, unreachable = status(plan, ["a", "b", "c"], parse_get(stale), NOW)
    assert unreachable == ["a"]
    assert "a               UNREACHABLE  handshake: 8 minutes, 20 seconds ago; endpoint: 198.51.100.1:51820" in text
    assert "b               reachable    handshake: 10 seconds ago; endpoint: 203.0.113.2:51821; " \
           "transfer: 1.00 KiB received, 2.00 KiB sent" in text
    assert text.endswith("unreachable: a\n")
    never = answer.replace(f"last_handshake_time_sec={NOW - 10}", "last_handshake_time_sec=0")
    assert status(plan, ["a", "b", "c"], parse_get(never), NOW)[1] == ["a", "b"]
    assert status(plan, ["a", "b", "c"], parse_get(answer), NOW)[1] == []


def test_apply_and_status_never_write_the_state(tmp_path, capsys):
    """Only render makes keys and addresses: a host's copy of the state must not invent a key for a host
    the roster gained after the copy was made."""
    from wgpy import cli

    plans(tmp_path)
    roster = tmp_path / "fleet.toml"
    roster.write_text(ROSTER + '\n[[host]]\nname = "d"\n')
    before = sorted(str(p) for p in (tmp_path / "fleet.state").rglob("*"))
    for verb in (["apply", "--host", "a"], ["status"]):
        assert cli.main(["mesh", verb[0], str(roster), *verb[1:], "--interface", "nonexistent0"]) == 1
        assert "has no addresses for d yet: run wgpy mesh render first" in capsys.readouterr().err
    assert sorted(str(p) for p in (tmp_path / "fleet.state").rglob("*")) == before
