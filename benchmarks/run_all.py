"""Run every benchmark in this folder, one after the other, and collect their JSON in results/.

    python3 benchmarks/run_all.py [--quick]

Every bench_*.py here: the micro-benchmarks (bench_allowedips, bench_core, bench_device, bench_replay, ...)
write results/<name>.json; the tunnel benchmark, last, writes results/tunnel.json and its plot (it needs
root, and says it skipped otherwise). --quick is handed to the tunnel benchmark.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUTPUT = {"bench_tunnel": "tunnel.json"}  # the tunnel benchmark's own default name; others: <name>.json


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for script in sorted(HERE.glob("bench_*.py"), key=lambda s: (s.stem == "bench_tunnel", s.name)):
        print(f"== {script.name}", flush=True)
        out = RESULTS / OUTPUT.get(script.stem, f"{script.stem}.json")
        extra = ["--quick"] if quick and script.stem == "bench_tunnel" else []
        failed |= subprocess.call([sys.executable, str(script), "--json", str(out), *extra]) != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
