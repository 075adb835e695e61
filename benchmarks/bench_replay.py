"""Anti-replay window benchmark: ``ReplayFilter.accept`` calls per second, beside a bare ``set.add``.

    python3 benchmarks/bench_replay.py [--json FILE]

Three streams of 200,000 counters from 0, each through a fresh filter:

* in order: 0, 1, 2, ... (every call accepted);
* reordered: the same counters shuffled within consecutive runs of 256 (seeded), as after a multi-path
  or multi-queue network (every call accepted);
* replayed: the in-order stream again into the filter that already saw it (every call refused).

The reference is "remember a counter" at its barest: ``seen.add`` on a Python set, timed with the same
loop in the same run, pass for pass alternating with each stream, so the ratio depends neither on the
machine nor much on its background load.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from failures import Failures  # noqa: E402
from wgpy.core.replay import ReplayFilter  # noqa: E402

COUNT = 200_000
REPEATS = 5


def one_pass(make_function, counters) -> float:
    """Seconds per call over ``counters``, once, with a fresh function."""
    function = make_function()
    start = time.perf_counter()
    for counter in counters:
        function(counter)
    return (time.perf_counter() - start) / len(counters)


def interleaved(make_function, counters, make_reference) -> tuple[float, float]:
    """(seconds per call, the reference's), best of REPEATS passes of each, alternating: on a shared
    machine the background load comes and goes, and both should see the same."""
    seconds = reference = float("inf")
    for _ in range(REPEATS):
        reference = min(reference, one_pass(make_reference, counters))
        seconds = min(seconds, one_pass(make_function, counters))
    return seconds, reference


def main(argv: list[str] | None = None) -> int:
    global COUNT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20,000 counters a stream")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        COUNT = 20_000
    failures = Failures("bench_replay")
    rng = random.Random(6479)

    in_order = list(range(COUNT))
    reordered = []
    for start in range(0, COUNT, 256):
        run = in_order[start : start + 256]
        rng.shuffle(run)
        reordered += run

    def fresh_filter():
        return ReplayFilter().accept

    def primed_filter():
        replay = ReplayFilter()
        for counter in in_order:
            replay.accept(counter)
        return replay.accept

    def fresh_set():
        return set().add

    assert all(map(ReplayFilter().accept, reordered))
    assert not any(map(primed_filter(), in_order[-8000:]))

    rows = []
    best_reference = float("inf")
    for name, make, counters in (
        ("in order", fresh_filter, in_order),
        ("reordered", fresh_filter, reordered),
        ("replayed", primed_filter, in_order),
    ):
        measured = failures.run(name, interleaved, make, counters, fresh_set)
        if measured is None:
            continue
        seconds, reference = measured
        best_reference = min(best_reference, reference)
        rows.append(
            {"stream": name, "accept_per_s": 1 / seconds, "ns": seconds * 1e9, "ratio_to_set_add": seconds / reference}
        )
    reference = best_reference
    if not rows:
        return failures.finish()

    results = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "set_add_per_s": 1 / reference,
        "set_add_ns": reference * 1e9,
        "streams": rows,
        "failed": failures.failed,
    }
    print(f"{'stream':10s}  {'accept()/s':>12s}  {'ns':>6s}  x set.add")
    for r in rows:
        print(f"{r['stream']:10s}  {r['accept_per_s']:12,.0f}  {r['ns']:6.0f}  {r['ratio_to_set_add']:8.1f}")
    print(f"{'set.add':10s}  {1 / reference:12,.0f}  {reference * 1e9:6.0f}  {1:8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
