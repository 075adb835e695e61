"""WGPY_KEYLOG's file (wgpy/runtime/keylog.py) holds the static private key: wgpy writes it only into a file
it created, or a regular file of its own user with one name, and never follows a symbolic link.

    $WGPY_KEYLOG ──► new: created 0600 (O_EXCL)          existing regular file of ours, one link: 0600, appended
                 ──► symbolic link, another user's file, a hard-linked file, not a regular file: refused
"""

import os
import signal
import stat

import pytest

from wgpy.core.keylog import KeylogEntry
from wgpy.runtime.keylog import KeylogFile

NOBODY = 65534


ENTRY = KeylogEntry(bytes([1] * 32), bytes([2] * 32), bytes([3] * 32), bytes(32))


def refused(path) -> str:
    with pytest.raises(OSError) as caught:
        KeylogFile(str(path))
    assert caught.value.filename == str(path)   # the exception names the file
    return caught.value.strerror


def test_a_new_file_is_created_0600_even_with_a_lax_umask(tmp_path):
    path = tmp_path / "keys.log"
    old = os.umask(0)
    try:
        keylog = KeylogFile(str(path))
    finally:
        os.umask(old)
    keylog.write([ENTRY])
    keylog.close()
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    assert path.read_text() == ENTRY.text()


def test_an_existing_file_of_ours_is_made_0600_and_appended_to(tmp_path):
    path = tmp_path / "keys.log"
    path.write_text("earlier\n")
    path.chmod(0o644)
    keylog = KeylogFile(str(path))
    keylog.write([ENTRY, ENTRY])
    keylog.close()
    assert keylog.closed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "earlier\n" + 2 * ENTRY.text()


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symbolic_link_is_refused_and_its_target_untouched(tmp_path, dangling):
    target, link = tmp_path / "target", tmp_path / "keys.log"
    if not dangling:
        target.write_text("someone's file\n")
        target.chmod(0o644)
    link.symlink_to(target)
    reason = refused(link)
    assert "symbolic link" in reason and "remove it or choose another path" in reason
    if dangling:
        assert not target.exists()   # not created through the link either
    else:
        assert target.read_text() == "someone's file\n" and stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file another user's needs root")
def test_a_file_another_user_made_is_refused_and_stays_as_it_was(tmp_path):
    """The /tmp trap: nobody creates the file first, and would read the keys wgpy writes into it."""
    path = tmp_path / "keys.log"
    path.write_text("")
    path.chmod(0o666)
    os.chown(path, NOBODY, NOBODY)
    reason = refused(path)
    assert f"owned by uid {NOBODY}, not by this user" in reason and "remove it or choose another path" in reason
    info = path.stat()
    assert info.st_uid == NOBODY and info.st_size == 0 and stat.S_IMODE(info.st_mode) == 0o666


def test_a_file_with_another_name_is_refused(tmp_path):
    path, other = tmp_path / "keys.log", tmp_path / "other-name"
    path.write_text("")
    os.link(path, other)
    assert "2 hard links" in refused(path)
    assert other.read_text() == ""


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_what_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "keys.log"
    path.mkdir() if kind == "directory" else os.mkfifo(path)
    signal.alarm(10)   # opening a FIFO for writing blocks until a reader comes: fail instead of hanging
    try:
        assert "not a regular file" in refused(path)
    finally:
        signal.alarm(0)
