"""Tunnel benchmark: wgpy beside Debian's wireguard-go, with veth and a null relay as ceilings.

    python3 benchmarks/bench_tunnel.py [--quick] [--repeat 3] [--seconds 5] [--mtu 1420 --mtu 9000]
    python3 benchmarks/bench_tunnel.py --systems wireguard-go wgpy --measure ping,first-reply --repeat 5
    python3 benchmarks/bench_tunnel.py --write-docs      # docs/performance.{md,png,json} from the JSON

Two network namespaces joined by a veth pair (tunnelbench/netns.py). Four systems carry the traffic from
namespace A to B: the veth itself (no tunnel), benchmarks/null_relay.py at both ends (wgpy's TUN and UDP
I/O with no protocol and no crypto), wireguard-go at both ends and wgpy at both ends. Each repetition runs
one session per system and MTU, alternating the systems (reversed order on odd repetitions, so a drift in
the machine's load falls on all alike); a session starts the daemons afresh and measures link-up to first
reply, ping, iperf3 TCP with one and four streams and UDP at three paced rates (the best received counts),
and the daemons' CPU time and memory (tunnelbench/measure.py). Prints medians and the ratio
wgpy / wireguard-go, writes every session's figures to a JSON file (default benchmarks/results/tunnel.json)
and a plot beside it. Needs root, ip, iperf3, ping, wireguard-go and wg; matplotlib for the plot.
Exits 1 when a system failed in any session (a daemon that did not start or died, an iperf3 that
errored), after measuring the others, and names each failure at the end; never because a system
measured worse.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tunnelbench import measure, netns, report  # noqa: E402
from tunnelbench.systems import SYSTEMS  # noqa: E402
from failures import Failures  # noqa: E402

DEFAULT_JSON = HERE / "results" / "tunnel.json"
# UDP offered rates, kpackets/s of datagrams that fill the tunnel MTU (0.33, 0.67 and 1.3 Gbit/s at 1420;
# 0.9, 1.8 and 3.6 Gbit/s at 9000); the figure is the best received rate of the three. Not iperf3's -b 0:
# see tunnelbench/measure.py's udp_test and docs/performance.md.
UDP_KPPS = {1420: [30.0, 60.0, 120.0], 9000: [12.5, 25.0, 50.0]}


def version(command: str) -> str:
    try:
        out = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return f"{command} (unknown version)"
    return next((line.strip() for line in out.splitlines() if line.strip()), command)


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def measure_all(args, settings: measure.Settings, failures: Failures) -> dict:
    started = datetime.now(timezone.utc)
    clock = time.monotonic()
    results = {
        "benchmark": "tunnel",
        "started": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "wireguard_go": version("wireguard-go"), "iperf3": version("iperf3"),
                    "loadavg_start": loadavg()},
        "settings": {"measures": list(settings.measures), "seconds": settings.seconds, "repeat": args.repeat, "mtus": args.mtu, "systems": args.systems,
                     "ping_count": settings.ping_count,
                     "udp_offered_kpps": {str(mtu): settings.udp_rates(mtu) for mtu in args.mtu}},
        "note": args.note,
        "sessions": [],
    }
    server = measure.IperfServer()
    try:
        netns.setup()
        if {"tcp", "udp"} & set(settings.measures):
            server.start()
        for repetition in range(args.repeat):
            order = args.systems if repetition % 2 == 0 else args.systems[::-1]
            for mtu in args.mtu:
                netns.set_underlay_mtu(mtu)
                for key in order:
                    name = f"{key} at MTU {mtu}, repetition {repetition + 1}"
                    figures = failures.run(name, measure.session, SYSTEMS[key](), mtu, settings, server)
                    if figures is None:   # not a failure session() knows: recorded under its name
                        figures = {"error": failures.failed[name]}
                    elif "error" in figures:
                        failures.record(name, figures["error"])
                    results["sessions"].append({"repetition": repetition, "mtu": mtu, "system": key,
                                                "figures": figures})
                    print(progress(repetition, args.repeat, mtu, key, figures), flush=True)
    finally:
        # A second Ctrl-C must not leave daemons or namespaces behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            server.stop()
            netns.teardown()
        finally:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])
    results["machine"]["loadavg_end"] = loadavg()
    results["duration_s"] = round(time.monotonic() - clock, 1)
    results["summary"] = report.summarize(results["sessions"])
    return results


def progress(repetition: int, repeat: int, mtu: int, key: str, figures: dict) -> str:
    shown = [f"{figures[k]:.2f} Gbit/s" for k in ("tcp1_gbps", "tcp4_gbps") if k in figures]
    if "udp_received_kpps" in figures:
        shown.append(f"UDP {figures['udp_received_kpps']:.0f} kpps")
    if "ping_rtt_ms" in figures:
        shown.append(f"ping {figures['ping_rtt_ms']:.3f} ms")
    if "first_reply_ms" in figures:
        shown.append(f"first reply {figures['first_reply_ms']:.1f} ms")
    if "error" in figures:
        shown.append(f"FAILED: {figures['error']}")
    return f"[{repetition + 1}/{repeat}] MTU {mtu:5d} {key:13s} " + ", ".join(shown)


def write_plot(results: dict, path: Path) -> None:
    try:
        report.plot(results, path)
        print(f"plot: {path}")
    except ImportError:
        print("plot: skipped, matplotlib is not installed (pip install '.[bench]')")


def interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--quick", action="store_true", help="1 repetition x 2 s per test, 20 pings")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds per iperf3 test (default 5)")
    parser.add_argument("--mtu", type=int, action="append", help="tunnel MTU, repeatable (default 1420 and 9000)")
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS),
                        help="what to measure (default all four)")
    parser.add_argument("--udp-kpps", action="append", default=[], metavar="MTU=KPPS,...",
                        help="UDP offered rates at a tunnel MTU, in kpackets/s (default "
                             + "; ".join(f"{m}={','.join(f'{r:g}' for r in rates)}" for m, rates in UDP_KPPS.items())
                             + ")")
    parser.add_argument("--measure", default=",".join(measure.MEASURES), metavar="WHAT,...",
                        help=f"what each session measures, of {', '.join(measure.MEASURES)} (default all); "
                             "iperf3 runs only for tcp or udp")
    parser.add_argument("--ping-count", type=int, default=100, help="pings per session (default 100)")
    parser.add_argument("--note", default="", help="a remark stored with the results (the machine's load...)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    parser.add_argument("--write-docs", action="store_true",
                        help="measure nothing: rewrite docs/performance.md's table, docs/performance.png and "
                             "docs/performance.json from the results file")
    args = parser.parse_args(argv)
    failures = Failures("bench_tunnel")

    if args.write_docs:
        results = json.loads(args.json.read_text())
        report.write_docs(results)
        print(f"wrote {report.DOC}, {report.DOC_PLOT} and {report.DOC_JSON} from {args.json}")
        return 0

    missing = [c for c in ("ip", "iperf3", "ping", "wireguard-go", "wg") if shutil.which(c) is None]
    if missing or os.geteuid() != 0:
        return failures.missing(f"root and {', '.join(missing) or 'nothing else'}")
    if args.quick:
        args.repeat, args.seconds, args.ping_count = 1, 2, 20
    args.mtu = args.mtu or [1420, 9000]
    rates = dict(UDP_KPPS)
    for item in args.udp_kpps:
        mtu, _, kpps = item.partition("=")
        rates[int(mtu)] = [float(rate) for rate in kpps.split(",")]
    measures = tuple(m.strip() for m in args.measure.split(",") if m.strip())
    unknown = [m for m in measures if m not in measure.MEASURES]
    if unknown or not measures:
        parser.error(f"--measure: {', '.join(unknown) or 'nothing'} is not one of {', '.join(measure.MEASURES)}")
    settings = measure.Settings(seconds=args.seconds, ping_count=args.ping_count, udp_kpps=rates,
                                measures=measures)

    signal.signal(signal.SIGTERM, interrupted)
    try:
        results = failures.run("the namespaces and the iperf3 server", measure_all, args, settings, failures)
    except KeyboardInterrupt:
        print("\nbench_tunnel: interrupted; namespaces removed, nothing written", file=sys.stderr)
        return 130
    if results is not None:
        report.print_table(results)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nresults: {args.json}")
        write_plot(results, args.json.with_suffix(".png"))
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
