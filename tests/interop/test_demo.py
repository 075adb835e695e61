"""``wgpy demo``, whole and step by step: a failing step says which command failed and what it said.

    ns wgpy-demo-a: wgpy (wgdemo-a) 198.18.0.1  <== veth 192.0.2.1 <-> 192.0.2.2 ==>  ns wgpy-demo-b: wgpy (wgdemo-b)
"""

import fcntl

import pytest

from wgpy.runtime import netns_demo

from ..netns import SOCKETS, Hosts, require


@pytest.fixture
def hosts():
    require("ip", "ping")
    with Hosts("m") as h:
        yield h


def test_a_failing_ip_command_is_named_with_its_own_error_text():
    with pytest.raises(netns_demo.DemoError) as failure:
        netns_demo.ip("-n", "wgp-no-such-namespace", "addr", "add", "198.18.0.1/24", "dev", "wgdemo-a")
    message = str(failure.value)
    assert "ip -n wgp-no-such-namespace addr add 198.18.0.1/24 dev wgdemo-a" in message
    assert "wgp-no-such-namespace" in message.split("failed", 1)[1]   # ip's stderr, not only an exit status


def test_waiting_for_a_daemon_that_failed_reports_its_error(hosts):
    hosts.ip(hosts.a, "link", "add", "wgp7", "type", "veth", "peer", "name", "wgp7b")   # the name is taken: the daemon cannot start
    daemon = netns_demo.start_daemon(hosts.a, "wgp7")
    hosts.processes.append(daemon)
    with pytest.raises(netns_demo.DemoError, match="Failed to create TUN device wgp7"):
        netns_demo.wait_until_serving(daemon, hosts.a, "wgp7")


def test_waiting_for_a_daemon_returns_once_its_link_exists_and_it_answers(hosts):
    hosts.interfaces.append("wgp8")
    daemon = netns_demo.start_daemon(hosts.a, "wgp8")
    hosts.processes.append(daemon)
    netns_demo.wait_until_serving(daemon, hosts.a, "wgp8")
    hosts.ip(hosts.a, "addr", "add", "198.18.0.1/24", "dev", "wgp8")   # the demo's next step, at once
    assert (SOCKETS / "wgp8.sock").exists()


def test_the_whole_demo_works_and_cleans_up(hosts):
    said: list[str] = []
    assert netns_demo.run(said.append), "\n".join(said)
    assert "\nthe tunnel works" in said
    assert not any((SOCKETS / f"{name}.sock").exists() for name in netns_demo.INTERFACES)


def test_the_demo_leaves_another_demos_daemon_alone(hosts):
    hosts.start_wgpy(hosts.a, netns_demo.INTERFACES[0])
    said: list[str] = []
    assert not netns_demo.run(said.append)
    assert "another wgpy demo" in said[0] or "another process" in said[0]
    assert (SOCKETS / f"{netns_demo.INTERFACES[0]}.sock").exists()


def test_a_second_demo_waits_its_turn_instead_of_deleting_the_first_ones_namespaces(hosts):
    """Two demos at once used to fail at ``ip addr add ... dev wgdemo-a``: the second one's clean-up
    deleted the first one's namespaces under it."""
    with open(netns_demo.LOCK_PATH, "w") as first:
        fcntl.flock(first, fcntl.LOCK_EX)
        said: list[str] = []
        assert not netns_demo.run(said.append)
    assert said == ["another wgpy demo is running: wait for it to finish"]
