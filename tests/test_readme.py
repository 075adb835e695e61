"""The README's commands, pasted in order, as a new user would: `make install` (the README's way of putting
`wgpy` on PATH) into a fresh venv under a temporary PREFIX, then every README sample marked
``<!-- test: local -->`` (no root, no network) with nothing but that PATH to find `wgpy`.

The install is a real `pip install .` of this checkout from the package index configured on the machine
(about 5 s; bounded at 5 minutes), and must leave the checkout as it found it (no build/, no egg-info).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import wgpy
from wgpy.core.crypto import PrivateKey

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = re.compile(r"<!--\s*test:\s*(\S+)\s*-->")


def samples() -> list[tuple[int, str, str]]:
    """(line, marker, commands) of each indented block just below a ``<!-- test: ... -->`` line."""
    lines = README.read_text().splitlines()
    found = []
    for number, line in enumerate(lines):
        marker = MARKER.fullmatch(line.strip())
        if marker is None:
            continue
        block = []
        for following in lines[number + 1:]:
            if not following.startswith("    "):
                break
            block.append(following[4:])
        assert block, f"README.md:{number + 1}: a test marker without an indented block below it"
        found.append((number + 1, marker.group(1), "\n".join(block) + "\n"))
    return found


def first_use_of_wgpy() -> int:
    """The line of the first indented command that runs `wgpy` (not the install itself)."""
    for number, line in enumerate(README.read_text().splitlines(), start=1):
        if line.startswith("    ") and re.match(r"(\w+=\S+ )*wgpy\b", line.strip()):
            return number
    raise AssertionError("the README never runs wgpy")


def clean_path(prefix: Path) -> str:
    """PREFIX/bin, then the caller's PATH less any directory that has a wgpy of its own."""
    kept = [d for d in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
            if d and not os.path.exists(os.path.join(d, "wgpy"))]
    return os.pathsep.join([str(prefix / "bin"), *kept])


def run(commands: str, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", commands], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_readme_says_how_to_put_wgpy_on_path_before_using_it():
    installs = [line for line, marker, _ in samples() if marker == "install"]
    assert len(installs) == 1 and installs[0] < first_use_of_wgpy()
    setup = README.read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    assert "    make demo\n" in setup and "    make test\n" in setup   # still the two set-up commands
    for way in (".venv/bin/activate", "pipx install .", "pip install ."):
        assert way in setup, way


def test_readme_commands_in_order_in_a_fresh_install(tmp_path):
    if shutil.which("make") is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("needs make")
    prefix, work = tmp_path / "prefix", tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=clean_path(prefix), PREFIX=str(prefix))
    before = sorted(p.name for p in ROOT.iterdir())
    assert shutil.which("wgpy", path=env["PATH"]) is None   # nothing else answers to wgpy

    for line, marker, commands in samples():
        where = ROOT if marker == "install" else work
        result = run(commands, where, env, timeout=300 if marker == "install" else 120)
        assert result.returncode == 0, f"README.md:{line} ({marker}):\n{commands}{result.stdout}{result.stderr}"

    installed = shutil.which("wgpy", path=env["PATH"])
    assert installed == str(prefix / "bin" / "wgpy")
    assert sorted(p.name for p in ROOT.iterdir()) == before   # pip install . wrote nothing into the checkout
    private = base64.b64decode((work / "private.key").read_text())
    assert (work / "public.key").read_text().strip() == base64.b64encode(PrivateKey(private).public).decode()
    assert len(base64.b64decode((work / "preshared.key").read_text())) == 32

    # The commands the README names in passing, found the same way.
    assert run("wgpy --version", work, env).stdout == f"wgpy v{wgpy.__version__}\n"
    assert "IFACE" in run("wgpy --help", work, env).stdout
    usage = run("wgpy", work, env)
    assert usage.returncode == 2 and usage.stderr.startswith("usage: wgpy [-f|--foreground] IFACE")
    assert run("wgpy demo --in-memory", work, env).returncode == 0
    assert run("wgpy explain | head -n 1", work, env).stdout.startswith("wgpy explain: one WireGuard handshake")
    assert run("make uninstall", ROOT, env).returncode == 0 and not (prefix / "bin" / "wgpy").exists()
