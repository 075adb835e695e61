"""wgpy/proxy/http_connect.py: the proxy's request head (RFC 9110 9.3.6, RFC 9112 3.2); every malformed
head is a named refusal with its status code."""

import pytest
from hypothesis import given, settings, strategies as st

from wgpy.proxy.http_connect import (MAX_HEAD, NEED_MORE, HttpRefusal, ProxyRequest, forwarded_head, parse_head,
                                     response)


@pytest.mark.parametrize("target, host, port", [
    ("files.tunnel:443", "files.tunnel", 443), ("10.0.0.2:80", "10.0.0.2", 80),
    ("[fd00::0002]:8080", "fd00::2", 8080), ("Example.COM:1", "example.com", 1),
])
def test_connect_targets(target, host, port):
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: curl\r\n\r\n".encode()
    request, used = parse_head(head + b"tls bytes")
    assert isinstance(request, ProxyRequest) and request.is_connect
    assert (request.host, request.port, used) == (host, port, len(head))


def test_need_more_until_the_blank_line():
    head = b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n"
    for cut in range(len(head)):
        assert parse_head(head[:cut]) == (NEED_MORE, 0)


@pytest.mark.parametrize("head, refusal", [
    (b"CONNECT a:1\r\n\r\n", HttpRefusal.BAD_REQUEST_LINE),
    (b"CONNECT  a:1 HTTP/1.1\r\n\r\n", HttpRefusal.BAD_REQUEST_LINE),
    (b"CONNECT a:1 HTTP/2.0\r\n\r\n", HttpRefusal.BAD_VERSION),
    (b"CONNECT a:1 HTTP/1.1\r\nHost : a\r\n\r\n", HttpRefusal.BAD_FIELD),
    (b"CONNECT a:1 HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", HttpRefusal.BAD_FIELD),
    (b"CONNECT a:1 HTTP/1.1\r\nX: a\x00b\r\n\r\n", HttpRefusal.BAD_FIELD),
    (b"CONNECT a HTTP/1.1\r\n\r\n", HttpRefusal.BAD_AUTHORITY),
    (b"CONNECT a:0 HTTP/1.1\r\n\r\n", HttpRefusal.BAD_AUTHORITY),
    (b"CONNECT a:70000 HTTP/1.1\r\n\r\n", HttpRefusal.BAD_AUTHORITY),
    (b"CONNECT [::1:80 HTTP/1.1\r\n\r\n", HttpRefusal.BAD_AUTHORITY),
    (b"CONNECT ::1:80 HTTP/1.1\r\n\r\n", HttpRefusal.BAD_AUTHORITY),
    (b"CONNECT a@b:80 HTTP/1.1\r\n\r\n", HttpRefusal.BAD_AUTHORITY),
    (b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n", HttpRefusal.BAD_ABSOLUTE_URI),
    (b"GET https://a/ HTTP/1.1\r\n\r\n", HttpRefusal.BAD_ABSOLUTE_URI),
    (b"GET http://u@a/ HTTP/1.1\r\n\r\n", HttpRefusal.BAD_ABSOLUTE_URI),
    (b"OPTIONS * HTTP/1.1\r\n\r\n", HttpRefusal.METHOD_NOT_ALLOWED),
    (b"CONNECT a:1 HTTP/1.1\r\n" + b"X: y\r\n" * 101 + b"\r\n", HttpRefusal.TOO_MANY_FIELDS),
    (b"CONNECT a:1 HTTP/1.1\r\nX: " + b"y" * MAX_HEAD + b"\r\n\r\n", HttpRefusal.HEAD_TOO_LARGE),
    (b"CONNECT a:1 HTTP/1.1\r\nX: " + b"y" * MAX_HEAD, HttpRefusal.HEAD_TOO_LARGE),
    (b"POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", HttpRefusal.TRANSFER_CODING),
    (b"POST http://a/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HttpRefusal.BAD_CONTENT_LENGTH),
    (b"POST http://a/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HttpRefusal.BAD_CONTENT_LENGTH),
    (b"POST http://a/ HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", HttpRefusal.BAD_CONTENT_LENGTH),
])
def test_each_malformed_head_is_a_named_refusal(head, refusal):
    assert parse_head(head) == (refusal, 0)
    assert response(refusal.status, refusal.sentence).startswith(f"HTTP/1.1 {refusal.status} ".encode())


def test_absolute_form_is_forwarded_in_origin_form_without_hop_by_hop_fields():
    head = (b"GET http://files.tunnel:8000/a/b?c=d#frag HTTP/1.1\r\nHost: files.tunnel:8000\r\n"
            b"Proxy-Connection: keep-alive\r\nConnection: X-Drop\r\nX-Drop: 1\r\nAccept: */*\r\n\r\n")
    request, used = parse_head(head)
    assert (request.method, request.host, request.port, request.path) == ("GET", "files.tunnel", 8000, "/a/b?c=d")
    assert forwarded_head(request) == (b"GET /a/b?c=d HTTP/1.1\r\nHost: files.tunnel:8000\r\nAccept: */*\r\n"
                                       b"Via: 1.1 wgpy\r\nConnection: close\r\n\r\n")
    bare, _ = parse_head(b"GET http://[fd00::2] HTTP/1.0\r\n\r\n")
    assert (bare.host, bare.port, bare.path) == ("fd00::2", 80, "/")
    assert b"Host: [fd00::2]\r\n" in forwarded_head(bare)


def test_responses():
    assert response(200) == b"HTTP/1.1 200 Connection established\r\n\r\n"
    bad_gateway = response(502, "connection refused by 10.0.0.2:80")
    assert bad_gateway.endswith(b"\r\n\r\nconnection refused by 10.0.0.2:80\n") and b"Content-Length: 34\r\n" in bad_gateway


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_never_raise(data):
    for candidate in (data, b"CONNECT " + data + b"\r\n\r\n", b"GET http://" + data + b" HTTP/1.1\r\n\r\n"):
        message, used = parse_head(candidate)
        assert message is NEED_MORE or isinstance(message, HttpRefusal) or (isinstance(message, ProxyRequest) and used > 0)
        if isinstance(message, ProxyRequest) and not message.is_connect:
            forwarded_head(message)


def test_a_forwarded_body_is_framed_by_content_length():
    request, _ = parse_head(b"POST http://a/x HTTP/1.1\r\nContent-Length: 12\r\ncontent-length: 12\r\n\r\n")
    assert request.body_length == 12
    assert parse_head(b"GET http://a/ HTTP/1.1\r\n\r\n")[0].body_length == 0
