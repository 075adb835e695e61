"""wgpy/netstack/dns.py: stub queries for A/AAAA (RFC 1035 4.1, RFC 3596); bad answers are named drops."""

import struct

import pytest
from hypothesis import given, settings, strategies as st

from wgpy.netstack.dns import (Answer, DnsDrop, QType, RCode, build_query, build_response, encode_name,
                               parse_response)


def test_a_query_round_trips_through_a_response():
    query = build_query("Files.Example.", QType.A, 0x1234)
    assert query[:2] == b"\x12\x34" and b"\x05files\x07example\x00" in query
    answer = parse_response(build_response(query, ["10.0.0.1", "fd00::1", "10.0.0.2"], ttl=30),
                            0x1234, "files.example", QType.A)
    assert answer == Answer(RCode.NOERROR, ("10.0.0.1", "10.0.0.2"), 30)
    six = build_query("files.example", QType.AAAA, 7)
    assert parse_response(build_response(six, ["10.0.0.1", "fd00::1"]), 7, "files.example", QType.AAAA).addresses == ("fd00::1",)


def test_nxdomain_is_an_answer_without_addresses():
    query = build_query("nowhere.example", QType.A, 1)
    assert parse_response(build_response(query, [], rcode=RCode.NXDOMAIN), 1, "nowhere.example", QType.A) == Answer(RCode.NXDOMAIN)


def test_a_cname_chain_is_followed():
    query = build_query("www.example", QType.A, 9)
    header = struct.pack("!HHHHHH", 9, 0x8180, 1, 2, 0, 0)
    question = query[12:]
    # www.example CNAME web.example (pointer to "example" at offset 16); web.example A 10.1.2.3
    cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, 6) + b"\x03web\xc0\x10"
    a = b"\xc0" + bytes([12 + len(question) + 12]) + struct.pack("!HHIH", 1, 1, 20, 4) + bytes([10, 1, 2, 3])
    assert parse_response(header + question + cname + a, 9, "www.example", QType.A) == Answer(0, ("10.1.2.3",), 20)


@pytest.mark.parametrize("mutate, drop", [
    (lambda r: r[:11], DnsDrop.TOO_SHORT),
    (lambda r: r[:2] + bytes([r[2] & 0x7F]) + r[3:], DnsDrop.NOT_A_RESPONSE),
    (lambda r: b"\x00\x02" + r[2:], DnsDrop.WRONG_ID),
    (lambda r: r[:2] + bytes([r[2] | 0x02]) + r[3:], DnsDrop.TRUNCATED),
    (lambda r: r.replace(b"\x01a", b"\x01b", 1), DnsDrop.WRONG_QUESTION),
    (lambda r: r[:-1], DnsDrop.TOO_SHORT),
    (lambda r: r[:-16] + b"\xc0\x30" + r[-14:], DnsDrop.POINTER_LOOP),
    (lambda r: r[:-16] + b"\x80\x00" + r[-14:], DnsDrop.BAD_NAME),
    (lambda r: r[:-6] + b"\x00\x03" + r[-4:-1], DnsDrop.BAD_RDATA),
])
def test_each_malformed_answer_is_a_named_drop(mutate, drop):
    query = build_query("a.example", QType.A, 1)
    response = build_response(query, ["10.0.0.1"])
    assert parse_response(response, 1, "a.example", QType.A).rcode == 0
    assert parse_response(mutate(response), 1, "a.example", QType.A) is drop


@pytest.mark.parametrize("name", ["", ".", "a..b", "x" * 64 + ".example", ".".join(["abcdefg"] * 40), "café.example"])
def test_a_name_that_cannot_be_asked_is_a_value_error(name):
    with pytest.raises(ValueError):
        encode_name(name)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([QType.A, QType.AAAA]))
def test_any_bytes_are_an_answer_or_a_drop_and_never_raise(data, qtype):
    assert isinstance(parse_response(data, int.from_bytes(data[:2] or b"\0", "big"), "a.example", qtype), (Answer, DnsDrop))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=12, max_size=120), st.integers(0, 119))
def test_a_response_with_garbage_spliced_in_never_raises(garbage, at):
    query = build_query("a.example", QType.A, 5)
    response = build_response(query, ["10.0.0.1", "10.0.0.2"])
    spliced = response[:at] + garbage + response[at + len(garbage) // 2:]
    assert isinstance(parse_response(spliced, 5, "a.example", QType.A), (Answer, DnsDrop))
