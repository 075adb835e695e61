"""SOCKS version 5, sans-IO: RFC 1928 (method negotiation, requests, replies, the UDP header) and RFC 1929
(username/password).

Each ``parse_*`` takes the bytes received so far and returns ``(message, consumed)``; ``(NEED_MORE, 0)``
while the message is incomplete; or ``(refusal, 0)``, a :class:`Refusal` whose ``reply`` is the code to
send back (RFC 1928 6). Nothing here raises on what a client sends; the asyncio server
(``wgpy/runtime/proxy.py``) moves the bytes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from enum import Enum, IntEnum

VERSION = 5
AUTH_VERSION = 1                     # RFC 1929 2: the subnegotiation's own version
PORT = struct.Struct("!H")
MAX_REQUEST = 4 + 1 + 255 + 2        # the longest request: a 255-octet domain name
MAX_GREETING = 2 + 255
MAX_AUTH = 3 + 255 + 255


class Method(IntEnum):
    """RFC 1928 3: authentication methods."""

    NO_AUTHENTICATION = 0x00
    GSSAPI = 0x01
    USERNAME_PASSWORD = 0x02
    NO_ACCEPTABLE_METHODS = 0xFF


class Command(IntEnum):
    """RFC 1928 4."""

    CONNECT = 0x01
    BIND = 0x02
    UDP_ASSOCIATE = 0x03


class AddressType(IntEnum):
    """RFC 1928 5."""

    IPV4 = 0x01
    DOMAINNAME = 0x03
    IPV6 = 0x04


class Reply(IntEnum):
    """RFC 1928 6: the REP field."""

    SUCCEEDED = 0x00
    GENERAL_FAILURE = 0x01
    NOT_ALLOWED = 0x02
    NETWORK_UNREACHABLE = 0x03
    HOST_UNREACHABLE = 0x04
    CONNECTION_REFUSED = 0x05
    TTL_EXPIRED = 0x06
    COMMAND_NOT_SUPPORTED = 0x07
    ADDRESS_TYPE_NOT_SUPPORTED = 0x08


class Refusal(Enum):
    """Why a client's message is refused: (sentence, the reply code sent back, or None where the
    exchange has no reply code and the answer is "no acceptable method" or an auth failure)."""

    WRONG_VERSION = ("the version octet is not 5", Reply.GENERAL_FAILURE)
    NO_METHODS = ("the greeting offers no method", None)
    NO_ACCEPTABLE_METHOD = ("none of the offered methods is the one required", None)
    AUTH_WRONG_VERSION = ("the username/password version octet is not 1 (RFC 1929 2)", None)
    AUTH_EMPTY_FIELD = ("the username or password is empty (RFC 1929 2: 1 to 255 octets)", None)
    AUTH_FAILED = ("the username or password is wrong", None)
    RESERVED_NOT_ZERO = ("the reserved octet is not zero", Reply.GENERAL_FAILURE)
    COMMAND_NOT_SUPPORTED = ("the command is BIND or unknown", Reply.COMMAND_NOT_SUPPORTED)
    ADDRESS_TYPE_NOT_SUPPORTED = ("the address type is not IPv4, a domain name or IPv6", Reply.ADDRESS_TYPE_NOT_SUPPORTED)
    BAD_DOMAIN = ("the domain name is empty or not a printable ASCII host name", Reply.HOST_UNREACHABLE)

    def __init__(self, sentence: str, reply: Reply | None) -> None:
        self.sentence = sentence
        self.reply = reply


class _NeedMore:
    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE = _NeedMore()


@dataclass(frozen=True)
class Greeting:
    """RFC 1928 3: the methods the client offers."""

    methods: tuple[int, ...]


@dataclass(frozen=True)
class Credentials:
    """RFC 1929 2."""

    username: bytes
    password: bytes = field(repr=False)


@dataclass(frozen=True)
class Request:
    """RFC 1928 4. ``host`` is canonical address text, or the domain name as sent (lowered) when
    ``address_type`` is DOMAINNAME."""

    command: Command
    address_type: AddressType
    host: str
    port: int


@dataclass(frozen=True)
class UdpDatagram:
    """RFC 1928 7: a datagram relayed for a UDP association."""

    fragment: int
    address_type: AddressType
    host: str
    port: int
    data: bytes


def parse_greeting(data: bytes) -> tuple[Greeting | Refusal | _NeedMore, int]:
    if len(data) < 2:
        return NEED_MORE, 0
    if data[0] != VERSION:
        return Refusal.WRONG_VERSION, 0
    count = data[1]
    if count == 0:
        return Refusal.NO_METHODS, 0
    if len(data) < 2 + count:
        return NEED_MORE, 0
    return Greeting(tuple(data[2:2 + count])), 2 + count


def choose_method(greeting: Greeting, require_password: bool) -> Method:
    """The one method we accept (RFC 1928 3): username/password when credentials are configured, none
    otherwise; NO_ACCEPTABLE_METHODS when the client did not offer it."""
    wanted = Method.USERNAME_PASSWORD if require_password else Method.NO_AUTHENTICATION
    return wanted if wanted in greeting.methods else Method.NO_ACCEPTABLE_METHODS


def method_selection(method: Method) -> bytes:
    return bytes([VERSION, method])


def parse_credentials(data: bytes) -> tuple[Credentials | Refusal | _NeedMore, int]:
    """RFC 1929 2: VER ULEN UNAME PLEN PASSWD."""
    if len(data) < 2:
        return NEED_MORE, 0
    if data[0] != AUTH_VERSION:
        return Refusal.AUTH_WRONG_VERSION, 0
    user_length = data[1]
    if user_length == 0:
        return Refusal.AUTH_EMPTY_FIELD, 0
    if len(data) < 3 + user_length:
        return NEED_MORE, 0
    password_length = data[2 + user_length]
    if password_length == 0:
        return Refusal.AUTH_EMPTY_FIELD, 0
    end = 3 + user_length + password_length
    if len(data) < end:
        return NEED_MORE, 0
    return Credentials(bytes(data[2:2 + user_length]), bytes(data[3 + user_length:end])), end


def auth_status(success: bool) -> bytes:
    """RFC 1929 2: a STATUS of 0 is success; anything else is failure and the server closes."""
    return bytes([AUTH_VERSION, 0 if success else 1])


def _parse_address(data: bytes, offset: int) -> tuple[AddressType, str, int, int] | Refusal | _NeedMore:
    """ATYP, the address and the port at offset: (type, host, port, end)."""
    if len(data) < offset + 1:
        return NEED_MORE
    kind = data[offset]
    if kind == AddressType.IPV4:
        end = offset + 1 + 4
    elif kind == AddressType.IPV6:
        end = offset + 1 + 16
    elif kind == AddressType.DOMAINNAME:
        if len(data) < offset + 2:
            return NEED_MORE
        end = offset + 2 + data[offset + 1]
    else:
        return Refusal.ADDRESS_TYPE_NOT_SUPPORTED
    if len(data) < end + 2:
        return NEED_MORE
    (port,) = PORT.unpack_from(data, end)
    if kind == AddressType.DOMAINNAME:
        name = bytes(data[offset + 2:end])
        if not name or not all(0x21 <= c < 0x7F for c in name):
            return Refusal.BAD_DOMAIN
        host = name.decode("ascii").lower()
    else:
        host = str(ipaddress.ip_address(bytes(data[offset + 1:end])))
    return AddressType(kind), host, port, end + 2


def parse_request(data: bytes) -> tuple[Request | Refusal | _NeedMore, int]:
    """RFC 1928 4: VER CMD RSV ATYP DST.ADDR DST.PORT."""
    if len(data) < 3:
        return NEED_MORE, 0
    if data[0] != VERSION:
        return Refusal.WRONG_VERSION, 0
    if data[1] not in (Command.CONNECT, Command.UDP_ASSOCIATE):
        return Refusal.COMMAND_NOT_SUPPORTED, 0
    if data[2] != 0:
        return Refusal.RESERVED_NOT_ZERO, 0
    address = _parse_address(data, 3)
    if not isinstance(address, tuple):
        return address, 0
    kind, host, port, end = address
    return Request(Command(data[1]), kind, host, port), end


def _pack_address(host: str, port: int) -> bytes:
    try:
        packed = ipaddress.ip_address(host.partition("%")[0]).packed
    except ValueError:
        name = host.encode("ascii")
        return bytes([AddressType.DOMAINNAME, len(name)]) + name + PORT.pack(port)
    return bytes([AddressType.IPV4 if len(packed) == 4 else AddressType.IPV6]) + packed + PORT.pack(port)


def reply(code: Reply, host: str = "0.0.0.0", port: int = 0) -> bytes:
    """RFC 1928 6: VER REP RSV ATYP BND.ADDR BND.PORT. A failure carries an all-zero IPv4 address."""
    return bytes([VERSION, code, 0]) + _pack_address(host, port)


def parse_udp(data: bytes) -> UdpDatagram | Refusal | _NeedMore:
    """RFC 1928 7: RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA. A datagram arrives whole, so NEED_MORE here
    means it is truncated."""
    if len(data) < 4:
        return NEED_MORE
    if data[0] or data[1]:
        return Refusal.RESERVED_NOT_ZERO
    address = _parse_address(data, 3)
    if not isinstance(address, tuple):
        return address
    kind, host, port, end = address
    return UdpDatagram(data[2], kind, host, port, bytes(data[end:]))


def udp_header(host: str, port: int) -> bytes:
    """The header of a datagram relayed back to the client: the source it came from (RFC 1928 7)."""
    return b"\0\0\0" + _pack_address(host, port)
