"""The key log file that ``WGPY_KEYLOG=FILE`` asks for: session secrets, appended as the device makes them.

The entries come from ``Device.keylog_entries()`` (``core/keylog.py`` has the format); Wireshark, ``tshark -o
wg.keylog_file:FILE`` and ``wgpy decode --keylog FILE`` read them to decrypt a capture. The file holds the
interface's private key, so wgpy writes only into a file it creates itself (``O_EXCL``, readable by its
owner only) or a regular file that is already its own user's and has no other name, made 0600; it never
follows a symbolic link (``O_NOFOLLOW``). A file someone else created in ``/tmp`` first, or a link to
somewhere else, is refused with the reason.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing at run time (bench_startup.py)
if TYPE_CHECKING:
    from ..core.keylog import KeylogEntry

# O_NONBLOCK: opening a FIFO must not wait for a reader (it is refused once open); O_NOCTTY: a terminal given
# as the path must not become ours.
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK
_ADVICE = "remove it or choose another path"


class KeylogFile:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = _open(path)

    @property
    def closed(self) -> bool:
        return self._fd < 0

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


def _refuse(code: int, path: str, reason: str) -> OSError:
    """An OSError whose ``strerror`` is the whole reason, for daemon.py's 'Failed to open key log PATH: ...'."""
    return OSError(code, f"{reason}: {_ADVICE}", path)


def _open(path: str) -> int:
    try:
        fd = os.open(path, _FLAGS | os.O_CREAT | os.O_EXCL, 0o600)  # a new file: ours from the start
    except FileExistsError:  # also a symbolic link, dangling or not: O_EXCL never follows one
        try:
            fd = os.open(path, _FLAGS)
        except OSError as err:
            if err.errno == errno.ELOOP and os.path.islink(path):
                raise _refuse(errno.ELOOP, path, "the file is a symbolic link, which wgpy does not follow") from None
            if err.errno in (errno.EISDIR, errno.ENXIO):  # a directory; a FIFO nobody reads
                raise _refuse(err.errno, path, "the file is not a regular file") from None
            raise
    try:
        _check(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check(fd: int, path: str) -> None:
    """What was opened (not what the path names now) must be a regular file of this user with one name."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(errno.EINVAL, path, "the file is not a regular file")
    if info.st_uid != os.geteuid():
        raise _refuse(errno.EPERM, path, f"the file is owned by uid {info.st_uid}, not by this user")
    if info.st_nlink != 1:
        raise _refuse(errno.EPERM, path, f"the file has {info.st_nlink} hard links, so others may read it by another name")
    os.fchmod(fd, 0o600)
    os.set_blocking(fd, True)
