"""How the study wing prints: byte layouts, long values, timestamps and JSON, the same in ``wgpy explain``
and ``wgpy decode``; and printing that stops quietly when the reader has gone.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import Callable

from ..core import tai64n
from .labels import Field

HEX_PER_LINE = 64     # 32 bytes a line
SHORT_HEX = 32        # a value this short has its meaning beside it, not under it
ABRIDGE_OVER = 48     # without --full, fields longer than this many bytes show their first ABRIDGED bytes
ABRIDGED = 16


def hex_lines(value: bytes) -> list[str]:
    """A value in hex, 32 bytes a line (no line for an empty value)."""
    text = value.hex()
    return [text[i : i + HEX_PER_LINE] for i in range(0, len(text), HEX_PER_LINE)]


def field_lines(items: list[Field], full: bool = True, dim: Callable[[str], str] = lambda text: text) -> list[str]:
    """A message's fields as aligned lines: offset, size, name, hex, and what it means (beside a short
    value, under a long one). Without ``full``, fields past 48 bytes show their first 16 bytes."""
    width = max(len(f.name) for f in items)
    lines = []
    for f in items:
        if not full and f.size > ABRIDGE_OVER:
            chunks = [f"{f.value[:ABRIDGED].hex()}... ({f.size} bytes)"]
        else:
            chunks = hex_lines(f.value) or [""]
        head = f"{f.offset:5d} {f.size:4d}  {f.name:<{width}}  "
        if len(chunks) == 1 and len(chunks[0]) <= SHORT_HEX:
            lines.append(head + (f"{chunks[0]:<{SHORT_HEX}}  {dim(f.meaning)}" if f.meaning else chunks[0]))
            continue
        lines.append(head + chunks[0])
        lines += [" " * len(head) + chunk for chunk in chunks[1:]]
        if f.meaning:
            lines.append(" " * len(head) + dim(f.meaning))
    return lines


def field_json(f: Field) -> dict:
    return {"offset": f.offset, "size": f.size, "name": f.name, "hex": f.value.hex(), "meaning": f.meaning}


def json_text(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def tai64n_text(timestamp: bytes) -> str:
    """A TAI64N label as a UTC date and time, to the nanosecond."""
    seconds, nanoseconds = tai64n.decode(timestamp)
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        moment = f"{seconds} s after 1970"
    return f"{moment}.{nanoseconds:09d} UTC"


def write_stdout(text: str) -> None:
    """Print, and stop quietly when the reader has gone (``wgpy decode ... | head``)."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that Python's exit does not complain again
