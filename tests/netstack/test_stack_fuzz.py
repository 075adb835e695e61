"""Any bytes into Stack.receive_packets: nothing raises, every packet is taken or counted once under a NetDrop.

The same invariant, with what the stack sends checked too, is the ``netstack`` fuzz target
(tests/fuzz/targets.py), run by tests/test_fuzz.py and by atheris campaigns.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wgpy.netstack import ip
from wgpy.netstack.errors import NetDrop

from ..fuzz import netstack_world
from ..fuzz.targets import netstack

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
VALID = netstack_world.packets()


def mutated() -> st.SearchStrategy[bytes]:
    def apply(seed: bytes, edits: list[tuple[int, int]], cut: int | None, extra: bytes) -> bytes:
        data = bytearray(seed)
        for at, value in edits:
            data[at % len(data)] = value
        return bytes(data[:cut] if cut is not None else data) + extra
    return st.builds(apply, st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=4),
                     st.none() | st.integers(0, 100), st.binary(max_size=8))


def _version_headers() -> st.SearchStrategy[bytes]:
    """Bytes that start like IPv4 or IPv6, so the parser gets past the first byte."""
    return st.tuples(st.sampled_from([b"\x45", b"\x46", b"\x4f", b"\x60"]), st.binary(max_size=100)).map(b"".join)


@SETTINGS
@given(st.lists(st.one_of(st.binary(max_size=200), _version_headers(), mutated(), st.sampled_from(VALID)), min_size=1, max_size=8))
def test_any_packets_are_taken_or_dropped_by_name(packets):
    stack = netstack_world.build()
    before = stack.taken     # the handshake of the world's connection
    stack.receive_packets(packets, 1000.0)
    assert stack.taken - before + sum(stack.drops.values()) == len(packets)
    assert all(isinstance(reason, NetDrop) for reason in stack.drops)
    for sent in stack.packets_to_send():
        assert isinstance(ip.parse(sent), ip.Packet)


def test_the_valid_packets_are_taken_each_in_a_fresh_stack():
    """The seeds reach deep: each is taken (answered, delivered, or used by a connection), except the
    datagrams to a closed port, answered and counted."""
    answers = []
    for packet in VALID:
        stack = netstack_world.build()
        before = stack.taken
        stack.receive_packets([packet], netstack_world.START)
        parsed = ip.parse(packet)
        if parsed.protocol == ip.UDP and parsed.payload[2:4] == b"\0\x09":
            assert stack.drops == {NetDrop.PORT_UNREACHABLE: 1}
        else:
            assert stack.taken == before + 1 and not stack.drops, (packet.hex(), stack.drops)
        answers.append(len(stack.packets_to_send()))
    # Echo replies, port unreachables, SYN,ACKs, the ACK for data beyond a gap: answered at once.
    assert answers == [1, 0, 1, 1] * 2 + [0, 1, 0, 1]


def test_the_corpus_seeds_pass():
    for data in netstack_world.seeds().values():
        netstack(data)
