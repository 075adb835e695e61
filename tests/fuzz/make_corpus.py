"""Write the seed corpus: tests/fuzz/corpus/<target>/<name>, one input per file, built with the crafting
API (valid messages for each device state, one mutation per field), sample configuration files and UAPI
operations, and a few seeded random inputs for the stateful models.

    python -m tests.fuzz.make_corpus          # replaces every tests/fuzz/corpus/<target>/ directory

The seeds depend on the worlds of world.py being deterministic: rerun this after changing them (or the
core's use of its rng), so that the seeds are again messages the device accepts.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from . import inputs, netstack_world
from .targets import TARGETS

CORPUS = Path(__file__).resolve().parent / "corpus"


def seeds() -> dict[str, dict[str, bytes]]:
    generator = random.Random(20251125)
    models = {f"random-{n}": generator.randbytes(generator.choice((16, 64, 200))) for n in range(6)}
    return {
        "message_parsing": inputs.message_seeds(),
        "receive_path": inputs.receive_seeds(),
        "receive_batch": inputs.batch_seeds(),
        "send_batch": inputs.send_seeds(),
        "mutated_messages": inputs.mutation_seeds(),
        "uapi_stream": inputs.uapi_streams(),
        "uapi_set": inputs.uapi_bodies(),
        "config_file": {name: text.encode() for name, text in inputs.CONFIGS.items()},
        "replay_window": models,
        "keypair_rotation": models,
        "allowed_ips": models,
        "netstack": netstack_world.seeds(),
    }


def main() -> None:
    everything = seeds()
    assert set(everything) == set(TARGETS)
    total = 0
    for target, named in everything.items():
        directory = CORPUS / target
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for name, data in named.items():
            TARGETS[target](data)   # every seed passes its target
            (directory / name).write_bytes(data)
            total += len(data)
        print(f"{target:18} {len(named):4} files")
    print(f"{total} bytes in {CORPUS}")


if __name__ == "__main__":
    main()
