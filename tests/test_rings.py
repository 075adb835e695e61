"""The rings of STYLE.md: wgpy/core is sans-IO, and only crypto.py imports ``cryptography``."""

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "wgpy" / "core"
FORBIDDEN = {"socket", "os", "time", "random", "selectors", "threading", "fcntl", "asyncio", "subprocess",
             "signal", "select", "secrets", "datetime", "logging", "sys", "io", "pathlib", "wgpy.runtime"}


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


MODULES = sorted(CORE.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_core_module_touches_no_operating_system(path):
    found = {name for name in imports(path) if name.split(".")[0] in FORBIDDEN or name.startswith("wgpy.runtime")}
    assert not found, f"{path.name} imports {found}"


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_only_crypto_imports_cryptography(path):
    if path.name == "crypto.py":
        return
    assert not {n for n in imports(path) if n.split(".")[0] == "cryptography"}


def test_the_check_sees_the_core():
    assert {"crypto.py", "noise.py", "messages.py", "cookie.py"} <= {p.name for p in MODULES}
    assert "cryptography.hazmat.primitives.ciphers.aead" in imports(CORE / "crypto.py")
