"""The parts of TCP one by one: ISNs (RFC 6528), the RTO (RFC 6298), NewReno (RFC 5681, RFC 6582), the
buffers (the receive buffer against a dumb model, with Hypothesis)."""

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from wgpy.netstack.tcp.buffers import ReceiveBuffer, SendBuffer
from wgpy.netstack.tcp.config import TcpConfig
from wgpy.netstack.tcp.congestion import NewReno, initial_window
from wgpy.netstack.tcp.isn import IsnGenerator
from wgpy.netstack.tcp.rtt import RttEstimator

A = (bytes([10, 0, 0, 1]), 40000)
B = (bytes([10, 0, 0, 2]), 80)


def fixed_rng(n: int) -> bytes:
    return hashlib.sha256(b"isn secret").digest()[:n]


def test_isn_is_a_4_microsecond_clock_plus_a_keyed_hash_of_the_four_tuple():
    isn = IsnGenerator(fixed_rng)
    first = isn.isn(A, B, 100.0)
    assert isn.isn(A, B, 100.0) == first
    assert (isn.isn(A, B, 101.0) - first) & 0xFFFFFFFF == 250_000  # RFC 9293 3.4.1: 4 us ticks
    assert isn.isn(A, (B[0], 81), 100.0) != first and isn.isn(B, A, 100.0) != first
    assert IsnGenerator(lambda n: bytes(n)).isn(A, B, 100.0) != first  # the secret matters
    assert "secret" not in repr(isn) or "<secret>" in repr(isn)
    assert fixed_rng(32).hex() not in repr(isn)


def test_rto_follows_rfc_6298_with_the_linux_floor():
    rtt = RttEstimator()
    assert rtt.timeout == 1.0  # 2.1
    rtt.sample(0.1)  # 2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
    assert (rtt.srtt, rtt.rttvar) == (0.1, 0.05) and rtt.rto == pytest.approx(0.3)
    rtt.sample(0.02)  # 2.3
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.08)
    assert rtt.srtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.02)
    for _ in range(50):
        rtt.sample(0.001)
    assert rtt.rto == 0.2  # Linux's TCP_RTO_MIN, not RFC 6298 2.4's 1 s
    rtt.on_timeout()
    rtt.on_timeout()
    assert rtt.timeout == pytest.approx(0.8)  # 5.5: doubled per expiry
    for _ in range(20):
        rtt.on_timeout()
    assert rtt.timeout == 60.0  # 2.5: the maximum
    rtt.sample(0.001)
    assert rtt.backoff == 0 and rtt.timeout == 0.2


def test_karns_rule_no_sample_from_a_retransmitted_segment():
    rtt = RttEstimator()
    rtt.start(1000, 0.0)
    rtt.on_retransmit()
    rtt.on_ack(1000, 5.0)
    assert rtt.srtt is None
    rtt.start(2000, 5.0)
    rtt.start(3000, 5.5)  # one segment timed at a time: the first is
    rtt.on_ack(1500, 5.1)
    assert rtt.srtt is None  # does not cover the timed segment yet
    rtt.on_ack(2000, 5.2)
    assert rtt.srtt == pytest.approx(0.2)


def test_initial_window_of_rfc_6928():
    assert initial_window(1460) == 14600 and initial_window(1380) == 13800
    assert initial_window(536) == 5360 and initial_window(9000) == 18000


def test_slow_start_then_congestion_avoidance():
    reno = NewReno(1000, 0)
    assert reno.cwnd == 10_000
    reno.on_new_ack(1000, 1001, 0)
    assert reno.cwnd == 11_000  # slow start: an MSS per ACK of an MSS
    reno.on_new_ack(5000, 6001, 0)
    assert reno.cwnd == 12_000  # at most one MSS per ACK (RFC 5681 3.1, L = 1)
    reno.ssthresh = 12_000
    for i in range(11):
        reno.on_new_ack(1000, 7001 + i * 1000, 0)
    assert reno.cwnd == 12_000  # one more MSS only after a whole cwnd acknowledged
    reno.on_new_ack(1000, 20_000, 0)
    assert reno.cwnd == 13_000


def test_newreno_fast_retransmit_partial_and_full_acks():
    reno = NewReno(1000, 0)
    assert not reno.on_duplicate_ack(20_000, 21_001, 1001)
    assert not reno.on_duplicate_ack(20_000, 21_001, 1001)
    assert reno.on_duplicate_ack(20_000, 21_001, 1001)  # the third: fast retransmit (RFC 5681 3.2)
    assert reno.in_recovery and reno.ssthresh == 10_000 and reno.cwnd == 13_000 and reno.recover == 21_001
    assert not reno.on_duplicate_ack(20_000, 21_001, 1001)
    assert reno.cwnd == 14_000  # inflated per further duplicate
    assert reno.on_new_ack(3000, 4001, 17_000)  # partial: retransmit the next hole (RFC 6582 3.2 step 5)
    assert reno.cwnd == 12_000 and reno.in_recovery
    assert not reno.on_new_ack(17_000, 21_001, 0)  # full: recovery ends, cwnd = min(ssthresh, ...)
    assert not reno.in_recovery and reno.cwnd == 2000
    # Duplicate ACKs for data sent before the recovery point do not start another recovery (step 2).
    reno = NewReno(1000, 0)
    reno.on_timeout(20_000, 30_001)
    assert reno.cwnd == 1000 and reno.ssthresh == 10_000
    assert not any(reno.on_duplicate_ack(20_000, 30_001, 5001) for _ in range(5))


def test_send_buffer_is_bounded_and_releases_acknowledged_bytes():
    buffer = SendBuffer(10, 1000)
    assert buffer.write(b"abcdefghijkl") == 10 and buffer.free == 0 and buffer.end == 1010
    assert bytes(buffer.read(1003, 4)) == b"defg"
    assert buffer.release(1004) == 4 and buffer.start == 1004 and buffer.free == 4
    assert buffer.write(memoryview(b"xyz")) == 3 and bytes(buffer.read(1004, 9)) == b"efghijxyz"
    assert buffer.release(1000) == 0 and buffer.release(2000) == 9 and len(buffer) == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(1, 120)), max_size=40), st.integers(50, 400))
def test_receive_buffer_against_a_dumb_model(pieces, limit):
    """Segments at offsets 0..420 of a known stream, in any order and overlap: what ends in order is the
    stream's prefix, the out-of-order bytes never exceed the limit, and nothing is lost that was kept."""
    stream = bytes((i * 7 + 3) & 0xFF for i in range(500))
    buffer = ReceiveBuffer(capacity=1000, out_of_order_limit=limit)
    rcv_nxt = 0
    kept = set()  # offsets the buffer accepted (in order or beyond a gap)
    for start, length in pieces:
        end = start + length
        payload = stream[start:end]
        if start <= rcv_nxt:
            new = payload[rcv_nxt - start:]
            buffer.append(new)
            rcv_nxt += len(new)
            kept.update(range(start, end))
            rcv_nxt = buffer.take_in_order(rcv_nxt, 1000)
        elif buffer.insert(start, payload):
            kept.update(range(start, end))
        assert buffer.out_of_order_bytes <= limit
        assert buffer.out_of_order_bytes == sum(r - l for l, r in buffer.blocks())
        blocks = buffer.blocks()
        assert all(r1 < l2 for (_, r1), (l2, _) in zip(blocks, blocks[1:]))  # disjoint, not touching
    assert buffer.read(10_000) == stream[:rcv_nxt]
    # Everything kept from offset 0 on without a gap is in order now.
    expected = 0
    while expected in kept:
        expected += 1
    assert rcv_nxt == expected


def test_receive_buffer_out_of_order_pieces_move_in_when_the_gap_fills():
    buffer = ReceiveBuffer(capacity=100, out_of_order_limit=100)
    assert buffer.insert(10, b"k" * 10) and buffer.insert(30, b"m" * 5) and buffer.insert(20, b"l" * 10)
    assert buffer.blocks() == [(10, 35)]  # touching pieces are coalesced
    buffer.append(b"j" * 10)
    assert buffer.take_in_order(10, 25) == 25  # the window's right edge stops it
    assert buffer.blocks() == [(25, 35)] and buffer.readable == 25
    assert buffer.take_in_order(25, 100) == 35 and buffer.out_of_order_bytes == 0
    assert buffer.read(100) == b"j" * 10 + b"k" * 10 + b"l" * 10 + b"m" * 5


def test_config_window_scale_and_checks():
    assert TcpConfig().window_scale == 3  # 256 KiB
    assert TcpConfig(receive_buffer=65535).window_scale == 0
    assert TcpConfig(receive_buffer=1 << 30).window_scale == 14
    with pytest.raises(ValueError):
        TcpConfig(min_rto=2.0)
    with pytest.raises(ValueError):
        TcpConfig(receive_buffer=0)


def test_scoreboard_merges_blocks_and_lists_the_holes():
    from wgpy.netstack.tcp.sack import Scoreboard
    board = Scoreboard()
    assert board.add(300, 400) and board.add(500, 600) and board.add(100, 200)
    assert not board.add(320, 380)  # nothing new
    assert board.add(200, 250)  # touches: merged
    assert (board.starts, board.ends) == ([100, 300, 500], [250, 400, 600]) and board.high == 600
    assert list(board.holes(0, 10_000, 60)) == [(0, 60), (60, 40), (250, 50), (400, 60), (460, 40)]
    assert list(board.holes(260, 70, 60)) == [(260, 40), (400, 60)]  # the limit in bytes stops it
    board.acknowledge(350)
    assert (board.starts, board.ends) == ([350, 500], [400, 600])
    board.clear()
    assert not board and board.high == 0
