"""The shell samples of docs/howto.md marked for host A and host B, run as they are, in order, on two hosts.

    ns A: 192.0.2.1 (veth va)  <---------------->  ns B: 192.0.2.2 (veth vb)
    one shared working directory, as if each host had been given the other's .pub file

The page's ``wg0`` and ``wg1`` become ``wgsha0``/``wgsha1`` in A and ``wgshb0``/``wgshb1`` in B: UAPI sockets
live in one directory for every namespace, and other tests run beside this one.
"""

import re

from ..netns import Hosts, require
from ..test_docs import SHELL, wgpy_on_path


def test_howto_shell_samples_run_on_two_hosts(tmp_path):
    require("ip", "wg", "wg-quick", "ping", "tcpdump", "tshark", "editcap")
    env = wgpy_on_path(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    ran = []
    with Hosts("h") as hosts:
        hosts.interfaces += [f"wgsh{side}{n}" for side in "ab" for n in "01"]  # sockets removed whatever happens
        for sample in SHELL:
            for marker in sample.markers:
                if marker not in ("host a", "host b"):
                    continue
                side = marker[-1]
                code = re.sub(r"\bwg([01])\b", rf"wgsh{side}\1", sample.code)
                result = hosts.run(hosts.a if side == "a" else hosts.b, "sh", "-ec", f"cd {work}\n{code}", env=env,
                                   timeout=120, check=False)
                assert result.returncode == 0, f"{sample.id} on host {side.upper()}:\n{result.stdout}{result.stderr}"
                ran.append((sample, side, result.stdout))
    assert {side for _, side, _ in ran} == {"a", "b"} and len(ran) >= 10

    # What the samples say they show, they show.
    output = {sample.code.splitlines()[-1]: out for sample, _, out in ran}
    assert re.search(r"latest-handshakes|\t\d{10}", "".join(out for s, _, out in ran if "latest-handshakes" in s.code))
    decoded = output["wgpy decode --keylog keys.log capture.pcap"]
    assert "echo request" in decoded and "echo reply" in decoded and "decrypts to S_pub_i" in decoded
    counts = re.search(r"(\d+) transport \((\d+) decrypted", decoded)
    assert counts and int(counts[1]) == int(counts[2]) > 0
    embedded = re.search(r"(\d+) transport \((\d+) decrypted", output["wgpy decode capture.pcapng | tail -n 1"])
    assert embedded and int(embedded[1]) == int(embedded[2]) > 0
    assert decoded.count("Echo (ping) request") >= 3  # tshark's lines, before wgpy decode's
