"""Transport first: the kernel sorts WireGuard datagrams by message type into three sockets on one port.

Handshake messages cost us a Diffie-Hellman or a cookie reply; transport messages one AEAD call. A flood
of initiations read through one socket queues the tunnel's transport packets behind it in the kernel's
socket buffer, and the kernel drops both alike when that buffer is full. So, as the kernel's own
WireGuard keeps handshakes on a queue of their own, the device's UDP port is a ``SO_REUSEPORT`` group of
three sockets and a classic BPF program (``SO_ATTACH_REUSEPORT_CBPF``, Linux 4.5) picks the socket for
each datagram from its first payload bytes:

    0  transport data (type 4), and anything too short to read      read first, always
    1  other handshake messages, cookie replies, junk               read only as the handshake queue has room
    2  an initiation or response whose MAC2 is not zero             read always (its cookie is checked later)

A flood then overflows socket 1's small buffer, which the kernel drops for free, while transport waits
behind nothing; and an initiator that got our cookie (MAC2 set) is not lost in the flood. An attacker
can set MAC2 to anything, which costs us one MAC to refuse and buys it no more than socket 1 would.
Where the kernel refuses the group or the program, the device keeps one socket per family.
"""

from __future__ import annotations

import ctypes
import socket
import struct

from ..core.constants import INITIATION_SIZE, RESPONSE_SIZE, MessageType

SO_ATTACH_REUSEPORT_CBPF = 51
TRANSPORT, HANDSHAKE, PROVEN = 0, 1, 2   # the sockets' places in the group (their order of binding)

# Classic BPF (linux/filter.h); the program sees the UDP payload, and its answer is a socket's place.
_LD_B_ABS, _LD_W_ABS, _LD_W_LEN = 0x30, 0x20, 0x80
_JEQ_K, _OR_X, _TAX, _RET_K = 0x15, 0x4C, 0x07, 0x06
_INSTRUCTION = struct.Struct("=HBBI")


def _assemble(program: list) -> list[tuple]:
    """Instructions ``(op, k)`` or jumps ``(op, k, label_if_true, label_if_false)``, and ``"label:"``
    strings, into BPF's ``(code, jt, jf, k)`` with relative jumps (a jump to the next instruction is 0)."""
    places, at = {}, 0
    for item in program:
        if isinstance(item, str):
            places[item.rstrip(":")] = at
        else:
            at += 1
    code = []
    for item in program:
        if isinstance(item, str):
            continue
        here = len(code)
        if len(item) == 4:
            op, k, true, false = item
            code.append((op, places[true] - here - 1, places[false] - here - 1, k))
        else:
            op, k = item
            code.append((op, 0, 0, k))
    return code


def _mac2_test(size: int, name: str) -> list:
    """For a message of ``size`` bytes: MAC2 (its last 16 bytes) zero -> handshake, else -> proven."""
    mac2 = size - 16
    return [
        f"{name}:",
        (_LD_W_LEN, 0), (_JEQ_K, size, f"{name}_mac2", "handshake"),
        f"{name}_mac2:",
        (_LD_W_ABS, mac2), (_TAX, 0),
        (_LD_W_ABS, mac2 + 4), (_OR_X, 0), (_TAX, 0),
        (_LD_W_ABS, mac2 + 8), (_OR_X, 0), (_TAX, 0),
        (_LD_W_ABS, mac2 + 12), (_OR_X, 0),
        (_JEQ_K, 0, "handshake", "proven"),
    ]


PROGRAM = _assemble([
    (_LD_B_ABS, 0),                                                 # A = the message type
    (_JEQ_K, MessageType.TRANSPORT, "transport", "not_transport"),
    "not_transport:",
    (_JEQ_K, MessageType.INITIATION, "initiation", "not_initiation"),
    "not_initiation:",
    (_JEQ_K, MessageType.RESPONSE, "response", "handshake"),
    *_mac2_test(INITIATION_SIZE, "initiation"),
    *_mac2_test(RESPONSE_SIZE, "response"),
    "transport:", (_RET_K, TRANSPORT),
    "handshake:", (_RET_K, HANDSHAKE),
    "proven:", (_RET_K, PROVEN),
])
"""Reading a byte past the end of a datagram ends the program with 0: a runt goes to TRANSPORT, whose
reader refuses it by name."""


_CODE = ctypes.create_string_buffer(b"".join(_INSTRUCTION.pack(*i) for i in PROGRAM))
_FPROG = struct.pack("HxxxxxxP", len(PROGRAM), ctypes.addressof(_CODE))   # struct sock_fprog


def join_group(sock: socket.socket) -> None:
    """Let ``sock`` share its port with the group (before ``bind``)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def attach(sock: socket.socket) -> None:
    """Give the group ``sock`` belongs to (all three bound) the program; raises OSError if refused."""
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, _FPROG)
