"""The cross-platform UAPI: the text protocol ``wg`` speaks on ``/var/run/wireguard/<name>.sock``, mapped onto
calls on a :class:`~wgpy.core.device.Device` (https://www.wireguard.com/xplatform/, "Configuration
Protocol"; wireguard-go's ``device/uapi.go`` wherever that page is silent). Sans-IO like the core: the
runtime's socket server feeds each connection's bytes in and writes back what comes out::

    connection = UapiConnection(device, bind=runtime.bind, lock=lock)   # one IpcLock per device
    reply = connection.feed(data, now, budget=256)   # answers the operations ``data`` completes, 256 lines' worth
    while connection.working:                        # ... between packet batches, read nothing more meanwhile:
        reply += connection.resume(now, budget=256)  # the next slice
    ...                                              # write ``reply``; hang up when ``connection.closed``
    reply = connection.eof(now)                      # the client shut down its side: finish, then hang up

Without a budget a call does all the work there is (as a test or a one-shot caller wants).

One concern a module:

* ``connection.py``: the stream framing: operations read off the client's bytes, the connection's states,
  the slices and the device's :class:`IpcLock`;
* ``set.py``: a ``set=1`` operation's lines applied to the device, with wireguard-go's errnos;
* ``get.py``: the ``get=1`` answer;
* ``values.py``: keys, numbers, addresses, prefixes and endpoints as wireguard-go reads and writes them;
* ``errors.py``: :class:`UapiError` and the errno values.

Secrets: the answer to ``get`` holds the private and preshared keys, as the protocol requires. Nothing else
here does: :class:`UapiError` messages (for the runtime's log) give the line number and what is wrong, and
never quote a value.
"""

from .connection import MAX_OPERATION_SIZE, IpcLock, UapiConnection
from .errors import IPC_ERROR_INVALID, IPC_ERROR_IO, IPC_ERROR_PORT_IN_USE, IPC_ERROR_PROTOCOL, UapiError
from .get import get_lines, get_operation
from .values import InterfaceIndex, format_endpoint, join_host_port

_FROM_SET = ("MAX_LINE_SIZE", "MAX_PEERS", "Bind", "SetOperation")


def __getattr__(name: str):
    """set.py's names, loaded when first asked for (PEP 562): a daemon needs set.py, and the core's crypto
    with it, only with its first ``set`` (benchmarks/bench_startup.py)."""
    if name in _FROM_SET:
        from . import set as operation

        return getattr(operation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "IPC_ERROR_INVALID", "IPC_ERROR_IO", "IPC_ERROR_PORT_IN_USE", "IPC_ERROR_PROTOCOL", "MAX_LINE_SIZE",
    "MAX_OPERATION_SIZE", "MAX_PEERS", "Bind", "InterfaceIndex", "IpcLock", "SetOperation", "UapiConnection",
    "UapiError", "format_endpoint", "get_lines", "get_operation", "join_host_port",
]
