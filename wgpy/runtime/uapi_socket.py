"""The UAPI socket: ``/var/run/wireguard/IFACE.sock``, where ``wg`` talks to a userspace implementation
(wireguard.com/xplatform). Root only: the directory is 0700 and the socket 0600.

The protocol itself is in :mod:`wgpy.uapi`; this module only accepts connections and moves bytes. Its
sockets are ``_socket``'s, the C type that ``socket.socket`` extends: importing ``socket`` would cost the
daemon's start-up about 5 ms (docs/performance.md, "Start-up").
"""

from __future__ import annotations

import _socket
import errno
import os
import stat

SOCKET_DIRECTORY = "/var/run/wireguard"
MAX_CLIENTS = 64  # connections served at once; more are refused until one closes
READ_SIZE = 65536


class SocketInUse(OSError):
    """Another process already serves this interface's socket."""


class _Listener(_socket.socket):
    """A listening socket whose ``accept`` returns a socket, as ``socket.socket``'s does."""

    def accept(self) -> tuple[_socket.socket, object]:
        fd, address = self._accept()
        return _socket.socket(fileno=fd), address


def socket_path(interface: str, directory: str = SOCKET_DIRECTORY) -> str:
    return os.path.join(directory, f"{interface}.sock")


class UapiServer:
    """A listening Unix socket and its clients."""

    def __init__(self, interface: str, directory: str = SOCKET_DIRECTORY) -> None:
        self.path = socket_path(interface, directory)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        self._remove_stale()
        listener = _Listener(_socket.AF_UNIX, _socket.SOCK_STREAM)
        old_umask = os.umask(0o077)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        listener.listen(128)
        listener.setblocking(False)
        self.listener = listener
        self._inode = os.stat(self.path).st_ino

    def _remove_stale(self) -> None:
        """A socket file nobody answers on is left over from a crash: remove it. One that answers
        belongs to a running daemon: refuse, as wireguard-go does."""
        if not os.path.exists(self.path):
            return
        probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            probe.connect(self.path)
        except OSError:
            os.unlink(self.path)
            return
        finally:
            probe.close()
        raise SocketInUse(errno.EADDRINUSE, f"{self.path} is in use by another process")

    def accept(self) -> _socket.socket | None:
        try:
            client, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return None
        client.setblocking(False)
        return client

    def still_ours(self) -> bool:
        """False once the socket file was removed or replaced: the daemon then shuts down."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return False
        return stat.S_ISSOCK(info.st_mode) and info.st_ino == self._inode

    def close(self) -> None:
        self.listener.close()
        if self.still_ours():
            os.unlink(self.path)


def request(interface: str, text: str, *, timeout: float = 30.0, directory: str = SOCKET_DIRECTORY) -> str:
    """The client side: send one UAPI operation (``get=1\\n\\n`` or ``set=1\\n...\\n\\n``) to the daemon
    serving ``interface`` and return its answer, up to and including the blank line after ``errno=``."""
    client = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        client.settimeout(timeout)
        client.connect(socket_path(interface, directory))
        client.sendall(text.encode())
        answer = b""
        while not answer.endswith(b"\n\n"):
            chunk = client.recv(65536)
            if not chunk:
                break
            answer += chunk
    finally:
        client.close()
    return answer.decode()
