"""Keys as text, exactly as wireguard-tools writes and reads them (``src/encoding.c``): base64 in
configuration files and on the command line, hex on the UAPI socket.

The decoders raise ValueError with a message that never quotes the text: it may be a secret.
"""

from __future__ import annotations

from .constants import KEY_LEN

KEY_BASE64_LEN = 44   # 43 characters and one '=' (WG_KEY_LEN_BASE64, less its NUL)
KEY_HEX_LEN = 2 * KEY_LEN

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")   # Go's hex.DecodeString takes either case


def key_to_base64(key: bytes) -> str:
    """``key_to_base64``: what ``wg`` prints for a key."""
    import binascii   # here: base64.b64encode's own call, without base64's import of re (bench_startup.py)

    return binascii.b2a_base64(key, newline=False).decode()


def key_from_base64(text: str) -> bytes:
    """``key_from_base64``: 44 characters, the last one '=', and the 32 bytes encoded canonically (the
    unused low bits of the 43rd character are zero)."""
    if len(text) != KEY_BASE64_LEN or text[-1] != "=" or not text.isascii():
        raise ValueError("not a base64 key of 32 bytes (44 characters ending in '=')")
    import base64   # here: it imports re, a cost for the daemon's start-up (bench_startup.py)

    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:   # binascii.Error is one
        raw = b""
    if len(raw) != KEY_LEN or key_to_base64(raw) != text:
        raise ValueError("not a base64 key of 32 bytes (44 characters ending in '=')")
    return raw


def key_to_hex(key: bytes) -> str:
    """``key_to_hex``: lower-case hex, as the UAPI's ``get`` answers and ``wg`` sends."""
    return key.hex()


def key_from_hex(text: str) -> bytes:
    """64 hex digits, either case, exactly (``key_from_hex``; wireguard-go ``loadExactHex``)."""
    if len(text) != KEY_HEX_LEN or not _HEX_DIGITS.issuperset(text):
        raise ValueError("not 64 hexadecimal digits")
    return bytes.fromhex(text)


def key_from_text(text: str) -> bytes:
    """A key given either way, base64 (as ``wg`` writes keys) or 64 hex digits (as the UAPI does): what
    ``wgpy explain --initiator-key`` and the study wing take. Raises ValueError."""
    text = text.strip()
    try:
        return key_from_hex(text) if len(text) == KEY_HEX_LEN else key_from_base64(text)
    except ValueError:
        raise ValueError("not a 32-byte key in base64 (44 characters ending in '=') or hex (64 digits)") from None
