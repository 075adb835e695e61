"""Two TcpConnections in memory (tests/netstack/tcp_pair.py): the handshake, data both ways, the close."""

import hashlib
import random

from wgpy.netstack.tcp.config import TcpState
from wgpy.netstack.tcp.segment import ACK, SYN

from .tcp_pair import Pair, Transfer

S = TcpState


def closed_or_time_wait(pair: Pair) -> bool:
    return {pair.client.state, pair.server.state} <= {S.CLOSED, S.TIME_WAIT}


def test_three_way_handshake_across_the_sequence_wrap():
    pair = Pair(client_iss=0xFFFFFFFF)  # the client's first data byte is sequence number 0
    assert pair.run(until=pair.established, max_steps=10)
    syn, syn_ack, ack = (segment for _, _, segment in pair.carried[:3])
    assert syn.flags == SYN and syn.seq == 0xFFFFFFFF and syn.mss == 1380 and syn.window_scale == 3  # 256 KiB >> 3 fits 16 bits
    assert syn_ack.flags == SYN | ACK and syn_ack.ack == 0 and syn_ack.seq == pair.server_iss
    assert syn_ack.window_scale == 3 and syn_ack.mss == 1380
    assert ack.flags == ACK and ack.seq == 0 and ack.ack == pair.server_iss + 1
    assert pair.now - 1000.0 < 0.05  # two latencies and a half: no timer was waited for
    assert pair.client.error is None and pair.server.error is None


def test_one_mebibyte_each_way_without_loss_then_an_orderly_close():
    rng = random.Random(1)
    to_server, to_client = rng.randbytes(1 << 20), rng.randbytes(1 << 20)
    pair = Pair()
    transfer = Transfer(pair, to_server, to_client, shutdown=True)
    assert pair.run(until=lambda: transfer.done() and closed_or_time_wait(pair), pump=transfer.pump,
                    max_steps=5_000, max_time=5.0)
    assert bytes(transfer.received["server"]) == to_server
    assert bytes(transfer.received["client"]) == to_client
    assert pair.drops == {"client": {}, "server": {}}
    assert pair.client.at_eof and pair.server.at_eof
    # Not one retransmission: every data byte crossed once.
    data_bytes = sum(len(segment.payload) for _, _, segment in pair.carried)
    assert data_bytes == 2 << 20
    assert pair.now - 1000.0 < 2.0


def test_one_mebibyte_each_way_under_loss_duplication_and_reordering():
    for seed in range(3):
        rng = random.Random(seed)
        to_server, to_client = rng.randbytes(1 << 20), rng.randbytes(1 << 20)
        pair = Pair(seed=seed, loss=0.02, duplicate=0.02, reorder=0.05)
        transfer = Transfer(pair, to_server, to_client, shutdown=True)
        assert pair.run(until=lambda: transfer.done() and closed_or_time_wait(pair), pump=transfer.pump,
                        max_steps=20_000, max_time=120.0), (seed, pair.client, pair.server)
        assert hashlib.sha256(transfer.received["server"]).digest() == hashlib.sha256(to_server).digest()
        assert hashlib.sha256(transfer.received["client"]).digest() == hashlib.sha256(to_client).digest()
        assert pair.client.error is None and pair.server.error is None
