"""Handshake-flood benchmark: a daemon flooded with valid-MAC1 initiations from a
/16 of spoofed sources, wgpy beside wireguard-go.

    python3 benchmarks/bench_flood.py [--quick] [--repeat 2] [--flooders 1] [--rate 0] [--ping-seconds 10] [--json FILE]

The rig of tests/interop/reliability.py (a fresh set of namespaces per session):

    ns A: the victim, wgpy or wireguard-go, wgfa   ns B: the legitimate peer, wireguard-go, wgfb
      tunnel 198.18.0.1                              tunnel 198.18.0.2
      va 192.0.2.1  <----------- veth ----------->  vb 192.0.2.2
      vc 203.0.113.1
          ^  initiations with a valid MAC1 (the attacker knows A's public key) to A's port, each from the
          |  next address of 10.77.0.0/16 and a port that changes every round (tests/interop/attack.py flood)
          v
      vx 203.0.113.2   ns C: the attacker; A routes 10.77.0.0/16 here, where an iptables rule counts the
                       answers (cookie replies are 92 bytes of IPv4) and drops them

A session, the systems alternating (reversed order on odd repetitions, so a drift in the machine's load
falls on both alike):
  1. start A and B, B pings A: the unloaded handshake and first reply; then ping -i 0.05 for 2 s
  2. start --flooders processes, as fast as each can send (each takes its own slice of the /16), or at
     --rate in all; WARM s. The attacker shares the machine's cores with the victim, so at full speed a
     victim that takes more CPU leaves the attacker less: the rate sent is reported, and --rate offers
     both systems the same load
  3. (a) ping -i 0.05 from B to A for --ping-seconds over the tunnel that exists: loss, average and
     maximum round trip
  4. (b) B forgets its session (wg setconf on B; A is left alone while flooded) and pings A every 0.1 s
     until the first reply: the fresh handshake, given HANDSHAKE_TIMEOUT
  5. stop the flood: what was sent, what reached A's UDP layer, what the kernel dropped unread (socket
     buffer full), what A answered; (c) A's CPU (utime + stime over the flood) and memory (VmRSS at the
     end, VmHWM: its peak)
Prints medians, the ratio wgpy / wireguard-go, and writes every session's figures to JSON (default
benchmarks/results/flood.json). Exits 1 when a session broke (a daemon did not start or died, a tool
failed), after the other sessions, and names each failure at the end; never because one system measured
worse. Needs root, ip, wg, ping, iptables and wireguard-go.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_tunnel import loadavg, version  # noqa: E402
from tunnelbench.measure import cpu_seconds  # noqa: E402

from tests.interop.reliability import (  # noqa: E402
    ATTACKER,
    Answers,
    Side,
    add_attacker,
    expect_line,
    python_in,
    status_kib,
    stop,
    udp_counters,
)
from tests.netns import Hosts  # noqa: E402
from failures import Failures  # noqa: E402

DEFAULT_JSON = HERE / "results" / "flood.json"
SYSTEMS = ("wireguard-go", "wgpy")
RATIO = "wgpy / wireguard-go"
TAG, PREFIX = "f", "wgf"
WARM = 2.0                 # seconds of flood before measuring: queues and buffers full, under load
BASELINE_SECONDS = 2.0
PING_INTERVAL = 0.05
HANDSHAKE_TIMEOUT = 25.0
FIRST_INTERVAL = 0.1       # a fresh handshake's pings, until the first reply
_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) received")


class Broken(Exception):
    """The session could not measure: a daemon did not start, a tool failed."""


# ------------------------------------------------------------------------------------------ measuring

def ping(hosts: Hosts, ns: str, address: str, seconds: float) -> dict:
    """``ping -i PING_INTERVAL`` for ``seconds``: sent, received, loss and round trips (None if none came)."""
    count = max(1, round(seconds / PING_INTERVAL))
    run = hosts.run(ns, "ping", "-q", "-n", "-c", str(count), "-i", str(PING_INTERVAL), "-W", "2", address,
                    check=False, timeout=seconds + 30)
    counts = _COUNTS.search(run.stdout)
    if counts is None:
        raise Broken(f"ping {address}: {run.stdout.strip()} {run.stderr.strip()}")
    sent, received = map(int, counts.groups())
    rtt = _RTT.search(run.stdout)
    return {"sent": sent, "received": received, "loss_percent": 100 * (sent - received) / sent,
            "rtt_avg_ms": float(rtt.group(2)) if rtt else None, "rtt_max_ms": float(rtt.group(3)) if rtt else None}


def first_reply(hosts: Hosts, ns: str, address: str, timeout: float) -> float | None:
    """Seconds from the first echo (one every FIRST_INTERVAL s) to the first reply; None after ``timeout``."""
    start = time.monotonic()
    run = hosts.run(ns, "ping", "-q", "-n", "-c", "1", "-i", str(FIRST_INTERVAL), "-w", f"{timeout:g}", address,
                    check=False, timeout=timeout + 30)
    elapsed = time.monotonic() - start
    return elapsed if run.returncode == 0 else None


def slices(sources: str, count: int) -> list[str]:
    """``count`` disjoint pieces of ``sources`` (count rounded down to a power of two), one per flooder."""
    bits = max(0, count.bit_length() - 1)
    return [str(net) for net in ipaddress.ip_network(sources).subnets(prefixlen_diff=bits)]


def session(system: str, args, tmp: Path) -> dict:
    """Everything measured once with ``system`` as the victim; a failure is recorded under "error"."""
    figures: dict = {}
    try:
        with Hosts(TAG) as hosts:
            measure(hosts, system, args, tmp, figures)
    except (Broken, AssertionError, OSError, subprocess.SubprocessError, ValueError, KeyError) as err:
        figures["error"] = f"{type(err).__name__}: {str(err)[:1000]}"
    return figures


def measure(hosts: Hosts, system: str, args, tmp: Path, figures: dict) -> None:
    for old in tmp.glob(f"{PREFIX}*"):
        old.unlink()
    a = Side(hosts, "a", system, tmp, prefix=PREFIX)
    b = Side(hosts, "b", "wireguard-go", tmp, prefix=PREFIX)
    a.log_level = "error"   # a verbose victim would write a line per flood datagram
    a.start()
    b.start()
    a.configure(b)
    b.configure(a)
    c = add_attacker(hosts)
    answers = Answers(hosts, c, a.port)

    figures["handshake_unloaded_s"] = first_reply(hosts, b.ns, a.address, HANDSHAKE_TIMEOUT)
    if figures["handshake_unloaded_s"] is None:
        raise Broken(f"no tunnel through {system} without a flood")
    baseline = ping(hosts, b.ns, a.address, BASELINE_SECONDS)
    figures["baseline_loss_percent"], figures["baseline_rtt_avg_ms"] = baseline["loss_percent"], baseline["rtt_avg_ms"]
    figures["rss_idle_mib"] = a.rss_kib() / 1024

    pid = a.process.pid
    counters, cpu, clock = udp_counters(hosts, a.ns), cpu_seconds([pid]), time.monotonic()
    flooders, pieces = [], slices(ATTACKER["sources"], args.flooders)
    for sources in pieces:
        flooder = python_in(hosts, c, "tests.interop.attack", "flood", f"{a.underlay}:{a.port}", "--public",
                            a.key.public.hex(), "--sources", sources, "--rate", str(args.rate / len(pieces)),
                            "--seconds", str(WARM + args.ping_seconds + args.handshake_timeout + 30))
        flooders.append(flooder)
    for flooder in flooders:
        expect_line(flooder, "ready")
    time.sleep(WARM)

    # (a) the tunnel that exists
    during = ping(hosts, b.ns, a.address, args.ping_seconds)
    figures.update({f"ping_{key}": value for key, value in during.items()})
    # (b) a fresh handshake: B forgets its session and initiates
    before = (b.log_count("Sending handshake initiation"), b.log_count("Receiving cookie response"))
    b.wg("setconf", b.name, str(tmp / f"{b.name}.conf"))
    figures["handshake_s"] = first_reply(hosts, b.ns, a.address, args.handshake_timeout)
    figures["handshake_initiations_sent"] = b.log_count("Sending handshake initiation") - before[0]
    figures["handshake_cookies_received"] = b.log_count("Receiving cookie response") - before[1]

    # (c) the victim's cost, then the flood's figures
    if a.process.poll() is not None:
        raise Broken(f"{system} exited during the flood: {a.log.read_text()[-1000:]}")
    figures["victim_rss_mib"] = a.rss_kib() / 1024
    figures["victim_peak_rss_mib"] = status_kib(pid, "VmHWM") / 1024
    results = [stop(flooder) for flooder in flooders]
    seconds = time.monotonic() - clock
    figures["victim_cpu_cores"] = (cpu_seconds([pid]) - cpu) / seconds
    after = udp_counters(hosts, a.ns)
    unread = after["RcvbufErrors"] - counters["RcvbufErrors"]
    read = after["InDatagrams"] - counters["InDatagrams"]
    cookie_replies, responses, _ = answers.read()
    sent = sum(result["sent"] for result in results)
    figures.update({
        "flood_seconds": seconds,
        "flood_sent": sent,
        "flood_kpps": sum(result["rate"] for result in results) / 1000,
        "flood_sources": sum(result["sources"] for result in results),
        "arrived_kpps": (read + unread) / seconds / 1000,
        "read_kpps": read / seconds / 1000,
        "unread_percent": 100 * unread / max(1, read + unread),
        "cookie_replies_kpps": cookie_replies / seconds / 1000,
        "responses_to_flood": responses,
    })


# ------------------------------------------------------------------------------------------ reporting

ROWS = (   # key, label, decimals
    ("flood_kpps", "flood sent, kpackets/s", 1),
    ("arrived_kpps", "arrived at the victim's UDP socket, kpackets/s", 1),
    ("read_kpps", "read by the victim, kpackets/s", 1),
    ("unread_percent", "dropped unread (socket buffer full), %", 1),
    ("cookie_replies_kpps", "cookie replies sent, kpackets/s", 1),
    ("baseline_rtt_avg_ms", "ping before the flood, average RTT, ms", 3),
    ("ping_loss_percent", "(a) ping during the flood, loss, %", 1),
    ("ping_rtt_avg_ms", "(a) ping during the flood, average RTT, ms", 2),
    ("ping_rtt_max_ms", "(a) ping during the flood, maximum RTT, ms", 1),
    ("handshake_unloaded_s", "handshake + first reply, no flood, s", 3),
    ("handshake_s", "(b) fresh handshake + first reply during the flood, s", 2),
    ("handshake_initiations_sent", "(b) initiations B sent meanwhile", 0),
    ("handshake_cookies_received", "(b) cookie replies B received meanwhile", 0),
    ("victim_cpu_cores", "(c) victim CPU during the flood, cores", 2),
    ("victim_rss_mib", "(c) victim RSS at the end, MiB", 1),
    ("victim_peak_rss_mib", "(c) victim peak RSS, MiB", 1),
)


def summarize(sessions: list[dict], handshake_timeout: float) -> dict:
    """{metric: {system: median, RATIO: wgpy / wireguard-go}}. A handshake that did not complete counts as
    the timeout (so the median is a lower bound), and is flagged under "<metric> timeouts"."""
    summary: dict = {}
    for key, _, _ in ROWS:
        by_system: dict = {}
        for s in sessions:
            if "error" in s["figures"] and key not in s["figures"]:
                continue
            value = s["figures"].get(key)
            if key == "handshake_s" and value is None and key in s["figures"]:
                value = handshake_timeout
                summary.setdefault("handshake_s timeouts", {}).setdefault(s["system"], 0)
                summary["handshake_s timeouts"][s["system"]] += 1
            if isinstance(value, (int, float)):
                by_system.setdefault(s["system"], []).append(value)
        medians = {system: statistics.median(values) for system, values in by_system.items()}
        if medians.get("wireguard-go") and "wgpy" in medians:
            medians[RATIO] = medians["wgpy"] / medians["wireguard-go"]
        summary[key] = medians
    return summary


def print_table(results: dict) -> None:
    summary = results["summary"]
    timeouts = summary.get("handshake_s timeouts", {})
    print(f"\n{'':56s} {'wireguard-go':>13s} {'wgpy':>11s} {RATIO:>20s}")
    for key, label, decimals in ROWS:
        row = summary.get(key, {})
        cells = []
        for system in SYSTEMS:
            value = row.get(system)
            text = "–" if value is None else f"{value:,.{decimals}f}"
            if key == "handshake_s" and timeouts.get(system):
                text = f">{text}" if timeouts[system] == results["settings"]["repeat"] else f"{text}*"
            cells.append(text)
        ratio = row.get(RATIO)
        print(f"{label:56s} {cells[0]:>13s} {cells[1]:>11s} {'–' if ratio is None else f'{ratio:,.2f}':>20s}")
    if timeouts:
        print(f"(>: no fresh handshake within {results['settings']['handshake_timeout_s']:g} s in any repetition; "
              f"*: in some)")
    for s in results["sessions"]:
        if "error" in s["figures"]:
            print(f"repetition {s['repetition'] + 1}, {s['system']}: FAILED: {s['figures']['error']}")


def progress(repetition: int, repeat: int, system: str, figures: dict) -> str:
    if "error" in figures:
        return f"[{repetition + 1}/{repeat}] {system:13s} FAILED: {figures['error']}"
    handshake = figures.get("handshake_s")
    return (f"[{repetition + 1}/{repeat}] {system:13s} flood {figures['flood_kpps']:.1f} kpps "
            f"({figures['unread_percent']:.0f}% unread), ping loss {figures['ping_loss_percent']:.0f}% "
            f"avg {figures['ping_rtt_avg_ms'] or float('nan'):.1f} ms, fresh handshake "
            f"{'%.2f s' % handshake if handshake is not None else 'timed out'}, "
            f"CPU {figures['victim_cpu_cores']:.2f} cores, RSS {figures['victim_rss_mib']:.0f} MiB")


def interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--quick", action="store_true", help="1 repetition, 4 s of pings")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions (default 1)")
    parser.add_argument("--flooders", type=int, default=1, help="attacking processes (default 1; a power of two)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="initiations per second, all flooders together (default 0: as fast as they can)")
    parser.add_argument("--ping-seconds", type=float, default=10.0, help="(a)'s duration (default 10)")
    parser.add_argument("--handshake-timeout", type=float, default=HANDSHAKE_TIMEOUT,
                        help=f"(b)'s limit, seconds (default {HANDSHAKE_TIMEOUT:g})")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--note", default="", help="a remark stored with the results")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    args = parser.parse_args(argv)
    failures = Failures("bench_flood")
    if args.quick:
        args.repeat, args.ping_seconds = 1, 4.0

    missing = [c for c in ("ip", "wg", "ping", "iptables", "wireguard-go") if shutil.which(c) is None]
    if missing or os.geteuid() != 0:
        return failures.missing(f"root and {', '.join(missing) or 'nothing else'}")

    started, clock = datetime.now(timezone.utc), time.monotonic()
    results = {
        "benchmark": "flood",
        "started": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "wireguard_go": version("wireguard-go"), "loadavg_start": loadavg()},
        "settings": {"repeat": args.repeat, "flooders": args.flooders, "rate": args.rate, "warm_s": WARM,
                     "ping_seconds": args.ping_seconds, "ping_interval_s": PING_INTERVAL,
                     "handshake_timeout_s": args.handshake_timeout, "sources": ATTACKER["sources"],
                     "systems": args.systems},
        "note": args.note,
        "sessions": [],
    }
    signal.signal(signal.SIGTERM, interrupted)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_flood") as tmp:
            for repetition in range(args.repeat):
                order = args.systems if repetition % 2 == 0 else args.systems[::-1]
                for system in order:
                    name = f"{system}, repetition {repetition + 1}"
                    figures = failures.run(name, session, system, args, Path(tmp))
                    if figures is None:   # not a failure session() knows: recorded under its name
                        figures = {"error": failures.failed[name]}
                    elif "error" in figures:
                        failures.record(name, figures["error"])
                    results["sessions"].append({"repetition": repetition, "system": system, "figures": figures})
                    print(progress(repetition, args.repeat, system, figures), flush=True)
    except KeyboardInterrupt:
        print("\nbench_flood: interrupted; namespaces removed, nothing written", file=sys.stderr)
        return 130
    results["machine"]["loadavg_end"] = loadavg()
    results["duration_s"] = round(time.monotonic() - clock, 1)
    results["summary"] = summarize(results["sessions"], args.handshake_timeout)
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nresults: {args.json}")
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
