"""Start-up and idle cost of the daemon, against wireguard-go's, in one run on one machine.

    python3 benchmarks/bench_startup.py [--runs 10] [--idle 1.0] [--json FILE]     (root; wireguard-go)

In a fresh network namespace, wireguard-go and wgpy are started alternately ``--runs`` times each, both in
the foreground (``wireguard-go -f IFACE``, and ``wgpy -f IFACE`` as its console script runs it). Start-up is the time from the launch
to the first answer to ``get=1`` on the UAPI socket (polled every millisecond); idle RSS is the daemon's
VmRSS ``--idle`` seconds after that answer, with no configuration. Reported: the median of each, and
wgpy's ratio to wireguard-go's; for scale, the interpreter's own floor (``python -c pass`` from launch to
exit, and an idle interpreter's VmRSS), which no import can go below. The project's goals: start-up within
5x and idle RSS within 3x. A daemon that fails to start or to answer is not started again; the other is
measured all the same, and the benchmark names the failure at the end and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from failures import Failures  # noqa: E402

SOCKETS = "/var/run/wireguard"
INSIDE = "WGPY_BENCH_STARTUP_INSIDE"
GOALS = {"startup": 5.0, "rss": 3.0}


def answers(name: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(1)
            client.connect(f"{SOCKETS}/{name}.sock")
            client.sendall(b"get=1\n\n")
            reply = b""
            while not reply.endswith(b"\n\n"):
                chunk = client.recv(4096)
                if not chunk:
                    return False
                reply += chunk
            return reply.endswith(b"errno=0\n\n")
    except OSError:
        return False


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def one_start(command: list[str], name: str, idle: float, env: dict) -> tuple[float, int]:
    """Launch ``command``; seconds until its socket answers, and its VmRSS (KiB) ``idle`` s later."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        while not answers(name):
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited ({process.returncode}): {process.stderr.read().decode().strip()}")
            if time.perf_counter() - start > 10:
                raise RuntimeError(f"{' '.join(command)}: no answer on {SOCKETS}/{name}.sock within 10 s")
            time.sleep(0.001)
        seconds = time.perf_counter() - start
        time.sleep(idle)
        return seconds, rss_kib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        Path(f"{SOCKETS}/{name}.sock").unlink(missing_ok=True)


def interpreter_floor(runs: int, idle: float) -> dict:
    """What the interpreter alone costs before any wgpy code runs: ``python -c pass`` from launch to exit,
    and the resident set of an interpreter that only sleeps (the same site-packages as the daemon's)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(idle)
        rss = rss_kib(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
    return {"startup_s": statistics.median(times), "rss_kib": rss}


CONSOLE_SCRIPT = "import sys; from wgpy.cli import main; sys.exit(main())"


def daemons(bytecode: str | None = None) -> dict[str, tuple[list[str], dict]]:
    """The daemons compared: name -> (command without the interface name, environment).

    wgpy's bytecode goes to ``bytecode`` (a cache directory, PYTHONPYCACHEPREFIX), written by the first,
    uncounted start: an installed wgpy starts from compiled files (pip compiles at install time), while a
    checkout run with PYTHONDONTWRITEBYTECODE would compile its source at every start."""
    wgpy_env = dict(os.environ, PYTHONPATH=str(ROOT))
    if bytecode is not None:
        wgpy_env.pop("PYTHONDONTWRITEBYTECODE", None)
        wgpy_env["PYTHONPYCACHEPREFIX"] = bytecode
    return {
        "wireguard-go": (["wireguard-go", "-f"], dict(os.environ, LOG_LEVEL="error")),
        # What the installed command runs (pip's console script: import wgpy.cli, call main), rather than
        # ``python -m wgpy``, whose runpy costs a few milliseconds that no user of ``wgpy IFACE`` pays.
        "wgpy": ([sys.executable, "-c", CONSOLE_SCRIPT, "-f"], wgpy_env),
    }


def measure(runs: int, idle: float, failures: Failures, compared: dict | None = None) -> dict:
    """Start each daemon of ``compared`` (default: ``daemons()``) ``runs`` times, alternately; one that
    fails is recorded in ``failures`` and not started again."""
    compared = daemons() if compared is None else compared
    samples: dict[str, dict[str, list]] = {d: {"startup_s": [], "rss_kib": []} for d in compared}
    for run in range(-1, runs):  # run -1 warms the caches (page cache, bytecode) and is not counted
        for n, (daemon, (command, env)) in enumerate(compared.items()):
            if daemon in failures.failed:
                continue
            name = f"wgpbs{os.getpid() % 10000}{n}"
            measured = failures.run(daemon, one_start, [*command, name], name, idle, env)
            if measured is not None and run >= 0:
                samples[daemon]["startup_s"].append(measured[0])
                samples[daemon]["rss_kib"].append(measured[1])
    result = {d: {"startup_s": statistics.median(s["startup_s"]), "rss_kib": statistics.median(s["rss_kib"]),
                  "samples": s} for d, s in samples.items() if d not in failures.failed}
    result["python"] = failures.run("python", interpreter_floor, runs, idle)
    if "wgpy" in result and "wireguard-go" in result:
        result["ratio"] = {
            "startup": result["wgpy"]["startup_s"] / result["wireguard-go"]["startup_s"],
            "rss": result["wgpy"]["rss_kib"] / result["wireguard-go"]["rss_kib"],
        }
    result["runs"], result["idle_s"], result["goals"] = runs, idle, GOALS
    return result


def report(result: dict) -> None:
    print(f"{result['runs']} starts each, alternately; medians ({result['idle_s']} s idle before reading VmRSS)")
    print(f"{'':14}{'start-up (launch to UAPI answer)':>34}{'idle RSS':>12}")
    for daemon in ("wireguard-go", "wgpy"):
        if daemon not in result:
            print(f"{daemon:14}{'FAILED':>34}")
            continue
        print(f"{daemon:14}{result[daemon]['startup_s'] * 1000:>31.1f} ms{result[daemon]['rss_kib'] / 1024:>8.1f} MiB")
    floor = result["python"]
    if floor is not None:
        print(f"{'(python alone)':14}{floor['startup_s'] * 1000:>31.1f} ms{floor['rss_kib'] / 1024:>8.1f} MiB"
              "   python -c pass to exit; an idle interpreter")
    ratio = result.get("ratio")
    if ratio is None:
        return
    print(f"{'wgpy / wg-go':14}{ratio['startup']:>33.1f}x{ratio['rss']:>11.1f}x")
    print(f"goals: start-up within {GOALS['startup']:.0f}x: {'met' if ratio['startup'] <= GOALS['startup'] else 'NOT met'}, "
          f"idle RSS within {GOALS['rss']:.0f}x: {'met' if ratio['rss'] <= GOALS['rss'] else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 starts each")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--idle", type=float, default=1.0, help="seconds between the first answer and reading VmRSS")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    failures = Failures("bench_startup")
    if args.quick:
        args.runs = 2
    missing = [c for c in ("ip", "wireguard-go") if shutil.which(c) is None]
    if missing or os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        return failures.missing(f"root, /dev/net/tun and {', '.join(missing) or 'ip, wireguard-go'}")
    if os.environ.get(INSIDE) != "1":
        # Run the measurements from inside a fresh namespace, so `ip netns exec` costs neither daemon anything.
        ns = f"wgpbench{os.getpid() % 10000}"
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            return subprocess.call(["ip", "netns", "exec", ns, sys.executable, *sys.argv],
                                   env=dict(os.environ, **{INSIDE: "1"}))
        finally:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    with tempfile.TemporaryDirectory(prefix="wgpy-bytecode-") as bytecode:
        result = measure(args.runs, args.idle, failures, daemons(bytecode))
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
