"""tcp/segment.py: the TCP header and options (RFC 9293 3.1, RFC 7323, RFC 2018), checked against a dumb
checksum written out word by word."""

import struct

from hypothesis import given, settings, strategies as st

from wgpy.netstack.errors import NetDrop
from wgpy.netstack.tcp.segment import ACK, FIN, PSH, RST, SYN, URG, Segment, parse

A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A6, B6 = bytes.fromhex("fd000000000000000000000000000001"), bytes.fromhex("fd000000000000000000000000000002")


def dumb_checksum(source: bytes, destination: bytes, segment: bytes) -> int:
    """RFC 1071 the slow way: 16-bit words, end-around carry, one at a time."""
    if len(source) == 4:
        pseudo = source + destination + bytes([0, 6]) + struct.pack("!H", len(segment))
    else:
        pseudo = source + destination + struct.pack("!I", len(segment)) + bytes([0, 0, 0, 6])
    data = pseudo + segment + (b"\0" if len(segment) % 2 else b"")
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_checksum(wire: bytes, value: int) -> bytes:
    return wire[:16] + struct.pack("!H", value) + wire[18:]


def hand_built(options: bytes, offset_words: int | None = None, payload: bytes = b"") -> bytes:
    """A segment with ``options`` as given, checksum computed by the dumb function."""
    words = offset_words if offset_words is not None else 5 + len(options) // 4
    wire = struct.pack("!HHIIBBHHH", 1, 2, 3, 4, words << 4, ACK, 1000, 0, 0) + options + payload
    return with_checksum(wire, dumb_checksum(A4, B4, wire))


def test_a_syn_with_every_option_round_trips_in_both_families():
    syn = Segment(40001, 80, 0xFFFFFFFF, 0, SYN, 64240, mss=1380, window_scale=7, sack_permitted=True,
                  timestamps=(123456, 0))
    for source, destination in ((A4, B4), (A6, B6)):
        wire = syn.pack(source, destination)
        # MSS 4, NOP + window scale 4, NOP NOP + SACK-permitted 4, NOP NOP + timestamps 12
        assert len(wire) == 20 + 24 and wire[12] >> 4 == 11
        assert struct.unpack_from("!H", wire, 16)[0] == dumb_checksum(source, destination, with_checksum(wire, 0))
        assert parse(wire, source, destination) == syn
        assert parse(memoryview(wire), source, destination) == syn
        assert syn.length == 1


def test_data_with_sack_blocks_and_odd_length_payload():
    segment = Segment(80, 40001, 1000, 2000, ACK | PSH | FIN, 512, b"x" * 1001,
                      sack_blocks=((5000, 6000), (7000, 8000)))
    for source, destination in ((A4, B4), (A6, B6)):
        wire = segment.pack(source, destination)
        assert struct.unpack_from("!H", wire, 16)[0] == dumb_checksum(source, destination, with_checksum(wire, 0))
        parsed = parse(wire, source, destination)
        assert parsed == segment and bytes(parsed.payload) == b"x" * 1001
        assert parsed.length == 1002


def test_pure_ack_has_no_options_and_a_known_checksum():
    # Written out by hand: ports 1 and 2, seq 3, ack 4, offset 5, ACK, window 1000, no options.
    segment = Segment(1, 2, 3, 4, ACK, 1000)
    wire = segment.pack(A4, B4)
    assert wire == hand_built(b"")
    assert parse(wire, A4, B4) == segment


def test_any_flipped_bit_or_wrong_address_fails_the_checksum():
    wire = Segment(1, 2, 3, 4, ACK, 1000, b"payload").pack(A4, B4)
    for i in range(len(wire)):
        for bit in (0x01, 0x80):
            broken = bytearray(wire)
            broken[i] ^= bit
            assert parse(bytes(broken), A4, B4) is NetDrop.BAD_TCP
    assert parse(wire, A4, bytes([10, 0, 0, 3])) is NetDrop.BAD_TCP
    assert parse(wire, A4, B4) is not NetDrop.BAD_TCP


def test_short_segment_and_bad_data_offsets():
    assert parse(b"\0" * 19, A4, B4) is NetDrop.BAD_TCP
    assert parse(hand_built(b"", offset_words=4), A4, B4) is NetDrop.BAD_TCP  # below the 20-byte header
    assert parse(hand_built(b"", offset_words=6), A4, B4) is NetDrop.BAD_TCP  # beyond the segment
    assert parse(hand_built(b"\1\1\1\1", offset_words=6), A4, B4).payload == b""


def test_malformed_options_are_named():
    for options in (
        b"\x01" * 6 + b"\x02\x04",   # MSS cut short by the end of the header
        b"\x02\x03\x05\x00",         # MSS of length 3
        b"\x03\x02\x00\x00",         # window scale of length 2
        b"\x04\x03\x00\x00",         # SACK-permitted of length 3
        b"\x05\x02\x00\x00",         # SACK with no block
        b"\x05\x06" + b"\0" * 6,     # SACK with half a block
        b"\x08\x08" + b"\0" * 6,     # timestamps of length 8
        b"\x1e\x01\x00\x00",         # unknown kind of length 1
        b"\x1e\x09\x00\x00",         # unknown kind running past the header
        b"\x01\x01\x01\x02",         # a kind with no length byte at the end
    ):
        padded = options + b"\0" * (-len(options) % 4)
        assert parse(hand_built(padded), A4, B4) is NetDrop.BAD_TCP_OPTIONS, options


def test_unknown_options_are_skipped_end_of_list_stops_and_large_shifts_are_clamped():
    parsed = parse(hand_built(b"\x1e\x04\xab\xcd" + b"\x03\x03\x0f\x01" + b"\x00\x02\x04\x00"), A4, B4)
    assert parsed.window_scale == 14  # RFC 7323 2.3
    assert parsed.mss is None  # after the end of the option list
    parsed = parse(hand_built(b"\x08\x0a" + struct.pack("!II", 7, 9) + b"\x01\x00"), A4, B4)
    assert parsed.timestamps == (7, 9)


def test_urgent_pointer_is_kept_only_with_urg():
    wire = Segment(1, 2, 3, 4, ACK | URG, 1000, b"ab", urgent=1).pack(A4, B4)
    assert parse(wire, A4, B4).urgent == 1
    assert Segment(1, 2, 3, 4, RST, 0).length == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_any_bytes_parse_to_a_segment_or_a_named_drop(data, fix_checksum):
    if fix_checksum and len(data) >= 20:
        data = with_checksum(data, dumb_checksum(A4, B4, with_checksum(data, 0)))
    result = parse(data, A4, B4)
    assert isinstance(result, (Segment, NetDrop))
    if isinstance(result, Segment):
        assert result.pack(A4, B4)[20:].endswith(bytes(result.payload))


def test_verify_false_skips_only_the_checksum():
    wire = bytearray(Segment(1, 2, 3, 4, ACK, 1000, b"payload").pack(A4, B4))
    wire[16] ^= 0xFF
    assert parse(bytes(wire), A4, B4) is NetDrop.BAD_TCP
    assert parse(bytes(wire), A4, B4, verify=False).payload == b"payload"
    assert parse(hand_built(b"", offset_words=4), A4, B4, verify=False) is NetDrop.BAD_TCP
    assert parse(hand_built(b"\x02\x03\x05\x00"), A4, B4, verify=False) is NetDrop.BAD_TCP_OPTIONS
