"""Tunnel benchmark: wgpy against Debian's wireguard-go in the same two namespaces, with iperf3.

    ns A (client)  veth 192.0.2.1  <----  UDP  ---->  veth 192.0.2.2  ns B (iperf3 server)
                   tunnel 198.18.0.1                  tunnel 198.18.0.2

    python3 benchmarks/bench_tunnel.py [--seconds 5] [--repeat 3] [--mtu 1420] [--json FILE]

Runs, alternating and repeated: plain veth (no tunnel, the ceiling), wireguard-go on both ends, wgpy on
both ends; prints medians of single-stream TCP throughput and the ratio wgpy / wireguard-go. Needs root,
iperf3, wireguard-go and wg.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wgpy.core.crypto import PrivateKey  # noqa: E402

NS = ("wgpy-bench-a", "wgpy-bench-b")
UNDERLAY = ("192.0.2.1", "192.0.2.2")
TUNNEL = ("198.18.0.1", "198.18.0.2")
NAMES = ("wgbench-a", "wgbench-b")


def sh(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def in_ns(ns: str, *command: str, **kwargs) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, *command, **kwargs)


def setup_namespaces(mtu: int) -> None:
    teardown()
    for ns in NS:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", "wgpyb0", "netns", NS[0], "type", "veth", "peer", "name", "wgpyb1", "netns", NS[1])
    for n, ns in enumerate(NS):
        sh("ip", "-n", ns, "addr", "add", f"{UNDERLAY[n]}/24", "dev", f"wgpyb{n}")
        sh("ip", "-n", ns, "link", "set", f"wgpyb{n}", "mtu", str(max(1500, mtu + 80)), "up")


def teardown() -> None:
    for ns in NS:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for name in NAMES:
        Path(f"/var/run/wireguard/{name}.sock").unlink(missing_ok=True)


def start_tunnel(kind: str, mtu: int) -> list[subprocess.Popen]:
    """Start ``kind`` (wgpy or wireguard-go) in both namespaces and configure a tunnel between them."""
    keys = [PrivateKey.generate(os.urandom) for _ in NS]
    daemons = []
    for ns, name in zip(NS, NAMES):
        command = [sys.executable, "-m", "wgpy", "-f", name] if kind == "wgpy" else ["wireguard-go", "-f", name]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        daemons.append(subprocess.Popen(["ip", "netns", "exec", ns, *command], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for name in NAMES:
        deadline = time.monotonic() + 10
        while not Path(f"/var/run/wireguard/{name}.sock").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start")
            time.sleep(0.05)
    for n, (ns, name) in enumerate(zip(NS, NAMES)):
        other = 1 - n
        key_file = Path(f"/tmp/{name}.key")
        key_file.write_text(base64.b64encode(keys[n].private_bytes()).decode())
        key_file.chmod(0o600)
        in_ns(ns, "wg", "set", name, "private-key", str(key_file), "listen-port", "51820",
              "peer", base64.b64encode(keys[other].public).decode(), "endpoint", f"{UNDERLAY[other]}:51820",
              "allowed-ips", f"{TUNNEL[other]}/32")
        key_file.unlink()
        sh("ip", "-n", ns, "addr", "add", f"{TUNNEL[n]}/24", "dev", name)
        sh("ip", "-n", ns, "link", "set", name, "mtu", str(mtu), "up")
    in_ns(NS[0], "ping", "-c", "3", "-i", "0.2", "-W", "5", TUNNEL[1], timeout=30)
    return daemons


def stop(daemons: list[subprocess.Popen]) -> None:
    for daemon in daemons:
        daemon.send_signal(signal.SIGTERM)
    for daemon in daemons:
        try:
            daemon.wait(5)
        except subprocess.TimeoutExpired:
            daemon.kill()
    for ns, name in zip(NS, NAMES):
        subprocess.run(["ip", "-n", ns, "link", "del", name], capture_output=True)


def iperf(target: str, seconds: float, streams: int = 1) -> float:
    """Gbit/s received by the server in namespace B from a TCP test run in namespace A."""
    server = subprocess.Popen(["ip", "netns", "exec", NS[1], "iperf3", "-s", "-1", "-B", target],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = in_ns(NS[0], "iperf3", "-c", target, "-t", str(seconds), "-P", str(streams), "-J", timeout=seconds + 60)
        result = json.loads(out.stdout)
        return result["end"]["sum_received"]["bits_per_second"] / 1e9
    finally:
        server.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mtu", type=int, default=1420)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    missing = [c for c in ("ip", "iperf3", "wireguard-go", "wg") if shutil.which(c) is None]
    if missing or os.geteuid() != 0:
        print(f"bench_tunnel: needs root and {', '.join(missing) or 'nothing else'}; skipped")
        return 0
    results: dict[str, list[float]] = {"veth": [], "wireguard-go": [], "wgpy": []}
    try:
        setup_namespaces(args.mtu)
        for _ in range(args.repeat):
            results["veth"].append(iperf(UNDERLAY[1], args.seconds))
            for kind in ("wireguard-go", "wgpy"):
                daemons = start_tunnel(kind, args.mtu)
                try:
                    results[kind].append(iperf(TUNNEL[1], args.seconds))
                finally:
                    stop(daemons)
    finally:
        teardown()
    medians = {kind: statistics.median(values) for kind, values in results.items()}
    print(f"TCP, one stream, tunnel MTU {args.mtu}, median of {args.repeat} x {args.seconds:g} s (Gbit/s)")
    for kind, value in medians.items():
        print(f"  {kind:13s} {value:6.2f}   runs: {', '.join(f'{v:.2f}' for v in results[kind])}")
    ratio = medians["wgpy"] / medians["wireguard-go"]
    print(f"  wgpy / wireguard-go = {ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"mtu": args.mtu, "runs": results, "medians": medians, "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
