"""The RFC 9293 state machine, state by state: opens, closes, TIME-WAIT, RST in each state, RFC 5961."""

import pytest

from wgpy.netstack.errors import NetDrop
from wgpy.netstack.tcp.config import TcpConfig, TcpState
from wgpy.netstack.tcp.connection import TcpConnection
from wgpy.netstack.tcp.segment import ACK, FIN, RST, SYN, Segment

from .tcp_pair import CLIENT, SERVER, Pair, Transfer

S = TcpState
MASK = 0xFFFFFFFF


def established(**options) -> Pair:
    pair = Pair(**options)
    assert pair.run(until=pair.established, max_steps=20)
    return pair


def from_peer(pair: Pair, side: str, flags: int, seq_offset: int = 0, ack: int | None = None,
              payload: bytes = b"") -> Segment:
    """A segment to ``side`` from its peer: seq at RCV.NXT + offset, ack at the receiver's SND.NXT."""
    target = pair.client if side == "client" else pair.server
    ports = (target.remote[1], target.local[1])
    ack_value = (target.snd_max if ack is None else ack) & MASK
    return Segment(*ports, (target.rcv_nxt + seq_offset) & MASK, ack_value, flags, 1000, payload)


def sent_by(pair: Pair, direction: str, since: int = 0) -> list[Segment]:
    return [segment for _, d, segment in pair.carried[since:] if d == direction]


def test_every_state_is_reached_across_the_scenarios():
    """The union of the states both ends pass through in the scenarios below: all eleven."""
    seen = set()
    # Active and passive open, data, then the client closes first: FIN-WAIT-1/2, TIME-WAIT; the server
    # CLOSE-WAIT, LAST-ACK, CLOSED.
    pair = Pair(server_listens=True)
    transfer = Transfer(pair, b"a" * 5000, b"b" * 5000)
    assert pair.run(until=transfer.done, pump=transfer.pump, max_steps=200)
    pair.client.shutdown_write()
    assert pair.run(until=lambda: pair.server.state is S.CLOSE_WAIT and pair.client.state is S.FIN_WAIT_2,
                    max_steps=50)
    pair.server.shutdown_write()
    assert pair.run(until=lambda: pair.server.state is S.CLOSED and pair.client.state is S.TIME_WAIT, max_steps=50)
    assert pair.run(until=lambda: pair.client.state is S.CLOSED, max_steps=50, max_time=200)
    seen |= pair.states["client"] | pair.states["server"]
    assert pair.states["server"] >= {S.LISTEN, S.SYN_RECEIVED, S.ESTABLISHED, S.CLOSE_WAIT, S.LAST_ACK, S.CLOSED}
    assert pair.states["client"] >= {S.SYN_SENT, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.TIME_WAIT, S.CLOSED}
    # Simultaneous close: CLOSING on both sides.
    pair = established()
    pair.client.shutdown_write()
    pair.server.shutdown_write()
    assert pair.run(until=lambda: pair.client.state is S.TIME_WAIT and pair.server.state is S.TIME_WAIT, max_steps=50)
    assert S.CLOSING in pair.states["client"] and S.CLOSING in pair.states["server"]
    seen |= pair.states["client"] | pair.states["server"]
    assert seen == set(TcpState)


def test_simultaneous_open():
    """RFC 9293 figure 8: both send SYN; both pass SYN-RECEIVED; both end ESTABLISHED."""
    pair = Pair(simultaneous=True)
    assert pair.run(until=pair.established, max_steps=20)
    assert pair.states["client"] >= {S.SYN_SENT, S.SYN_RECEIVED, S.ESTABLISHED}
    assert pair.states["server"] >= {S.SYN_SENT, S.SYN_RECEIVED, S.ESTABLISHED}
    transfer = Transfer(pair, b"x" * 100_000, b"y" * 100_000, shutdown=True)
    assert pair.run(until=lambda: transfer.done() and pair.client.at_eof and pair.server.at_eof,
                    pump=transfer.pump, max_steps=1000)
    assert pair.now - 1000.0 < 1.0  # no timeout was needed
    assert pair.client.error is None and pair.server.error is None


def test_simultaneous_close_passes_closing_and_both_wait():
    pair = established()
    pair.client.shutdown_write()
    pair.server.shutdown_write()
    assert pair.run(until=lambda: pair.client.state is S.TIME_WAIT and pair.server.state is S.TIME_WAIT,
                    max_steps=50)
    assert S.CLOSING in pair.states["client"] and S.CLOSING in pair.states["server"]
    assert pair.client.at_eof and pair.server.at_eof


def test_half_close_the_other_direction_keeps_flowing():
    pair = established()
    pair.client.send(b"request")
    pair.client.shutdown_write()
    assert pair.run(until=lambda: pair.server.state is S.CLOSE_WAIT and pair.client.state is S.FIN_WAIT_2,
                    max_steps=50)
    assert pair.server.recv(100) == b"request" and pair.server.at_eof
    with pytest.raises(ValueError):
        pair.client.send(b"more")
    answer = bytes(range(256)) * 2000  # 512 000 bytes: more than the buffers, so flow control works too
    transfer = Transfer(pair, b"", answer, shutdown=True)
    assert pair.run(until=lambda: transfer.done() and pair.client.at_eof, pump=transfer.pump, max_steps=5000)
    assert bytes(transfer.received["client"]) == answer
    assert pair.run(until=lambda: pair.server.state is S.CLOSED and pair.client.state is S.TIME_WAIT, max_steps=50)
    assert pair.server.error is None


def test_time_wait_lasts_two_msl_and_a_retransmitted_fin_restarts_it():
    pair = established(config=TcpConfig(msl=30.0))
    pair.client.shutdown_write()
    assert pair.run(until=lambda: pair.server.state is S.CLOSE_WAIT, max_steps=50)
    pair.server.shutdown_write()
    assert pair.run(until=lambda: pair.client.state is S.TIME_WAIT, max_steps=50)
    entered = pair.now
    # The server's FIN again (its ACK lost, say): the client ACKs it and waits 2 MSL from now.
    pair.now += 10.0
    fin = from_peer(pair, "client", FIN | ACK, seq_offset=-1)
    assert pair.deliver_segment("client", fin) is NetDrop.UNACCEPTABLE_SEGMENT
    assert [s.flags for s in pair.client.segments_to_send(pair.now)] == [ACK]
    assert pair.client.next_deadline() == pytest.approx(entered + 70.0)
    assert pair.run(until=lambda: pair.client.state is S.CLOSED, max_steps=50, max_time=100)
    assert pair.now == pytest.approx(entered + 70.0)
    assert pair.client.error is None


def advance_to(state: TcpState, side: str) -> Pair:
    """A pair with ``side`` in ``state`` (the peer's segments held where the state needs it)."""
    if state is S.SYN_SENT:
        pair = Pair()
        pair.hold.add("c>s")
        pair.flush()
        return pair
    if state is S.SYN_RECEIVED:
        pair = Pair()
        pair.hold.add("s>c")
        pair.run(until=lambda: pair.server is not None, max_steps=5)
        pair.flush()
        return pair
    pair = established()
    me, peer = (pair.client, pair.server) if side == "client" else (pair.server, pair.client)
    towards_peer = "c>s" if side == "client" else "s>c"
    if state is S.ESTABLISHED:
        return pair
    if state is S.CLOSE_WAIT:
        peer.shutdown_write()
    elif state is S.FIN_WAIT_1:
        pair.hold.add(towards_peer)
        me.shutdown_write()
    elif state in (S.FIN_WAIT_2, S.TIME_WAIT):
        me.shutdown_write()
        if state is S.TIME_WAIT:
            pair.run(until=lambda: me.state is S.FIN_WAIT_2, max_steps=20)
            peer.shutdown_write()
    elif state is S.CLOSING:
        pair.hold = {"c>s", "s>c"}
        me.shutdown_write()
        peer.shutdown_write()
        pair.flush()
        pair.hold = {"s>c"} if side == "client" else {"c>s"}  # only my FIN reaches the peer... not its ACK
        pair.inject.append((side, from_peer(pair, side, FIN | ACK, ack=me.snd_una)))
    elif state is S.LAST_ACK:
        peer.shutdown_write()
        pair.run(until=lambda: me.state is S.CLOSE_WAIT, max_steps=20)
        pair.hold.add(towards_peer)
        me.shutdown_write()
    assert pair.run(until=lambda: me.state is state, max_steps=30), (me, state)
    pair.flush()
    return pair


RST_CASES = [
    ("client", S.SYN_SENT, "connection refused"),
    ("server", S.SYN_RECEIVED, "connection reset"),
    ("client", S.ESTABLISHED, "connection reset"),
    ("server", S.ESTABLISHED, "connection reset"),
    ("client", S.FIN_WAIT_1, "connection reset"),
    ("client", S.FIN_WAIT_2, "connection reset"),
    ("server", S.CLOSE_WAIT, "connection reset"),
    ("client", S.CLOSING, None),
    ("server", S.LAST_ACK, None),
    ("client", S.TIME_WAIT, None),
]


@pytest.mark.parametrize("side, state, error", RST_CASES, ids=[f"{s}-{st.name}" for s, st, _ in RST_CASES])
def test_rst_in_each_state(side, state, error):
    pair = advance_to(state, side)
    me = pair.client if side == "client" else pair.server
    assert me.state is state
    if state is S.SYN_SENT:  # RFC 9293 3.10.7.3: acceptable only with an ACK of our SYN
        assert me.receive(Segment(80, 40000, 5, 0, RST, 0), pair.now) is NetDrop.RST_OUT_OF_WINDOW
        reset = Segment(80, 40000, 0, (me.iss + 1) & MASK, RST | ACK, 0)
    else:
        # Out of the window: ignored (RFC 5961 3.2).
        assert me.receive(from_peer(pair, side, RST, seq_offset=10_000_000), pair.now) is NetDrop.RST_OUT_OF_WINDOW
        assert me.state is state
        reset = from_peer(pair, side, RST)
    assert me.receive(reset, pair.now) is None
    assert me.state is S.CLOSED
    assert me.error == error
    assert me.next_deadline() is None and me.segments_to_send(pair.now) == []  # no answer to a RST


def test_rst_in_the_window_but_not_exact_gets_a_challenge_ack_then_the_exact_one_resets():
    """RFC 5961 3.2: the blind attacker's in-window guess only elicits an ACK carrying RCV.NXT."""
    pair = established()
    server = pair.server
    assert server.receive(from_peer(pair, "server", RST, seq_offset=1000), pair.now) is NetDrop.CHALLENGE_ACK
    assert server.state is S.ESTABLISHED
    [challenge] = server.segments_to_send(pair.now)
    assert challenge.flags == ACK and challenge.ack == server.rcv_nxt & MASK
    # The real peer, seeing the challenge ACK, answers with an exact RST (as RFC 5961 3.2 describes).
    assert server.receive(Segment(40000, 80, challenge.ack, 0, RST, 0), pair.now) is None
    assert server.state is S.CLOSED and server.error == "connection reset"


def test_syn_in_a_synchronized_state_gets_a_challenge_ack():
    """RFC 5961 4.2: a SYN in the window (or not) never resets; it is answered with an ACK."""
    pair = established()
    for offset in (0, 500, -100_000):
        syn = from_peer(pair, "server", SYN, seq_offset=offset)
        assert pair.server.receive(syn, pair.now) in (NetDrop.CHALLENGE_ACK, NetDrop.UNACCEPTABLE_SEGMENT)
        assert pair.server.state is S.ESTABLISHED
        [answer] = pair.server.segments_to_send(pair.now)
        assert answer.flags == ACK and answer.ack == pair.server.rcv_nxt & MASK
    assert pair.server.receive(from_peer(pair, "server", SYN, seq_offset=0), pair.now) is NetDrop.CHALLENGE_ACK


def test_challenge_acks_are_rate_limited():
    pair = established(config=TcpConfig(challenge_acks_per_second=3))
    for _ in range(10):
        assert pair.server.receive(from_peer(pair, "server", RST, seq_offset=7), pair.now) is NetDrop.CHALLENGE_ACK
    assert len(pair.server.segments_to_send(pair.now)) == 3
    pair.now += 1.0
    pair.server.receive(from_peer(pair, "server", RST, seq_offset=7), pair.now)
    assert len(pair.server.segments_to_send(pair.now)) == 1


def test_ack_checks_of_rfc_5961_5_2():
    pair = established()
    server = pair.server
    # Acknowledging what was never sent: an ACK back, the segment dropped.
    too_new = from_peer(pair, "server", ACK, ack=server.snd_max + 5, payload=b"data")
    assert server.receive(too_new, pair.now) is NetDrop.BAD_ACK
    assert server.readable == 0
    assert [s.flags for s in server.segments_to_send(pair.now)] == [ACK]
    # Far older than SND.UNA - MAX.SND.WND: a challenge ACK.
    too_old = from_peer(pair, "server", ACK, ack=server.snd_una - 10_000_000, payload=b"data")
    assert server.receive(too_old, pair.now) is NetDrop.OLD_ACK
    assert server.readable == 0


def test_connection_refused_on_rst_in_syn_sent():
    pair = Pair()
    pair.flush()
    answer = Segment(80, 40000, 0, (pair.client.iss + 1) & MASK, RST | ACK, 0)
    pair.inject.append(("client", answer))
    pair.step()
    assert pair.client.state is S.CLOSED and pair.client.error == "connection refused"


def test_syn_sent_answers_a_bad_ack_with_rst():
    pair = Pair()
    pair.flush()
    client = pair.client
    bad = Segment(80, 40000, 77, (client.iss + 1000) & MASK, SYN | ACK, 1000)
    assert client.receive(bad, pair.now) is NetDrop.BAD_ACK
    [rst] = client.segments_to_send(pair.now)
    assert rst.flags == RST and rst.seq == (client.iss + 1000) & MASK
    assert client.state is S.SYN_SENT


def test_listen_answers_an_ack_with_rst_and_ignores_rst():
    listener = TcpConnection.listen(SERVER, CLIENT, 1, 0.0, 1380)
    assert listener.receive(Segment(40000, 80, 5, 1234, ACK, 100), 0.0) is NetDrop.UNEXPECTED_SEGMENT
    [rst] = listener.segments_to_send(0.0)
    assert rst.flags == RST and rst.seq == 1234
    assert listener.receive(Segment(40000, 80, 5, 0, RST, 100), 0.0) is NetDrop.UNEXPECTED_SEGMENT
    assert listener.segments_to_send(0.0) == [] and listener.state is S.LISTEN
    with pytest.raises(ValueError):
        TcpConnection.from_syn(SERVER, CLIENT, Segment(40000, 80, 5, 0, ACK, 100), 1, 0.0, 1380)


def test_abort_sends_rst_and_the_peer_is_reset():
    pair = established()
    pair.client.abort()
    assert pair.client.state is S.CLOSED and pair.client.error == "connection aborted"
    assert pair.run(until=lambda: pair.server.state is S.CLOSED, max_steps=10)
    assert pair.server.error == "connection reset"


def test_close_with_unread_data_resets_as_linux_does():
    pair = established()
    pair.client.send(b"unread")
    assert pair.run(until=lambda: pair.server.readable == 6, max_steps=10)
    pair.server.close()
    assert pair.server.state is S.CLOSED
    assert pair.run(until=lambda: pair.client.state is S.CLOSED, max_steps=10)
    assert pair.client.error == "connection reset"


def test_close_then_data_from_the_peer_resets():
    pair = established()
    pair.server.close()
    assert pair.run(until=lambda: pair.server.state is S.FIN_WAIT_2, max_steps=10)
    pair.client.send(b"too late")
    assert pair.run(until=lambda: pair.client.state is S.CLOSED, max_steps=10)
    assert pair.client.error == "connection reset" and pair.server.state is S.CLOSED


def test_an_orphan_in_fin_wait_2_gives_up():
    pair = established(config=TcpConfig(fin_wait_2_timeout=5.0))
    pair.client.close()
    assert pair.run(until=lambda: pair.client.state is S.FIN_WAIT_2, max_steps=10)
    start = pair.now
    assert pair.run(until=lambda: pair.client.state is S.CLOSED, max_steps=20, max_time=10)
    assert pair.now - start == pytest.approx(5.0, abs=0.1)
    assert pair.run(until=lambda: pair.server.state is S.CLOSED, max_steps=5)  # the orphan's RST
    assert pair.server.error == "connection reset"


def test_shutdown_before_the_handshake_completes_sends_fin_after_it():
    pair = Pair()
    pair.run(until=lambda: pair.server is not None, max_steps=5)
    pair.server.send(b"hello")
    pair.server.shutdown_write()
    assert pair.server.state is S.SYN_RECEIVED
    assert pair.run(until=lambda: pair.client.state is S.CLOSE_WAIT, max_steps=20)
    assert pair.client.recv(100) == b"hello" and pair.client.at_eof
    assert S.FIN_WAIT_1 in pair.states["server"]
