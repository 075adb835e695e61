"""TCP through the Stack: RST for closed ports, demultiplexing, listeners (plain and transparent), the SYN
backlog and the connection limit, and bulk data between two stacks (over a lossy link, and behind two
WireGuard Devices), the clock in the test's hand."""

import hashlib
import random

import pytest

from wgpy.netstack import ip
from wgpy.netstack.errors import NetDrop
from wgpy.netstack.events import Closed, Connected, Incoming, Readable, Writable
from wgpy.netstack.stack import Stack
from wgpy.netstack.tcp import segment as tcp
from wgpy.netstack.tcp.config import TcpState

from ..conftest import seeded_rng
from .sim import Link, Tunneled

US, PEER = bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1])
US6, PEER6 = bytes.fromhex("fd00" + "00" * 13 + "02"), bytes.fromhex("fd00" + "00" * 13 + "01")
MIB = 1 << 20


def stack(**options) -> Stack:
    return Stack(["10.0.0.2/24", "fd00::2/64"], rng=seeded_rng(4), **options)


def segment_packet(source: bytes, destination: bytes, segment: tcp.Segment) -> bytes:
    return ip.build(source, destination, ip.TCP, segment.pack(source, destination))


def sent_segments(s: Stack) -> list[tuple[ip.Packet, tcp.Segment]]:
    found = []
    for packet in s.packets_to_send():
        parsed = ip.parse(packet)
        found.append((parsed, tcp.parse(parsed.payload, parsed.source, parsed.destination)))
    return found


# ------------------------------------------------------------------ no connection: RFC 9293 3.10.7.1


@pytest.mark.parametrize("source, destination", [(PEER, US), (PEER6, US6)])
def test_a_syn_to_a_closed_port_is_answered_with_rst_ack(source, destination):
    s = stack()
    s.receive_packets([segment_packet(source, destination, tcp.Segment(40000, 81, 1000, 0, tcp.SYN, 65535, mss=1380))], 1.0)
    ((parsed, reply),) = sent_segments(s)
    assert (parsed.source, parsed.destination) == (destination, source)
    # ACK off in what came: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; the SYN counts one.
    assert (reply.source_port, reply.destination_port, reply.seq, reply.ack, reply.flags) == (81, 40000, 0, 1001, tcp.RST | tcp.ACK)
    assert s.drops == {NetDrop.NO_LISTENER: 1}


def test_an_ack_to_a_closed_port_is_answered_with_rst_at_its_ack():
    s = stack()
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(40000, 81, 5, 77777, tcp.ACK, 100, b"data"))], 1.0)
    ((_, reply),) = sent_segments(s)
    # ACK on: <SEQ=SEG.ACK><CTL=RST>.
    assert (reply.seq, reply.flags) == (77777, tcp.RST)


def test_a_stray_rst_is_not_answered_and_a_bad_checksum_is_named():
    s = stack()
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(40000, 81, 5, 0, tcp.RST, 0))], 1.0)
    bad = bytearray(segment_packet(PEER, US, tcp.Segment(40000, 81, 5, 0, tcp.SYN, 0)))
    bad[-1] ^= 1
    s.receive_packets([bytes(bad)], 1.0)
    assert s.packets_to_send() == []
    assert s.drops == {NetDrop.STRAY_RST: 1, NetDrop.BAD_TCP: 1}


def test_tcp_not_for_us_is_dropped_without_rst():
    s = stack()
    s.receive_packets([segment_packet(PEER, bytes([10, 0, 0, 9]), tcp.Segment(40000, 81, 1, 0, tcp.SYN, 0))], 1.0)
    assert s.packets_to_send() == [] and s.drops == {NetDrop.NOT_FOR_US: 1}


# ------------------------------------------------------------------ listeners


def test_a_listener_answers_a_syn_and_hands_out_the_connection_once_established():
    s = stack()
    listener = s.tcp_listen(port=80)
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(40000, 80, 1000, 0, tcp.SYN, 65535, mss=1380))], 1.0)
    ((_, syn_ack),) = sent_segments(s)
    assert syn_ack.flags == tcp.SYN | tcp.ACK and syn_ack.ack == 1001 and syn_ack.mss == 1420 - 40
    assert listener.accept() is None and s.events() == []
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(40000, 80, 1001, (syn_ack.seq + 1) & 0xFFFFFFFF, tcp.ACK, 65535, b"GET"))], 1.1)
    assert s.events()[0] == Incoming(listener)
    conn = listener.accept()
    assert conn.state is TcpState.ESTABLISHED and conn.local == ("10.0.0.2", 80) and conn.remote == ("10.0.0.1", 40000)
    assert conn.recv(100) == b"GET" and listener.accept() is None
    # A SYN to the listener with ACK set is answered with RST (RFC 9293 3.10.7.2).
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(40001, 80, 1, 99, tcp.SYN | tcp.ACK, 0))], 1.2)
    assert [seg.flags for _, seg in sent_segments(s)][-1] == tcp.RST


def test_a_transparent_listener_takes_every_address_and_port():
    s = stack()
    listener = s.tcp_listen(transparent=True)
    elsewhere = bytes([203, 0, 113, 7])
    s.receive_packets([segment_packet(PEER, elsewhere, tcp.Segment(40000, 443, 1000, 0, tcp.SYN, 65535))], 1.0)
    ((parsed, syn_ack),) = sent_segments(s)
    assert parsed.source == elsewhere and syn_ack.source_port == 443
    s.receive_packets([segment_packet(PEER, elsewhere, tcp.Segment(40000, 443, 1001, (syn_ack.seq + 1) & 0xFFFFFFFF, tcp.ACK, 65535))], 1.0)
    conn = listener.accept()
    assert conn.local == ("203.0.113.7", 443) and conn.remote == ("10.0.0.1", 40000)
    # UDP and ICMP to other addresses are still not for us.
    s.receive_packets([ip.build(PEER, elsewhere, ip.UDP, b"\0" * 8)], 1.0)
    assert s.drops == {NetDrop.NOT_FOR_US: 1}


def test_the_syn_backlog_fills_and_then_drops_by_name():
    s = stack(max_connections=50)
    s.tcp_listen(port=80, backlog=8)
    flood = [segment_packet(PEER, US, tcp.Segment(1024 + n, 80, n, 0, tcp.SYN, 1000)) for n in range(20)]
    s.receive_packets(flood, 1.0)
    # All at once: no half-open connection is stale yet, so the new SYNs are the ones dropped.
    assert s.connections == 8 and s.drops == {NetDrop.SYN_BACKLOG_FULL: 12}
    assert len(s.packets_to_send()) == 8
    s.tcp_listen(port=81, backlog=100)
    flood = [segment_packet(PEER, US, tcp.Segment(1024 + n, 81, n, 0, tcp.SYN, 1000)) for n in range(60)]
    s.receive_packets(flood, 1.0)
    assert s.connections == 50 and s.drops[NetDrop.TOO_MANY_CONNECTIONS] == 18
    # The half-open connections give up after their SYN,ACK retransmissions (Linux: 6): the stack empties.
    for t in range(2, 400):
        s.poll(float(t))
    s.packets_to_send()
    assert s.connections == 0


def test_a_client_gets_in_through_a_syn_flood_and_a_backlog_of_unaccepted_ones_drops_the_syn():
    s = stack()
    listener = s.tcp_listen(port=80, backlog=8)
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(1024 + n, 80, n, 0, tcp.SYN, 1000)) for n in range(100)], 1.0)
    s.packets_to_send()
    assert s.drops == {NetDrop.SYN_BACKLOG_FULL: 92}
    # A real client 60 ms later: the oldest half-open one is stale (over STALE_FLOOR) and is reset for it.
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(5000, 80, 7, 0, tcp.SYN, 1000))], 1.06)
    rst, (_, syn_ack) = sent_segments(s)
    assert rst[1].flags & tcp.RST and rst[1].destination_port == 1024 and syn_ack.destination_port == 5000
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(5000, 80, 8, (syn_ack.seq + 1) & 0xFFFFFFFF, tcp.ACK, 1000))], 1.07)
    assert listener.accept().remote == ("10.0.0.1", 5000)
    assert s.drops[NetDrop.SYN_BACKLOG_STALE_DROPPED] == 1
    # Full of established connections nobody accepts: nothing to reset, the SYN is the one dropped.
    full = s.tcp_listen(port=82, backlog=2)
    for port in (3000, 3001, 3002):
        s.receive_packets([segment_packet(PEER, US, tcp.Segment(port, 82, 7, 0, tcp.SYN, 1000))], 2.0)
        for _, seg in sent_segments(s):
            s.receive_packets([segment_packet(PEER, US, tcp.Segment(port, 82, 8, (seg.seq + 1) & 0xFFFFFFFF, tcp.ACK, 1000))], 2.0)
    assert s.drops[NetDrop.SYN_BACKLOG_FULL] == 93
    assert [full.accept().remote[1], full.accept().remote[1], full.accept()] == [3000, 3001, None]


def test_stale_means_four_recent_handshake_times():
    """Handshakes that take 0.1 s make a half-open connection stale only after about 0.4 s."""
    s = stack()
    listener = s.tcp_listen(port=80, backlog=1)
    now = 1.0
    for n in range(40):   # one at a time, each answered 0.1 s after its SYN, and accepted
        s.receive_packets([segment_packet(PEER, US, tcp.Segment(2000 + n, 80, 7, 0, tcp.SYN, 1000))], now)
        ((_, syn_ack),) = sent_segments(s)
        now += 0.1
        s.receive_packets([segment_packet(PEER, US, tcp.Segment(2000 + n, 80, 8, (syn_ack.seq + 1) & 0xFFFFFFFF, tcp.ACK, 1000))], now)
        listener.accept().abort()
        sent_segments(s)
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(3000, 80, 7, 0, tcp.SYN, 1000))], now)
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(3001, 80, 7, 0, tcp.SYN, 1000))], now + 0.3)
    assert s.drops == {NetDrop.SYN_BACKLOG_FULL: 1}
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(3002, 80, 7, 0, tcp.SYN, 1000))], now + 0.45)
    assert s.drops == {NetDrop.SYN_BACKLOG_FULL: 1, NetDrop.SYN_BACKLOG_STALE_DROPPED: 1}


def test_listen_rules():
    s = stack()
    s.tcp_listen(port=80)
    with pytest.raises(ValueError):
        s.tcp_listen(port=80, address="10.0.0.2")
    with pytest.raises(ValueError):
        s.tcp_listen(port=80, address="10.9.9.9")
    with pytest.raises(ValueError):
        s.tcp_listen()
    s.tcp_listen(transparent=True)
    with pytest.raises(ValueError):
        s.tcp_listen(transparent=True)


def test_closing_a_listener_resets_what_it_had_not_handed_out():
    s = stack()
    listener = s.tcp_listen(port=80)
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(40000, 80, 1000, 0, tcp.SYN, 65535))], 1.0)
    s.packets_to_send()
    listener.close()
    assert [seg.flags & tcp.RST for _, seg in sent_segments(s)] == [tcp.RST]
    s.receive_packets([segment_packet(PEER, US, tcp.Segment(40001, 80, 1, 0, tcp.SYN, 65535))], 1.0)
    assert s.drops[NetDrop.NO_LISTENER] == 1


# ------------------------------------------------------------------ two stacks


def _connect(link, family="10.0.0.2", port=80):
    listener = link.bob.tcp_listen(port=port)
    client = link.alice.tcp_connect((family, port), link.now)
    link.run(until=link.now + 5.0, stop=lambda: listener.ready)
    server = listener.accept()
    assert server is not None, "the handshake did not complete"
    return client, server, listener


@pytest.mark.parametrize("family", ["10.0.0.2", "fd00::2"])
def test_connect_accept_exchange_and_close(family):
    link = Link(seed=2)
    client, server, listener = _connect(link, family)
    assert client.state is TcpState.ESTABLISHED and Connected(client) in link.events["alice"]
    assert Incoming(listener) in link.events["bob"]
    assert client.local[1] >= 49152 and server.remote == client.local and client.remote == server.local
    client.send(b"hello")
    link.run(until=link.now + 1.0, stop=lambda: server.readable)
    assert server.recv(100) == b"hello" and Readable(server) in link.events["bob"]
    server.send(b"world")
    server.close()
    link.run(until=link.now + 1.0, stop=lambda: client.at_eof)
    assert client.recv(100) == b"world" and client.at_eof
    client.close()
    link.run(until=link.now + 1.0)
    assert Closed(server) in link.events["bob"] and Closed(client) in link.events["alice"]
    assert server.error is None and client.error is None
    # The side that closed first sits in TIME-WAIT for 2*MSL, then the stack forgets it.
    assert server.state is TcpState.TIME_WAIT and link.bob.connections == 1 and link.alice.connections == 0
    link.run(until=link.now + 61.0)
    assert link.bob.connections == 0


def test_connect_to_a_closed_port_is_refused():
    link = Link(seed=2)
    client = link.alice.tcp_connect(("10.0.0.2", 9), link.now)
    link.run(until=link.now + 1.0)
    assert client.state is TcpState.CLOSED and client.error == "connection refused"
    assert Closed(client) in link.events["alice"] and link.alice.connections == 0


def _bulk(sim, client, server, size: int, until: float) -> tuple[bytes, bytes]:
    """Send ``size`` bytes each way at once; return what each side received."""
    outgoing = {id(client): random.Random(1).randbytes(size), id(server): random.Random(2).randbytes(size)}
    offsets = {id(client): 0, id(server): 0}
    received = {id(client): bytearray(), id(server): bytearray()}

    def pump() -> bool:
        for sock in (client, server):
            data, at = outgoing[id(sock)], offsets[id(sock)]
            if at < len(data):
                offsets[id(sock)] += sock.send(data[at:at + 65536])
            while chunk := sock.recv(65536):
                received[id(sock)] += chunk
        return len(received[id(client)]) == size and len(received[id(server)]) == size

    sim.run(until=until, stop=pump)
    assert len(received[id(server)]) == size, f"{len(received[id(server)])} of {size} bytes by t={sim.now}"
    assert hashlib.sha256(received[id(server)]).digest() == hashlib.sha256(outgoing[id(client)]).digest()
    assert hashlib.sha256(received[id(client)]).digest() == hashlib.sha256(outgoing[id(server)]).digest()
    return bytes(received[id(client)]), bytes(received[id(server)])


def test_one_mib_each_way_over_a_lossy_link():
    link = Link(seed=11, loss=0.02, duplicate=0.01, reorder=0.05)
    client, server, _ = _connect(link)
    start = link.now
    _bulk(link, client, server, MIB, until=start + 120.0)
    assert sum(link.alice.drops.values()) + sum(link.bob.drops.values()) > 0   # the duplicates, at least


def test_one_mib_each_way_behind_two_wireguard_devices_with_loss():
    tunnel = Tunneled(seed=12, loss=0.02)
    listener = tunnel.bob.tcp_listen(port=80)
    client = tunnel.alice.tcp_connect(("10.0.0.2", 80), tunnel.now)
    tunnel.run(until=tunnel.now + 10.0, stop=lambda: listener.ready)
    server = listener.accept()
    assert server is not None and client.state is TcpState.ESTABLISHED
    _bulk(tunnel, client, server, MIB, until=tunnel.now + 200.0)
    assert tunnel.sent["alice"] > MIB // 1380


def test_writable_after_a_full_send_buffer_drains_and_reset_reaches_the_peer():
    link = Link(seed=4)
    client, server, _ = _connect(link)
    while client.send(bytes(65536)):
        pass
    assert client.writable == 0
    link.events["alice"].clear()
    link.run(until=link.now + 0.2, stop=lambda: server.recv(1 << 20) and False)
    assert any(event == Writable(client) for event in link.events["alice"])
    server.abort()
    link.run(until=link.now + 1.0)
    assert client.state is TcpState.CLOSED and client.error == "connection reset"
    assert Closed(client) in link.events["alice"] and Closed(server) in link.events["bob"]
    assert link.alice.connections == 0 and link.bob.connections == 0


def test_connections_are_told_apart_by_their_four_tuple():
    link = Link(seed=6)
    listener = link.bob.tcp_listen(port=80)
    clients = [link.alice.tcp_connect(("10.0.0.2", 80), link.now) for _ in range(5)]
    clients.append(link.alice.tcp_connect(("fd00::2", 80), link.now))
    link.run(until=link.now + 1.0)
    servers = []
    while (conn := listener.accept()) is not None:
        servers.append(conn)
    assert len(servers) == 6 and len({conn.remote for conn in servers}) == 6
    for n, client in enumerate(clients):
        client.send(b"client %d" % n)
    link.run(until=link.now + 1.0)
    by_remote = {conn.remote: conn.recv(100) for conn in servers}
    assert {by_remote[client.local] for client in clients} == {b"client %d" % n for n in range(6)}
    for n, client in enumerate(clients):
        assert by_remote[client.local] == b"client %d" % n


def test_checksums_can_be_left_to_the_tunnel():
    """verify_checksums=False: a segment or datagram with a wrong checksum is taken (a WireGuard tag proved
    it); sent ones still carry correct checksums."""
    trusting, checking = stack(verify_checksums=False), stack()
    bad_syn = bytearray(segment_packet(PEER, US, tcp.Segment(40000, 81, 1000, 0, tcp.SYN, 65535)))
    bad_syn[-1] ^= 0x5A
    for s in (trusting, checking):
        s.receive_packets([bytes(bad_syn)], 1.0)
    assert trusting.drops == {NetDrop.NO_LISTENER: 1} and checking.drops == {NetDrop.BAD_TCP: 1}
    ((parsed, reply),) = sent_segments(trusting)
    assert reply.flags == tcp.RST | tcp.ACK    # parse checked the RST's checksum


@pytest.mark.parametrize("family", ["10.0.0.1", "fd00::1"])
def test_an_icmp_unreachable_ends_a_connection_attempt_only_when_it_quotes_the_syn(family):
    from wgpy.netstack import icmp
    s = stack()
    ours, peer = (US, PEER) if "." in family else (US6, PEER6)
    version = 4 if len(ours) == 4 else 6
    client = s.tcp_connect((family, 80), 1.0)
    (syn_packet,) = s.packets_to_send()
    forged = bytearray(syn_packet)
    forged[(20 if version == 4 else 40) + 4] ^= 0x80          # another sequence number: a blind guess
    for quoted in (bytes(forged), syn_packet):
        message = icmp.port_unreachable(version, peer, ours, quoted, 1420)
        s.receive_packets([ip.build(peer, ours, icmp.protocol(version), message)], 1.1)
        if quoted is not syn_packet:
            assert client.state is TcpState.SYN_SENT and s.drops == {NetDrop.ICMP_ERROR_RECEIVED: 1}
    assert client.state is TcpState.CLOSED and client.error == "connection refused"
    assert Closed(client) in s.events() and s.connections == 0 and s.packets_to_send() == []


def test_an_icmp_unreachable_does_not_end_an_established_connection():
    from wgpy.netstack import icmp
    link = Link(seed=8)
    client, server, _ = _connect(link)
    client.send(b"x")
    (packet,) = link.alice.packets_to_send()
    message = icmp.port_unreachable(4, PEER, US, packet, 1420)  # as if a router between said so
    link.alice.receive_packets([ip.build(US, PEER, ip.ICMP, message)], link.now)
    assert client.state is TcpState.ESTABLISHED and link.alice.drops == {NetDrop.ICMP_ERROR_RECEIVED: 1}


def test_a_new_syn_reopens_a_four_tuple_in_time_wait():
    link = Link(seed=9)
    listener = link.bob.tcp_listen(port=80)
    client = link.alice.tcp_connect(("10.0.0.2", 80), link.now, local=("10.0.0.1", 45000))
    link.run(until=link.now + 1.0)
    server = listener.accept()
    server.close()                       # bob closes first: bob's side goes to TIME-WAIT
    link.run(until=link.now + 0.5)
    client.close()
    link.run(until=link.now + 1.0)
    assert server.state is TcpState.TIME_WAIT and link.bob.connections == 1
    again = link.alice.tcp_connect(("10.0.0.2", 80), link.now, local=("10.0.0.1", 45000))
    link.run(until=link.now + 1.0)
    fresh = listener.accept()
    assert again.state is TcpState.ESTABLISHED and fresh is not None and fresh is not server
    assert fresh.remote == ("10.0.0.1", 45000) and link.bob.connections == 1
    again.send(b"second life")
    link.run(until=link.now + 1.0)
    assert fresh.recv(100) == b"second life"


def test_ten_mib_each_way_between_two_stacks_under_loss_duplication_and_reordering():
    """Issue 13's figure, at the stacks' own seam (IP packets in and out, checksums checked): 10 MiB each
    way, intact, over a link that loses 1 %, duplicates 1 % and reorders 5 %, with the clock in hand."""
    link = Link(seed=13, loss=0.01, duplicate=0.01, reorder=0.05)
    client, server, _ = _connect(link)
    _bulk(link, client, server, 10 * MIB, until=link.now + 900.0)
    assert link.alice.drops and link.bob.drops   # the duplicates, at least, were seen and named
