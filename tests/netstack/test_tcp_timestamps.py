"""RFC 7323 timestamps (negotiation, RTTM, PAWS, TS.Recent), RFC 6191's TIME-WAIT reopening on them, and
RFC 6056 Algorithm 3's ephemeral ports, the clock in the test's hand."""

import random

import pytest

from wgpy.netstack import ip
from wgpy.netstack.errors import NetDrop
from wgpy.netstack.ports import EPHEMERAL_COUNT, EPHEMERAL_FIRST, EPHEMERAL_LAST
from wgpy.netstack.stack import Stack
from wgpy.netstack.tcp import segment as tcp
from wgpy.netstack.tcp.config import TcpConfig, TcpState
from wgpy.netstack.tcp.connection import TcpConnection
from wgpy.netstack.tcp.rtt import RttEstimator
from wgpy.netstack.tcp.segment import ACK, PSH, SYN, Segment

from ..conftest import seeded_rng
from .tcp_pair import CLIENT, MSS, SERVER, Pair, Transfer, established

ON, OFF = TcpConfig(), TcpConfig(timestamps=False)
MASK = 0xFFFFFFFF


# ------------------------------------------------------------------ negotiation: RFC 7323 3.2


@pytest.mark.parametrize("client, server, used", [(ON, ON, True), (ON, OFF, False), (OFF, ON, False),
                                                  (OFF, OFF, False)])
def test_timestamps_are_used_only_when_both_syns_carry_them(client, server, used):
    pair = established(config=client, server_config=server)
    transfer = Transfer(pair, b"x" * 20_000, b"y" * 20_000)
    assert pair.run(until=transfer.done, pump=transfer.pump, max_steps=300)
    syn, syn_ack = pair.carried[0][2], pair.carried[1][2]
    assert syn.flags == SYN and (syn.timestamps is not None) == client.timestamps
    assert syn.timestamps is None or syn.timestamps[1] == 0  # nothing to echo yet
    assert syn_ack.flags == SYN | ACK and (syn_ack.timestamps is not None) == used
    later = [s for _, _, s in pair.carried[2:]]
    assert all((s.timestamps is not None) == used for s in later)
    assert pair.client.ts_ok == pair.server.ts_ok == used
    # RFC 9293 3.7.1 / Linux's tcp_current_mss: the 12 option bytes come out of each segment's data.
    assert max(len(s.payload) for s in later) == (MSS - 12 if used else MSS)
    if used:  # the SYN,ACK echoes the SYN's TSval; every later segment echoes a TSval the peer sent
        assert syn_ack.timestamps[1] == syn.timestamps[0]
        client_values = {s.timestamps[0] for _, d, s in pair.carried if d == "c>s"}
        server_values = {s.timestamps[0] for _, d, s in pair.carried if d == "s>c"}
        assert all(s.timestamps[1] in server_values for _, d, s in pair.carried[2:] if d == "c>s")
        assert all(s.timestamps[1] in client_values for _, d, s in pair.carried if d == "s>c")


def test_tsval_counts_milliseconds_from_the_connections_offset():
    connection = TcpConnection.open(CLIENT, SERVER, 1, 5.0, MSS, ON, ts_offset=123_456)
    [syn] = connection.segments_to_send(5.0)
    assert syn.timestamps == ((123_456 + 5000) & MASK, 0)
    connection = TcpConnection.open(CLIENT, SERVER, 1, 7.25, MSS, ON, ts_offset=MASK)  # wraps
    [syn] = connection.segments_to_send(7.25)
    assert syn.timestamps == (7249, 0)


def test_the_stack_draws_a_timestamp_offset_per_connection_or_counts_wall_clock_milliseconds():
    s = Stack(["10.0.0.2/24"], rng=seeded_rng(5))
    values = []
    for port in (80, 81, 82):
        s.tcp_connect(("10.0.0.1", port), 10.0)
        [packet] = s.packets_to_send()
        parsed = ip.parse(packet)
        values.append(tcp.parse(parsed.payload, parsed.source, parsed.destination).timestamps[0])
    assert len(set(values)) == 3  # same ``now``, three offsets (RFC 7323 5.4)
    wall = Stack(["10.0.0.2/24"], rng=seeded_rng(5), epoch_offset=1_700_000_000.0)
    wall.tcp_connect(("10.0.0.1", 80), 10.0)
    [packet] = wall.packets_to_send()
    parsed = ip.parse(packet)
    assert tcp.parse(parsed.payload, parsed.source, parsed.destination).timestamps[0] == (1_700_000_010_000 & MASK)


# ------------------------------------------------------------------ RTTM: RFC 7323 4.1, appendix G


def test_rtt_comes_from_tsecr_even_when_the_syn_was_retransmitted():
    """Karn's rule forbids a sample from a retransmitted SYN without timestamps (test_tcp_recovery.py);
    with them, the SYN,ACK's TSecr names the SYN it answers: the RTT is known at once."""
    pair = Pair(latency=0.03)
    pair.hold.add("c>s")
    assert pair.run(until=lambda: sum(1 for _, _, s in pair.carried if s.flags == SYN) == 2, max_steps=20)
    pair.hold.clear()
    assert pair.run(until=pair.established, max_steps=20)
    assert pair.client.rtt.srtt == pytest.approx(0.06, abs=0.0015)


def test_every_ack_gives_a_sample_near_the_path_rtt():
    pair = established(latency=0.02)
    transfer = Transfer(pair, random.Random(1).randbytes(200_000), b"")
    assert pair.run(until=transfer.done, pump=transfer.pump, max_steps=3000)
    # 40 ms path; delayed ACKs add at most 40 ms to a sample. A sample of 0 ms is never taken (1 ms least).
    assert 0.039 <= pair.client.rtt.srtt <= 0.08


def test_appendix_g_divides_the_gains_by_the_samples_expected_per_rtt():
    one, many = RttEstimator(), RttEstimator()
    for estimator in (one, many):
        estimator.sample(0.1)
    one.timestamp_sample(0.2, 1)
    many.timestamp_sample(0.2, 8)
    assert one.srtt == pytest.approx(0.1 + 0.1 / 8)  # alpha = 1/8
    assert many.srtt == pytest.approx(0.1 + 0.1 / 64)  # alpha / ExpectedSamples
    assert many.rttvar == pytest.approx(0.05 * (1 - 1 / 32) + 0.1 / 32)  # beta / ExpectedSamples


# ------------------------------------------------------------------ PAWS: RFC 7323 5


def old_duplicate(receiver: TcpConnection, tsval: int) -> Segment:
    """Data at exactly RCV.NXT (acceptable by sequence number) carrying an older TSval: what a segment of a
    wrapped sequence space, delayed in the network, looks like when it arrives (RFC 7323 5.1)."""
    return Segment(receiver.remote[1], receiver.local[1], receiver.rcv_nxt & MASK, receiver.snd_max & MASK,
                   ACK | PSH, 1000, b"stale bytes", timestamps=(tsval, 0))


def test_paws_drops_an_old_duplicate_that_the_sequence_check_would_take():
    pair = established()
    server = pair.server
    recent = server.ts_recent
    assert server.receive(old_duplicate(server, (recent - 5000) & MASK), pair.now) is NetDrop.PAWS_REJECTED
    assert server.readable == 0 and server.ts_recent == recent
    assert [s.flags for s in server.segments_to_send(pair.now)] == [ACK]  # RFC 7323 5.3 R1: ACK and drop
    # Without timestamps the same bytes would have been taken as new data.
    plain = established(config=OFF).server
    assert plain.receive(old_duplicate(plain, 1), pair.now) is None and plain.readable == len(b"stale bytes")


def test_paws_lets_a_segment_through_after_24_days_idle():
    pair = established()
    server = pair.server
    stale = (server.ts_recent - 5000) & MASK
    later = pair.now + 25 * 86400  # RFC 7323 5.5: TS.Recent is no longer valid
    assert server.receive(old_duplicate(server, stale), later) is None
    assert server.readable == len(b"stale bytes") and server.ts_recent == stale


def test_ts_recent_follows_last_ack_sent_and_rst_is_not_refused_by_paws():
    pair = established()
    server = pair.server
    before = server.ts_recent
    newer = (before + 10) & MASK
    assert server.receive(old_duplicate(server, newer), pair.now) is None
    assert server.ts_recent == newer  # SEG.SEQ == Last.ACK.sent: taken (RFC 7323 4.3)
    # A second segment before we ACKed: its SEQ is beyond Last.ACK.sent, TS.Recent stays (delayed ACKs).
    assert server.receive(old_duplicate(server, (newer + 10) & MASK), pair.now) is None
    assert server.ts_recent == newer
    reset = Segment(CLIENT[1], SERVER[1], server.rcv_nxt & MASK, 0, tcp.RST, 0, timestamps=(1, 0))
    assert server.receive(reset, pair.now) is None and server.state is TcpState.CLOSED


@pytest.mark.parametrize("seed, loss, reorder, duplicate", [(1, 0.0, 0.0, 0.0), (2, 0.02, 0.0, 0.0),
                                                            (3, 0.02, 0.05, 0.01)])
def test_wrapped_sequence_numbers_and_a_wrapping_ts_clock(seed, loss, reorder, duplicate):
    """The ISSs sit just below 2^32, and the client's TS clock wraps during the transfer: everything
    arrives; without reordering or duplicates, no segment is taken for an old duplicate. (With them, PAWS
    may rightly refuse a duplicate, or a delayed original overtaken by a newer retransmission.)"""
    pair = Pair(seed=seed, loss=loss, reorder=reorder, duplicate=duplicate, client_iss=MASK - 3000)
    pair.client.ts_offset = MASK - int(pair.now * 1000) - 300  # 0.3 s to the TS clock's wrap
    assert pair.run(until=pair.established, max_steps=50)
    data = random.Random(seed).randbytes(600_000)
    transfer = Transfer(pair, data, data[:100_000])
    assert pair.run(until=transfer.done, pump=transfer.pump, max_steps=20_000)
    assert bytes(transfer.received["server"]) == data and bytes(transfer.received["client"]) == data[:100_000]
    client_values = [s.timestamps[0] for _, d, s in pair.carried if d == "c>s"]
    assert max(client_values) > MASK - 1000 and min(client_values) < 1000  # it did wrap
    if not reorder and not duplicate:
        assert pair.drops["server"][NetDrop.PAWS_REJECTED] == pair.drops["client"][NetDrop.PAWS_REJECTED] == 0


# ------------------------------------------------------------------ TIME-WAIT: RFC 6191


def test_a_syn_with_a_newer_tsval_reopens_time_wait_even_below_rcv_nxt():
    pair = established()
    pair.client.close()
    pair.server.close()
    assert pair.run(until=lambda: pair.client.state is TcpState.TIME_WAIT, max_steps=50)
    waiting = pair.client  # the client closed first: it waits; the server is the one that can reopen
    recent = waiting.ts_recent
    low = (waiting.rcv_nxt - 100_000) & MASK  # an ISN below the old connection's numbers
    newer = Segment(SERVER[1], CLIENT[1], low, 0, SYN, 65535, timestamps=((recent + 1) & MASK, 0))
    older = Segment(SERVER[1], CLIENT[1], low, 0, SYN, 65535, timestamps=((recent - 1) & MASK, 0))
    bare = Segment(SERVER[1], CLIENT[1], low, 0, SYN, 65535)
    assert waiting.reopens_with(newer)
    assert not waiting.reopens_with(older) and not waiting.reopens_with(bare)


# ------------------------------------------------------------------ ports: RFC 6056 3.3.3


def connect_ports(s: Stack, host: str, port: int, count: int) -> list[int]:
    return [s.tcp_connect((host, port), 1.0).local[1] for _ in range(count)]


def test_ephemeral_ports_towards_one_server_are_consecutive_and_unpredictable_from_another():
    s = Stack(["10.0.0.2/24"], rng=seeded_rng(6))
    first = connect_ports(s, "10.0.0.1", 80, 5)
    assert all(EPHEMERAL_FIRST <= p <= EPHEMERAL_LAST for p in first)
    assert [(p - first[0]) % EPHEMERAL_COUNT for p in first] == [0, 1, 2, 3, 4]  # offset + next_ephemeral
    other = connect_ports(s, "10.0.0.3", 443, 2)
    # Another destination has its own offset; the counter went on by five.
    assert (other[1] - other[0]) % EPHEMERAL_COUNT == 1 and other[0] != (first[-1] + 1 - EPHEMERAL_FIRST) \
        % EPHEMERAL_COUNT + EPHEMERAL_FIRST
    again = Stack(["10.0.0.2/24"], rng=seeded_rng(7))  # another key: another start
    assert connect_ports(again, "10.0.0.1", 80, 1)[0] != first[0]


def test_a_taken_port_is_skipped():
    s = Stack(["10.0.0.2/24"], rng=seeded_rng(6))
    [first] = connect_ports(s, "10.0.0.1", 80, 1)
    fresh = Stack(["10.0.0.2/24"], rng=seeded_rng(6))  # same key and counter: would pick ``first`` again
    fresh.tcp_listen(first)
    assert connect_ports(fresh, "10.0.0.1", 80, 1)[0] == EPHEMERAL_FIRST + (first - EPHEMERAL_FIRST + 1) % EPHEMERAL_COUNT
