"""One session: start a system, measure everything through it once, stop it.

A session's figures, in the order they are taken:
  first_reply_ms     bring A's link up, then send an ICMP echo every 2 ms until the first reply (the
                     handshake included for WireGuard; ARP for veth)
  ping_rtt_ms        median round trip of ``ping -i 0.01`` (kernel timestamps), after the session is up
  tcp1_*, tcp4_*     iperf3, one and four TCP streams, A to B, received rate
  udp_*              iperf3 -u at three fixed offered rates (half the test time each) with datagrams
                     that fill the tunnel MTU; the figure is the highest received rate of the three
  *_cpu_*            the daemons' utime + stime (/proc/PID/stat), both ends, over that one test
  rss_mib            the larger VmRSS of the two daemons, read after the tests
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import statistics
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import netns
from .netns import NS
from .systems import Failed

IPERF_PORT = 5201
RESEND = 0.002          # seconds between echoes while waiting for the first reply
FIRST_REPLY_TIMEOUT = 10.0
TICKS = os.sysconf("SC_CLK_TCK")
_ECHO = struct.Struct("!BBHHH")
_PING_TIME = re.compile(r"time=([\d.]+) ms")


MEASURES = ("first-reply", "ping", "tcp", "udp")   # what a session can take, in the order it takes them


@dataclass
class Settings:
    seconds: float
    ping_count: int
    udp_kpps: dict[int, list[float]]     # offered rates by tunnel MTU
    measures: tuple[str, ...] = MEASURES

    def udp_rates(self, mtu: int) -> list[float]:
        if mtu in self.udp_kpps:
            return self.udp_kpps[mtu]
        nearest = min(self.udp_kpps, key=lambda known: abs(known - mtu))
        # The same bit rates as at the nearest MTU given.
        return [round(rate * nearest / mtu, 1) for rate in self.udp_kpps[nearest]]


class IperfServer:
    """One ``iperf3 -s`` in namespace B for the whole run, restarted if a test leaves it stuck."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["ip", "netns", "exec", NS[1], "iperf3", "-s"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not netns.listening(self.process.pid, IPERF_PORT, "tcp"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("iperf3 server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def iperf(server: IperfServer, target: str, seconds: float, *options: str) -> dict:
    """iperf3's JSON report of a test from A to ``target``; one retry with a fresh server on failure."""
    command = ["iperf3", "-c", target, "-t", f"{seconds:g}", "-J", "--connect-timeout", "5000", *options]
    for attempt in range(2):
        run = subprocess.run(["ip", "netns", "exec", NS[0], *command], capture_output=True, text=True,
                             timeout=seconds + 60)
        try:
            report = json.loads(run.stdout)
        except json.JSONDecodeError:
            report = {"error": run.stderr.strip() or "no output"}
        if run.returncode == 0 and "error" not in report:
            return report
        if attempt == 0:
            server.restart()
    raise Failed(f"iperf3 {' '.join(options)}: {report.get('error')}")


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _echo(ident: int, sequence: int) -> bytes:
    payload = bytes(56)
    header = _ECHO.pack(8, 0, 0, ident, sequence)
    return _ECHO.pack(8, 0, _checksum(header + payload), ident, sequence) + payload


def first_reply(link: str, target: str) -> float:
    """Milliseconds from bringing ``link`` up in namespace A to the first echo reply from ``target``."""
    with netns.entered(NS[0]):
        icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ident = os.getpid() & 0xFFFF
    try:
        start = time.perf_counter()
        netns.set_link_up(control, link)
        sequence, next_send = 0, start
        while True:
            now = time.perf_counter()
            if now - start > FIRST_REPLY_TIMEOUT:
                raise Failed(f"no reply from {target} within {FIRST_REPLY_TIMEOUT:g} s of link-up")
            if now >= next_send:
                try:
                    icmp.sendto(_echo(ident, sequence), (target, 0))
                except OSError:  # no route for an instant after link-up: try again at the next tick
                    pass
                sequence, next_send = sequence + 1, now + RESEND
            if not select.select([icmp], [], [], max(0.0, next_send - time.perf_counter()))[0]:
                continue
            data, (source, _) = icmp.recvfrom(2048)
            header_length = (data[0] & 0x0F) * 4
            if source == target and len(data) >= header_length + 8:
                kind, _, _, reply_ident, _ = _ECHO.unpack_from(data, header_length)
                if kind == 0 and reply_ident == ident:
                    return (time.perf_counter() - start) * 1000
    finally:
        icmp.close()
        control.close()


def ping_rtt(target: str, count: int) -> float:
    """Median round-trip time in milliseconds of ``count`` echoes 10 ms apart."""
    run = subprocess.run(["ip", "netns", "exec", NS[0], "ping", "-n", "-c", str(count), "-i", "0.01", "-W", "1",
                          target], capture_output=True, text=True, timeout=count * 0.01 + 30)
    times = [float(t) for t in _PING_TIME.findall(run.stdout)]
    if not times:
        raise Failed(f"ping {target}: no reply")
    return statistics.median(times)


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])   # fields 14 and 15 of proc(5), counted from 1
    return total / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise Failed(f"no VmRSS for {pid}")


def tcp_test(figures: dict, name: str, server: IperfServer, system, mtu: int, seconds: float, streams: int) -> None:
    before = cpu_seconds(system.pids)
    report = iperf(server, system.target, seconds, "-P", str(streams))
    cpu = cpu_seconds(system.pids) - before
    received = report["end"]["sum_received"]
    figures[f"{name}_gbps"] = received["bits_per_second"] / 1e9
    figures[f"{name}_retransmits"] = report["end"]["sum_sent"].get("retransmits")
    if system.pids:
        # A data packet carries one MSS: the MTU less IPv4, TCP and timestamp option headers.
        packets = received["bytes"] / (mtu - 52)
        figures[f"{name}_cpu_cores"] = cpu / received["seconds"]
        figures[f"{name}_cpu_us_per_packet"] = cpu / packets * 1e6 if packets else None


def udp_test(figures: dict, server: IperfServer, system, mtu: int, seconds: float, rates: list[float]) -> None:
    """The best of a few paced rates, not iperf3's -b 0: an unpaced sender takes one of the two cores and
    past its knee a tunnel delivers less the more it is offered, so one rate far above capacity measures
    the collapse and the scheduler, and one rate below it measures nothing."""
    size = mtu - 28   # IPv4 and UDP headers: each datagram fills one tunnel packet
    steps = []
    for kpps in rates:
        before = cpu_seconds(system.pids)
        # -w 2M: socket buffers that ride out a scheduling pause of iperf3 itself on the shared cores.
        report = iperf(server, system.target, seconds, "-u", "-w", "2M", "-l", str(size),
                       "-b", str(int(kpps * 1000 * size * 8)))
        cpu = cpu_seconds(system.pids) - before
        received = report["end"]["sum_received"]
        delivered = received["packets"] - received["lost_packets"]
        step = {"offered_kpps": kpps, "received_kpps": delivered / received["seconds"] / 1000,
                "loss_percent": received["lost_percent"]}
        if system.pids:
            step["cpu_cores"] = cpu / received["seconds"]
            step["cpu_us_per_packet"] = cpu / delivered * 1e6 if delivered else None
        steps.append(step)
    best = max(steps, key=lambda step: step["received_kpps"])
    figures["udp_steps"] = steps
    for key, value in best.items():
        figures[f"udp_{key}"] = value


def session(system, mtu: int, settings: Settings, server: IperfServer) -> dict:
    """Start ``system`` at ``mtu``, take every figure once, stop it. Always returns what was measured; a
    failure is recorded under "error" and ends the session early."""
    figures: dict = {}
    try:
        system.start(mtu)
        # The link comes up either way (the first reply's clock); without that measure nobody times it.
        first = first_reply(system.link, system.target)
        if "first-reply" in settings.measures:
            figures["first_reply_ms"] = first
        if "ping" in settings.measures:
            figures["ping_rtt_ms"] = ping_rtt(system.target, settings.ping_count)
        if "tcp" in settings.measures:
            tcp_test(figures, "tcp1", server, system, mtu, settings.seconds, 1)
            tcp_test(figures, "tcp4", server, system, mtu, settings.seconds, 4)
        if "udp" in settings.measures:
            udp_test(figures, server, system, mtu, max(1.0, settings.seconds / 2), settings.udp_rates(mtu))
        if system.pids:
            figures["rss_mib"] = max(rss_mib(pid) for pid in system.pids)
    except (Failed, subprocess.SubprocessError, OSError, KeyError, ValueError) as err:
        figures["error"] = f"{type(err).__name__}: {err}"
    finally:
        system.stop()
    return figures
