"""Loss and flow control: retransmission timeout and backoff, fast retransmit, zero windows and persist
probes, delayed ACKs, MSS clamping, window scaling, and 10 MiB each way through a bad channel."""

import hashlib
import random

import pytest

from wgpy.netstack.tcp.config import TcpConfig, TcpState
from wgpy.netstack.tcp.connection import TcpConnection
from wgpy.netstack.tcp.segment import ACK, SYN, Segment

from .tcp_pair import CLIENT, SERVER, Pair, Transfer, established

# Tests that count in 1380-byte segments run without timestamps (with them a segment carries 1368).
NO_TIMESTAMPS = TcpConfig(timestamps=False)

S = TcpState


def data_segments(pair: Pair, direction: str, since: int = 0) -> list[tuple[float, Segment]]:
    return [(t, s) for t, d, s in pair.carried[since:] if d == direction and s.payload]


def test_retransmission_timeout_backs_off_then_times_out():
    pair = established(config=TcpConfig(max_retransmissions=5))
    pair.hold.add("s>c")  # every ACK from the server is lost
    start = len(pair.carried)
    pair.client.send(b"x" * 1000)
    assert pair.run(until=lambda: pair.client.state is S.CLOSED, max_steps=100, max_time=100)
    assert pair.client.error == "timed out"
    times = [t for t, s in data_segments(pair, "c>s", start)]
    assert len(times) == 6  # the first transmission and five retransmissions
    gaps = [b - a for a, b in zip(times, times[1:])]
    # RTT 20 ms from the handshake: RTO = max(200 ms, SRTT + 4 RTTVAR) = 200 ms, doubled each time.
    assert gaps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2], rel=1e-6)
    assert pair.client.segments_to_send(pair.now) == []  # as Linux: no RST to an unreachable peer


def test_syn_retransmissions_back_off_from_one_second_then_time_out():
    pair = Pair(config=TcpConfig(max_syn_retransmissions=3))
    pair.hold.add("c>s")
    assert pair.run(until=lambda: pair.client.state is S.CLOSED, max_steps=100, max_time=100)
    times = [t - 1000.0 for t, d, s in pair.carried if s.flags == SYN]
    assert times == pytest.approx([0.0, 1.0, 3.0, 7.0])
    assert pair.now - 1000.0 == pytest.approx(15.0)
    assert pair.client.error == "timed out"


def test_user_timeout():
    pair = established(config=TcpConfig(user_timeout=2.0))
    pair.hold.add("c>s")
    pair.client.send(b"y" * 10)
    assert pair.run(until=lambda: pair.client.state is S.CLOSED, max_steps=100, max_time=100)
    assert pair.client.error == "timed out" and pair.now - 1000.0 < 5.0


def test_fast_retransmit_on_three_duplicate_acks():
    pair = established(config=NO_TIMESTAMPS)
    client = pair.client
    lost = client.snd_max + 2 * 1380  # the third data segment
    dropped = []

    def drop_once(direction, segment):
        if direction == "c>s" and segment.payload and segment.seq == lost & 0xFFFFFFFF and not dropped:
            dropped.append(pair.now)
            return True
        return False

    pair.drop_if = drop_once
    data = random.Random(3).randbytes(20 * 1380)
    sent_before = len(pair.carried)
    transfer = Transfer(pair, data, b"")
    assert pair.run(until=transfer.done, pump=transfer.pump, max_steps=500)
    assert bytes(transfer.received["server"]) == data
    assert dropped
    resent = [t for t, s in data_segments(pair, "c>s", sent_before) if s.seq == lost & 0xFFFFFFFF]
    assert len(resent) == 2
    # Resent after three duplicate ACKs, one RTT later: long before the 200 ms timeout.
    assert resent[1] - resent[0] < 0.05
    duplicate_acks = [s for _, d, s in pair.carried[sent_before:] if d == "s>c" and s.ack == lost & 0xFFFFFFFF]
    assert len(duplicate_acks) >= 3
    assert client.congestion.ssthresh < 1 << 30  # the window was halved (RFC 5681 (4))
    assert client.rtt.backoff == 0


def test_zero_window_persist_probes_and_window_update():
    config = TcpConfig(receive_buffer=64 * 1024, send_buffer=64 * 1024, max_retransmissions=3)
    pair = established(config=config)
    data = random.Random(5).randbytes(200_000)
    sent = 0
    start = len(pair.carried)

    def write():
        nonlocal sent
        sent += pair.client.send(data[sent:sent + 65536])

    # The server's application does not read: its window closes.
    assert pair.run(until=lambda: pair.server.readable == 64 * 1024, pump=write, max_steps=500)
    assert pair.run(until=lambda: False, pump=write, max_steps=10_000, max_time=200.0) is False
    # The client never gave up, though far more than three timeouts passed: the probes were answered.
    assert pair.client.state is S.ESTABLISHED and pair.client.error is None
    zero = [s for _, d, s in pair.carried[start:] if d == "s>c" and s.window == 0]
    assert zero
    probes = [t for t, s in data_segments(pair, "c>s", start) if len(s.payload) == 1]
    assert len(probes) >= 5
    gaps = [b - a for a, b in zip(probes, probes[1:])]
    assert all(b >= a for a, b in zip(gaps, gaps[1:]))  # RFC 9293 3.8.6.1: exponential backoff
    assert max(gaps) <= 60.0
    # The application reads: a window update, and the rest flows.
    received = bytearray()

    def read_and_write():
        write()
        while pair.server.readable:
            received.extend(pair.server.recv(65536))

    before = pair.now
    assert pair.run(until=lambda: len(received) == len(data), pump=read_and_write, max_steps=5000)
    assert bytes(received) == data
    assert pair.now - before < 1.0  # the update, not the next probe, restarted the flow


def test_delayed_ack_waits_40_ms_for_one_segment_and_none_for_two():
    pair = established()
    start = len(pair.carried)
    pair.client.send(b"z" * 100)
    assert pair.run(until=lambda: pair.server.readable == 100, max_steps=10)
    arrived = pair.now
    assert pair.run(until=lambda: any(d == "s>c" for _, d, _ in pair.carried[start:]), max_steps=10)
    [(when, _, ack)] = [c for c in pair.carried[start:] if c[1] == "s>c"]
    assert ack.flags == ACK and when - arrived == pytest.approx(0.04)
    start = len(pair.carried)
    pair.client.send(b"z" * 2760)  # two full segments
    assert pair.run(until=lambda: pair.server.readable == 2860, max_steps=10)
    acks = [(t, s) for t, d, s in pair.carried[start:] if d == "s>c"]
    assert acks and acks[0][0] == pair.now  # sent at once


def test_mss_is_clamped_to_the_smaller_side_and_defaults_without_the_option():
    pair = established(server_mss=1000)
    transfer = Transfer(pair, b"a" * 10_000, b"b" * 10_000)
    assert pair.run(until=transfer.done, pump=transfer.pump, max_steps=200)
    # 1000 less the 12 bytes of the timestamps every segment carries (as Linux's tcp_current_mss).
    assert max(len(s.payload) for _, _, s in pair.carried) == 1000 - 12
    # A SYN without an MSS option: 536 bytes (RFC 9293 3.7.1, IPv4).
    syn = Segment(40000, 80, 100, 0, SYN, 65535)
    server = TcpConnection.from_syn(SERVER, CLIENT, syn, 5000, 0.0, 1380)
    [syn_ack] = server.segments_to_send(0.0)
    assert syn_ack.window_scale is None  # RFC 7323 2.2: not offered unless the SYN did
    server.receive(Segment(40000, 80, 101, 5001, ACK, 65535), 0.01)
    server.send(b"q" * 3000)
    sizes = [len(s.payload) for s in server.segments_to_send(0.01)]
    assert sizes == [536] * 5 + [3000 - 5 * 536]
    assert server.state is S.ESTABLISHED


def test_window_scaling_lets_a_large_buffer_be_used():
    config = TcpConfig(receive_buffer=1 << 20, send_buffer=1 << 20)
    pair = established(config=config, latency=0.05)
    windows = [s.window for _, d, s in pair.carried if d == "s>c" and not s.flags & SYN]
    # 1 MiB >> 5 = 32768: the window field is scaled by 2^5.
    assert pair.carried[1][2].window_scale == 5 and windows[-1] * 32 == 1 << 20 if windows else True
    data = random.Random(7).randbytes(4 << 20)
    transfer = Transfer(pair, data, b"")
    assert pair.run(until=transfer.done, pump=transfer.pump, max_steps=20_000)
    assert bytes(transfer.received["server"]) == data
    in_flight = max(s.seq for _, d, s in pair.carried if d == "c>s") - min(
        s.ack for _, d, s in pair.carried if d == "s>c" and s.ack)
    assert in_flight > 65535  # more than an unscaled window was outstanding


@pytest.mark.parametrize("seed", [11, 12])
def test_ten_mebibytes_each_way_under_loss_duplication_and_reordering(seed):
    rng = random.Random(seed)
    to_server, to_client = rng.randbytes(10 << 20), rng.randbytes(10 << 20)
    pair = Pair(seed=seed, loss=0.02, duplicate=0.02, reorder=0.05)
    transfer = Transfer(pair, to_server, to_client, shutdown=True)
    assert pair.run(until=lambda: transfer.done() and pair.client.at_eof and pair.server.at_eof,
                    pump=transfer.pump, max_steps=100_000, max_time=600.0), (pair.steps, pair.now)
    assert hashlib.sha256(transfer.received["server"]).digest() == hashlib.sha256(to_server).digest()
    assert hashlib.sha256(transfer.received["client"]).digest() == hashlib.sha256(to_client).digest()
    assert pair.client.error is None and pair.server.error is None
    # Bounded: the simulated time and the steps it took, with the figures in the message if it fails.
    assert pair.now - 1000.0 < 300.0 and pair.steps < 100_000


def test_sack_recovers_several_losses_of_one_window_in_one_round_trip():
    """Three segments of one window lost: the receiver's SACK blocks show the three holes, the sender
    retransmits them together (sack.py) instead of one per round trip, and no timeout is needed."""
    pair = established(config=NO_TIMESTAMPS)
    client = pair.client
    base = client.snd_max
    lost = {(base + k * 1380) & 0xFFFFFFFF for k in (2, 5, 8)}
    dropped = set()

    def drop_first_copies(direction, segment):
        if direction == "c>s" and segment.payload and segment.seq in lost and segment.seq not in dropped:
            dropped.add(segment.seq)
            return True
        return False

    pair.drop_if = drop_first_copies
    data = random.Random(9).randbytes(40 * 1380)
    start = len(pair.carried)
    transfer = Transfer(pair, data, b"")
    assert pair.run(until=transfer.done, pump=transfer.pump, max_steps=500)
    assert bytes(transfer.received["server"]) == data and dropped == lost
    sacks = [s for _, d, s in pair.carried[start:] if d == "s>c" and s.sack_blocks]
    assert sacks and all(len(s.sack_blocks) <= 4 for s in sacks)
    resent = sorted((t, s.seq) for t, s in data_segments(pair, "c>s", start) if s.seq in lost)
    first_sent = {seq: t for t, seq in reversed(resent)}
    retransmissions = [(t, seq) for t, seq in resent if t > first_sent[seq]]
    assert {seq for _, seq in retransmissions} == lost and len(retransmissions) == 3
    assert max(t for t, _ in retransmissions) - min(t for t, _ in retransmissions) < 0.015  # one round trip
    assert client.rtt.backoff == 0 and pair.now - 1000.0 < 0.2  # no timeout


def test_after_a_syn_timeout_data_starts_with_a_three_second_rto():
    """RFC 6298 5.7: the SYN was retransmitted, so no RTT sample (Karn): the RTO for data is 3 s. (With
    timestamps the SYN,ACK's TSecr says which SYN it answers: a sample, test_tcp_timestamps.py.)"""
    pair = Pair(config=NO_TIMESTAMPS)
    pair.hold.add("c>s")
    assert pair.run(until=lambda: sum(1 for _, _, s in pair.carried if s.flags == SYN) == 2, max_steps=20)
    pair.hold.clear()
    assert pair.run(until=pair.established, max_steps=20)
    assert pair.client.rtt.srtt is None and pair.client.rtt.timeout == 3.0
    assert pair.server.rtt.srtt is not None  # the server timed its SYN,ACK: it has a sample


def test_limited_transmit_brings_the_third_duplicate_ack_in_a_small_window():
    """RFC 3042: three segments in flight, the first lost: two duplicate ACKs only, and the window is full.
    A new segment for each of them brings the third duplicate ACK: fast retransmit, no timeout."""
    pair = established()
    client = pair.client
    client.congestion.cwnd = client.congestion.ssthresh = 3 * 1380  # as after a few losses
    first = client.snd_max & 0xFFFFFFFF
    dropped = []

    def drop_first(direction, segment):
        if direction == "c>s" and segment.payload and segment.seq == first and not dropped:
            dropped.append(pair.now)
            return True
        return False

    pair.drop_if = drop_first
    data = random.Random(13).randbytes(20 * 1380)
    start = len(pair.carried)
    transfer = Transfer(pair, data, b"")
    assert pair.run(until=transfer.done, pump=transfer.pump, max_steps=500)
    assert bytes(transfer.received["server"]) == data
    resent = [t for t, s in data_segments(pair, "c>s", start) if s.seq == first]
    assert len(resent) == 2 and resent[1] - resent[0] < 0.05  # one round trip, not the 200 ms timeout
    assert client.rtt.backoff == 0
