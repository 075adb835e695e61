"""The one loader for ``vectors/*.json``.

Every file has the same shape::

    {"family": "what the vectors test",
     "source": "where they come from (document and section, or repository, path and commit)",
     "cases": [{"id": "unique-within-family", "source": "this case's own citation", ...fields}]}

Byte strings are lowercase hex. Tests read vectors only through :func:`cases` and :func:`load`, so a
clone of the project stands alone.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


@lru_cache(maxsize=None)
def load(family: str) -> dict:
    """The whole parsed file ``vectors/<family>.json``."""
    with open(VECTORS / f"{family}.json", encoding="utf-8") as f:
        data = json.load(f)
    ids = [case["id"] for case in data["cases"]]
    assert len(ids) == len(set(ids)), f"duplicate vector ids in {family}"
    assert all(case.get("source") for case in data["cases"]), f"a vector in {family} cites no source"
    return data


def cases(family: str, **match) -> list:
    """The cases of a family as ``pytest.param``s with their ids; ``match`` filters on field values."""
    selected = [c for c in load(family)["cases"] if all(c.get(k) == v for k, v in match.items())]
    assert selected, f"no vectors in {family} match {match}"
    return [pytest.param(c, id=c["id"]) for c in selected]


def h(text: str) -> bytes:
    """Hex to bytes."""
    return bytes.fromhex(text)
