"""The kernel sorts datagrams into the device's three sockets by message type (runtime/steering.py):
transport data never waits behind a handshake flood, and an initiation carrying a cookie (MAC2) is kept
apart from the rest. Real sockets on loopback; no privileges needed."""

import errno
import socket
import time

import pytest

from wgpy.runtime import steering
from wgpy.runtime.udp import Udp

ZERO_MAC = bytes(16)
CASES = {
    "transport": (bytes([4, 0, 0, 0]) + bytes(28), steering.TRANSPORT),
    "runt": (b"\x04", steering.TRANSPORT),
    "initiation": (bytes([1, 0, 0, 0]) + bytes(128) + ZERO_MAC, steering.HANDSHAKE),
    "initiation with MAC2": (bytes([1, 0, 0, 0]) + bytes(128) + b"\x01" + bytes(15), steering.PRIORITY),
    "initiation, MAC2's last byte": (bytes([1, 0, 0, 0]) + bytes(143) + b"\x80", steering.PRIORITY),
    "initiation, wrong size": (bytes([1, 0, 0, 0]) + bytes(100) + b"\xff" * 16, steering.HANDSHAKE),
    "response": (bytes([2, 0, 0, 0]) + bytes(72) + ZERO_MAC, steering.HANDSHAKE),
    "response with MAC2": (bytes([2, 0, 0, 0]) + bytes(72) + b"\x07" * 16, steering.PRIORITY),
    "cookie reply": (bytes([3, 0, 0, 0]) + bytes(60), steering.HANDSHAKE),
    "unknown type": (bytes([9]) + bytes(50), steering.HANDSHAKE),
}


@pytest.fixture
def udp():
    udp = Udp()
    udp.bind(0)
    yield udp
    udp.close()


def test_three_sockets_per_family_when_the_kernel_steers(udp):
    assert udp.steer, "this kernel refused SO_ATTACH_REUSEPORT_CBPF"
    roles = sorted(udp.role(s) for s in udp.sockets if s.family == socket.AF_INET)
    assert roles == [steering.TRANSPORT, steering.HANDSHAKE, steering.PRIORITY]
    assert len({s.getsockname()[1] for s in udp.sockets}) == 1


@pytest.mark.parametrize("name", CASES)
def test_each_kind_of_datagram_reaches_its_socket(udp, name):
    data, expected = CASES[name]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.sendto(data, ("127.0.0.1", udp.port))
        arrived = []
        deadline = time.monotonic() + 2
        while not arrived and time.monotonic() < deadline:
            for sock in udp.sockets:
                out = []
                if sock.family == socket.AF_INET and udp.receive(sock, out, 8) and out:
                    arrived += [(udp.role(sock), d) for d, _, _ in out]
        assert arrived == [(expected, data)]
    finally:
        sender.close()


def test_without_steering_one_socket_takes_everything():
    udp = Udp(steer=False)
    try:
        udp.bind(0)
        assert [udp.role(s) for s in udp.sockets if s.family == socket.AF_INET] == [steering.TRANSPORT]
    finally:
        udp.close()


@pytest.mark.parametrize("family, peer, stranger", [
    (socket.AF_INET, "127.0.0.2", "127.0.0.3"),
    (socket.AF_INET6, "::1", None),
])
def test_a_configured_peers_address_takes_the_priority_lane(udp, family, peer, stranger):
    """Initiations without MAC2 from a peer's known address go to the priority socket; from anyone else
    to the plain one; transport stays transport."""
    udp.set_priority_addresses({socket.inet_pton(family, peer)})
    initiation = bytes([1, 0, 0, 0]) + bytes(128) + ZERO_MAC
    transport = bytes([4, 0, 0, 0]) + bytes(28)
    cases = [(peer, initiation, steering.PRIORITY), (peer, transport, steering.TRANSPORT)]
    if stranger:
        cases.append((stranger, initiation, steering.HANDSHAKE))
    for source, data, expected in cases:
        sender = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sender.bind((source, 0))
            sender.sendto(data, (peer if family == socket.AF_INET6 else "127.0.0.1", udp.port))
            arrived, deadline = [], time.monotonic() + 2
            while not arrived and time.monotonic() < deadline:
                for sock in udp.sockets:
                    out = []
                    if sock.family == family and udp.receive(sock, out, 8) and out:
                        arrived += [udp.role(sock) for _ in out]
            assert arrived == [expected], (source, data[0])
        finally:
            sender.close()
    udp.set_priority_addresses(set())   # and back: the stranger's lane for everyone
    assert steering.program(family, ()) == steering.program(family, [b"\0" * 3])


def test_the_program_stays_within_the_kernels_limit():
    many = [bytes([0x20, 0x01, 0x0D, 0xB8]) + i.to_bytes(12, "big") for i in range(2000)]
    assert len(steering.program(socket.AF_INET6, many)) < 4096
    assert len(steering.program(socket.AF_INET, [a[:4] for a in many])) < 4096


def test_a_port_another_daemon_holds_is_refused(udp):
    """SO_REUSEPORT must not let a second device join the first one's group: EADDRINUSE, as without it."""
    other = Udp()
    try:
        with pytest.raises(OSError) as refused:
            other.bind(udp.port)
        assert refused.value.errno == errno.EADDRINUSE
        assert other.bind(0) != udp.port
    finally:
        other.close()
