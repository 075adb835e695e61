"""The docs are tested: generated files are current, and every code sample in docs/*.md runs.

Python samples run here, each in a fresh namespace. A shell sample says where it runs in an HTML comment
just above it: ``<!-- test: local -->`` runs here (no root, no network), ``<!-- test: host a -->`` and
``<!-- test: host b -->`` in two network namespaces (tests/interop/test_howto.py), ``<!-- test: skip:
REASON -->`` nowhere, for the reason given.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import pytest

from wgpy.study import explain
from wgpy.study.walkthrough import REGENERATE, render_markdown

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MARKER = re.compile(r"<!--\s*test:\s*(.+?)\s*-->")
WGPY_SHIM = "#!/bin/sh\nPYTHONPATH={root} exec {python} -m wgpy \"$@\"\n"


@dataclass(frozen=True)
class Sample:
    page: str
    line: int
    language: str
    code: str
    markers: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def samples(page: Path) -> list[Sample]:
    """The fenced code blocks of a page, with the test markers written just above each."""
    found, markers, block, start, language = [], [], None, 0, ""
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if block is not None:
            if line.startswith("```"):
                found.append(Sample(page.name, start, language, "\n".join(block) + "\n", tuple(markers)))
                block, markers = None, []
            else:
                block.append(line)
        elif line.startswith("```"):
            block, start, language = [], number, line[3:].strip()
        elif match := MARKER.fullmatch(line.strip()):
            markers.append(match[1])
        elif line.strip() and not line.startswith("*"):
            markers = []  # a marker belongs to the block right below it (an italic caption may sit between)
    return found


ALL = [sample for page in PAGES for sample in samples(page) if sample.language != "text"]  # text: values, output
PYTHON = [s for s in ALL if s.language == "python"]
SHELL = [s for s in ALL if s.language == "sh"]


def wgpy_on_path(tmp_path: Path) -> dict:
    """The environment of a shell sample: a ``wgpy`` command on PATH, whatever Python runs the tests."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "wgpy"
    script.write_text(WGPY_SHIM.format(root=ROOT, python=sys.executable))
    script.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))


# ---------------------------------------------------------------------------------- generated files


def test_walkthrough_is_what_wgpy_explain_prints_now():
    expected = render_markdown(explain.run())
    assert (DOCS / "walkthrough.md").read_text() == expected, f"docs/walkthrough.md is stale: run {REGENERATE}"


def test_the_walkthrough_says_how_to_regenerate_it():
    first = (DOCS / "walkthrough.md").read_text().splitlines()[0]
    assert REGENERATE in first and first.startswith("<!--")


def test_handshake_figure_is_what_its_generator_draws_now():
    spec = importlib.util.spec_from_file_location("handshake_svg", DOCS / "handshake_svg.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    drawn = generator.draw()
    assert (DOCS / "handshake.svg").read_text() == drawn, "docs/handshake.svg is stale: run python3 docs/handshake_svg.py"
    root = ElementTree.fromstring(drawn)
    assert root.tag.endswith("svg")
    text = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for label in ("Handshake initiation", "Handshake response", "Cookie reply", "Transport data", "148 bytes", "92 bytes"):
        assert label in text


def test_pages_link_the_figure_and_each_other():
    assert "![The handshake as a sequence diagram](handshake.svg)" in (DOCS / "walkthrough.md").read_text()
    assert "walkthrough.md" in (DOCS / "howto.md").read_text()


# ---------------------------------------------------------------------------------- samples


def test_the_docs_have_samples_of_each_kind():
    assert len(PYTHON) >= 2 and len(SHELL) >= 8
    assert {"host a", "host b", "local"} <= {m for s in SHELL for m in s.markers}


@pytest.mark.parametrize("sample", ALL, ids=[s.id for s in ALL])
def test_every_code_sample_is_run_somewhere(sample):
    """Python samples run below; every shell sample says where it runs; a block without a language must
    not look like code."""
    assert sample.language in ("python", "sh", ""), f"{sample.id}: unknown language {sample.language!r}"
    if sample.language == "sh":
        assert sample.markers, f"{sample.id}: a shell sample needs a <!-- test: ... --> marker"
        for marker in sample.markers:
            assert marker in ("local", "host a", "host b") or re.fullmatch(r"skip: \S.{10,}", marker), marker
            if marker.startswith("skip"):
                assert "network" in marker, f"{sample.id}: skip only samples that need a real network"
    if sample.language == "":
        assert not re.search(r"^\s*(import |from \w+ import|wgpy |\$ )", sample.code, re.M), \
            f"{sample.id}: give code samples a language so that they are run"


@pytest.mark.parametrize("sample", PYTHON, ids=[s.id for s in PYTHON])
def test_python_sample_runs(sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(sample.code, sample.id, "exec"), {"__name__": "__docs__"})


LOCAL = [s for s in SHELL if "local" in s.markers]


@pytest.mark.parametrize("sample", LOCAL, ids=[s.id for s in LOCAL])
def test_local_shell_sample_runs(sample, tmp_path):
    result = subprocess.run(["sh", "-ec", sample.code], cwd=tmp_path, env=wgpy_on_path(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
