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


def loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    modules = set(result.stdout.split())
    return {heavy for heavy in HEAVY if any(m == heavy or m.startswith(heavy + ".") for m in modules)}


def test_the_daemon_starts_without_the_heavy_modules():
    # What `wgpy IFACE` imports before it serves: the command, the daemon and everything it builds on.
    assert loaded_after("from wgpy import cli\nfrom wgpy.runtime import daemon") == set()


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
