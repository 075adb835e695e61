"""The document ``wgpy explain`` prints: parts, one per message, each a list of steps, byte layouts and
notes; then the checks. Rendered as text (a terminal, colour if asked), Markdown (docs/walkthrough.md) and
JSON (for programs, and for :func:`~wgpy.study.verify.verify`, which recomputes each step by its operation).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from ..core.constants import KEY_LEN, TIMESTAMP_LEN
from ..core.encoding import key_to_base64
from ..core.trace import Op
from .labels import Field
from .render import field_json, field_lines, hex_lines, json_text, tai64n_text

REGENERATE = "python3 -m wgpy explain --format markdown > docs/walkthrough.md"
TEXT_VALUES = {"CONSTRUCTION", "IDENTIFIER", "LABEL_MAC1", "LABEL_COOKIE"}   # printed as text, not hex
WIDTH = 100


@dataclass
class Step:
    """One computation as the whitepaper writes it, by one party, with the values it shows; and what it
    computes (see :mod:`wgpy.core.trace`): an operation, the names of its inputs and of its outputs. A
    ``given`` step states inputs (chosen or random) rather than computing them."""

    formula: str
    section: str
    by: str
    values: list[tuple[str, bytes]]
    given: bool = False
    operation: Op = Op.GIVEN
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass
class Layout:
    """A message on the wire, field by field."""

    title: str
    section: str
    wire: bytes
    fields: list[Field]


@dataclass
class Note:
    text: str


@dataclass
class Part:
    title: str
    section: str
    text: str
    items: list = field(default_factory=list)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Walkthrough:
    parameters: list[tuple[str, str]]
    parts: list[Part]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


# ------------------------------------------------------------------------------------------------ JSON


def to_json(walkthrough: Walkthrough) -> dict:
    parts = []
    for part in walkthrough.parts:
        items = []
        for item in part.items:
            if isinstance(item, Step):
                items.append({"kind": "step", "by": item.by, "formula": item.formula, "section": item.section,
                              "given": item.given, "values": {name: value.hex() for name, value in item.values},
                              "operation": item.operation.name, "inputs": list(item.inputs),
                              "outputs": list(item.outputs)})
            elif isinstance(item, Layout):
                items.append({"kind": "layout", "title": item.title, "section": item.section, "wire": item.wire.hex(),
                              "fields": [field_json(f) for f in item.fields]})
            else:
                items.append({"kind": "note", "text": item.text})
        parts.append({"title": part.title, "section": part.section, "text": part.text, "items": items})
    return {
        "parameters": dict(walkthrough.parameters),
        "parts": parts,
        "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in walkthrough.checks],
    }


def render_json(walkthrough: Walkthrough) -> str:
    return json_text(to_json(walkthrough))


# ------------------------------------------------------------------------------------------------ text


def _value_lines(step: Step) -> list[tuple[str, str]]:
    """A step's values as (name, value) lines, the names padded to one width and blank where a long value
    goes on: text for the protocol's labels, else hex with a word on what some values mean."""
    width = max(len(name) for name, _ in step.values)
    out = []
    for name, value in step.values:
        if name in TEXT_VALUES:
            lines = [f'"{value.decode()}"']
        elif not value:
            lines = ["(empty)"]
        else:
            lines = hex_lines(value)
            extra = _annotation(name, value)
            if extra:
                lines[-1] += f"  ({extra})"
        out.append((name.ljust(width), lines[0]))
        out += [(" " * width, line) for line in lines[1:]]
    return out


def _annotation(name: str, value: bytes) -> str:
    if name in ("I_i", "I_r"):
        return f"{int.from_bytes(value, 'little'):#010x}"
    if name == "N_send":
        return f"counter {int.from_bytes(value, 'little')}"
    if name == "timestamp" and len(value) == TIMESTAMP_LEN:
        return tai64n_text(value)
    if name in ("S_pub_i", "S_pub_r") and len(value) == KEY_LEN:
        return f"base64 {key_to_base64(value)}"
    return ""


class _Style:
    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def __call__(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text


def render_text(walkthrough: Walkthrough, colour: bool = False) -> str:
    s = _Style(colour)
    out = [s("1", "wgpy explain: one WireGuard handshake and its first packets, every value computed by wgpy's core")]
    out += [f"  {name}: {value}" for name, value in walkthrough.parameters]
    for number, part in enumerate(walkthrough.parts, 1):
        out += ["", s("1;4", f"{number}. {part.title}") + s("33", f"  [whitepaper {part.section}]")]
        out += textwrap.wrap(part.text, WIDTH, initial_indent="  ", subsequent_indent="  ")
        for item in part.items:
            out.append("")
            if isinstance(item, Step):
                who = f"{item.by}: " if item.by else ""
                out.append(f"  {s('33', '[' + item.section + ']')} {who}{s('36', item.formula)}")
                for name, value in _value_lines(item):
                    out.append(f"      {s('2', name) if name.strip() else name}  {value}")
            elif isinstance(item, Layout):
                out.append(f"  {s('1', item.title)}  {s('33', '[' + item.section + ']')}")
                out += ["   " + line for line in field_lines(item.fields, dim=lambda text: s("2", text))]
            else:
                out += textwrap.wrap(item.text, WIDTH, initial_indent="  ", subsequent_indent="  ")
    out += ["", s("1", "Checks")]
    for check in walkthrough.checks:
        mark = s("32", "ok  ") if check.ok else s("31", "FAIL")
        out.append(f"  {mark} {check.name}" + (f": {check.detail}" if check.detail else ""))
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------ Markdown


def render_markdown(walkthrough: Walkthrough) -> str:
    out = [
        f"<!-- Generated by `{REGENERATE}`. Do not edit by hand: tests/test_docs.py fails when this file is stale. -->",
        "",
        "# A WireGuard handshake, step by step",
        "",
        "This is the output of `wgpy explain --format markdown`: two peers in memory run wgpy's core "
        "(`wgpy/core/noise.py`, `cookie.py`, `keypairs.py`) with fixed keys and a seeded random generator, "
        "and every value the core computes is shown as the "
        "[WireGuard whitepaper](https://www.wireguard.com/papers/wireguard.pdf) writes it, with the section "
        "of the whitepaper each step comes from. The walkthrough checks itself: the last section recomputes "
        "every step from the printed values. `wgpy explain` prints the same in a terminal, "
        "`--under-load` adds the cookie round trip, and `--format json` gives it to programs.",
        "",
        "![The handshake as a sequence diagram](handshake.svg)",
        "",
        "| parameter | value |",
        "|---|---|",
        *[f"| {name} | `{value}` |" for name, value in walkthrough.parameters],
    ]
    for number, part in enumerate(walkthrough.parts, 1):
        out += ["", f"## {number}. {part.title}", "", f"*Whitepaper section {part.section}.* {part.text}"]
        for item in part.items:
            out.append("")
            if isinstance(item, Step):
                who = f"{item.by.capitalize()}: " if item.by else ""
                out += [f"**{who}`{item.formula}`** (§{item.section})", "", "```text"]
                out += [f"{name}  {value}" for name, value in _value_lines(item)]
                out.append("```")
            elif isinstance(item, Layout):
                out += [f"**{item.title}** (§{item.section})", "", "| offset | size | field | bytes | meaning |",
                        "|---:|---:|---|---|---|"]
                for f in item.fields:
                    chunks = "<br>".join(f"`{line}`" for line in hex_lines(f.value))
                    out.append(f"| {f.offset} | {f.size} | `{f.name}` | {chunks} | {_md(f.meaning)} |")
            else:
                out.append(item.text)
    out += ["", "## Checks", ""]
    for check in walkthrough.checks:
        out.append(f"- {'✓' if check.ok else '✗ FAILED:'} {check.name}" + (f" ({check.detail})" if check.detail else ""))
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")
