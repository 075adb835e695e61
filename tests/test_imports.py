"""Each command imports what it needs (benchmarks/bench_startup.py measures why): checked in a fresh
interpreter, since this one has imported everything already."""

import subprocess
import sys

import pytest

# Heavy modules an idle daemon has no use for: cryptography (with its OpenSSL, about 7 MiB) loads with
# the first key; hashlib/_hashlib and ctypes would bring the system's libcrypto and libffi; the study
# wing, the configuration files and argparse belong to other commands.
HEAVY = ("cryptography", "_hashlib", "hashlib", "hmac", "ctypes", "subprocess", "pytun_pmd3", "argparse",
         "wgpy.study", "wgpy.config", "wgpy.runtime.quick", "wgpy.runtime.netns_demo", "hypothesis", "pytest")


# What the daemon's start-up no longer imports, each measured in benchmarks/bench_startup.py: dataclasses
# (with inspect; the core's records are record.py's), logging (loaded with the first line written,
# runtime/log.py), typing, re, base64 and ipaddress (imported where used), and the protocol (send and
# receive, peers, handshakes, messages, cookies), loaded with the device's first key, peer or packet;
# socket and signal (their enums, selectors and functools: about 5 ms), whose C modules serve the daemon.
NOT_AT_STARTUP = ("dataclasses", "inspect", "logging", "typing", "re", "base64", "ipaddress",
                  "socket", "signal", "selectors",
                  "wgpy.core.send", "wgpy.core.receive", "wgpy.core.noise", "wgpy.core.messages", "wgpy.core.cookie",
                  "wgpy.core.peer", "wgpy.core.keypairs", "wgpy.core.trace", "wgpy.core.keylog", "wgpy.runtime.keylog")


def modules_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def loaded_after(code: str) -> set[str]:
    modules = modules_after(code)
    return {heavy for heavy in HEAVY if any(m == heavy or m.startswith(heavy + ".") for m in modules)}


def test_the_daemon_starts_without_the_heavy_modules():
    # What `wgpy IFACE` imports before it serves: the command, the daemon and everything it builds on.
    assert loaded_after("from wgpy import cli\nfrom wgpy.runtime import daemon") == set()


def test_the_daemon_starts_without_what_only_its_work_needs():
    assert modules_after("from wgpy import cli\nfrom wgpy.runtime import daemon") & set(NOT_AT_STARTUP) == set()


def test_the_protocol_loads_with_the_first_datagram_and_works():
    code = """
import os
from wgpy.core.device import Device
from wgpy.core.errors import Drop
device = Device(rng=os.urandom)
assert "wgpy.core.receive" not in sys.modules
device.receive_datagrams([(bytes([1, 0, 0, 0]) + bytes(144), ("192.0.2.1", 51820), None)], 0.0)
assert "wgpy.core.receive" in sys.modules
assert device.drops == {Drop.NO_PRIVATE_KEY: 1}, device.drops
"""
    assert {"wgpy.core.receive", "wgpy.core.peer"} <= modules_after(code)


def test_the_log_loads_logging_with_its_first_line_written():
    code = """
from wgpy.runtime.log import DEBUG, ERROR, configure, log
assert configure("wgt0", None) < ERROR and not log.isEnabledFor(DEBUG)
log.debug("not written")
assert "logging" not in sys.modules
log.error("written: %d", 42)
assert "logging" in sys.modules
"""
    probe = subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True, check=True)
    assert probe.stdout.startswith("ERROR: (wgt0) ") and probe.stdout.endswith(" written: 42\n"), probe.stdout
    assert "not written" not in probe.stdout + probe.stderr


@pytest.mark.parametrize("command, allowed", [
    ("--help", {"argparse"}),
    ("genkey", {"argparse"}),   # clamp and base64: no cryptography
])
def test_a_command_imports_no_more_than_it_needs(command, allowed):
    code = (f"from wgpy import cli\ntry:\n    cli.main([{command!r}])\nexcept SystemExit:\n    pass")
    assert loaded_after(code) <= allowed


def test_cryptography_loads_with_the_first_key_and_a_bad_tag_is_still_a_named_drop():
    code = """
from wgpy.core import crypto
from wgpy.core.errors import Drop, Rejected
assert "cryptography" not in sys.modules
key = crypto.PrivateKey.generate(lambda n: bytes(range(1, n + 1)))
assert "cryptography" in sys.modules and len(key.public) == 32
sealed = crypto.AEAD(bytes(32), 0, b"data", b"")
try:
    crypto.AEAD_DECRYPT(bytes(32), 1, sealed, b"")
except Rejected as rejected:
    assert rejected.reason is Drop.DECRYPTION_FAILED, rejected
else:
    raise AssertionError("a wrong nonce decrypted")
assert issubclass(crypto.InvalidTag, Exception)
"""
    assert loaded_after(code) >= {"cryptography"}
