"""An HTTP proxy's request head, sans-IO: CONNECT (RFC 9110 9.3.6, authority-form of RFC 9112 3.2.3) and
plain requests in absolute-form (RFC 9112 3.2.2), forwarded to the origin in origin-form.

``parse_head(data)`` takes the bytes received so far: ``(NEED_MORE, 0)`` until the blank line that ends the
head (RFC 9112 2.1), then ``(ProxyRequest, consumed)`` or ``(HttpRefusal, 0)``, whose ``status`` is the
response to send. Nothing here raises on what a client sends.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import Enum

MAX_HEAD = 16384                     # bytes of request line and fields; more is refused
MAX_FIELDS = 100
# RFC 9110 5.6.2: a token; 5.5: a field value is visible characters, spaces and tabs (obs-text allowed).
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
HOST = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=%-]+")     # RFC 3986 3.2.2 reg-name
HOP_BY_HOP = {b"connection", b"proxy-connection", b"keep-alive", b"proxy-authorization", b"proxy-authenticate",
              b"te", b"trailer", b"upgrade"}       # RFC 9110 7.6.1 (Transfer-Encoding is kept: it frames the body)


class HttpRefusal(Enum):
    """Why a request head is refused: (sentence, status code)."""

    HEAD_TOO_LARGE = ("the request head is larger than 16 KiB", 431)
    BAD_REQUEST_LINE = ("the request line is not METHOD SP target SP HTTP/1.x", 400)
    BAD_VERSION = ("the HTTP version is not 1.0 or 1.1", 505)
    BAD_FIELD = ("a header field is malformed (RFC 9112 5.1: no space before the colon, no line folding)", 400)
    TOO_MANY_FIELDS = ("the request has more than 100 header fields", 431)
    BAD_AUTHORITY = ("the CONNECT target is not host:port (RFC 9112 3.2.3)", 400)
    BAD_ABSOLUTE_URI = ("the target is not an absolute http:// URI (RFC 9112 3.2.2)", 400)
    METHOD_NOT_ALLOWED = ("only CONNECT and absolute-form http:// requests are proxied", 405)
    BAD_CONTENT_LENGTH = ("Content-Length is not one decimal number (RFC 9112 6.3)", 400)
    TRANSFER_CODING = ("request bodies with a Transfer-Encoding are not forwarded: send Content-Length", 501)

    def __init__(self, sentence: str, status: int) -> None:
        self.sentence = sentence
        self.status = status


class _NeedMore:
    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE = _NeedMore()

REASONS = {200: "Connection established", 400: "Bad Request", 405: "Method Not Allowed",
           408: "Request Timeout", 407: "Proxy Authentication Required", 431: "Request Header Fields Too Large", 502: "Bad Gateway",
           501: "Not Implemented", 503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported"}


@dataclass(frozen=True)
class ProxyRequest:
    """A request to proxy: ``host`` is canonical address text or a host name (lowered), ``path`` the
    origin-form target for a forwarded request (empty for CONNECT), ``fields`` as received."""

    method: str
    host: str
    port: int
    path: str
    version: str
    fields: tuple[tuple[bytes, bytes], ...]
    body_length: int = 0      # bytes of request body after the head (Content-Length), forwarded requests only

    @property
    def is_connect(self) -> bool:
        return self.method == "CONNECT"


def _authority(text: str, default_port: int | None) -> tuple[str, int] | None:
    """host:port, with an IPv6 literal in brackets (RFC 3986 3.2.2); the port may be left out only where
    a default is given."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            return None
        host, rest = text[1:close], text[close + 1:]
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            host, port_text = text, None
        if not host or not HOST.fullmatch(host) or ":" in host:
            return None
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            host = host.lower()
    if port_text is None or port_text == "":
        if default_port is None:
            return None
        return host, default_port
    if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5 or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)


def parse_head(data: bytes) -> tuple[ProxyRequest | HttpRefusal | _NeedMore, int]:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return (HttpRefusal.HEAD_TOO_LARGE if len(data) > MAX_HEAD else NEED_MORE), 0
    if end + 4 > MAX_HEAD:
        return HttpRefusal.HEAD_TOO_LARGE, 0
    lines = data[:end].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not TOKEN.fullmatch(parts[0]) or not parts[1]:
        return HttpRefusal.BAD_REQUEST_LINE, 0
    method, target, version = parts
    if not re.fullmatch(rb"HTTP/\d\.\d", version):
        return HttpRefusal.BAD_REQUEST_LINE, 0
    if version not in (b"HTTP/1.0", b"HTTP/1.1"):
        return HttpRefusal.BAD_VERSION, 0
    if len(lines) - 1 > MAX_FIELDS:
        return HttpRefusal.TOO_MANY_FIELDS, 0
    fields = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        # RFC 9112 5.1: no whitespace between name and colon; 5.2: obs-fold is refused with 400.
        if not colon or not TOKEN.fullmatch(name) or not FIELD_VALUE.fullmatch(value):
            return HttpRefusal.BAD_FIELD, 0
        fields.append((name, value.strip(b" \t")))
    try:
        text_target = target.decode("ascii")
    except UnicodeDecodeError:
        return HttpRefusal.BAD_REQUEST_LINE, 0
    if not text_target.isprintable() or not text_target.isascii():
        return HttpRefusal.BAD_REQUEST_LINE, 0
    text_method = method.decode("ascii")
    if text_method == "CONNECT":
        authority = _authority(text_target, None)
        if authority is None:
            return HttpRefusal.BAD_AUTHORITY, 0
        return ProxyRequest("CONNECT", *authority, "", version.decode(), tuple(fields)), end + 4
    if not text_target.lower().startswith("http://"):
        return (HttpRefusal.BAD_ABSOLUTE_URI if "://" in text_target or text_target.startswith("/")
                else HttpRefusal.METHOD_NOT_ALLOWED), 0
    rest = text_target[len("http://"):]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority_text, path = rest[:cut], rest[cut:]
    if "@" in authority_text:        # RFC 9110 4.2.4: userinfo is deprecated in http URIs; refuse it
        return HttpRefusal.BAD_ABSOLUTE_URI, 0
    authority = _authority(authority_text, 80)
    if authority is None:
        return HttpRefusal.BAD_ABSOLUTE_URI, 0
    path = path.partition("#")[0]
    if not path.startswith("/"):
        path = "/" + path
    length = _body_length(fields)
    if isinstance(length, HttpRefusal):
        return length, 0
    return ProxyRequest(text_method, *authority, path, version.decode(), tuple(fields), length), end + 4


def _body_length(fields: list[tuple[bytes, bytes]]) -> int | HttpRefusal:
    """RFC 9112 6.3: the body's framing. A forwarded request is relayed alone, so its body must be
    delimited: by Content-Length (identical values repeated are one, 6.3 item 5), or absent."""
    if any(name.lower() == b"transfer-encoding" for name, _ in fields):
        return HttpRefusal.TRANSFER_CODING
    values = {token.strip() for name, value in fields if name.lower() == b"content-length" for token in value.split(b",")}
    if not values:
        return 0
    if len(values) != 1:
        return HttpRefusal.BAD_CONTENT_LENGTH
    value = values.pop()
    if not value.isdigit() or len(value) > 18:
        return HttpRefusal.BAD_CONTENT_LENGTH
    return int(value)


def forwarded_head(request: ProxyRequest) -> bytes:
    """The request to send to the origin: origin-form target (RFC 9112 3.2.1), the proxy's hop-by-hop
    fields removed (RFC 9110 7.6.1, with those the Connection field names), ``Via``, and ``Connection: close``,
    since the proxy relays one request per connection."""
    named = {token.strip().lower() for name, value in request.fields if name.lower() == b"connection"
             for token in value.split(b",")}
    lines = [f"{request.method} {request.path} {request.version}".encode()]
    lines += [name + b": " + value for name, value in request.fields
              if name.lower() not in HOP_BY_HOP and name.lower() not in named]
    if not any(name.lower() == b"host" for name, _ in request.fields):
        lines.append(b"Host: " + _host_field(request.host, request.port).encode())
    # RFC 9110 7.6.3: a proxy adds itself to Via (appended after any the request carries).
    lines.append(f"Via: {request.version.removeprefix('HTTP/')} wgpy".encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _host_field(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == 80 else f"{shown}:{port}"


def response(status: int, detail: str = "") -> bytes:
    """A short response from the proxy itself; errors carry a one-line text body saying why."""
    head = f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
    if status == 200:
        return head.encode() + b"\r\n"
    body = (detail or REASONS.get(status, "Error")).encode("utf-8", "replace") + b"\n"
    extra = 'Proxy-Authenticate: Basic realm="wgpy"\r\n' if status == 407 else ""
    return (head + extra + f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body
