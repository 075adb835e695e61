"""wgpy/proxy/socks5.py: RFC 1928 and RFC 1929 parsing; every malformed message is a named refusal."""

import pytest
from hypothesis import given, settings, strategies as st

from wgpy.proxy.socks5 import (NEED_MORE, AddressType, Command, Credentials, Greeting, Method, Refusal, Reply,
                               Request, UdpDatagram, auth_status, choose_method, method_selection,
                               parse_credentials, parse_greeting, parse_request, parse_udp, reply, udp_header)


def test_greeting_and_method_selection():
    assert parse_greeting(b"\x05") == (NEED_MORE, 0)
    assert parse_greeting(b"\x05\x02\x00") == (NEED_MORE, 0)
    greeting, used = parse_greeting(b"\x05\x02\x00\x02rest")
    assert (greeting, used) == (Greeting((0, 2)), 4)
    assert choose_method(greeting, require_password=True) is Method.USERNAME_PASSWORD
    assert choose_method(Greeting((0,)), require_password=True) is Method.NO_ACCEPTABLE_METHODS
    assert choose_method(Greeting((2,)), require_password=False) is Method.NO_ACCEPTABLE_METHODS
    assert method_selection(Method.NO_ACCEPTABLE_METHODS) == b"\x05\xff"


def test_credentials_rfc1929():
    message = b"\x01\x04user\x06secret"
    for cut in range(len(message)):
        assert parse_credentials(message[:cut]) == (NEED_MORE, 0) or cut < 2
    credentials, used = parse_credentials(message)
    assert credentials == Credentials(b"user", b"secret") and used == len(message)
    assert "secret" not in repr(credentials)
    assert auth_status(True) == b"\x01\x00" and auth_status(False) == b"\x01\x01"


@pytest.mark.parametrize("raw, expected", [
    (b"\x05\x01\x00\x01\x0a\x00\x00\x02\x00\x50", Request(Command.CONNECT, AddressType.IPV4, "10.0.0.2", 80)),
    (b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x01\xbb", Request(Command.CONNECT, AddressType.IPV6, "::1", 443)),
    (b"\x05\x01\x00\x03\x0cFiles.Tunnel\x1f\x90", Request(Command.CONNECT, AddressType.DOMAINNAME, "files.tunnel", 8080)),
    (b"\x05\x03\x00\x01\x00\x00\x00\x00\x00\x00", Request(Command.UDP_ASSOCIATE, AddressType.IPV4, "0.0.0.0", 0)),
])
def test_requests(raw, expected):
    assert parse_request(raw) == (expected, len(raw))
    for cut in range(len(raw)):
        assert parse_request(raw[:cut]) == (NEED_MORE, 0)


@pytest.mark.parametrize("raw, refusal, code", [
    (b"\x04\x01\x00\x01\x0a\x00\x00\x02\x00\x50", Refusal.WRONG_VERSION, Reply.GENERAL_FAILURE),
    (b"\x05\x02\x00\x01\x0a\x00\x00\x02\x00\x50", Refusal.COMMAND_NOT_SUPPORTED, Reply.COMMAND_NOT_SUPPORTED),
    (b"\x05\x09\x00\x01\x0a\x00\x00\x02\x00\x50", Refusal.COMMAND_NOT_SUPPORTED, Reply.COMMAND_NOT_SUPPORTED),
    (b"\x05\x01\x01\x01\x0a\x00\x00\x02\x00\x50", Refusal.RESERVED_NOT_ZERO, Reply.GENERAL_FAILURE),
    (b"\x05\x01\x00\x02\x0a\x00\x00\x02\x00\x50", Refusal.ADDRESS_TYPE_NOT_SUPPORTED, Reply.ADDRESS_TYPE_NOT_SUPPORTED),
    (b"\x05\x01\x00\x03\x00\x00\x50", Refusal.BAD_DOMAIN, Reply.HOST_UNREACHABLE),
    (b"\x05\x01\x00\x03\x03a b\x00\x50", Refusal.BAD_DOMAIN, Reply.HOST_UNREACHABLE),
])
def test_each_malformed_request_is_a_named_refusal_with_its_reply_code(raw, refusal, code):
    assert parse_request(raw) == (refusal, 0)
    assert refusal.reply is code
    assert reply(refusal.reply) == bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("raw, refusal", [
    (b"\x04\x01\x00", Refusal.WRONG_VERSION), (b"\x05\x00", Refusal.NO_METHODS),
])
def test_malformed_greetings(raw, refusal):
    assert parse_greeting(raw) == (refusal, 0)


@pytest.mark.parametrize("raw, refusal", [
    (b"\x05\x04user\x01p", Refusal.AUTH_WRONG_VERSION), (b"\x01\x00\x01p", Refusal.AUTH_EMPTY_FIELD),
    (b"\x01\x04user\x00", Refusal.AUTH_EMPTY_FIELD),
])
def test_malformed_credentials(raw, refusal):
    assert parse_credentials(raw) == (refusal, 0)


def test_replies_carry_the_bound_address():
    assert reply(Reply.SUCCEEDED, "127.0.0.1", 1080) == b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
    assert reply(Reply.SUCCEEDED, "::1", 1) == b"\x05\x00\x00\x04" + bytes(15) + b"\x01\x00\x01"


def test_udp_header_round_trip():
    datagram = udp_header("10.0.0.2", 53) + b"query"
    assert parse_udp(datagram) == UdpDatagram(0, AddressType.IPV4, "10.0.0.2", 53, b"query")
    assert parse_udp(b"\x00\x00\x00\x03\x04name\x00\x35x") == UdpDatagram(0, AddressType.DOMAINNAME, "name", 53, b"x")
    assert parse_udp(b"\x00\x01\x00\x01" + bytes(6)) is Refusal.RESERVED_NOT_ZERO
    assert parse_udp(b"\x00\x00\x00\x01\x0a") is NEED_MORE


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_never_raise(data):
    for parse in (parse_greeting, parse_credentials, parse_request):
        message, used = parse(data)
        assert message is NEED_MORE or isinstance(message, Refusal) or 0 < used <= len(data)
    assert parse_udp(data) is NEED_MORE or isinstance(parse_udp(data), (Refusal, UdpDatagram))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 3]), st.sampled_from([1, 3, 4]), st.binary(min_size=0, max_size=40), st.integers(0, 65535))
def test_well_formed_requests_parse_whole(command, kind, address, port):
    body = {1: address[:4].ljust(4, b"\0"), 4: address[:16].ljust(16, b"\0"),
            3: bytes([len(address)]) + address}[kind]
    raw = bytes([5, command, 0, kind]) + body + port.to_bytes(2, "big")
    message, used = parse_request(raw + b"extra")
    if kind == 3 and (not address or not all(0x21 <= c < 0x7F for c in address)):
        assert message is Refusal.BAD_DOMAIN
    else:
        assert isinstance(message, Request) and used == len(raw) and message.port == port
