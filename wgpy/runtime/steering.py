"""Transport first: the kernel sorts WireGuard datagrams by message type into three sockets on one port.

Handshake messages cost us a Diffie-Hellman or a cookie reply; transport messages one AEAD call. A flood
of initiations read through one socket queues the tunnel's transport packets behind it in the kernel's
socket buffer, and the kernel drops both alike when that buffer is full. So, as the kernel's own
WireGuard keeps handshakes on a queue of their own, the device's UDP port is a ``SO_REUSEPORT`` group of
three sockets and a classic BPF program (``SO_ATTACH_REUSEPORT_CBPF``, Linux 4.5) picks the socket for
each datagram from its first payload bytes:

    0  TRANSPORT  transport data (type 4), and runts          read first, always
    1  HANDSHAKE  other handshake messages, cookie replies    read only as the handshake queue has room
    2  PRIORITY   an initiation or response with a MAC2 set,  read always (MAC2 and the rate limit are
                  or from the address of a configured peer    still checked by the device)

A flood then overflows socket 1's small buffer, which the kernel drops for free, while transport waits
behind nothing; and an initiator that got our cookie (MAC2 set), or a configured peer at its known
address, is not lost in the flood of strangers. An attacker can set MAC2 to anything, or spoof a peer's
address if it knows it: that costs us one MAC each to refuse and buys it a share of socket 2, no more
than it had of socket 1 before. The runtime gives the program the peers' addresses again when they
change (``attach``). Where the kernel refuses the group or the program, the device keeps one socket
per family, which takes everything. A port is claimed with a plain socket before the group binds it
(``_free_port`` in udp.py), so that another daemon's group on the same port is EADDRINUSE, never joined.
"""

from __future__ import annotations

import _socket  # socket.socket's C type, without socket.py: see docs/performance.md, "Start-up"
import array
import struct

from ..core.constants import INITIATION_SIZE, RESPONSE_SIZE, MessageType

SO_ATTACH_REUSEPORT_CBPF = 51
TRANSPORT, HANDSHAKE, PRIORITY = 0, 1, 2   # the sockets' places in the group (their order of binding)
MAX_PRIORITY_ADDRESSES = 400   # peers' addresses the program knows (8 instructions each for IPv6; 4096 at most)

# Classic BPF (linux/filter.h). The program sees the UDP payload (the IP header at _NET + offset), and
# its answer is a socket's place in the group. Reading past the end of a datagram ends it with 0: a runt
# goes to TRANSPORT, whose reader refuses it by name.
_LD_B_ABS, _LD_W_ABS, _LD_W_LEN = 0x30, 0x20, 0x80
_JEQ_K, _JA, _OR_X, _TAX, _RET_K = 0x15, 0x05, 0x4C, 0x07, 0x06
_NET = (-0x100000) & 0xFFFFFFFF   # SKF_NET_OFF
_INSTRUCTION = struct.Struct("=HBBI")


def _assemble(source: list) -> list[tuple]:
    """``"label:"`` strings, instructions ``(op, k)``, jumps ``(_JA, label)`` and tests
    ``(op, k, label_if_true, label_if_false)`` into BPF's ``(code, jt, jf, k)``, whose jumps count the
    instructions they skip."""
    places, at = {}, 0
    for item in source:
        if isinstance(item, str):
            places[item.rstrip(":")] = at
        else:
            at += 1
    code: list[tuple] = []
    for item in source:
        if isinstance(item, str):
            continue
        skip = lambda label: places[label] - len(code) - 1  # noqa: E731
        if len(item) == 4:
            op, k, true, false = item
            code.append((op, skip(true), skip(false), k))
        elif item[0] == _JA:
            code.append((_JA, 0, 0, skip(item[1])))
        else:
            code.append((item[0], 0, 0, item[1]))
    return code


def _mac2_test(size: int, name: str) -> list:
    """A message of ``size`` bytes whose MAC2 (its last 16 bytes) is not zero -> priority; one of
    another size -> handshake; else on to the source address test."""
    mac2 = size - 16
    return [
        f"{name}:",
        (_LD_W_LEN, 0), (_JEQ_K, size, f"{name}_mac2", "handshake"),
        f"{name}_mac2:",
        (_LD_W_ABS, mac2), (_TAX, 0),
        (_LD_W_ABS, mac2 + 4), (_OR_X, 0), (_TAX, 0),
        (_LD_W_ABS, mac2 + 8), (_OR_X, 0), (_TAX, 0),
        (_LD_W_ABS, mac2 + 12), (_OR_X, 0),
        (_JEQ_K, 0, "known_source", "priority"),
    ]


def _source_test(family: int, addresses: list[bytes]) -> list:
    """The source address (in the IP header) is one of ``addresses`` -> priority, else -> handshake."""
    code: list = ["known_source:"]
    if family == _socket.AF_INET:
        code.append((_LD_W_ABS, _NET + 12))
        for i, address in enumerate(addresses):
            code += [f"address{i}:", (_JEQ_K, int.from_bytes(address, "big"), "priority", f"address{i + 1}")]
    else:
        for i, address in enumerate(addresses):
            code.append(f"address{i}:")
            for j in range(4):   # the four words of the IPv6 source address, from offset 8
                word = int.from_bytes(address[4 * j : 4 * j + 4], "big")
                match = "priority" if j == 3 else f"address{i}_{j + 1}"
                code += [(_LD_W_ABS, _NET + 8 + 4 * j), (_JEQ_K, word, match, f"address{i + 1}")]
                if j < 3:
                    code.append(f"address{i}_{j + 1}:")
    return code + [f"address{len(addresses)}:", (_JA, "handshake")]


def program(family: int, priority_addresses=()) -> list[tuple]:
    """The steering program of one family's group; handshake messages from ``priority_addresses``
    (packed addresses of that family; the first MAX_PRIORITY_ADDRESSES) take the priority lane."""
    addresses = [a for a in priority_addresses if len(a) == (4 if family == _socket.AF_INET else 16)]
    return _assemble([
        (_LD_B_ABS, 0),                                                 # A = the message type
        (_JEQ_K, MessageType.TRANSPORT, "transport", "not_transport"),
        "not_transport:",
        (_JEQ_K, MessageType.INITIATION, "initiation", "not_initiation"),
        "not_initiation:",
        (_JEQ_K, MessageType.RESPONSE, "response", "handshake"),
        *_mac2_test(INITIATION_SIZE, "initiation"),
        *_mac2_test(RESPONSE_SIZE, "response"),
        *_source_test(family, addresses[:MAX_PRIORITY_ADDRESSES]),
        "transport:", (_RET_K, TRANSPORT),
        "handshake:", (_RET_K, HANDSHAKE),
        "priority:", (_RET_K, PRIORITY),
    ])


def join_group(sock: _socket.socket) -> None:
    """Let ``sock`` share its port with the group (before ``bind``)."""
    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)


def attach(sock: _socket.socket, priority_addresses=()) -> None:
    """Give the group ``sock`` belongs to (all three bound) its program, or a new one in place of the old
    (the kernel copies it); raises OSError if the kernel refuses."""
    code = program(sock.family, priority_addresses)
    # The program's address, as array's buffer_info() gives it for exactly such calls (no ctypes: bench_startup.py)
    buffer = array.array("B", b"".join(_INSTRUCTION.pack(*instruction) for instruction in code))
    fprog = struct.pack("HxxxxxxP", len(code), buffer.buffer_info()[0])   # struct sock_fprog
    sock.setsockopt(_socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
