"""Run the fuzz targets of targets.py: a campaign under atheris (libFuzzer), or a replay of input files.

    python -m tests.fuzz.run TARGET [--seconds N] [-- libFuzzer flags]   a campaign (pip install -e '.[fuzz]')
    python -m tests.fuzz.run TARGET FILE...                              replay files, e.g. a crash; no atheris
    python -m tests.fuzz.run --corpus                                    replay every corpus of every target
    python -m tests.fuzz.run --list

A campaign starts from the seed corpus tests/fuzz/corpus/TARGET/ (never written to), keeps the inputs it
finds in build/fuzz/corpus/TARGET/, and writes each crashing input to build/fuzz/crashes/TARGET/ as
``crash-<sha1>``: replay it with the second form, then copy it into tests/fuzz/regressions/TARGET/ so that
tests/test_fuzz.py replays it for ever, and fix the bug. Only wgpy is instrumented for coverage feedback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SEEDS = HERE / "corpus"
DICTIONARIES = HERE / "dictionaries"
WORK = ROOT / "build" / "fuzz"
NAMES = ("message_parsing", "receive_path", "receive_batch", "send_batch", "mutated_messages", "uapi_stream",
         "uapi_set", "config_file", "replay_window", "keypair_rotation", "allowed_ips", "netstack")


def replay(target_name: str, paths: list[Path]) -> int:
    """Run each file through the target; print what fails. Returns how many failed."""
    import traceback

    from .targets import TARGETS

    failed = 0
    for path in paths:
        try:
            TARGETS[target_name](path.read_bytes())
        except Exception:
            failed += 1
            print(f"FAILED {target_name} {path}")
            traceback.print_exc()
    return failed


def replay_corpora() -> int:
    """Every seed corpus and every campaign's corpus, through its target (what ``make fuzz-coverage`` measures)."""
    failed = count = 0
    for name in NAMES:
        paths = [p for root in (SEEDS / name, WORK / "corpus" / name) if root.is_dir() for p in sorted(root.iterdir())]
        failed += replay(name, paths)
        count += len(paths)
        print(f"{name:18} {len(paths):6} inputs")
    print(f"{count} inputs, {failed} failed")
    return failed


def campaign(target_name: str, seconds: int, extra: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["wgpy"]):
        from .targets import TARGETS
    target = TARGETS[target_name]
    corpus = WORK / "corpus" / target_name
    crashes = WORK / "crashes" / target_name
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    flags = [f"-max_total_time={seconds}", f"-artifact_prefix={crashes}/", "-print_final_stats=1", "-timeout=20",
             "-max_len=8192", "-rss_limit_mb=4096"]
    dictionary = DICTIONARIES / f"{target_name}.dict"
    if dictionary.exists():
        flags.append(f"-dict={dictionary}")
    print(f"fuzzing {target_name} for {seconds} s; crashes go to {crashes}/, replay one with:\n"
          f"    python -m tests.fuzz.run {target_name} {crashes}/crash-...", flush=True)
    atheris.Setup([sys.argv[0], *flags, *extra, str(corpus), str(SEEDS / target_name)], target)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", nargs="?", choices=NAMES)
    parser.add_argument("files", nargs="*", type=Path, help="replay these inputs instead of fuzzing")
    parser.add_argument("--seconds", type=int, default=60, help="length of the campaign (default 60)")
    parser.add_argument("--corpus", action="store_true", help="replay every corpus of every target")
    parser.add_argument("--list", action="store_true", help="list the targets")
    args, extra = parser.parse_known_args()
    if args.list:
        print("\n".join(NAMES))
    elif args.corpus:
        sys.exit(1 if replay_corpora() else 0)
    elif args.target is None:
        parser.error("name a target (--list shows them)")
    elif args.files:
        sys.exit(1 if replay(args.target, args.files) else 0)
    else:
        campaign(args.target, args.seconds, [flag for flag in extra if flag != "--"])


if __name__ == "__main__":
    main()
