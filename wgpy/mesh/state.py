"""The state directory beside a roster: the fleet's secrets and its address record, never in the roster.

    fleet.toml                the roster
    fleet.state/              0700, made on first use
        keys/NAME.key         0600  the host's private key, base64 and a newline (as ``wg genkey`` writes)
        psk/A+B.psk           0600  the preshared key of the pair A, B (names sorted), base64
        addresses.json        0600  {"version": 1, "hosts": {NAME: {"ipv4": ..., "ipv6": ...}}}

Files are created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, so a link planted in the directory is
never followed and an existing secret never overwritten; ``addresses.json`` is replaced by a rename.
A directory or file that others may read is refused. Key rotation adds files beside ``NAME.key``
(see docs/mesh.md, "The state directory").
"""

from __future__ import annotations

import json
import os
import stat

from ..core.constants import KEY_LEN
from ..core.encoding import key_from_base64, key_to_base64

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


class StateError(OSError):
    """The state directory is unsafe or unreadable."""


def state_directory(roster_path: str) -> str:
    """``fleet.toml`` -> ``fleet.state`` beside it."""
    base, extension = os.path.splitext(roster_path)
    return (base if extension == ".toml" else roster_path) + ".state"


class State:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    # ------------------------------------------------------------------------------------ reading

    def private_key(self, name: str) -> bytes | None:
        return self._read_key(os.path.join("keys", f"{name}.key"))

    def preshared_key(self, a: str, b: str) -> bytes | None:
        return self._read_key(os.path.join("psk", pair_file(a, b)))

    def addresses(self) -> dict[str, dict[str, str]]:
        text = self._read("addresses.json")
        if text is None:
            return {}
        try:
            hosts = json.loads(text).get("hosts", {})
        except (ValueError, AttributeError):
            raise StateError(f"{self.directory}/addresses.json is not the address record") from None
        return {name: dict(value) for name, value in hosts.items() if isinstance(value, dict)}

    # ------------------------------------------------------------------------------------ writing

    def ensure_private_key(self, name: str, rng=os.urandom) -> bytes:
        """The host's key, made (clamped, as ``wg genkey``) and stored on first use."""
        from ..core.crypto import clamp

        return self._ensure_key(os.path.join("keys", f"{name}.key"), lambda: clamp(rng(KEY_LEN)))

    def ensure_preshared_key(self, a: str, b: str, rng=os.urandom) -> bytes:
        return self._ensure_key(os.path.join("psk", pair_file(a, b)), lambda: rng(KEY_LEN))

    def save_addresses(self, addresses: dict[str, dict[str, str]]) -> None:
        self._prepare("")
        text = json.dumps({"version": 1, "hosts": addresses}, indent=2, sort_keys=True) + "\n"
        temporary = os.path.join(self.directory, f".addresses.json.{os.getpid()}")
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        self._create(temporary, text)
        os.replace(temporary, os.path.join(self.directory, "addresses.json"))

    # ------------------------------------------------------------------------------------ key rotation
    # keys/NAME.next.key: made by ``wgpy mesh rotate`` before the interface changes; NAME.previous.key: the
    # key it replaced, until ``--finish`` (docs/rotation.md).

    def ensure_next_key(self, name: str, rng=os.urandom) -> bytes:
        """The key ``name`` rotates to, made on first use (a run that stopped reuses it)."""
        from ..core.crypto import clamp

        return self._ensure_key(os.path.join("keys", f"{name}.next.key"), lambda: clamp(rng(KEY_LEN)))

    def previous_key(self, name: str) -> bytes | None:
        return self._read_key(os.path.join("keys", f"{name}.previous.key"))

    def promote_next_key(self, name: str) -> None:
        """NAME.previous.key := NAME.key, then NAME.key := NAME.next.key by one rename: a run stopped at any
        point leaves NAME.key holding a key the interface knows."""
        old = self.private_key(name)
        keys = os.path.join(self.directory, "keys")
        if old is not None and self.previous_key(name) != old:
            temporary = os.path.join(keys, f".{name}.previous.key.{os.getpid()}")
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            self._create(temporary, key_to_base64(old) + "\n")
            os.replace(temporary, os.path.join(keys, f"{name}.previous.key"))
        os.replace(os.path.join(keys, f"{name}.next.key"), os.path.join(keys, f"{name}.key"))

    def forget_previous_key(self, name: str) -> bool:
        try:
            os.unlink(os.path.join(self.directory, "keys", f"{name}.previous.key"))
        except FileNotFoundError:
            return False
        return True

    # ------------------------------------------------------------------------------------ the files

    def _ensure_key(self, relative: str, make) -> bytes:
        key = self._read_key(relative)
        if key is not None:
            return key
        key = make()
        self._prepare(os.path.dirname(relative))
        try:
            self._create(os.path.join(self.directory, relative), key_to_base64(key) + "\n")
        except FileExistsError:          # made meanwhile by another run: theirs wins
            return self._read_key(relative)
        return key

    def _read_key(self, relative: str) -> bytes | None:
        text = self._read(relative)
        if text is None:
            return None
        try:
            return key_from_base64(text.strip())
        except ValueError:
            raise StateError(f"{self.directory}/{relative} is not a base64 key") from None

    def _read(self, relative: str) -> str | None:
        path = os.path.join(self.directory, relative)
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StateError(f"{path}: {error.strerror}") from None
        with os.fdopen(descriptor, "r") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077:
                raise StateError(f"{path} is not an owner-only file (chmod 600 it)")
            return file.read()

    def _prepare(self, subdirectory: str) -> None:
        """Make the directory (and ``subdirectory``) owner-only, or refuse one that others may enter."""
        for path in (self.directory, os.path.join(self.directory, subdirectory)):
            try:
                os.mkdir(path, DIRECTORY_MODE)
            except FileExistsError:
                pass
            info = os.lstat(path)
            if not stat.S_ISDIR(info.st_mode) or info.st_mode & 0o077 or info.st_uid != os.geteuid():
                raise StateError(f"{path} is not a directory only its owner may use (chmod 700 it)")

    @staticmethod
    def _create(path: str, text: str) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)


def pair_file(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"{first}+{second}.psk"      # '+' is not allowed in a host's name
