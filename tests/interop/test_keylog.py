"""wgpy's key log decrypts a live capture, in tshark and in ``wgpy decode``; the verbose log names every
handshake message and shows no secret.

    ns A: wgpy, interface wgsa                          ns B: wireguard-go, interface wgsb
      WGPY_KEYLOG=keys.log
      tcpdump -i va (Ethernet), -i any (Linux SLL2)
      tunnel 198.18.0.1                                   tunnel 198.18.0.2
      veth   192.0.2.1   <---------------- UDP ---------------->  veth 192.0.2.2
"""

import base64
import json
import os
import signal
import stat
import subprocess
import sys

from wgpy.core.crypto import PrivateKey
from wgpy.core.keylog import parse_keylog

from ..netns import ROOT, TUNNEL, UNDERLAY, Hosts, require, wait_for


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def tshark(*args: str) -> list[str]:
    result = subprocess.run(["tshark", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def wgpy_decode(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "wgpy", "decode", "--format", "json", *args], capture_output=True,
                            text=True, timeout=60, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_tshark_and_wgpy_decode_decrypt_a_captured_session(tmp_path, monkeypatch):
    require("ip", "wg", "wireguard-go", "ping", "tcpdump", "tshark", "editcap")
    keylog = tmp_path / "keys.log"
    monkeypatch.setenv("WGPY_KEYLOG", str(keylog))
    with Hosts("k") as hosts:
        a_key, b_key, psk = PrivateKey.generate(os.urandom), PrivateKey.generate(os.urandom), os.urandom(32)
        hosts.start_wgpy(hosts.a, "wgsa", log=tmp_path / "wgpy.log")
        hosts.start_wireguard_go(hosts.b, "wgsb")
        captures = {"ethernet": tmp_path / "va.pcap", "sll2": tmp_path / "any.pcap"}
        dumps = []
        for (kind, path), interface in zip(captures.items(), ("va", "any")):
            log = tmp_path / f"tcpdump-{kind}.log"
            dumps.append(hosts.spawn(hosts.a, "tcpdump", "-n", "-U", "--immediate-mode", "-Z", "root", "-i", interface,
                                     "-w", str(path), "udp", log=log))
            wait_for(lambda: "listening on" in log.read_text(), f"tcpdump on {interface}")
        (tmp_path / "psk").write_text(b64(psk) + "\n")

        def configure(ns, name, key, other, n, o):
            (tmp_path / name).write_text(b64(key.private_bytes()) + "\n")
            port, other_port = ("51820", "51821") if n == "a" else ("51821", "51820")
            hosts.wg(ns, "set", name, "private-key", str(tmp_path / name), "listen-port", port, "peer", b64(other.public),
                     "endpoint", f"{UNDERLAY[o][0]}:{other_port}", "allowed-ips", f"{TUNNEL[o][0]}/32",
                     "preshared-key", str(tmp_path / "psk"))

        sides = ((hosts.a, "wgsa", a_key, b_key, "a", "b"), (hosts.b, "wgsb", b_key, a_key, "b", "a"))
        for ns, name, key, other, n, o in sides:
            configure(ns, name, key, other, n, o)
            hosts.ip(ns, "addr", "add", f"{TUNNEL[n][0]}/24", "dev", name)
            hosts.ip(ns, "link", "set", name, "up")
        # wireguard-go initiates the first session (wgpy's key log then holds its responder's keys); then wgpy
        # forgets the peer and initiates a second one (its initiator's keys).
        assert hosts.ping(hosts.b, TUNNEL["a"][0], count=3)
        hosts.wg(hosts.a, "set", "wgsa", "peer", b64(b_key.public), "remove")
        configure(hosts.a, "wgsa", a_key, b_key, "a", "b")
        assert hosts.ping(hosts.a, TUNNEL["b"][0], count=3)
        for dump in dumps:
            dump.send_signal(signal.SIGINT)
            dump.wait(10)

        # The key log: one entry (four lines) per ephemeral key wgpy made, readable by its owner only.
        assert stat.S_IMODE(keylog.stat().st_mode) == 0o600
        keys = parse_keylog(keylog.read_text())
        assert len(keys.ephemeral_private) >= 2 and keys.static_private[0] == a_key.private_bytes()
        assert keys.static_public[0] == b_key.public and keys.preshared[keys.ephemeral_private[0]] == [psk]

        for kind, capture in captures.items():
            # tshark: nothing decrypts without the key log; with it, the pings appear inside the tunnel.
            assert tshark("-r", str(capture), "-Y", "icmp") == []
            icmp = tshark("-r", str(capture), "-o", f"wg.keylog_file:{keylog}", "-Y", "wg.type == 4 && icmp",
                          "-T", "fields", "-e", "frame.number")
            assert len(icmp) >= 12, kind  # at least three requests and three replies each way

            # wgpy decode: every transport message decrypts, and the same pings are inside.
            report = wgpy_decode("--keylog", str(keylog), str(capture))
            counts = report["counts"]
            assert counts["handshakes_decrypted"] >= 2 and counts["transport"] > 0, (kind, counts)
            assert counts["transport_decrypted"] == counts["transport"], (kind, counts)
            pings = [m for m in report["messages"] if " ICMP 198.18.0." in m.get("inner", "")]
            assert len(pings) == len(icmp), kind
            assert wgpy_decode(str(capture))["counts"]["transport_decrypted"] == 0

        # A pcapng with the key log embedded in a Decryption Secrets Block (written by Wireshark's editcap):
        # both decrypt it with no other key.
        embedded = tmp_path / "with-secrets.pcapng"
        subprocess.run(["editcap", "--inject-secrets", f"wg,{keylog}", str(captures["ethernet"]), str(embedded)], check=True)
        assert len(tshark("-r", str(embedded), "-Y", "wg.type == 4 && icmp")) > 0
        counts = wgpy_decode(str(embedded))["counts"]
        assert counts["transport_decrypted"] == counts["transport"] > 0

        # The live trace: each handshake message and the session, one line each, with no secret in the log.
        log = (tmp_path / "wgpy.log").read_text()
        assert "WARNING" in log and f"writing session secrets to {keylog}" in log
        for line in ("Received handshake initiation", "Sending handshake response",
                     "First data on the new keys: handshake completed, new session (responder)",
                     "Sending handshake initiation", "Received handshake response: handshake completed, new session"):
            assert line in log, log
        secrets = [a_key.private_bytes(), psk, *keys.ephemeral_private]
        for secret in secrets:
            assert b64(secret) not in log and secret.hex() not in log
