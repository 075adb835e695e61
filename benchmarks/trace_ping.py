"""Where a ping's round trip goes inside wgpy: a timestamp at each step of both daemons' loops.

    python3 benchmarks/trace_ping.py [--count 200] [--json FILE]

One session of tunnelbench (its namespaces and interface names, so never while bench_tunnel runs):
two wgpy daemons whose loop, device, UDP and TUN calls are wrapped to record CLOCK_MONOTONIC
nanoseconds (one clock for all processes, so the two daemons' records line up), link-up to first reply,
then ``ping -i 0.01``. Prints the first handshake's steps and, for the pings, the median of each step
of the path: A's TUN wake-up -> device -> sendmsg -> B's wake-up -> recvmsg -> device -> TUN write,
the kernel's echo reply, and back. The wrappers cost about a microsecond each, so the steps add up to
a little more than the untraced round trip. Needs root, ip and ping.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECORD_DIR = Path("/run/wgpy-trace-ping")


# ------------------------------------------------------------------------------ inside each daemon

def run_daemon(interface: str) -> int:
    sys.path.insert(0, str(ROOT))
    from wgpy.core import device as device_module
    from wgpy.runtime import loop, tun, udp
    from wgpy.runtime.daemon import main

    records: list = []
    record = records.append
    clock = time.monotonic_ns

    class TracedPoll:
        def __init__(self, poll) -> None:
            self._inner = poll

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def poll(self, timeout=None):
            record((clock(), "poll>"))
            ready = self._inner.poll(timeout)
            record((clock(), "poll<"))
            return ready

    def wrap(cls, name: str, label: str) -> None:
        inner = getattr(cls, name)

        def traced(*args, **kwargs):
            record((clock(), label + ">"))
            try:
                return inner(*args, **kwargs)
            finally:
                record((clock(), label + "<"))
        setattr(cls, name, traced)

    for cls, name, label in ((loop.Runtime, "_read_tun", "read_tun"), (loop.Runtime, "_read_udp", "read_udp"),
                             (loop.Runtime, "_flush", "flush"), (loop.Runtime, "_housekeeping", "housekeeping"),
                             (device_module.Device, "send_packets", "device_send"),
                             (device_module.Device, "receive_datagrams", "device_receive"),
                             (device_module.Device, "handle_timer", "timers"),
                             (udp.Udp, "send_many", "sendmsg"), (udp.Udp, "receive", "recvmsg"),
                             (tun.Tun, "write_many", "tun_write")):
        wrap(cls, name, label)
    plain_init, plain_run = loop.Runtime.__init__, loop.Runtime.run

    def init(self, *args, **kwargs):
        plain_init(self, *args, **kwargs)
        self._poll = TracedPoll(self._poll)

    def run(self, *args, **kwargs):
        try:
            return plain_run(self, *args, **kwargs)
        finally:
            (RECORD_DIR / f"{interface}.json").write_text(json.dumps(records))

    loop.Runtime.__init__, loop.Runtime.run = init, run
    return main(interface, True)


# ------------------------------------------------------------------------------ the session

def wake_ups(records: list) -> list[dict]:
    """Each wake-up of a loop: label -> time (first entry, last exit), from poll's return to its next call."""
    found, current = [], None
    for t, label in records:
        if label == "poll<":
            current = {"poll<": t}
        elif label == "poll>":
            if current is not None:
                current["poll>"] = t
                found.append(current)
            current = None
        elif current is not None:
            current.setdefault(label, t)
            if label.endswith("<"):
                current[label] = t
    return found


def first_at_or_after(wakes: list[dict], key: str, t: int):
    return next((w for w in wakes if key in w and w["poll<"] >= t), None)


def steps(a: list[dict], b: list[dict]) -> dict[str, list[float]]:
    """Per ping (A sends, B receives, B's kernel answers, B sends, A receives), microseconds per step."""
    out: dict[str, list[float]] = {}

    def add(name, value):
        out.setdefault(name, []).append(value / 1000)

    sent = [w for w in a if "read_tun>" in w and "sendmsg<" in w]
    for w1 in sent[3:]:   # past the handshake and the first packets
        w2 = first_at_or_after(b, "tun_write<", w1["sendmsg<"])
        w3 = w2 and first_at_or_after(b, "sendmsg<", w2["tun_write<"])
        w4 = w3 and first_at_or_after(a, "tun_write<", w3["sendmsg<"])
        if not w4 or w4["poll<"] - w1["poll<"] > 5_000_000:   # lost or unmatched
            continue
        for w, who in ((w1, "A"), (w3, "B")):
            add(f"{who} send: poll returns -> TUN read starts", w["read_tun>"] - w["poll<"])
            add(f"{who} send: TUN read (to EAGAIN)", (w["read_tun<"] - w["read_tun>"]) - (w["device_send<"] - w["device_send>"]))
            add(f"{who} send: device.send_packets (route, encrypt, timers)", w["device_send<"] - w["device_send>"])
            add(f"{who} send: flush until sendmsg", w["sendmsg>"] - w["read_tun<"])
            add(f"{who} send: Udp.send_many (sendmsg, veth, peer's wake-up)", w["sendmsg<"] - w["sendmsg>"])
            add(f"{who} send: after sendmsg -> poll again", w["poll>"] - w["sendmsg<"])
        add("network: A's sendmsg returns -> B's poll returns", w2["poll<"] - w1["sendmsg<"])
        for w, who in ((w2, "B"), (w4, "A")):
            add(f"{who} receive: poll returns -> UDP read starts", w["read_udp>"] - w["poll<"])
            add(f"{who} receive: Udp.receive (recvmsg to EAGAIN)", w["recvmsg<"] - w["recvmsg>"])
            add(f"{who} receive: device.receive_datagrams (decrypt, replay, allowed IPs)", w["device_receive<"] - w["device_receive>"])
            add(f"{who} receive: until TUN write", w["tun_write>"] - w["device_receive<"])
            add(f"{who} receive: Tun.write_many (writev, kernel delivery)", w["tun_write<"] - w["tun_write>"])
            add(f"{who} receive: after TUN write -> poll again", w["poll>"] - w["tun_write<"])
        add("kernel: B's TUN write returns -> B's poll returns with the reply", w3["poll<"] - w2["tun_write<"])
        add("network: B's sendmsg returns -> A's poll returns", w4["poll<"] - w3["sendmsg<"])
        add("A: poll returns with the request -> reply written to TUN", w4["tun_write<"] - w1["poll<"])
        add("in A's loop (both wake-ups)", (w1["poll>"] - w1["poll<"]) + (w4["poll>"] - w4["poll<"]))
        add("in B's loop (both wake-ups)", (w2["poll>"] - w2["poll<"]) + (w3["poll>"] - w3["poll<"]))
    return out


def handshake_steps(a: list[dict], b: list[dict]) -> list[tuple[str, float]]:
    """The first packet's wake-ups on both sides, in time order: what each did and for how long."""
    rows = []
    for who, wakes in (("A", a), ("B", b)):
        for w in wakes:
            work = [k[:-1] for k in w if k.endswith(">") and k != "poll>" and k[:-1] + "<" in w]
            if any(k in ("device_send", "device_receive") for k in work):
                rows.append((w["poll<"], who, ", ".join(f"{k} {(w[k + '<'] - w[k + '>']) / 1000:.0f}" for k in work),
                             (w["poll>"] - w["poll<"]) / 1000))
                if len([r for r in rows if r[1] == who]) >= 3:
                    break
    rows.sort()
    start = rows[0][0] if rows else 0
    return [(f"+{(t - start) / 1000:7.0f} us  {who}: {work}", spent) for t, who, work, spent in rows]


def session(count: int) -> dict:
    sys.path.insert(0, str(HERE))
    from tunnelbench import measure, netns
    from tunnelbench.systems import Wgpy

    class Traced(Wgpy):
        def command(self, n: int, mtu: int) -> list[str]:
            return [sys.executable, str(Path(__file__).resolve()), "--daemon", netns.TUNNEL_NAMES[n]]

    RECORD_DIR.mkdir(mode=0o700, exist_ok=True)
    system = Traced()
    netns.setup()
    try:
        netns.set_underlay_mtu(1420)
        system.start(1420)
        first = measure.first_reply(system.link, system.target)
        ping = measure.ping_rtt(system.target, count)
    finally:
        system.stop()
        netns.teardown()
    try:
        a, b = (wake_ups(json.loads((RECORD_DIR / f"{name}.json").read_text())) for name in netns.TUNNEL_NAMES)
    finally:
        shutil.rmtree(RECORD_DIR, ignore_errors=True)   # the daemons' records: read, then gone
    return {"first_reply_ms": first, "ping_rtt_ms": ping, "loadavg": os.getloadavg(),
            "handshake": handshake_steps(a, b),
            "steps_us": {name: statistics.median(values) for name, values in steps(a, b).items()},
            "pings_matched": len(steps(a, b).get("in A's loop (both wake-ups)", []))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--count", type=int, default=200, help="pings (default 200)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--daemon", metavar="IFACE", help=argparse.SUPPRESS)   # a traced daemon, started by the session
    args = parser.parse_args(argv)
    if args.daemon:
        return run_daemon(args.daemon)
    if os.geteuid() != 0:
        print("trace_ping: needs root (namespaces, TUN)", file=sys.stderr)
        return 1
    result = session(args.count)
    print(f"traced: link-up to first reply {result['first_reply_ms']:.2f} ms, ping {result['ping_rtt_ms']:.3f} ms "
          f"(the wrappers add a little), load average {result['loadavg'][0]:.2f}")
    print("\nthe first packet's wake-ups (microseconds per call; read_tun/read_udp include the device, flush the sends):")
    for line, spent in result["handshake"]:
        print(f"  {line}  [{spent:.0f} us in the loop]")
    print(f"\nper ping, medians of {result['pings_matched']} pings, microseconds:")
    for name, value in result["steps_us"].items():
        print(f"  {name:72s} {value:8.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
