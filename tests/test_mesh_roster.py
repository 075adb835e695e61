"""The roster: every bad one refused with its problem named and the line it comes from (marked ``# <-``
in each case below), nothing written; good ones read as written."""

import os
from ipaddress import ip_address, ip_network

import pytest

from wgpy import cli
from wgpy.mesh.roster import Lines, Problem, RosterError, parse

KEY = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="

HEAD = """[network]
ipv4 = "10.88.0.0/24"
ipv6 = "fd00:88::/64"
"""

BAD = {
    "duplicate name": (Problem.DUPLICATE_NAME, HEAD + """
[[host]]
name = "a"
[[host]]
name = "a"   # <-
"""),
    "overlapping subnets": (Problem.OVERLAPPING_SUBNETS, HEAD + """
[[host]]
name = "a"
subnets = ["192.168.0.0/16"]
[[host]]
name = "b"
subnets = [
    "192.168.4.0/24",
]            # <-  (the key's line is the one before: see the marker handling)
"""),
    "subnet inside the network": (Problem.OVERLAPPING_SUBNETS, HEAD + """
[[host]]
name = "a"
subnets = ["10.88.0.128/25"]   # <-
"""),
    "prefix too small": (Problem.PREFIX_TOO_SMALL, """[network]
ipv4 = "10.88.0.0/30"   # <-
[[host]]
name = "a"
[[host]]
name = "b"
[[host]]
name = "c"
"""),
    "ipv6 prefix too small": (Problem.PREFIX_TOO_SMALL, """[network]
ipv6 = "fd00::/127"   # <-
[[host]]
name = "a"
[[host]]
name = "b"
[[host]]
name = "c"
"""),
    "hub not a host": (Problem.HUB_NOT_A_HOST, """[network]
ipv4 = "10.88.0.0/24"
topology = "hub"
hubs = ["a", "nobody"]   # <-
[[host]]
name = "a"
endpoint = "192.0.2.1:51820"
"""),
    "hub without endpoint": (Problem.HUB_WITHOUT_ENDPOINT, """[network]
ipv4 = "10.88.0.0/24"
topology = "hub"
hubs = ["a"]   # <-
[[host]]
name = "a"
"""),
    "hub topology without hubs": (Problem.NO_HUBS, """[network]
ipv4 = "10.88.0.0/24"
topology = "hub"   # <-
[[host]]
name = "a"
"""),
    "unknown topology": (Problem.BAD_TOPOLOGY, """[network]
ipv4 = "10.88.0.0/24"
topology = "star"   # <-
[[host]]
name = "a"
"""),
    "bad public key": (Problem.BAD_KEY, HEAD + """
[[host]]
name = "a"
public_key = "not a key"   # <-
"""),
    "duplicate public key": (Problem.DUPLICATE_KEY, HEAD + f"""
[[host]]
name = "a"
public_key = "{KEY}"
[[host]]
name = "b"
public_key = "{KEY}"   # <-
"""),
    "unknown host field": (Problem.UNKNOWN_FIELD, HEAD + """
[[host]]
name = "a"
privatekey = "secret"   # <-
"""),
    "unknown network field": (Problem.UNKNOWN_FIELD, """[network]
ipv4 = "10.88.0.0/24"
ipv5 = "what"   # <-
[[host]]
name = "a"
"""),
    "unknown table": (Problem.UNKNOWN_FIELD, HEAD + """
[[host]]
name = "a"
[peers]   # <-
x = 1
"""),
    "syntax error": (Problem.SYNTAX, HEAD + """
[[host]]
name = "a
endpoint = "x"
""".replace('name = "a\n', 'name = "a   # <-\n')),
    "bad endpoint": (Problem.BAD_ENDPOINT, HEAD + """
[[host]]
name = "a"
endpoint = "2001:db8::1:51820"   # <-
"""),
    "endpoint port out of range": (Problem.BAD_ENDPOINT, HEAD + """
[[host]]
name = "a"
endpoint = "host.example:70000"   # <-
"""),
    "fixed address outside the prefix": (Problem.BAD_ADDRESS, HEAD + """
[[host]]
name = "a"
address = "10.99.0.1"   # <-
"""),
    "fixed address is the broadcast": (Problem.BAD_ADDRESS, HEAD + """
[[host]]
name = "a"
address = "10.88.0.255"   # <-
"""),
    "duplicate fixed address": (Problem.DUPLICATE_ADDRESS, HEAD + """
[[host]]
name = "a"
address6 = "fd00:88::7"
[[host]]
name = "b"
address6 = "fd00:88::7"   # <-
"""),
    "extra sets what the roster owns": (Problem.OWNED_SETTING, HEAD + """
[[host]]
name = "a"
[host.extra]
Address = "10.1.1.1/32"   # <-
"""),
    "extra value wg-quick refuses": (Problem.BAD_EXTRA, HEAD + """
[[host]]
name = "a"
extra = { MTU = 10 }   # <-
"""),
    "extra key that is not wg-quick's": (Problem.BAD_EXTRA, HEAD + """
[[host]]
name = "a"
[host.extra]
Colour = "blue"   # <-
"""),
    "bad subnet": (Problem.BAD_SUBNET, HEAD + """
[[host]]
name = "a"
subnets = ["192.168.1.1/24"]   # <-
"""),
    "bad name": (Problem.BAD_NAME, HEAD + """
[[host]]
name = "Has Spaces"   # <-
"""),
    "name too long for an interface": (Problem.BAD_NAME, HEAD + """
[[host]]
name = "a-very-long-name-indeed"   # <-
"""),
    "wrong type": (Problem.WRONG_TYPE, HEAD + """
[[host]]
name = "a"
listen_port = "51820"   # <-
"""),
    "no prefix": (Problem.NO_PREFIX, """[network]   # <-
topology = "mesh"
[[host]]
name = "a"
"""),
    "prefix of the wrong family": (Problem.BAD_PREFIX, """[network]
ipv4 = "fd00::/64"   # <-
[[host]]
name = "a"
"""),
    "host without a name": (Problem.MISSING_FIELD, HEAD + """
[[host]]   # <-
endpoint = "192.0.2.1:1"
"""),
}


def marked_line(text: str) -> int:
    lines = text.splitlines()
    marked = next(number for number, line in enumerate(lines, start=1) if "# <-" in line)
    if lines[marked - 1].strip().startswith("]"):   # the end of a multi-line array: the key's line
        marked = next(n for n in range(marked, 0, -1) if "=" in lines[n - 1])
    return marked


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_roster_is_named_with_its_line(case):
    problem, text = BAD[case]
    with pytest.raises(RosterError) as refused:
        parse(text, "fleet.toml")
    issues = [(issue.problem, issue.line) for issue in refused.value.issues]
    assert (problem, marked_line(text)) in issues, (case, issues)
    assert f"fleet.toml: line {marked_line(text)}: " in str(refused.value)


def test_every_problem_is_reported_not_only_the_first():
    text = HEAD + """
[[host]]
name = "a"
endpoint = "nope"
[[host]]
name = "a"
subnets = ["x"]
"""
    with pytest.raises(RosterError) as refused:
        parse(text)
    assert [(i.problem, i.line) for i in refused.value.issues] == [
        (Problem.BAD_ENDPOINT, 7), (Problem.BAD_SUBNET, 10), (Problem.DUPLICATE_NAME, 9)]


def test_secrets_in_a_refused_roster_are_not_repeated():
    text = HEAD + '\n[[host]]\nname = "a"\npublic_key = "c2VjcmV0IHNlY3JldCBzZWNyZXQ="\n'
    with pytest.raises(RosterError) as refused:
        parse(text)
    assert "c2VjcmV0" not in str(refused.value)


def test_a_good_roster_reads_as_written():
    roster = parse("""
[network]
interface = "wg0"
ipv4 = "10.88.0.0/24"
ipv6 = "fd00:88::/64"
topology = "hub"
hubs = ["hub"]
keepalive = 15

[[host]]
name = "hub"
endpoint = "hub.example.net:51820"
subnets = ["192.168.10.0/24", "2001:db8:10::/48"]
address = "10.88.0.10"

[[host]]
name = "laptop"
extra = { DNS = "10.88.0.10", PostUp = ["echo a", "echo b"], SaveConfig = false }

[[host]]
name = "v6"
endpoint = "[2001:db8::1]:51821"
listen_port = 4000
public_key = "%s"
""" % KEY)
    assert roster.interface == "wg0" and roster.topology == "hub" and roster.hubs == ("hub",) and roster.keepalive == 15
    hub, laptop, v6 = roster.hosts
    assert str(hub.endpoint) == "hub.example.net:51820" and hub.port == 51820 and hub.line == 11
    assert hub.subnets == (ip_network("192.168.10.0/24"), ip_network("2001:db8:10::/48"))
    assert hub.address == ip_address("10.88.0.10")
    assert laptop.endpoint is None and laptop.port is None
    assert laptop.extra == (("DNS", "10.88.0.10"), ("PostUp", "echo a"), ("PostUp", "echo b"), ("SaveConfig", "false"))
    assert str(v6.endpoint) == "[2001:db8::1]:51821" and v6.port == 4000 and len(v6.public_key) == 32


def test_lines_follow_arrays_of_tables_and_subtables():
    lines = Lines('[network]\nipv4 = "x"\n\n[[host]]\nname = "a"\n[host.extra]\nMTU = 1\n[[host]]\n'
                  'name = "b" # c\ns = """\nname = "no"\n"""\nextra = { DNS = "1.1.1.1" }\n')
    assert lines("network", "ipv4") == 2
    assert lines("host", 0, "name") == 5 and lines("host", 0, "extra", "MTU") == 7
    assert lines("host", 1, "name") == 9 and lines("host", 1, "extra", "DNS") == 13
    assert lines("host", 1, "missing") == 8


def test_an_invalid_roster_writes_nothing(tmp_path, capsys):
    roster = tmp_path / "fleet.toml"
    roster.write_text(BAD["duplicate name"][1])
    assert cli.main(["mesh", "render", str(roster), "--out", str(tmp_path / "out")]) == 1
    assert sorted(os.listdir(tmp_path)) == ["fleet.toml"]
    error = capsys.readouterr().err
    assert "nothing was written" in error and "line 8: a: two hosts have this name" in error
