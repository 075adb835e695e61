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
# The userspace stack is sans-IO by the same rules (docs/netstack.md), and needs no cryptography at all.
NETSTACK = sorted((CORE.parent / "netstack").rglob("*.py"))
# So are the proxy's protocols (wgpy/proxy: SOCKS5, the HTTP proxy's head); wgpy/runtime/proxy.py moves the bytes.
NETSTACK += sorted((CORE.parent / "proxy").rglob("*.py"))


@pytest.mark.parametrize("path", NETSTACK, ids=[str(p.relative_to(CORE.parent)) for p in NETSTACK])
def test_netstack_module_touches_no_operating_system(path):
    found = {name for name in imports(path)
             if name.split(".")[0] in FORBIDDEN | {"cryptography"} or name.startswith(("wgpy.runtime", "wgpy.core"))}
    assert not found, f"{path} imports {found}"


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


# Secrets are compared in constant time (the kernel's crypto_memneq): an all-zero check on a private key, a
# preshared key or a Diffie-Hellman result goes through hmac.compare_digest, never == or !=.

WGPY = CORE.parent
ZERO_KEY_NAMES = {"ZERO_KEY", "_ZERO_KEY"}


def is_zero_key(node: ast.expr) -> bool:
    """``bytes(32)``, ``bytes(KEY_LEN)``, ``ZERO_KEY``, ``b"\\0" * 32`` or a 32-byte literal of zeros."""
    match node:
        case ast.Call(func=ast.Name(id="bytes"), args=[ast.Constant(value=32) | ast.Name(id="KEY_LEN")]):
            return True
        case ast.Name(id=name) | ast.Attribute(attr=name):
            return name in ZERO_KEY_NAMES
        case ast.BinOp(op=ast.Mult(), left=ast.Constant(value=b"\0"), right=ast.Constant(value=32) | ast.Name(id="KEY_LEN")):
            return True
        case ast.Constant(value=bytes() as value):
            return value == bytes(32)
    return False


def zero_key_comparisons(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands, operands[1:]):
                if isinstance(op, (ast.Eq, ast.NotEq)) and (is_zero_key(left) or is_zero_key(right)):
                    found.append(f"{path.relative_to(WGPY.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_secret_is_compared_to_zeros_with_equals():
    found = [line for path in sorted(WGPY.rglob("*.py")) for line in zero_key_comparisons(path)]
    assert not found, "use constant_time_equal (hmac.compare_digest):\n" + "\n".join(found)


def test_the_zero_key_check_sees_each_spelling():
    for source in ("x == bytes(32)", "bytes(KEY_LEN) != x", "x == ZERO_KEY", "x == crypto.ZERO_KEY",
                   "x != b'\\0' * 32", "x == " + repr(bytes(32)), "a == b == _ZERO_KEY"):
        compare = ast.parse(source, mode="eval").body
        assert any(is_zero_key(operand) for operand in [compare.left, *compare.comparators]), source
    assert not is_zero_key(ast.parse("bytes(MAC_LEN)", mode="eval").body)


# The wings use the core; the core uses neither (STYLE.md, "the rings"). Relative imports count too.

WINGS = {"wgpy.study", "wgpy.craft"}


def absolute_imports(path: Path) -> set[str]:
    package = ".".join(path.relative_to(WGPY.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_core_module_imports_no_wing(path):
    found = {name for name in absolute_imports(path) if any(name == w or name.startswith(w + ".") for w in WINGS)}
    assert not found, f"{path.name} imports {found}"


def test_the_wing_check_resolves_relative_imports():
    assert "wgpy.core.messages.Initiation" in absolute_imports(CORE / "noise.py")
    observer = absolute_imports(WGPY / "study" / "observer.py")
    assert {"wgpy.study.labels.fields", "wgpy.core.keylog.Keylog"} <= observer
