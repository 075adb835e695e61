"""Run the wgpy daemon with the section-6 timers shortened: a test hook, outside the package.

    ip netns exec A python3 -m tests.interop.fast_timers -f wgra

Rekeying happens every two minutes (REKEY_AFTER_TIME); a test that wants to see several rekeys under
traffic cannot wait that long. This launcher imports every module of wgpy.core and wgpy.runtime, rebinds the timer constants in
each module that imported them by name (``from .constants import REKEY_AFTER_TIME`` makes a module-level
name of its own), recomputes the one derived from them, and then runs ``wgpy.cli.main`` as ``wgpy`` would.
Production code has no switch for this and is not changed: only this process, started by a test, runs
with these values. ``WGPY_TEST_TIMERS="REKEY_AFTER_TIME=4,REJECT_AFTER_TIME=10"`` overrides FAST.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

# Scaled together so that their order is the protocol's: KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (the wait for
# an answer) < REKEY_AFTER_TIME < REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT (the initiator's
# last-minute rekey on receive) < REJECT_AFTER_TIME.
FAST = {
    "REKEY_AFTER_TIME": 3.0,
    "REJECT_AFTER_TIME": 8.0,
    "REKEY_ATTEMPT_TIME": 9.0,
    "REKEY_TIMEOUT": 0.5,
    "KEEPALIVE_TIMEOUT": 1.5,
}


def overrides() -> dict[str, float]:
    text = os.environ.get("WGPY_TEST_TIMERS")
    if not text:
        return dict(FAST)
    return {name.strip(): float(value) for name, value in (item.split("=") for item in text.split(","))}


def patch(values: dict[str, float]) -> list[str]:
    """Rebind ``values`` in every wgpy module that has those names; returns "module.NAME" for each."""
    from wgpy import core, runtime
    from wgpy.core import constants

    for package in (core, runtime):
        for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)

    values = dict(values)
    attempt = values.get("REKEY_ATTEMPT_TIME", constants.REKEY_ATTEMPT_TIME)
    timeout = values.get("REKEY_TIMEOUT", constants.REKEY_TIMEOUT)
    values["MAX_TIMER_HANDSHAKES"] = int(attempt / timeout)
    patched = []
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("wgpy.") or module is None:
            continue
        for key, value in values.items():
            if key in vars(module):
                setattr(module, key, value)
                patched.append(f"{name}.{key}")
    return patched


if __name__ == "__main__":
    done = patch(overrides())
    print("fast_timers: " + " ".join(done), flush=True)
    from wgpy.cli import main

    sys.exit(main())
