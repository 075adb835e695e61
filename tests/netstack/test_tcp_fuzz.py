"""Any segment, in any state: ``receive`` never raises, every refusal is a named NetDrop, the buffers stay
within their bounds, and what the connection sends still packs (Hypothesis)."""

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from wgpy.netstack.errors import NetDrop
from wgpy.netstack.tcp.config import TcpConfig, TcpState
from wgpy.netstack.tcp.segment import Segment, parse

from .tcp_pair import CLIENT, SERVER, Pair, advance_to

S = TcpState
MASK = 0xFFFFFFFF
SMALL = TcpConfig(send_buffer=8192, receive_buffer=8192, out_of_order_limit=4096)

SETUPS = [("client", state) for state in (S.SYN_SENT, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSING,
                                          S.TIME_WAIT)] + \
         [("server", state) for state in (S.LISTEN, S.SYN_RECEIVED, S.ESTABLISHED, S.CLOSE_WAIT, S.LAST_ACK,
                                          S.CLOSED)]

near = st.one_of(st.integers(-70_000, 70_000), st.integers(-3, 3), st.integers(0, MASK).map(lambda v: ("abs", v)))
segments = st.lists(st.tuples(
    st.integers(0, 255),                      # flags: any combination
    near,                                     # seq: near RCV.NXT, or anywhere
    near,                                     # ack: near SND.MAX, or anywhere
    st.integers(0, 0xFFFF),                   # window
    st.binary(max_size=3000),                 # payload
    st.sampled_from([{}, {"mss": 0}, {"mss": 100}, {"window_scale": 14}, {"sack_permitted": True},
                     {"sack_blocks": ((1, 2),)}, {"timestamps": (1, 2)}]),
    st.floats(0, 3.0),                        # time passing before it arrives
    st.booleans(),                            # through pack and parse, or handed over as built
), min_size=1, max_size=12)


def number(value, base: int) -> int:
    if isinstance(value, tuple):
        return value[1]
    return (base + value) & MASK


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SETUPS), segments, st.booleans())
def test_any_segment_in_any_state_is_taken_or_refused_by_name(setup, segments, small):
    side, state = setup
    # small: the same state with tiny buffers, data waiting in them, so the bounds are reached
    pair = advance_to(state, side, SMALL if small else TcpConfig())
    me = pair.client if side == "client" else pair.server
    if small and me.writable:
        me.send(b"w" * 5000)
    config = me.config
    for flags, seq, ack, window, payload, options, delay, through_wire in segments:
        pair.now += delay
        segment = Segment(me.remote[1], me.local[1], number(seq, me.rcv_nxt), number(ack, me.snd_max), flags,
                          window, payload, **options)
        if through_wire:
            segment = parse(segment.pack(CLIENT[0], SERVER[0]), CLIENT[0], SERVER[0])
            assert isinstance(segment, Segment)
        result = me.receive(segment, pair.now)
        assert result is None or isinstance(result, NetDrop)
        deadline = me.next_deadline()
        assert deadline is None or isinstance(deadline, float)
        if deadline is not None and deadline <= pair.now:
            me.handle_timer(pair.now)
        for out in me.segments_to_send(pair.now):
            wire = out.pack(SERVER[0], CLIENT[0])  # every field within its width
            assert isinstance(parse(wire, SERVER[0], CLIENT[0]), Segment)
        assert me.readable <= config.receive_buffer
        assert me.receive_buffer.out_of_order_bytes <= config.out_of_order_limit
        assert len(me.send_buffer) <= config.send_buffer
        assert me.snd_una <= me.snd_nxt <= me.snd_max
        assert me.state in TcpState
        if me.state is S.CLOSED:
            assert me.next_deadline() is None
        if me.readable:
            me.recv(1000)


@pytest.mark.parametrize("setup", SETUPS, ids=[f"{side}-{state.name}" for side, state in SETUPS])
def test_the_setups_reach_their_states(setup):
    side, state = setup
    pair = advance_to(state, side)
    assert (pair.client if side == "client" else pair.server).state is state


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Found by a soak: a retransmission held back by sender SWS avoidance behind a small window (fixed)...
@example(847288125, 0.0641454511961537, 0.112014822339965, 0.12026514169795754, 369255, 86270, True,
         3663151704, 2349277390)
# ... and the last ACKs lost until the peer's TIME-WAIT ended (answered with RST, as the stack does).
@example(693102987, 0.1465392968805551, 0.04041065919333776, 0.2910627933995957, 375117, 337587, False,
         4193374229, 1522244607)
@given(st.integers(0, 2**32 - 1), st.floats(0, 0.15), st.floats(0, 0.15), st.floats(0, 0.3),
       st.integers(0, 200_000), st.integers(0, 200_000), st.booleans(), st.integers(0, MASK), st.integers(0, MASK))
def test_any_channel_delivers_both_streams_intact_and_closes(seed, loss, duplicate, reorder, up, down, small,
                                                             client_iss, server_iss):
    """Whatever the channel does (within reason: below 15 % loss), both byte streams arrive intact and
    both ends close, in bounded steps and simulated time. Without an error, except one case TCP cannot
    avoid: the last ACKs lost until the other end's TIME-WAIT is over, the retransmission is answered
    with RST (as the stack answers a segment for no connection), so that end ends "connection reset"."""
    import random as random_module

    from .tcp_pair import Transfer
    rng = random_module.Random(seed)
    config = SMALL if small else TcpConfig()
    pair = Pair(seed=seed, loss=loss, duplicate=duplicate, reorder=reorder, config=config,
                client_iss=client_iss, server_iss=server_iss)
    to_server, to_client = rng.randbytes(up), rng.randbytes(down)
    transfer = Transfer(pair, to_server, to_client, shutdown=True)
    done = pair.run(until=lambda: transfer.done() and pair.client.at_eof and pair.server is not None
                    and pair.server.at_eof and pair.client.state in (S.TIME_WAIT, S.CLOSED)
                    and pair.server.state in (S.TIME_WAIT, S.CLOSED),
                    pump=transfer.pump, max_steps=50_000, max_time=900.0)
    assert done, (pair.client, pair.server, pair.steps, pair.now)
    assert bytes(transfer.received["server"]) == to_server and bytes(transfer.received["client"]) == to_client
    errors = [pair.client.error, pair.server.error]
    assert errors.count(None) >= 1 and set(errors) <= {None, "connection reset"}, errors
    if "connection reset" in errors:
        other = pair.server if errors[0] else pair.client
        assert other.error is None and S.TIME_WAIT in pair.states["server" if errors[0] else "client"]
