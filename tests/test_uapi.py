"""The UAPI's get and set operations (wgpy/uapi/) against wireguard-go's device/uapi.go behaviour; the
stream framing and slicing are in test_uapi_connection.py.

    wg show / set / setconf ...  --bytes-->  UapiConnection.feed(data, now)  --calls-->  Device
                                 <--bytes--  (answers)
"""

import errno
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgpy.core.constants import MessageType
from wgpy.core.crypto import PrivateKey, clamp
from wgpy.core.device import Device
from wgpy.uapi import MAX_LINE_SIZE, MAX_PEERS, UapiConnection, UapiError, format_endpoint

from .conftest import seeded_rng

EINVAL, EPROTO, EADDRINUSE, EIO = -errno.EINVAL, -errno.EPROTO, -errno.EADDRINUSE, -errno.EIO
OK = b"errno=0\n\n"

OWN = PrivateKey(clamp(bytes(range(32))))
A = PrivateKey(clamp(bytes(range(1, 33)))).public
B = PrivateKey(clamp(bytes(range(2, 34)))).public
C = PrivateKey(clamp(bytes(range(3, 35)))).public
PSK = bytes([0x11] * 32)


def interfaces(name: str) -> int:
    """A stand-in for socket.if_nametoindex."""
    if name != "eth0":
        raise OSError(errno.ENODEV, "No such device")
    return 2


def answer(code: int) -> bytes:
    return b"errno=%d\n\n" % code


def new_device(private_key: PrivateKey | None = OWN) -> Device:
    return Device(private_key, rng=seeded_rng(7), epoch_offset=1.7e9)


def set_op(*lines: str) -> bytes:
    return ("set=1\n" + "".join(line + "\n" for line in lines) + "\n").encode()


def run_set(device: Device, *lines: str, **options) -> bytes:
    return UapiConnection(device, **options).feed(set_op(*lines), now=100.0)


def get_text(device: Device) -> str:
    reply = UapiConnection(device).feed(b"get=1\n\n", now=100.0)
    assert reply.endswith(OK)
    return reply[: -len(OK)].decode()


def allowed(device: Device, key: bytes) -> list[str]:
    return [line.split("=", 1)[1] for line in peer_lines(device, key) if line.startswith("allowed_ip=")]


def peer_lines(device: Device, key: bytes) -> list[str]:
    lines, mine = [], False
    for line in get_text(device).splitlines():
        if line.startswith("public_key="):
            mine = line == "public_key=" + key.hex()
        elif mine:
            lines.append(line)
    return lines


# ------------------------------------------------------------------------------------ get


def test_get_on_an_empty_device_is_just_errno():
    assert UapiConnection(new_device(None)).feed(b"get=1\n\n", now=0.0) == OK


def test_get_on_a_configured_device_is_wireguard_go_text_exactly():
    device = new_device()
    device.listen_port, device.fwmark = 51820, 0x42
    a = device.add_peer(A)
    a.preshared_key = PSK
    a.endpoint = ("192.0.2.1", 51820)
    a.persistent_keepalive_interval = 25
    a.last_handshake_time = 1_700_000_000.25
    a.tx_bytes, a.rx_bytes = 1234, 5678
    device.allowed_ips.insert(bytes([10, 0, 0, 0]), 24, a)
    device.allowed_ips.insert(bytes.fromhex("20010db8" + "00" * 12), 32, a)
    device.allowed_ips.insert(bytes([192, 168, 1, 7]), 32, a)
    b = device.add_peer(B)
    b.endpoint = ("2001:db8::1", 443)
    c = device.add_peer(C)
    c.endpoint = ("fe80::1", 51820, 0, 5)
    assert get_text(device) == (
        f"private_key={OWN.private_bytes().hex()}\n"
        "listen_port=51820\n"
        "fwmark=66\n"
        f"public_key={A.hex()}\n"
        f"preshared_key={PSK.hex()}\n"
        "protocol_version=1\n"
        "endpoint=192.0.2.1:51820\n"
        "last_handshake_time_sec=1700000000\n"
        "last_handshake_time_nsec=250000000\n"
        "tx_bytes=1234\n"
        "rx_bytes=5678\n"
        "persistent_keepalive_interval=25\n"
        "allowed_ip=10.0.0.0/24\n"        # in the order given, families mixed (EntriesForPeer)
        "allowed_ip=2001:db8::/32\n"
        "allowed_ip=192.168.1.7/32\n"
        f"public_key={B.hex()}\n"
        f"preshared_key={'0' * 64}\n"
        "protocol_version=1\n"
        "endpoint=[2001:db8::1]:443\n"
        "last_handshake_time_sec=0\n"
        "last_handshake_time_nsec=0\n"
        "tx_bytes=0\n"
        "rx_bytes=0\n"
        "persistent_keepalive_interval=0\n"
        f"public_key={C.hex()}\n"
        f"preshared_key={'0' * 64}\n"
        "protocol_version=1\n"
        "endpoint=[fe80::1%5]:51820\n"
        "last_handshake_time_sec=0\n"
        "last_handshake_time_nsec=0\n"
        "tx_bytes=0\n"
        "rx_bytes=0\n"
        "persistent_keepalive_interval=0\n"
    )


@pytest.mark.parametrize(
    "endpoint, text",
    [
        (("192.0.2.1", 1), "192.0.2.1:1"),
        (("2001:0DB8:0:0:0:0:0:1", 2), "[2001:db8::1]:2"),
        (("2001:db8::1", 2, 0, 0), "[2001:db8::1]:2"),
        (("fe80::1", 3, 0, 9), "[fe80::1%9]:3"),
        (("::ffff:192.0.2.1", 4), "[::ffff:192.0.2.1]:4"),
        (("::ffff:c000:201", 4), "[::ffff:192.0.2.1]:4"),
        (("1:0:1:1:1:1:1:1", 5), "[1:0:1:1:1:1:1:1]:5"),   # RFC 5952: one zero field is not "::"
    ],
)
def test_endpoints_are_written_as_go_netip_does(endpoint, text):
    assert format_endpoint(endpoint) == text


def test_get_followed_by_a_wrong_byte_is_einval_and_the_connection_goes_on():
    connection = UapiConnection(new_device(None))
    # wireguard-go reads one byte after "get=1\n"; "x" is not "\n". The next line must be an operation.
    assert connection.feed(b"get=1\nxget=1\n\n", now=0.0) == answer(EINVAL) + OK
    assert not connection.closed


# ------------------------------------------------------------------------------------ set: every key


def test_set_of_every_key_then_get():
    device = new_device(None)
    reply = run_set(
        device,
        f"private_key={OWN.private_bytes().hex()}",
        "listen_port=51820",
        "fwmark=4294967295",
        "replace_peers=true",
        f"public_key={A.hex()}",
        "protocol_version=1",
        f"preshared_key={PSK.hex()}",
        "endpoint=192.0.2.1:51820",
        "persistent_keepalive_interval=65535",
        "replace_allowed_ips=true",
        "allowed_ip=10.0.0.1/24",
        "allowed_ip=2001:DB8::/32",
        f"public_key={B.hex()}",
        "update_only=true",
        f"public_key={C.hex()}",
        "endpoint=[fe80::1%3]:1",
        "remove=true",
    )
    assert reply == OK
    assert device.private_key == OWN
    assert (device.listen_port, device.fwmark) == (51820, 0xFFFFFFFF)
    assert list(device.peers) == [A]
    peer = device.peers[A]
    assert peer.preshared_key == PSK
    assert peer.endpoint == ("192.0.2.1", 51820)
    assert peer.persistent_keepalive_interval == 65535
    assert allowed(device, A) == ["10.0.0.0/24", "2001:db8::/32"]   # host bits cleared
    assert device.allowed_ips.lookup(bytes([10, 0, 0, 200])) is peer


def test_private_key_is_clamped_and_all_zeros_removes_it():
    device = new_device(None)
    raw = bytes([0xFF] * 32)
    assert run_set(device, f"private_key={raw.hex().upper()}") == OK
    assert device.private_key.private_bytes() == clamp(raw)
    assert f"private_key={clamp(raw).hex()}\n" in get_text(device)
    assert run_set(device, "private_key=" + "0" * 64) == OK
    assert device.private_key is None
    assert get_text(device) == ""


def test_a_new_private_key_removes_the_peer_that_has_its_public_key():
    device = new_device(None)
    assert run_set(device, f"public_key={OWN.public.hex()}") == OK
    assert OWN.public in device.peers
    assert run_set(device, f"private_key={OWN.private_bytes().hex()}") == OK
    assert OWN.public not in device.peers


def test_preshared_key_of_zeros_is_none():
    device = new_device()
    assert run_set(device, f"public_key={A.hex()}", f"preshared_key={PSK.hex()}") == OK
    assert device.peers[A].preshared_key == PSK
    assert run_set(device, f"public_key={A.hex()}", "preshared_key=" + "0" * 64) == OK
    assert device.peers[A].preshared_key is None
    assert f"preshared_key={'0' * 64}" in peer_lines(device, A)


def test_fwmark_zero_clears_it():
    device = new_device()
    run_set(device, "fwmark=7")
    assert run_set(device, "fwmark=0") == OK
    assert device.fwmark == 0 and "fwmark" not in get_text(device)


def test_replace_peers_removes_every_peer_before_the_new_ones():
    device = new_device()
    run_set(device, f"public_key={A.hex()}", "allowed_ip=10.0.0.1/32", f"public_key={B.hex()}")
    assert run_set(device, "replace_peers=true", f"public_key={C.hex()}", "allowed_ip=10.0.0.1/32") == OK
    assert list(device.peers) == [C]
    assert device.allowed_ips.lookup(bytes([10, 0, 0, 1])) is device.peers[C]


def test_update_only_does_not_create_a_peer_but_updates_an_existing_one():
    device = new_device()
    assert run_set(device, f"public_key={A.hex()}", "update_only=true", "allowed_ip=10.0.0.0/8", "endpoint=192.0.2.1:1") == OK
    assert A not in device.peers and len(device.allowed_ips) == 0
    run_set(device, f"public_key={A.hex()}")
    assert run_set(device, f"public_key={A.hex()}", "update_only=true", "allowed_ip=10.0.0.0/8") == OK
    assert allowed(device, A) == ["10.0.0.0/8"]


def test_update_only_after_lines_for_a_new_peer_undoes_them_with_the_peer():
    # wireguard-go creates the peer at public_key and removes it again (with its allowed IPs) at update_only.
    device = new_device()
    assert run_set(device, f"public_key={A.hex()}", "allowed_ip=10.0.0.0/8", "update_only=true", "allowed_ip=10.1.0.0/16") == OK
    assert A not in device.peers and len(device.allowed_ips) == 0


def test_remove_removes_the_peer_and_ignores_the_rest_of_its_section():
    device = new_device()
    run_set(device, f"public_key={A.hex()}", "allowed_ip=10.0.0.0/8", f"public_key={B.hex()}")
    assert run_set(device, f"public_key={A.hex()}", "remove=true", "allowed_ip=10.1.0.0/16", "endpoint=192.0.2.1:1") == OK
    assert list(device.peers) == [B]
    assert len(device.allowed_ips) == 0
    assert run_set(device, f"public_key={C.hex()}", "remove=true") == OK   # absent: nothing happens
    assert list(device.peers) == [B]


def test_replace_allowed_ips_replaces_only_that_peers_prefixes():
    device = new_device()
    run_set(device, f"public_key={A.hex()}", "allowed_ip=10.0.0.0/8", "allowed_ip=fd00::/8", f"public_key={B.hex()}", "allowed_ip=192.168.0.0/16")
    assert run_set(device, f"public_key={A.hex()}", "replace_allowed_ips=true", "allowed_ip=172.16.0.0/12") == OK
    assert allowed(device, A) == ["172.16.0.0/12"]
    assert allowed(device, B) == ["192.168.0.0/16"]


def test_an_allowed_ip_moves_from_its_old_peer():
    device = new_device()
    run_set(device, f"public_key={A.hex()}", "allowed_ip=10.0.0.0/8", f"public_key={B.hex()}", "allowed_ip=10.0.0.0/8")
    assert allowed(device, A) == [] and allowed(device, B) == ["10.0.0.0/8"]


def test_minus_allowed_ip_removes_exactly_that_prefix_of_that_peer():
    device = new_device()
    run_set(device, f"public_key={A.hex()}", "allowed_ip=10.0.0.0/24", "allowed_ip=10.0.1.0/24", "allowed_ip=fd00::/64",
            f"public_key={B.hex()}", "allowed_ip=192.168.0.0/16")
    reply = run_set(
        device,
        f"public_key={A.hex()}",
        "allowed_ip=-10.0.0.77/24",       # host bits ignored, as when adding
        "allowed_ip=-fd00::/64",
        "allowed_ip=-10.0.0.0/8",         # a super-prefix A does not own: nothing
        "allowed_ip=-192.168.0.0/16",     # B's prefix: nothing
        "allowed_ip=-172.16.0.0/12",      # nobody's: nothing
    )
    assert reply == OK
    assert allowed(device, A) == ["10.0.1.0/24"]
    assert allowed(device, B) == ["192.168.0.0/16"]


def test_minus_allowed_ip_is_checked_like_a_prefix():
    device = new_device()
    assert run_set(device, f"public_key={A.hex()}", "allowed_ip=--10.0.0.0/8") == answer(EINVAL)
    assert run_set(device, f"public_key={A.hex()}", "allowed_ip=-") == answer(EINVAL)
    assert run_set(device, f"public_key={OWN.public.hex()}", "allowed_ip=-10.0.0.0/33") == answer(EINVAL)


def test_the_devices_own_public_key_is_ignored_but_its_lines_are_checked():
    device = new_device()
    assert run_set(device, f"public_key={OWN.public.hex()}", "allowed_ip=10.0.0.0/8", "endpoint=192.0.2.1:1",
                   "persistent_keepalive_interval=5", "replace_allowed_ips=true", "remove=true") == OK
    assert device.peers == {} and len(device.allowed_ips) == 0
    assert run_set(device, f"public_key={OWN.public.hex()}", "endpoint=nonsense") == answer(EINVAL)
    assert device.peers == {}


def test_without_a_private_key_the_all_zero_public_key_is_the_devices_own():
    # wireguard-go's public key is all zeros until a private key is set, so that peer is ignored.
    device = new_device(None)
    assert run_set(device, "public_key=" + "0" * 64) == OK
    assert device.peers == {}
    assert run_set(new_device(), "public_key=" + "0" * 64) == OK   # with a key it is just a peer
    device = new_device()
    run_set(device, "public_key=" + "0" * 64)
    assert list(device.peers) == [bytes(32)]


def test_too_many_peers_is_einval():
    device = new_device()
    for i in range(MAX_PEERS):
        device.peers[i.to_bytes(32, "big")] = None   # stand-ins: only the count matters here
    assert run_set(device, f"public_key={A.hex()}") == answer(EINVAL)
    assert A not in device.peers


def test_turning_keepalive_on_sends_one_at_the_end_of_the_section():
    # wireguard-go sends it in handlePostConfig, so the endpoint may come after the interval.
    device = new_device()
    assert run_set(device, f"public_key={A.hex()}", "persistent_keepalive_interval=25", "endpoint=192.0.2.9:51820") == OK
    sent = device.datagrams_to_send()
    assert [(MessageType(data[0]), to) for data, to in sent] == [(MessageType.INITIATION, ("192.0.2.9", 51820))]
    assert device.peers[A].persistent_keepalive_interval == 25
    assert run_set(device, f"public_key={A.hex()}", "persistent_keepalive_interval=25") == OK   # already on
    assert device.datagrams_to_send() == []


def test_staged_packets_leave_once_a_section_gives_the_peer_an_endpoint():
    device = new_device()
    run_set(device, f"public_key={A.hex()}", "allowed_ip=10.0.0.2/32")
    peer = device.peers[A]
    peer.staged.append(b"packet")   # as if it had been routed here before the endpoint was known
    assert run_set(device, f"public_key={A.hex()}", "endpoint=192.0.2.9:1") == OK
    assert [MessageType(data[0]) for data, _ in device.datagrams_to_send()] == [MessageType.INITIATION]


# ------------------------------------------------------------------------------------ values


@pytest.mark.parametrize(
    "value, endpoint",
    [
        ("192.0.2.1:51820", ("192.0.2.1", 51820)),
        ("192.0.2.1:0", ("192.0.2.1", 0)),
        ("192.0.2.1:00080", ("192.0.2.1", 80)),          # ParseUint takes leading zeros
        ("[2001:DB8:0:0::1]:65535", ("2001:db8::1", 65535)),
        ("[::ffff:192.0.2.1]:5", ("::ffff:192.0.2.1", 5)),
        ("[fe80::1%7]:1", ("fe80::1", 1, 0, 7)),
        ("[fe80::1%0]:1", ("fe80::1", 1)),
        ("[fe80::1%eth0]:1", ("fe80::1", 1, 0, 2)),      # with interface_index
    ],
)
def test_endpoint_values(value, endpoint):
    device = new_device()
    reply = run_set(device, f"public_key={A.hex()}", f"endpoint={value}", interface_index=interfaces)
    assert reply == OK
    assert device.peers[A].endpoint == endpoint


@pytest.mark.parametrize(
    "value",
    [
        "", "192.0.2.1", "192.0.2.1:", ":51820", "[192.0.2.1]:1", "2001:db8::1:51820", "[2001:db8::1]51820",
        "[2001:db8::1:1", "example.com:51820", "192.0.2.1:65536", "192.0.2.1:-1", "192.0.2.1:+1", "192.0.2.1: 1",
        "192.0.2.01:1", "192.0.2.256:1", "192.0.2:1", "[fe80::1%]:1", "[fe80::1%eth1]:1", "[fe80::1%4294967296]:1",
        "[fe80::1%a\0b]:1", "192.0.2.1:١", "[]:1", "[:1", "1.2.3.4%x:1",
    ],
)
def test_bad_endpoints_are_einval(value):
    device = new_device()
    reply = run_set(device, f"public_key={A.hex()}", f"endpoint={value}", interface_index=interfaces)
    assert reply == answer(EINVAL)
    assert device.peers[A].endpoint is None


def test_named_zones_need_interface_index():
    assert run_set(new_device(), f"public_key={A.hex()}", "endpoint=[fe80::1%eth0]:1") == answer(EINVAL)


@pytest.mark.parametrize(
    "value, shown",
    [("10.0.0.1/24", "10.0.0.0/24"), ("0.0.0.0/0", "0.0.0.0/0"), ("::/0", "::/0"), ("2001:DB8::1/128", "2001:db8::1/128"),
     ("::ffff:10.0.0.1/128", "::ffff:10.0.0.1/128"), ("255.255.255.255/32", "255.255.255.255/32")],
)
def test_allowed_ip_values(value, shown):
    device = new_device()
    assert run_set(device, f"public_key={A.hex()}", f"allowed_ip={value}") == OK
    assert allowed(device, A) == [shown]


@pytest.mark.parametrize(
    "value",
    ["10.0.0.0", "10.0.0.0/33", "10.0.0.0/024", "10.0.0.0/+24", "10.0.0.0/ 24", "10.0.0.0/", "/8", "::/129",
     "fe80::%eth0/64", "010.0.0.0/8", "10.0.0/8", "10.0.0.0/8/8", " 10.0.0.0/8", "10.0.0.0/８", "host/32"],
)
def test_bad_allowed_ips_are_einval(value):
    device = new_device()
    assert run_set(device, f"public_key={A.hex()}", f"allowed_ip={value}") == answer(EINVAL)
    assert len(device.allowed_ips) == 0


@pytest.mark.parametrize("key", ["private_key", "preshared_key", "public_key"])
@pytest.mark.parametrize("value", ["", "0" * 63, "0" * 65, "g" * 64, " " + "0" * 63, "0" * 62 + " 0", "٠" * 64])
def test_keys_must_be_64_hex_digits(key, value):
    lines = [f"public_key={A.hex()}"] if key == "preshared_key" else []
    assert run_set(new_device(), *lines, f"{key}={value}") == answer(EINVAL)


@pytest.mark.parametrize("key, bits", [("listen_port", 16), ("fwmark", 32)])
def test_device_numbers_are_go_parseuint(key, bits):
    device = new_device()
    assert run_set(device, f"{key}={2**bits - 1}") == OK
    for bad in ["", str(2**bits), "-1", "+1", " 1", "1 ", "1_0", "0x10", "１", "9" * 5000]:
        assert run_set(device, f"{key}={bad}") == answer(EINVAL), bad
    assert run_set(device, f"{key}=" + "0" * 5000 + "1") == OK


def test_keepalive_is_go_parseuint_16():
    device = new_device()
    for bad in ["", "65536", "-1", "1.5", "on"]:
        assert run_set(device, f"public_key={A.hex()}", f"persistent_keepalive_interval={bad}") == answer(EINVAL)


@pytest.mark.parametrize(
    "line",
    ["replace_peers=false", "replace_peers=True", "replace_peers=1", "replace_peers="],
)
def test_device_flags_must_be_exactly_true(line):
    assert run_set(new_device(), line) == answer(EINVAL)


@pytest.mark.parametrize("key", ["remove", "update_only", "replace_allowed_ips"])
def test_peer_flags_must_be_exactly_true(key):
    device = new_device()
    assert run_set(device, f"public_key={A.hex()}", "allowed_ip=10.0.0.0/8", f"{key}=yes") == answer(EINVAL)
    assert allowed(device, A) == ["10.0.0.0/8"]


@pytest.mark.parametrize("value", ["0", "2", "", "1 ", "01"])
def test_only_protocol_version_1(value):
    assert run_set(new_device(), f"public_key={A.hex()}", f"protocol_version={value}") == answer(EINVAL)


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "lines, code",
    [
        (["listen_port"], EPROTO),                                 # no '='
        ([f"public_key={A.hex()}", "allowed_ip 10.0.0.0/8"], EPROTO),
        (["bogus=1"], EINVAL),                                     # unknown device key
        (["endpoint=192.0.2.1:1"], EINVAL),                        # a peer key before any public_key
        (["protocol_version=1"], EINVAL),                          # ditto (wireguard-go has it as a peer key only)
        ([f"public_key={A.hex()}", "listen_port=1"], EINVAL),      # a device key inside a peer section
        ([f"public_key={A.hex()}", "bogus=1"], EINVAL),            # unknown peer key
        ([f"public_key={A.hex()}", "Endpoint=192.0.2.1:1"], EINVAL),   # keys are case-sensitive
        ([" listen_port=1"], EINVAL),                              # and not trimmed
        (["listen_port =1"], EINVAL),
        (["x" * (MAX_LINE_SIZE + 1)], EIO),                        # bufio.Scanner: token too long
    ],
)
def test_error_kinds(lines, code):
    connection = UapiConnection(new_device())
    assert connection.feed(set_op(*lines), now=0.0) == answer(code)
    assert connection.last_error is not None and connection.last_error.errno == code
    assert connection.feed(b"get=1\n\n", now=0.0).endswith(OK)   # the connection goes on
    assert connection.last_error is None


def test_a_line_of_the_longest_length_is_read():
    assert run_set(new_device(), "listen_port=" + "0" * (MAX_LINE_SIZE - len("listen_port=") - 1) + "1") == OK


def test_a_failed_set_keeps_what_came_before_the_bad_line_and_skips_the_rest():
    device = new_device()
    connection = UapiConnection(device)
    reply = connection.feed(set_op(
        "listen_port=1234",
        f"public_key={A.hex()}",
        "allowed_ip=10.0.0.0/8",
        "persistent_keepalive_interval=30",
        "endpoint=not-an-endpoint",
        "allowed_ip=10.1.0.0/16",
        f"public_key={B.hex()}",
        "listen_port=1",
    ) + b"get=1\n\n", now=0.0)
    assert reply.startswith(answer(EINVAL)) and reply.endswith(OK)
    assert device.listen_port == 1234
    assert list(device.peers) == [A]
    assert allowed(device, A) == ["10.0.0.0/8"]
    assert device.peers[A].endpoint is None
    assert device.peers[A].persistent_keepalive_interval == 30   # wireguard-go stores it at its line


def test_the_error_message_names_the_line_and_never_a_key():
    device = new_device()
    connection = UapiConnection(device)
    secret = "ab" * 31 + "zz"
    connection.feed(set_op(f"private_key={OWN.private_bytes().hex()}", f"private_key={secret}"), now=0.0)
    assert connection.last_error.errno == EINVAL
    message = str(connection.last_error) + repr(connection.last_error)
    assert "line 2" in message and "ab" * 8 not in message
    connection.feed(set_op(f"public_key={A.hex()}", f"preshared_key={PSK.hex()}x"), now=0.0)
    assert PSK.hex()[:16] not in str(connection.last_error)
    # A key on a line of its own, on the wrong side of the '=', or on the wrong line: never quoted.
    hexkey = OWN.private_bytes().hex()
    for lines, code in [([hexkey], EPROTO), ([f"{hexkey}=1"], EINVAL), ([f"public_key={A.hex()}", f"{hexkey}=1"], EINVAL),
                        ([f"public_key={A.hex()}", f"endpoint={hexkey}"], EINVAL), ([f"listen_port={hexkey}"], EINVAL),
                        ([f"public_key={A.hex()}", f"allowed_ip=-{hexkey}"], EINVAL), ([f"replace_peers={hexkey}"], EINVAL)]:
        connection.feed(set_op(*lines), now=0.0)
        assert connection.last_error.errno == code
        assert hexkey[:8] not in str(connection.last_error), lines
    connection.feed(set_op("bogus_key=1"), now=0.0)
    assert "'bogus_key'" in str(connection.last_error)   # a key name is quoted


# ------------------------------------------------------------------------------------ bind


class FakeBind:
    def __init__(self, refuse=()):
        self.calls, self.refuse = [], set(refuse)

    def __call__(self, port, fwmark):
        self.calls.append((port, fwmark))
        if (port, fwmark) in self.refuse or port in self.refuse:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return port or 40000


def test_listen_port_goes_through_bind_and_stores_the_bound_port():
    device, bind = new_device(), FakeBind()
    assert run_set(device, "listen_port=0", bind=bind) == OK
    assert device.listen_port == 40000 and bind.calls == [(0, 0)]
    assert "listen_port=40000\n" in get_text(device)


def test_a_port_in_use_is_eaddrinuse_and_get_reports_the_port_still_bound():
    """The hook keeps the old sockets when the new port is taken: ``get`` must say where we listen, not 0
    (wireguard-go says 0 because it has closed its old sockets; we have not)."""
    device, bind = new_device(), FakeBind(refuse={51820})
    assert run_set(device, "listen_port=1000", bind=bind) == OK
    assert run_set(device, "listen_port=51820", f"public_key={A.hex()}", bind=bind) == answer(EADDRINUSE)
    assert device.listen_port == 1000
    assert "listen_port=1000\n" in get_text(device)
    assert device.peers == {}


def test_fwmark_goes_through_bind_and_is_kept_even_when_refused():
    device, bind = new_device(), FakeBind(refuse={(5000, 9)})
    device.listen_port = 5000
    assert run_set(device, "fwmark=0", bind=bind) == OK and bind.calls == []   # unchanged: nothing to do
    assert run_set(device, "fwmark=9", bind=bind) == answer(EADDRINUSE)
    assert device.fwmark == 9
    assert run_set(device, "fwmark=10", bind=bind) == OK
    assert bind.calls == [(5000, 9), (5000, 10)]


def test_without_bind_values_are_only_stored():
    device = new_device()
    assert run_set(device, "listen_port=51820", "fwmark=3") == OK
    assert (device.listen_port, device.fwmark) == (51820, 3)


# ------------------------------------------------------------------------------------ scale


def test_fifty_thousand_allowed_ips_round_trip_quickly():
    device = new_device()
    prefixes = [f"10.{i >> 8 & 255}.{i & 255}.0/24" for i in range(25_000)]
    prefixes += [f"2001:db8:{i + 1:x}::/48" for i in range(25_000)]   # canonical text: no zero group
    data = set_op(f"public_key={A.hex()}", "replace_allowed_ips=true", *(f"allowed_ip={p}" for p in prefixes))
    connection = UapiConnection(device)
    start = time.perf_counter()
    replies = b"".join(connection.feed(data[i:i + 65536], now=0.0) for i in range(0, len(data), 65536))
    set_time = time.perf_counter() - start
    start = time.perf_counter()
    got = connection.feed(b"get=1\n\n", now=0.0)
    get_time = time.perf_counter() - start
    assert replies == OK
    assert [line[len("allowed_ip="):] for line in got.decode().splitlines() if line.startswith("allowed_ip=")] == prefixes
    assert set_time < 2.0 and get_time < 2.0, (set_time, get_time)


# ------------------------------------------------------------------------------------ wg's round trip


def showconf_to_setconf(get_reply: str) -> bytes:
    """What ``wg showconf | wg setconf`` sends back: configuration keys only, replace flags set."""
    keep = ("private_key", "listen_port", "fwmark", "public_key", "preshared_key", "endpoint",
            "persistent_keepalive_interval", "allowed_ip")
    lines = ["replace_peers=true"]
    for line in get_reply.splitlines():
        key = line.split("=", 1)[0]
        if key in keep:
            lines.append(line)
            if key == "public_key":
                lines.append("replace_allowed_ips=true")
    return set_op(*lines)


def test_get_then_set_onto_a_fresh_device_reproduces_it():
    device = new_device()
    assert run_set(
        device, "listen_port=51820", "fwmark=5",
        f"public_key={A.hex()}", f"preshared_key={PSK.hex()}", "endpoint=[fe80::1%4]:9", "allowed_ip=10.0.0.0/8",
        "allowed_ip=fd00::/8", f"public_key={B.hex()}", "endpoint=192.0.2.1:1", "persistent_keepalive_interval=15",
        "allowed_ip=0.0.0.0/0",
    ) == OK
    text = get_text(device)
    fresh = new_device(None)
    assert UapiConnection(fresh).feed(showconf_to_setconf(text), now=0.0) == OK
    strip = lambda t: [l for l in t.splitlines() if not l.startswith(("tx_bytes", "rx_bytes", "last_handshake"))]
    assert strip(get_text(fresh)) == strip(text)


# ------------------------------------------------------------------------------------ fuzz

KEYS = st.sampled_from([
    "private_key", "listen_port", "fwmark", "replace_peers", "public_key", "remove", "update_only", "preshared_key",
    "endpoint", "persistent_keepalive_interval", "replace_allowed_ips", "allowed_ip", "protocol_version", "bogus",
])
VALUES = st.one_of(
    st.sampled_from(["true", "1", "0", "65535", "65536", "4294967296", A.hex(), B.hex(), OWN.public.hex(), "0" * 64,
                     "10.0.0.0/8", "-10.0.0.0/8", "fd00::/8", "192.0.2.1:1", "[2001:db8::1]:2", "[fe80::1%eth0]:3"]),
    st.text(max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(KEYS, VALUES), max_size=25))
def test_random_sets_are_answered_once_and_leave_a_consistent_device(pairs):
    device = new_device()
    connection = UapiConnection(device, interface_index=interfaces)
    lines = [f"{key}={value}".replace("\n", "").replace("\r", "") for key, value in pairs]
    reply = connection.feed(set_op(*[line for line in lines if line]), now=0.0)
    assert reply.count(b"errno=") == 1 and reply.endswith(b"\n\n")
    assert int(reply[6:-2]) in (0, EINVAL, EPROTO, EIO)
    assert not connection.closed
    for key, peer in device.peers.items():
        for address, cidr in device.allowed_ips.entries(peer):
            assert device.allowed_ips.lookup(address) is peer
        assert device.private_key is None or key != device.private_key.public
    get_text(device)


def test_uapi_error_carries_its_errno():
    error = UapiError(EINVAL, "x")
    assert error.errno == EINVAL and "x" in repr(error)
