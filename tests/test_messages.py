"""Wire formats (messages.py): the vectors' layouts, and the parse/pack invariant proven by Hypothesis."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgpy.core import messages
from wgpy.core.constants import MessageType
from wgpy.core.errors import Drop, Rejected
from wgpy.core.messages import TRANSPORT_HEADER, CookieReply, Initiation, Response, Transport

from .vectors import cases, h

CLASSES = {1: Initiation, 2: Response, 3: CookieReply, 4: Transport}


@pytest.mark.parametrize("case", cases("message_framing"))
def test_framing_vectors(case):
    data, fields = h(case["message"]), case["fields"]
    kind = fields.pop("message_type")
    assert messages.message_type(data) == kind
    if kind == MessageType.TRANSPORT:
        # A 7-byte payload cannot hold the 16-byte tag: check the header, and that WireGuard refuses it.
        _, receiver_index, counter = TRANSPORT_HEADER.unpack_from(data)
        assert (receiver_index, counter) == (fields["receiver_index"], fields["counter"])
        assert data[16:] == h(fields["encrypted_encapsulated_packet"])
        with pytest.raises(Rejected) as err:
            messages.parse(data)
        assert err.value.reason is Drop.TOO_SHORT
        return
    message = messages.parse(data)
    assert type(message) is CLASSES[kind]
    for name, expected in fields.items():
        value = getattr(message, name)
        assert (value.hex() if isinstance(value, bytes) else value) == expected, name
    assert message.pack() == data


def test_sizes():
    assert (messages.INITIATION.size, messages.RESPONSE.size, messages.COOKIE_REPLY.size) == (148, 92, 64)
    assert len(Transport(1, 2, bytes(16)).pack()) == 32


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", Drop.EMPTY),
        (b"\x05" + bytes(147), Drop.UNKNOWN_TYPE),
        (b"\x00" + bytes(147), Drop.UNKNOWN_TYPE),
        (b"\x01\x00\x01\x00" + bytes(144), Drop.RESERVED_NONZERO),
        (b"\x01" + bytes(146), Drop.WRONG_SIZE),
        (b"\x01" + bytes(148), Drop.WRONG_SIZE),
        (b"\x02" + bytes(90), Drop.WRONG_SIZE),
        (b"\x03" + bytes(64), Drop.WRONG_SIZE),
        (b"\x04" + bytes(30), Drop.TOO_SHORT),
        (b"\x04", Drop.TOO_SHORT),
    ],
)
def test_named_reasons(data, reason):
    with pytest.raises(Rejected) as err:
        messages.parse(data)
    assert err.value.reason is reason


def test_parsing_as_the_wrong_type_is_named():
    with pytest.raises(Rejected) as err:
        Initiation.parse(Transport(1, 2, bytes(16)).pack())
    assert err.value.reason is Drop.UNEXPECTED_TYPE


def test_caller_mistakes_are_value_errors():
    with pytest.raises(ValueError):
        Initiation(1, bytes(31), bytes(48), bytes(28))
    with pytest.raises(ValueError):
        Response(2**32, 0, bytes(32), bytes(16))
    with pytest.raises(ValueError):
        Transport(0, 2**64, bytes(16))


# Datagrams that look like WireGuard: a valid type word followed by bytes of a plausible length.
near_valid = st.builds(
    lambda kind, body: bytes([kind, 0, 0, 0]) + body,
    st.sampled_from([1, 2, 3, 4]),
    st.one_of(st.binary(min_size=144, max_size=144), st.binary(min_size=88, max_size=88),
              st.binary(min_size=60, max_size=60), st.binary(min_size=0, max_size=200)),
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.binary(max_size=300), near_valid))
def test_any_bytes_parse_and_pack_back_or_raise_one_named_error(data):
    try:
        message = messages.parse(data)
    except Rejected as err:
        assert isinstance(err.reason, Drop)
    else:
        assert message.pack() == data
        assert type(message).parse(data) == message
