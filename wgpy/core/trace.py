"""Tracing the handshake, step by step, for study (``wgpy explain``) and nothing else.

The handshake code calls ``trace.step(...)`` from its primitives (``mix_hash``, ``mix_key``, the DH, KDF
and AEAD steps in noise.py; the MACs and cookies in cookie.py), never inline in the protocol flow, and only
when ``trace.enabled``: with the default :data:`NULL_TRACE` a step costs one attribute test and builds
nothing. Secrets only ever leave the core when a caller asks for a :class:`Recorder` on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Step:
    """One computation: what the whitepaper writes (``C = KDF1(C, E_pub_i)``) and the values involved."""

    formula: str
    values: dict[str, bytes]
    section: str = ""


class NullTrace:
    """Records nothing."""

    __slots__ = ()
    enabled = False

    def step(self, formula: str, section: str = "", **values: bytes) -> None:
        pass


NULL_TRACE = NullTrace()


@dataclass
class Recorder:
    """Keeps every step, in order. It holds secrets: only explain mode and tests create one."""

    steps: list[Step] = field(default_factory=list, repr=False)
    enabled = True

    def step(self, formula: str, section: str = "", **values: bytes) -> None:
        self.steps.append(Step(formula, dict(values), section))
