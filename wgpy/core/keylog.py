"""Session secrets in Wireshark's WireGuard key log format, so that a capture can be decrypted.

    LOCAL_STATIC_PRIVATE_KEY = <base64>
    REMOTE_STATIC_PUBLIC_KEY = <base64>
    LOCAL_EPHEMERAL_PRIVATE_KEY = <base64>
    PRESHARED_KEY = <base64>

This is the format of wireguard-tools' ``contrib/extract-handshakes`` and of Wireshark's ``wg.keylog_file``
(wiki.wireshark.org/WireGuard): one key a line, ``TYPE = base64``, spaces optional; a PRESHARED_KEY line
belongs to the LOCAL_EPHEMERAL_PRIVATE_KEY line before it. A pcapng file can carry the same text in a
Decryption Secrets Block of type :data:`DSB_SECRETS_TYPE`.

One side's entry for a handshake is enough to recompute all of it (section 5.4): the initiator's
(S_priv_i, E_priv_i, S_pub_r, Q) gives every DH as well as the responder's (S_priv_r, E_priv_r, S_pub_i, Q)
does. A device makes an entry for each ephemeral key it generates, and only when asked
(``Device.keylog_enabled``): these are secrets, written on purpose.
"""

from __future__ import annotations

import binascii
from .constants import KEY_LEN
from .encoding import key_to_base64
from .record import record

DSB_SECRETS_TYPE = 0x57474B4C  # "WGKL": pcapng Decryption Secrets Block, WireGuard Key Log

LOCAL_STATIC_PRIVATE_KEY = "LOCAL_STATIC_PRIVATE_KEY"
REMOTE_STATIC_PUBLIC_KEY = "REMOTE_STATIC_PUBLIC_KEY"
LOCAL_EPHEMERAL_PRIVATE_KEY = "LOCAL_EPHEMERAL_PRIVATE_KEY"
PRESHARED_KEY = "PRESHARED_KEY"
KEY_TYPES = (LOCAL_STATIC_PRIVATE_KEY, REMOTE_STATIC_PUBLIC_KEY, LOCAL_EPHEMERAL_PRIVATE_KEY, PRESHARED_KEY)


@record(hidden=("local_static_private", "local_ephemeral_private", "preshared_key"))
class KeylogEntry:
    """The keys of one side of one handshake, as that side knows them."""

    local_static_private: bytes
    remote_static_public: bytes
    local_ephemeral_private: bytes
    preshared_key: bytes  # 32 zero bytes without a preshared key (Q, section 5.2)

    def text(self) -> str:
        """The four lines of the key log, each ending with a newline."""
        return "".join(
            f"{name} = {key_to_base64(key)}\n"
            for name, key in zip(
                KEY_TYPES,
                (self.local_static_private, self.remote_static_public, self.local_ephemeral_private, self.preshared_key),
            )
        )


class Keylog:
    """What a key log file tells: every key by type, and the preshared key that goes with each ephemeral."""

    def __init__(self) -> None:
        self.static_private: list[bytes] = []
        self.static_public: list[bytes] = []
        self.ephemeral_private: list[bytes] = []
        self.preshared: dict[bytes, list[bytes]] = {}  # ephemeral private -> PSKs

    def __repr__(self) -> str:   # the public keys only: the rest are secrets
        return f"Keylog(static_public={self.static_public!r})"

    def __eq__(self, other):
        if other.__class__ is not Keylog:
            return NotImplemented
        return vars(self) == vars(other)

    __hash__ = None

    def __len__(self) -> int:
        return len(self.static_private) + len(self.static_public) + len(self.ephemeral_private)

    def extend(self, other: "Keylog") -> None:
        self.static_private += other.static_private
        self.static_public += other.static_public
        self.ephemeral_private += other.ephemeral_private
        for ephemeral, keys in other.preshared.items():
            self.preshared.setdefault(ephemeral, []).extend(keys)


def parse_keylog(text: str) -> Keylog:
    """Read a key log; blank lines and ``#`` comments are skipped, anything else malformed raises
    ValueError naming the line."""
    import base64   # here: it imports re, a cost for the daemon's start-up (bench_startup.py)

    keylog = Keylog()
    last_ephemeral: bytes | None = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        name = name.strip()
        if not equals or name not in KEY_TYPES:
            raise ValueError(f"key log line {number}: expected one of {', '.join(KEY_TYPES)} = <base64 key>")
        try:
            # Wireshark's reader (decode_base64_key) is lenient where wg's key_from_base64 is strict (the
            # unused bits of the last character), and key logs may space the text: so is this one.
            key = base64.b64decode(value.replace(" ", ""), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_LEN:
            raise ValueError(f"key log line {number}: {name} is not a base64 32-byte key")
        if name == LOCAL_STATIC_PRIVATE_KEY:
            keylog.static_private.append(key)
        elif name == REMOTE_STATIC_PUBLIC_KEY:
            keylog.static_public.append(key)
        elif name == LOCAL_EPHEMERAL_PRIVATE_KEY:
            keylog.ephemeral_private.append(key)
            last_ephemeral = key
        elif last_ephemeral is not None:
            keylog.preshared.setdefault(last_ephemeral, []).append(key)
    return keylog
