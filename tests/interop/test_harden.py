"""The daemon survives what used to kill it: a fwmark with the top bit set (any 32-bit mark is valid, as in
wireguard-go and the kernel).

    ns A: wgpy (interface wgh0), configured with wg      nothing else
"""

import pytest

from wgpy.runtime.uapi_socket import request as uapi_request

from ..netns import Hosts, require


@pytest.fixture
def hosts():
    require("ip", "wg")
    with Hosts("h") as h:
        yield h


@pytest.mark.parametrize("mark", ["0x80000000", "0xffffffff"])
def test_fwmark_with_the_top_bit_set_is_applied_and_the_daemon_lives_on(hosts, tmp_path, mark):
    name = "wgh0" if mark == "0x80000000" else "wgh1"
    log = tmp_path / "wgpy.log"
    process = hosts.start_wgpy(hosts.a, name, log=log)
    hosts.wg(hosts.a, "set", name, "listen-port", "51850", "fwmark", mark)
    assert hosts.wg(hosts.a, "show", name, "fwmark").stdout.strip() == mark
    assert process.poll() is None, log.read_text()
    # The UDP sockets were reopened with the mark and still serve: the port is there, and wg can change it.
    assert "51850" in hosts.run(hosts.a, "ss", "-Hnlu", "sport", "= :51850").stdout
    hosts.wg(hosts.a, "set", name, "fwmark", "off", "listen-port", "51851")
    assert hosts.wg(hosts.a, "show", name, "fwmark").stdout.strip() == "off"
    assert uapi_request(name, "get=1\n\n", timeout=5).endswith("errno=0\n\n")
    assert process.poll() is None and "Traceback" not in log.read_text()
