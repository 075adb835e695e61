"""The crafting API against another implementation: examples/fuzz_wireguard_go.py runs a short bounded
campaign against a real wireguard-go, and wireguard-go still completes a legitimate handshake after every
batch.

    ns "<prefix>a" (Hosts tag "f"), loopback only:
      examples/fuzz_wireguard_go.py --here  --- mutated messages, UDP 127.0.0.1 --->  wireguard-go, interface wgf<n>
        F, R: fuzzing identities; P: probe   <--- handshakes, ping, wg show --------  tunnel 10.77.0.1/24
"""

import json
import os
import sys

from ..netns import ROOT, Hosts, require

EXAMPLE = ROOT / "examples" / "fuzz_wireguard_go.py"


def test_wireguard_go_survives_a_bounded_campaign():
    require("ip", "wg", "wireguard-go")
    name = f"wgf{os.getpid() % 10000}"
    with Hosts("f") as hosts:
        hosts.interfaces.append(name)
        result = hosts.run(hosts.a, sys.executable, str(EXAMPLE), "--here", "--interface", name, "--seed", "7",
                           "--count", "6000", "--seconds", "20", "--batch", "400", check=False, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["wireguard_go_alive"] and report["failure"] is None
    assert report["batches"] >= 2 and report["messages"] >= 800
    kinds = {key.split(":")[0] for key in report["sent"]}
    assert kinds == {"initiation", "response", "cookie reply", "transport"}
    assert report["answers"].get("response", 0) >= report["batches"]   # at least the probe's, every batch
