"""Allowed-IPs benchmark: lookups per second at 100,000 prefixes per family, beside a bare dict lookup.

    python3 benchmarks/bench_allowedips.py [--json FILE]

For IPv4 and IPv6, 100,000 random prefixes (seeded) are inserted into one ``AllowedIPs`` per family and
per length mix, then looked up:

* hit: an address inside a randomly chosen inserted prefix (random host bits);
* miss: an address in a range no prefix covers (240.0.0.0/4, f000::/4).

Two length mixes: "mixed" weights the lengths that real tables carry (IPv4 /24 and /32 most, IPv6 /48,
/64 and /128 most); "every length" draws the length uniformly from 4 to 32 (IPv4) or 4 to 128 (IPv6),
the worst case for a table probed once per distinct length. A small table (10 peers, each a /32 and a
/128, and a default route) shows the everyday case. The reference is ``dict.get`` on a dict of 100,000
ints, timed with the same loop in the same run just before and after each figure, so the ratio depends
neither on the machine nor much on its background load.
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
from wgpy.core.allowedips import AllowedIPs  # noqa: E402

COUNT = 100_000
PROBES = 20_000
REPEATS = 5

MIXED = {
    4: {8: 1, 12: 1, 16: 4, 20: 3, 22: 3, 24: 30, 27: 2, 28: 4, 29: 3, 30: 5, 32: 40},
    16: {16: 1, 29: 1, 32: 5, 40: 2, 44: 2, 48: 20, 56: 5, 60: 2, 64: 25, 96: 2, 112: 3, 120: 2, 128: 30},
}


def best_time(function, items) -> float:
    """Seconds per call of ``function`` over ``items``, best of REPEATS passes in a row."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items)


def make_prefixes(rng: random.Random, size: int, mix: str) -> list[tuple[bytes, int]]:
    """COUNT prefixes outside the top sixteenth of the address space (kept free for misses)."""
    bits = size * 8
    if mix == "mixed":
        lengths, weights = zip(*MIXED[size].items())
        cidrs = rng.choices(lengths, weights, k=COUNT)
    else:
        cidrs = [rng.randint(4, bits) for _ in range(COUNT)]
    out = []
    for cidr in cidrs:
        value = rng.getrandbits(bits)
        if value >> (bits - 4) == 0xF:
            value ^= 1 << (bits - 1)   # top nibble F -> 7
        out.append((value.to_bytes(size, "big"), cidr))
    return out


class Reference:
    """``dict.get`` on 100,000 int keys, re-measured just before and after every figure: the background
    load of a shared machine comes and goes, so each ratio uses the better of the two beside it. (Passes
    are not alternated one by one: that leaves the reference's 20,000 keys cold in the CPU caches, and
    the ratio would then measure the caches.)"""

    def __init__(self, rng: random.Random) -> None:
        self.table = {rng.getrandbits(32): None for _ in range(COUNT)}
        self.keys = rng.choices(list(self.table), k=PROBES)
        self.best = float("inf")

    def measure(self) -> float:
        seconds = best_time(self.table.get, self.keys)
        self.best = min(self.best, seconds)
        return seconds

    def around(self, function, items) -> tuple[float, float]:
        """(seconds per call of ``function`` over ``items``, the reference seconds beside it)."""
        before = self.measure()
        seconds = best_time(function, items)
        return seconds, min(before, self.measure())


def measure_family(rng: random.Random, size: int, mix: str, reference: Reference) -> dict:
    bits = size * 8
    prefixes = make_prefixes(rng, size, mix)
    peers = [object() for _ in range(1000)]
    table: AllowedIPs[object] = AllowedIPs()
    start = time.perf_counter()
    for i, (address, cidr) in enumerate(prefixes):
        table.insert(address, cidr, peers[i % 1000])
    insert_seconds = (time.perf_counter() - start) / COUNT

    hits = []
    for address, cidr in rng.sample(prefixes, PROBES):
        value = int.from_bytes(address, "big") >> (bits - cidr) << (bits - cidr)
        hits.append((value | rng.getrandbits(bits - cidr)).to_bytes(size, "big"))
    misses = [((0xF << (bits - 4)) | rng.getrandbits(bits - 4)).to_bytes(size, "big") for _ in range(PROBES)]
    assert all(table.lookup(a) is not None for a in hits[:1000])
    assert all(table.lookup(a) is None for a in misses[:1000])

    hit_seconds, hit_reference = reference.around(table.lookup, hits)
    miss_seconds, miss_reference = reference.around(table.lookup, misses)
    return {
        "family": "IPv4" if size == 4 else "IPv6",
        "mix": mix,
        "prefixes": len(table),
        "distinct_lengths": len({cidr for _, cidr in prefixes}),
        "insert_per_s": 1 / insert_seconds,
        "hit_lookups_per_s": 1 / hit_seconds,
        "miss_lookups_per_s": 1 / miss_seconds,
        "hit_ns": hit_seconds * 1e9,
        "miss_ns": miss_seconds * 1e9,
        "hit_ratio_to_dict_get": hit_seconds / hit_reference,
        "miss_ratio_to_dict_get": miss_seconds / miss_reference,
    }


def measure_small(rng: random.Random, reference: Reference) -> dict:
    table: AllowedIPs[object] = AllowedIPs()
    addresses = []
    for i in range(10):
        peer = object()
        v4, v6 = bytes([10, 0, 0, i + 1]), bytes.fromhex("fd000000000000000000000000000000")[:15] + bytes([i + 1])
        table.insert(v4, 32, peer)
        table.insert(v6, 128, peer)
        addresses += [v4, v6]
    table.insert(bytes(4), 0, object())
    probes = [rng.choice(addresses) for _ in range(PROBES)]
    seconds, beside = reference.around(table.lookup, probes)
    return {
        "prefixes": len(table),
        "lookups_per_s": 1 / seconds,
        "ns": seconds * 1e9,
        "ratio_to_dict_get": seconds / beside,
    }


def main(argv: list[str] | None = None) -> int:
    global COUNT, PROBES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 prefixes, 2,000 probes")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        COUNT, PROBES = 5_000, 2_000
    failures = Failures("bench_allowedips")
    rng = random.Random(6479)

    reference = Reference(rng)
    small = failures.run("small table", measure_small, rng, reference)
    rows = [row for row in (failures.run(f"IPv{4 if size == 4 else 6} {mix}", measure_family, rng, size, mix, reference)
                            for mix in ("mixed", "every length") for size in (4, 16)) if row is not None]
    dict_get_seconds = reference.best
    results = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "prefixes": COUNT,
        "dict_get_per_s": 1 / dict_get_seconds,
        "dict_get_ns": dict_get_seconds * 1e9,
        "large": rows,
        "small": small,
        "failed": failures.failed,
    }

    print(f"bare dict.get ({COUNT:,} int keys, best): {1 / dict_get_seconds:12,.0f}/s  {dict_get_seconds * 1e9:6.0f} ns")
    if small is not None:
        print(f"small table ({small['prefixes']} prefixes):  {small['lookups_per_s']:12,.0f}/s  {small['ns']:6.0f} ns  "
              f"{small['ratio_to_dict_get']:5.1f}x dict.get")
    print()
    print("family  mix           lengths  inserts/s   hit lookups/s       ns  x dict.get"
          "   miss lookups/s       ns  x dict.get")
    for r in rows:
        print(f"{r['family']:6s}  {r['mix']:12s}  {r['distinct_lengths']:7d}  {r['insert_per_s']:9,.0f}  "
              f"{r['hit_lookups_per_s']:14,.0f}  {r['hit_ns']:7.0f}  {r['hit_ratio_to_dict_get']:10.1f}  "
              f"{r['miss_lookups_per_s']:15,.0f}  {r['miss_ns']:7.0f}  {r['miss_ratio_to_dict_get']:10.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return failures.finish()


if __name__ == "__main__":
    sys.exit(main())
