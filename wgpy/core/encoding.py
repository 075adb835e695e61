"""Keys as text: base64 as ``wg`` prints them, or hex (wireguard-tools ``encoding.c``).

One codec for every place that shows or reads a key: the key log, ``wgpy explain``, ``wgpy decode`` and
the in-memory demo. A key read here must be 32 bytes; ``config.py`` keeps wg's stricter reading of
configuration files (44 characters, canonical padding).
"""

from __future__ import annotations

import base64
import binascii

from .constants import KEY_LEN

KEY_HEX_LEN = 2 * KEY_LEN


def key_to_base64(key: bytes) -> str:
    """The base64 text of a key, as ``wg`` prints it (``key_to_base64``)."""
    return base64.b64encode(key).decode()


def key_from_base64(text: str) -> bytes:
    """A 32-byte key from base64. Raises ValueError if it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_LEN:
        raise ValueError(f"{text!r} is not a base64 32-byte key")
    return raw


def key_from_text(text: str) -> bytes:
    """A 32-byte key given as base64 (as ``wg`` writes keys) or as 64 hex digits. Raises ValueError."""
    text = text.strip()
    try:
        return bytes.fromhex(text) if len(text) == KEY_HEX_LEN else key_from_base64(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a 32-byte key in base64 or hex") from None
