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

from dataclasses import dataclass, field

from .encoding import key_from_base64, key_to_base64

DSB_SECRETS_TYPE = 0x57474B4C  # "WGKL": pcapng Decryption Secrets Block, WireGuard Key Log

LOCAL_STATIC_PRIVATE_KEY = "LOCAL_STATIC_PRIVATE_KEY"
REMOTE_STATIC_PUBLIC_KEY = "REMOTE_STATIC_PUBLIC_KEY"
LOCAL_EPHEMERAL_PRIVATE_KEY = "LOCAL_EPHEMERAL_PRIVATE_KEY"
PRESHARED_KEY = "PRESHARED_KEY"
KEY_TYPES = (LOCAL_STATIC_PRIVATE_KEY, REMOTE_STATIC_PUBLIC_KEY, LOCAL_EPHEMERAL_PRIVATE_KEY, PRESHARED_KEY)


@dataclass(frozen=True, slots=True)
class KeylogEntry:
    """The keys of one side of one handshake, as that side knows them."""

    local_static_private: bytes = field(repr=False)
    remote_static_public: bytes
    local_ephemeral_private: bytes = field(repr=False)
    preshared_key: bytes = field(repr=False)  # 32 zero bytes without a preshared key (Q, section 5.2)

    def text(self) -> str:
        """The four lines of the key log, each ending with a newline."""
        return "".join(
            f"{name} = {key_to_base64(key)}\n"
            for name, key in zip(
                KEY_TYPES,
                (self.local_static_private, self.remote_static_public, self.local_ephemeral_private, self.preshared_key),
            )
        )


@dataclass
class Keylog:
    """What a key log file tells: every key by type, and the preshared key that goes with each ephemeral."""

    static_private: list[bytes] = field(default_factory=list, repr=False)
    static_public: list[bytes] = field(default_factory=list)
    ephemeral_private: list[bytes] = field(default_factory=list, repr=False)
    preshared: dict[bytes, list[bytes]] = field(default_factory=dict, repr=False)  # ephemeral private -> PSKs

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
            key = key_from_base64(value.replace(" ", ""))
        except ValueError:
            raise ValueError(f"key log line {number}: {name} is not a base64 32-byte key") from None
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
