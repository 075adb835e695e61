"""What a benchmark was asked to measure and which of those failed, for every benchmark in this folder.

    failures = Failures("bench_device")
    figures = failures.run("transport", transport, seconds)   # None if it raised: recorded, traceback shown
    ...
    return failures.finish()    # a summary of what failed; the exit status, 1 if anything did, else 0

A system that fails (an exception in its run, a daemon that died, a tool that errored) is recorded and
the benchmark goes on with the others; the summary at the end names each failure and the exit status
says whether there was any. Only a failure makes it 1, never a figure that came out worse.

``WGPY_BENCH_FAIL=NAME[,NAME...]`` in the environment makes the runs of those names fail at once, as if
they had raised: the tests of the failure path use it to stay cheap.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, TypeVar

T = TypeVar("T")
FORCE = "WGPY_BENCH_FAIL"


class ForcedFailure(RuntimeError):
    """The failure ``WGPY_BENCH_FAIL`` asked for."""


def forced(name: str) -> bool:
    """Whether the environment asks the run called ``name`` to fail."""
    return name in {item.strip() for item in os.environ.get(FORCE, "").split(",") if item.strip()}


class Failures:
    def __init__(self, benchmark: str) -> None:
        self.benchmark = benchmark
        self.failed: dict[str, str] = {}

    def run(self, name: str, function: Callable[..., T], *args, **kwargs) -> T | None:
        """``function(*args, **kwargs)``, or None when it raised (recorded under ``name``, with its
        traceback on standard error). KeyboardInterrupt and SystemExit pass through."""
        try:
            if forced(name):
                raise ForcedFailure(f"{FORCE} asked {name!r} to fail")
            return function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - any failure of one system must not stop the others
            if not isinstance(error, ForcedFailure):
                traceback.print_exc()
            self.record(name, f"{type(error).__name__}: {error}")
            return None

    def record(self, name: str, error: str) -> None:
        """Record a failure found another way (a session that reported an error, a tool's exit status)."""
        self.failed[name] = error
        print(f"{self.benchmark}: {name} FAILED: {error}", file=sys.stderr, flush=True)

    def missing(self, what: str) -> int:
        """The benchmark cannot run here (no root, a tool missing): say so; the exit status, 0, or 1 under
        CI (CI=true), where a missing component is a failure, as in the tests."""
        print(f"{self.benchmark}: needs {what}; skipped", flush=True)
        if os.environ.get("CI") == "true":
            self.record("requirements", f"missing {what}")
            return 1
        return 0

    def finish(self) -> int:
        """Print what failed, if anything; the exit status: 1 if anything failed, else 0."""
        if not self.failed:
            return 0
        print(f"\n{self.benchmark}: {len(self.failed)} failed:", file=sys.stderr)
        for name, error in self.failed.items():
            print(f"  {name}: {error}", file=sys.stderr)
        sys.stderr.flush()
        return 1
