"""Where both wgpy daemons spend one TCP stream: cProfile inside each, in bench_tunnel's set-up.

    python3 benchmarks/profile_tunnel.py [--mtu 1420] [--seconds 8] [--top 22] [--plain]

One session of tunnelbench (its namespaces and interface names, so never while bench_tunnel runs): a wgpy
daemon in each namespace, each started under ``python -m cProfile``, one ``iperf3`` stream from A to B,
then both daemons' functions by their own time. Each daemon's time in ``poll`` is the time it waited: the
one that waited least is the bottleneck. The profiler slows Python calls more than C (about half the
untraced rate): read the shares, not the absolute figures. ``--plain`` runs the same session without the
profiler and prints the rate and the daemons' CPU only. Needs root, ip, iperf3 and wg.
"""

from __future__ import annotations

import argparse
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tunnelbench import measure, netns, systems  # noqa: E402
from tunnelbench.netns import NS, TUNNEL, TUNNEL_NAMES  # noqa: E402


class Profiled(systems.Wgpy):
    """wgpy at both ends, each daemon under cProfile, its statistics written where it stops."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def command(self, n: int, mtu: int) -> list[str]:
        return [sys.executable, "-m", "cProfile", "-o", str(self.directory / f"daemon{n}.prof"),
                "-m", "wgpy", "-f", TUNNEL_NAMES[n]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mtu", type=int, default=1420, help="tunnel MTU (default 1420)")
    parser.add_argument("--seconds", type=float, default=8, help="length of the iperf3 stream (default 8)")
    parser.add_argument("--top", type=int, default=22, help="functions listed per daemon (default 22)")
    parser.add_argument("--plain", action="store_true", help="no profiler: the rate and CPU only")
    args = parser.parse_args(argv)
    missing = [c for c in ("ip", "iperf3", "wg") if shutil.which(c) is None]
    if missing:
        print(f"profile_tunnel: missing {', '.join(missing)}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        system = systems.Wgpy() if args.plain else Profiled(directory)
        netns.setup()
        netns.set_underlay_mtu(args.mtu)
        server = measure.IperfServer()
        try:
            server.start()
            system.start(args.mtu)
            netns.sh("ip", "-n", NS[0], "link", "set", TUNNEL_NAMES[0], "up")
            subprocess.run(["ip", "netns", "exec", NS[0], "ping", "-c", "3", "-i", "0.2", TUNNEL[1]],
                           capture_output=True, timeout=30)
            before = measure.cpu_seconds(system.pids)
            report = measure.iperf(server, TUNNEL[1], args.seconds)
            cpu = measure.cpu_seconds(system.pids) - before
        finally:
            system.stop()
            server.stop()
            netns.teardown()
        rate = report["end"]["sum_received"]["bits_per_second"]
        packets = rate * args.seconds / 8 / (args.mtu - 52)
        print(f"MTU {args.mtu}, {'no profiler' if args.plain else 'profiled'}: {rate / 1e9:.2f} Gbit/s, "
              f"daemons' CPU {cpu:.2f} s ({cpu / args.seconds:.2f} cores, {cpu / packets * 1e6:.1f} us per packet)")
        if args.plain:
            return 0
        for n, ns in enumerate(NS):
            print(f"\n=== {ns}: the {'sender' if n == 0 else 'receiver'}")
            pstats.Stats(str(directory / f"daemon{n}.prof")).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
