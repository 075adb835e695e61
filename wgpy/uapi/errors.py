"""How an operation fails: :class:`UapiError` and the errno values wireguard-go answers with."""

from __future__ import annotations

import errno

# ipc/uapi_unix.go: the codes are the platform's errno values, sent negated.
IPC_ERROR_IO = -errno.EIO
IPC_ERROR_PROTOCOL = -errno.EPROTO
IPC_ERROR_INVALID = -errno.EINVAL
IPC_ERROR_PORT_IN_USE = -errno.EADDRINUSE


class UapiError(Exception):
    """An operation failed: ``errno`` is what the client is told (negative, as wireguard-go sends it)."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno

    def __repr__(self) -> str:
        return f"UapiError({self.errno}, {str(self)!r})"
