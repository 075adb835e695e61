"""Fuzz input as a stream of choices: every target reads its bytes through a :class:`Source`.

Like atheris's ``FuzzedDataProvider``, but pure Python and read from the front, so that one input means the
same thing under atheris, Hypothesis and a plain replay, on any machine. Past the end it reads zeros, so
every input, even an empty one, is a valid run (and zeros pick the first, simplest choice).
"""

from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


class Source:
    __slots__ = ("data", "at")

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.at = 0

    def __bool__(self) -> bool:
        """True while unread bytes remain."""
        return self.at < len(self.data)

    def bytes(self, n: int) -> bytes:
        """The next ``n`` bytes, zero-padded past the end. Also an ``rng(n)`` for the core and the crafting API."""
        chunk = self.data[self.at : self.at + n]
        self.at += n
        return chunk + bytes(n - len(chunk))

    def byte(self) -> int:
        return self.bytes(1)[0]

    def below(self, n: int) -> int:
        """A number in [0, n): one byte for small n, two for larger ones."""
        if n <= 0:
            raise ValueError("below() needs n >= 1")
        width = 1 if n <= 256 else 2
        return int.from_bytes(self.bytes(width), "big") % n

    def choice(self, options: Sequence[T]) -> T:
        return options[self.below(len(options))]

    def flag(self) -> bool:
        return bool(self.byte() & 1)

    def blob(self, limit: int = 2048) -> bytes:
        """Bytes prefixed by a two-byte big-endian length (cut at ``limit`` and at the end of the input)."""
        length = min(int.from_bytes(self.bytes(2), "big"), limit)
        chunk = self.data[self.at : self.at + length]
        self.at += length
        return chunk

    def rest(self) -> bytes:
        chunk = self.data[self.at :]
        self.at = len(self.data)
        return chunk


def blob(data: bytes) -> bytes:
    """``data`` as :meth:`Source.blob` reads it back: for building inputs (the corpus, the tests)."""
    return len(data).to_bytes(2, "big") + data
