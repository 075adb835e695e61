"""Run the benchmarks in this folder, one after the other, and collect their JSON in results/.

    python3 benchmarks/run_all.py [--quick] [--results DIR] [NAME ...]

Every bench_*.py here, or those NAMEd (bench_core or core): the micro-benchmarks first (bench_allowedips,
bench_core, bench_device, bench_replay, bench_scaling, ...) and those in network namespaces (bench_flood,
bench_proxy: wgpy proxy beside the TUN mode), each writing DIR/<name>.json, and the tunnel benchmark last,
writing DIR/tunnel.json and its plot. Those that need root say they skipped without it.
--quick is handed to every benchmark that takes it (a smoke run of each), and --json to every one that
takes it, as each one's --help says. Exits 1 if any benchmark did not exit 0, after running the others,
and names them at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from failures import Failures  # noqa: E402

RESULTS = HERE / "results"
OUTPUT = {"bench_tunnel": "tunnel.json"}  # the tunnel benchmark's own default name; others: <name>.json


def benchmarks(names: list[str]) -> list[Path]:
    """The scripts to run, the tunnel benchmark last; a name that matches none is an error."""
    scripts = sorted(HERE.glob("bench_*.py"), key=lambda s: (s.stem == "bench_tunnel", s.name))
    if not names:
        return scripts
    wanted = {name if name.startswith("bench_") else f"bench_{name}" for name in names}
    unknown = wanted - {script.stem for script in scripts}
    if unknown:
        raise SystemExit(f"run_all: no benchmark named {', '.join(sorted(unknown))}")
    return [script for script in scripts if script.stem in wanted]


def options(script: Path) -> str:
    """The script's --help text, to see which of --quick and --json it takes."""
    return subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of each benchmark that has one")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"where the JSON goes (default {RESULTS})")
    args = parser.parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    failures = Failures("run_all")
    ran = []
    for script in benchmarks(args.names):
        print(f"== {script.name}", flush=True)
        takes = options(script)
        command = [sys.executable, str(script)]
        if "--json" in takes:
            command += ["--json", str(args.results / OUTPUT.get(script.stem, f"{script.stem}.json"))]
        if args.quick and "--quick" in takes:
            command.append("--quick")
        start = time.monotonic()
        status = subprocess.call(command)
        ran.append(f"{script.stem} ({time.monotonic() - start:.0f} s)")
        if status != 0:
            failures.record(script.stem, f"exited with {status}")
    print(f"\nrun_all: ran {', '.join(ran)}; {len(failures.failed)} failed", flush=True)
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
