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
    stack.receive_packets(packets, 1000.0)
    assert stack.taken + sum(stack.drops.values()) == len(packets)
    assert all(isinstance(reason, NetDrop) for reason in stack.drops)
    for sent in stack.packets_to_send():
        assert isinstance(ip.parse(sent), ip.Packet)


def test_the_valid_packets_are_taken_and_answered():
    stack = netstack_world.build()
    for packet in VALID:
        stack.receive_packets([packet], 1000.0)
    # Echo requests (2) and datagrams to the socket (2) are taken; the closed port is answered and counted.
    assert stack.taken == 4 and stack.drops == {NetDrop.PORT_UNREACHABLE: 2}
    assert len(stack.packets_to_send()) == 4


def test_the_corpus_seeds_pass():
    for data in netstack_world.seeds().values():
        netstack(data)
