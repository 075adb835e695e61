"""runtime/udp.py over loopback: what ``send_many`` sends (GSO runs of equal-sized datagrams, the last
one shorter) ``receive`` gives back as the same datagrams, in order, whether the kernel coalesced them
(UDP_GRO: one read split at the segment size) or not."""

import select
import time

import pytest

from wgpy.runtime.udp import Udp


def round_trip(datagrams: list[bytes]) -> list[bytes]:
    udp = Udp(steer=False)
    port = udp.bind(0)
    try:
        sock = next(s for s in udp.sockets if s.family == 2)   # AF_INET
        endpoint = ("127.0.0.1", port)
        udp.send_many([(d, endpoint) for d in datagrams])
        received: list = []
        deadline = time.monotonic() + 5
        while len(received) < len(datagrams) and time.monotonic() < deadline:
            select.select([sock], [], [], 0.1)
            udp.receive(sock, received, 64)
        for data, source, _ in received:
            assert source == endpoint
        return [data for data, _, _ in received]
    finally:
        udp.close()


@pytest.mark.parametrize("sizes", [[1000] * 5 + [300], [1400] * 40, [8000] * 7 + [1], [100, 200, 300], [60000]])
def test_what_send_many_sends_receive_gives_back_byte_for_byte(sizes):
    # Each datagram distinct from every other, so that stale bytes of an earlier read would show.
    datagrams = [bytes([n]) * size for n, size in enumerate(sizes, 1)]
    assert round_trip(datagrams) == datagrams


def test_a_short_datagram_after_a_long_run_is_not_padded_from_an_earlier_read():
    first = round_trip([b"\xaa" * 1500] * 4)
    second = round_trip([b"\x01" * 1500, b"\x02" * 1500, b"\x03" * 20])
    assert first == [b"\xaa" * 1500] * 4 and second == [b"\x01" * 1500, b"\x02" * 1500, b"\x03" * 20]
