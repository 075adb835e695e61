"""TCP through ``wgpy proxy`` (SOCKS5) beside wgpy's TUN mode, in the same run: throughput both ways and
connections per second.

    python3 benchmarks/bench_proxy.py [--quick] [--repeat 3] [--megabytes 128] [--connections 400]

    pf13-a (the near peer, one of two modes at a time)           pf13-b
      tun:   python -m wgpy -f pf13wg-a, 10.113.0.1NN/24           wireguard-go pf13wg-b 10.113.0.1/24
             curl http://10.113.0.1:8080/...                        an HTTP server on 10.113.0.1:8080:
      proxy: python -m wgpy proxy pf13px.conf --socks5 :1080          GET /blob (sendfile), PUT /sink
             curl --socks5-hostname 127.0.0.1:1080 http://...         (read and dropped), GET /small
      pf13a0 192.0.2.1/24  <------------ veth, UDP ------------>  pf13b0 192.0.2.2/24

The far side (wireguard-go and the kernel's TCP under a small Python server that uses sendfile) is set up
once; each repetition starts each mode afresh, alternating them (reversed order on odd repetitions, so a
drift in the machine's load falls on both alike), and measures with curl: a download (GET of a blob),
an upload (PUT of the same size) and connections per second (short GETs of 64 bytes, each on a new
connection, at a given concurrency), with the wgpy process's CPU (utime + stime) over each. Prints
medians and the ratio proxy / TUN; writes every session's figures to a JSON file (default
benchmarks/results/proxy.json). Needs root, ip, curl, wireguard-go and wg. Exits 1 when a mode failed
in a session (a daemon that did not start or died, a curl that errored), after measuring the others,
and names each failure at the end; never because a figure came out worse.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
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
sys.path.insert(0, str(HERE))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from failures import Failures  # noqa: E402
from tunnelbench.measure import cpu_seconds  # noqa: E402
from tunnelbench.netns import listening, sh  # noqa: E402

DEFAULT_JSON = HERE / "results" / "proxy.json"
NS = ("pf13-a", "pf13-b")
VETH = ("pf13a0", "pf13b0")
UNDERLAY = ("192.0.2.1", "192.0.2.2")
FAR_ADDRESS = "10.113.0.1"
# Each session's near peer takes the next address of 10.113.0.128/25, so no session's connections meet
# the far side's TIME-WAIT of an earlier one: without TCP timestamps (RFC 7323) a new process's new ISN
# secret made Linux refuse about half of the SYNs that reuse such a 4-tuple, each refusal costing the
# client an RST and a SYN retransmission a second later (docs/performance.md). wgpy's stack now sends
# wall-clock timestamps, which pass Linux's TIME-WAIT check; --same-address shows it.
NEAR_NETWORK = "10.113.0.128/25"
NEAR_TUN, FAR_TUN = "pf13wg-a", "pf13wg-b"
PROXY_NAME = "pf13px"                        # the configuration file's name, so the UAPI socket's
PORT = 51813
HTTP_PORT = 8080
SOCKS_PORT = 1080
START_TIMEOUT = 20.0
SMALL_BODY = 64

SERVER = r"""
import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BLOB = sys.argv[3]
SMALL = b"x" * int(sys.argv[4])


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path != "/blob":
            self.send_response(200)
            self.send_header("Content-Length", str(len(SMALL)))
            self.end_headers()
            self.wfile.write(SMALL)
            return
        size = os.path.getsize(BLOB)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(BLOB, "rb") as blob:
            offset = 0
            while offset < size:
                sent = os.sendfile(self.connection.fileno(), blob.fileno(), offset, size - offset)
                if not sent:
                    break
                offset += sent

    def do_PUT(self):
        left = length = int(self.headers["Content-Length"])
        view = memoryview(bytearray(1 << 18))
        while left:
            got = self.rfile.readinto(view[:min(left, len(view))])
            if not got:
                break
            left -= got
        body = str(length - left).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


Server((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
"""


class Failed(Exception):
    """A mode did not start, died, or a client failed during a session."""


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# ------------------------------------------------------------------------------------ the far side

class Far:
    """The namespaces, the veth, wireguard-go and the HTTP server in pf13-b; ``near_key`` is the peer both
    modes use, so the far side never changes between sessions."""

    def __init__(self, work: Path, megabytes: int, mtu: int, same_address: bool = False) -> None:
        self.work, self.mtu = work, mtu
        self.same_address = same_address
        self.blob = work / "blob"
        self.megabytes = megabytes
        self.near_key, self.far_key = X25519PrivateKey.generate(), X25519PrivateKey.generate()
        self.processes: list[subprocess.Popen] = []
        self.sessions = 0

    def next_address(self) -> str:
        """The near peer's tunnel address for the next session (see NEAR_NETWORK)."""
        self.sessions += 1
        if self.same_address:  # every session on one address: later ones meet the far side's TIME-WAIT
            return "10.113.0.129"
        return f"10.113.0.{128 + self.sessions % 127}"

    def __enter__(self) -> "Far":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        # A second Ctrl-C must not leave daemons or namespaces behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            self.stop()
        finally:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])

    def start(self) -> None:
        teardown()
        with open(self.blob, "wb") as blob:
            blob.truncate(self.megabytes << 20)   # zeros, in tmpfs when the work folder is /dev/shm
        for ns in NS:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", VETH[0], "netns", NS[0], "type", "veth", "peer", "name", VETH[1], "netns", NS[1])
        for ns, veth, address in zip(NS, VETH, UNDERLAY):
            sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", veth)
            sh("ip", "-n", ns, "link", "set", veth, "mtu", str(max(1500, self.mtu + 80)), "up")
        wgo = subprocess.Popen(["ip", "netns", "exec", NS[1], "wireguard-go", "-f", FAR_TUN],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(wgo)
        deadline = time.monotonic() + START_TIMEOUT
        while not Path(f"/var/run/wireguard/{FAR_TUN}.sock").exists():
            alive(wgo, "wireguard-go", deadline)
            time.sleep(0.01)
        subprocess.run(["ip", "netns", "exec", NS[1], "wg", "set", FAR_TUN, "private-key", "/dev/stdin",
                        "listen-port", str(PORT), "peer", b64(self.near_key.public_key().public_bytes_raw()),
                        "allowed-ips", NEAR_NETWORK],
                       input=b64(self.far_key.private_bytes_raw()) + "\n", check=True, capture_output=True,
                       text=True, timeout=30)
        sh("ip", "-n", NS[1], "link", "set", FAR_TUN, "mtu", str(self.mtu))
        sh("ip", "-n", NS[1], "addr", "add", f"{FAR_ADDRESS}/24", "dev", FAR_TUN)
        sh("ip", "-n", NS[1], "link", "set", FAR_TUN, "up")
        server = subprocess.Popen(["ip", "netns", "exec", NS[1], sys.executable, "-c", SERVER, FAR_ADDRESS,
                                   str(HTTP_PORT), str(self.blob), str(SMALL_BODY)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.processes.append(server)
        while not listening(server.pid, HTTP_PORT, "tcp"):
            alive(server, "the HTTP server", deadline)
            time.sleep(0.02)

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)
        self.processes = []
        teardown()
        self.blob.unlink(missing_ok=True)


def teardown() -> None:
    """Kill whatever still runs in our namespaces, delete them and any UAPI socket of ours."""
    for ns in NS:
        listed = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in listed.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for name in (NEAR_TUN, FAR_TUN, PROXY_NAME):
        Path(f"/var/run/wireguard/{name}.sock").unlink(missing_ok=True)


def alive(process: subprocess.Popen, what: str, deadline: float, log: Path | None = None) -> None:
    if process.poll() is not None:
        tail = log.read_text(errors="replace").strip()[-500:] if log and log.exists() else ""
        raise Failed(f"{what} exited with {process.returncode}{': ' + tail if tail else ''}")
    if time.monotonic() > deadline:
        raise Failed(f"{what} did not get ready within {START_TIMEOUT:g} s")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# ------------------------------------------------------------------------------------ the near side

class Mode:
    """The near peer: wgpy as a TUN daemon or as ``wgpy proxy``; ``curl_options`` reach the far side."""

    key = ""
    curl_options: list[str] = []

    def __init__(self, far: Far) -> None:
        self.far = far
        self.address = far.next_address()
        self.process: subprocess.Popen | None = None
        self.log = far.work / f"{self.key}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with open(self.log, "wb") as log:
            # ip netns exec execs the command, so the Popen's pid is wgpy's.
            self.process = subprocess.Popen(["ip", "netns", "exec", NS[0], *self.command()], env=env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.configure(time.monotonic() + START_TIMEOUT)

    def configure(self, deadline: float) -> None:
        raise NotImplementedError

    def check(self, deadline: float) -> None:
        alive(self.process, f"wgpy ({self.key})", deadline, self.log)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        subprocess.run(["ip", "-n", NS[0], "link", "del", NEAR_TUN], capture_output=True)
        for name in (NEAR_TUN, PROXY_NAME):
            Path(f"/var/run/wireguard/{name}.sock").unlink(missing_ok=True)


class TunMode(Mode):
    key = "tun"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "wgpy", "-f", NEAR_TUN]

    def configure(self, deadline: float) -> None:
        while not Path(f"/var/run/wireguard/{NEAR_TUN}.sock").exists():
            self.check(deadline)
            time.sleep(0.01)
        far_public = b64(self.far.far_key.public_key().public_bytes_raw())
        subprocess.run(["ip", "netns", "exec", NS[0], "wg", "set", NEAR_TUN, "private-key", "/dev/stdin",
                        "listen-port", str(PORT), "peer", far_public, "endpoint", f"{UNDERLAY[1]}:{PORT}",
                        "allowed-ips", f"{FAR_ADDRESS}/32"],
                       input=b64(self.far.near_key.private_bytes_raw()) + "\n", check=True,
                       capture_output=True, text=True, timeout=30)
        sh("ip", "-n", NS[0], "link", "set", NEAR_TUN, "mtu", str(self.far.mtu))
        sh("ip", "-n", NS[0], "addr", "add", f"{self.address}/24", "dev", NEAR_TUN)
        sh("ip", "-n", NS[0], "link", "set", NEAR_TUN, "up")


class ProxyMode(Mode):
    key = "proxy"
    curl_options = ["--socks5-hostname", f"127.0.0.1:{SOCKS_PORT}"]

    def command(self) -> list[str]:
        config = self.far.work / f"{PROXY_NAME}.conf"
        with open(os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(f"[Interface]\nPrivateKey = {b64(self.far.near_key.private_bytes_raw())}\n"
                       f"Address = {self.address}/24\nMTU = {self.far.mtu}\n"
                       f"[Peer]\nPublicKey = {b64(self.far.far_key.public_key().public_bytes_raw())}\n"
                       f"Endpoint = {UNDERLAY[1]}:{PORT}\nAllowedIPs = {FAR_ADDRESS}/32\n")
        return [sys.executable, "-m", "wgpy", "proxy", str(config), "--socks5", f"127.0.0.1:{SOCKS_PORT}"]

    def configure(self, deadline: float) -> None:
        while not listening(self.process.pid, SOCKS_PORT, "tcp"):
            self.check(deadline)
            time.sleep(0.02)


MODES = {mode.key: mode for mode in (TunMode, ProxyMode)}


# ------------------------------------------------------------------------------------ measurements

def curl(mode: Mode, *args: str, timeout: float = 120) -> str:
    run = subprocess.run(["ip", "netns", "exec", NS[0], "curl", "--silent", "--show-error", "--fail",
                          "--max-time", str(int(timeout)), *mode.curl_options, *args],
                         capture_output=True, text=True, timeout=timeout + 30)
    if run.returncode != 0:
        raise Failed(f"curl {' '.join(args[-1:])} exited with {run.returncode}: {run.stderr.strip()[-300:]}")
    return run.stdout


def timed(mode: Mode, figures: dict, name: str, unit: str, count: float, work) -> None:
    """``work()`` returns the function of the elapsed seconds that gives the figure ``name``; also wgpy's
    CPU over it, in cores and in microseconds per ``unit`` (``count`` of them were carried)."""
    pids = [mode.process.pid]
    cpu, began = cpu_seconds(pids), time.monotonic()
    done = work()
    seconds = time.monotonic() - began
    mode.check(float("inf"))
    cpu = cpu_seconds(pids) - cpu
    figures[name] = done(seconds)
    figures[f"{name}_cpu_cores"] = cpu / seconds
    figures[f"{name}_cpu_us_per_{unit}"] = cpu / count * 1e6


def session(mode: Mode, args) -> dict:
    """Start ``mode``, take every figure once, stop it; raises Failed when something broke."""
    url = f"http://{FAR_ADDRESS}:{HTTP_PORT}"
    size = args.megabytes << 20
    figures: dict = {}
    try:
        mode.start()
        began = time.monotonic()
        curl(mode, "-o", "/dev/null", f"{url}/small", timeout=20)     # the handshake, and a first request
        figures["first_request_ms"] = (time.monotonic() - began) * 1000

        def download():
            got = curl(mode, "-o", "/dev/null", "-w", "%{size_download} %{time_total}", f"{url}/blob").split()
            if int(got[0]) != size:
                raise Failed(f"downloaded {got[0]} bytes of {size}")
            return lambda seconds: size * 8 / float(got[1]) / 1e6

        def upload():
            got = curl(mode, "-H", "Expect:", "-T", str(mode.far.blob), "-w", "\n%{size_upload} %{time_total}",
                       f"{url}/sink").split()
            if got[0] != str(size) or int(got[1]) != size:
                raise Failed(f"uploaded {got[1]} bytes of {size}, the server read {got[0]}")
            return lambda seconds: size * 8 / float(got[2]) / 1e6

        def connections():
            count = args.connections
            got = curl(mode, "--parallel", "--parallel-max", str(args.concurrency), "-w", "\n%{http_code}\n",
                       f"{url}/small?[1-{count}]")
            answered = sum(1 for line in got.splitlines() if line == "200")
            if answered != count:
                raise Failed(f"{answered} of {count} short requests answered")
            return lambda seconds: count / seconds

        # Segments: the payload in full-sized ones (an IPv4 MSS without options, as wgpy's stack sends).
        segments = size / (mode.far.mtu - 40)
        timed(mode, figures, "download_mbps", "segment", segments, download)
        timed(mode, figures, "upload_mbps", "segment", segments, upload)
        timed(mode, figures, "connections_per_s", "connection", args.connections, connections)
    finally:
        mode.stop()
    return figures


FIGURES = ("download_mbps", "upload_mbps", "connections_per_s")


def summarize(sessions: list[dict]) -> dict:
    """Medians per mode of each figure (and its CPU), and the ratio proxy / tun of the medians."""
    summary: dict = {}
    for key in MODES:
        measured = [s["figures"] for s in sessions if s["mode"] == key and "error" not in s["figures"]]
        if measured:
            summary[key] = {name: statistics.median(f[name] for f in measured)
                            for name in measured[0] if not isinstance(measured[0][name], (dict, list))}
    if "tun" in summary and "proxy" in summary:
        summary["ratio_proxy_to_tun"] = {name: summary["proxy"][name] / summary["tun"][name]
                                         for name in FIGURES if summary["tun"].get(name)}
    return summary


def print_table(results: dict) -> None:
    summary = results["summary"]
    print(f"\nmedians of {results['settings']['repeat']} repetition(s), MTU {results['settings']['mtu']}, "
          f"{results['settings']['megabytes']} MiB each way, {results['settings']['connections']} connections "
          f"at concurrency {results['settings']['concurrency']}:")
    print("(cores: wgpy's CPU over the test; us: its CPU per full-sized segment of payload, or per connection)")
    print(f"{'mode':8s} {'down Mbit/s':>12s} {'cores':>6s} {'us/seg':>7s} {'up Mbit/s':>10s} {'cores':>6s} "
          f"{'us/seg':>7s} {'conn/s':>7s} {'cores':>6s} {'us/conn':>8s}")
    for key in MODES:
        if key in summary:
            row = summary[key]
            print(f"{key:8s} {row['download_mbps']:12.0f} {row['download_mbps_cpu_cores']:6.2f} "
                  f"{row['download_mbps_cpu_us_per_segment']:7.1f} {row['upload_mbps']:10.0f} "
                  f"{row['upload_mbps_cpu_cores']:6.2f} {row['upload_mbps_cpu_us_per_segment']:7.1f} "
                  f"{row['connections_per_s']:7.0f} {row['connections_per_s_cpu_cores']:6.2f} "
                  f"{row['connections_per_s_cpu_us_per_connection']:8.0f}")
    if "ratio_proxy_to_tun" in summary:
        ratio = summary["ratio_proxy_to_tun"]
        print("proxy / tun: " + ", ".join(f"{name.split('_')[0]} {value:.2f}x" for name, value in ratio.items()))


def measure_all(args, failures: Failures) -> dict:
    started = datetime.now(timezone.utc)
    clock = time.monotonic()
    results = {
        "benchmark": "proxy",
        "started": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
                    "loadavg_start": loadavg()},
        "settings": {"repeat": args.repeat, "megabytes": args.megabytes, "connections": args.connections,
                     "concurrency": args.concurrency, "mtu": args.mtu, "modes": args.modes},
        "note": args.note,
        "sessions": [],
    }
    work = Path(tempfile.mkdtemp(prefix="pf13-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        with Far(work, args.megabytes, args.mtu, args.same_address) as far:
            for repetition in range(args.repeat):
                order = args.modes if repetition % 2 == 0 else args.modes[::-1]
                for key in order:
                    name = f"{key}, repetition {repetition + 1}"
                    figures = failures.run(name, session, MODES[key](far), args)
                    if figures is None:
                        figures = {"error": failures.failed[name]}
                    results["sessions"].append({"repetition": repetition, "mode": key, "figures": figures})
                    print(progress(repetition, args.repeat, key, figures), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_end"] = loadavg()
    results["duration_s"] = round(time.monotonic() - clock, 1)
    results["summary"] = summarize(results["sessions"])
    return results


def progress(repetition: int, repeat: int, key: str, figures: dict) -> str:
    if "error" in figures:
        shown = f"FAILED: {figures['error']}"
    else:
        shown = (f"down {figures['download_mbps']:.0f} Mbit/s ({figures['download_mbps_cpu_cores']:.2f} cores), "
                 f"up {figures['upload_mbps']:.0f} Mbit/s ({figures['upload_mbps_cpu_cores']:.2f} cores), "
                 f"{figures['connections_per_s']:.0f} connections/s, first request "
                 f"{figures['first_request_ms']:.0f} ms")
    return f"[{repetition + 1}/{repeat}] {key:6s} {shown}"


def interrupted(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--quick", action="store_true", help="1 repetition, 16 MiB, 50 connections")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--megabytes", type=int, default=128, help="MiB per download and upload (default 128)")
    parser.add_argument("--connections", type=int, default=400, help="short requests, each a connection "
                        "(default 400)")
    parser.add_argument("--concurrency", type=int, default=8, help="of those at once (default 8)")
    parser.add_argument("--mtu", type=int, default=1420, help="the tunnel's MTU (default 1420)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES),
                        help="what to measure (default both)")
    parser.add_argument("--same-address", action="store_true",
                        help="every session's near peer on one address, so the four-tuples of a session's "
                             "connections may still be in the far side's TIME-WAIT from an earlier one")
    parser.add_argument("--note", default="", help="a remark stored with the results (the machine's load...)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    args = parser.parse_args(argv)
    failures = Failures("bench_proxy")
    missing = [c for c in ("ip", "curl", "wireguard-go", "wg") if shutil.which(c) is None]
    if missing or os.geteuid() != 0:
        return failures.missing(f"root and {', '.join(missing) or 'nothing else'}")
    if args.quick:
        args.repeat, args.megabytes, args.connections = 1, 16, 50

    signal.signal(signal.SIGTERM, interrupted)
    try:
        results = failures.run("the namespaces, wireguard-go and the HTTP server", measure_all, args, failures)
    except KeyboardInterrupt:
        print("\nbench_proxy: interrupted; namespaces removed, nothing written", file=sys.stderr)
        return 130
    if results is not None:
        results["failed"] = dict(failures.failed)
        print_table(results)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nresults: {args.json}")
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
