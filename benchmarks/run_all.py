"""Run every benchmark in this folder, one after the other, and collect their JSON in results/."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        out = RESULTS / f"{script.stem}.json"
        failed |= subprocess.call([sys.executable, str(script), "--json", str(out)]) != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
