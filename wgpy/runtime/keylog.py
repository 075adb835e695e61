"""The key log file that ``WGPY_KEYLOG=FILE`` asks for: session secrets, appended as the device makes them.

The entries come from ``Device.keylog_entries()`` (``core/keylog.py`` has the format); Wireshark, ``tshark -o
wg.keylog_file:FILE`` and ``wgpy decode --keylog FILE`` read them to decrypt a capture. The file holds the
interface's private key, so it is created readable by its owner only, and a regular file that already
exists is made so too.
"""

from __future__ import annotations

import os
import stat
from typing import Iterable

from ..core.keylog import KeylogEntry


class KeylogFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        if stat.S_ISREG(os.fstat(self._fd).st_mode):
            os.fchmod(self._fd, 0o600)

    def write(self, entries: Iterable[KeylogEntry]) -> None:
        """Append entries at once (unbuffered: a reader may be watching the file)."""
        text = "".join(entry.text() for entry in entries)
        if text:
            os.write(self._fd, text.encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"KeylogFile({self.path!r})"
