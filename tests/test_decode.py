"""``wgpy decode``, the key log format and the device's key log export.

Captures are built byte by byte here (pcap in both byte orders and both time resolutions, pcapng with
interface options, simple packets and a Decryption Secrets Block), around datagrams two in-memory devices
really exchanged, so that every link type and every decryption path is exercised without a network.

    alice (192.0.2.1:51820, tunnel 10.0.0.1)  <--- datagrams --->  bob (192.0.2.2:51820, tunnel 10.0.0.2)
"""

import base64
import json
import struct

import pytest

from wgpy import cli
from wgpy.core.messages import parse
from wgpy.study import capture, decode, ip, labels
from wgpy.core.cookie import CookieChecker, CookieGenerator
from wgpy.core.crypto import PrivateKey
from wgpy.core.device import Device
from wgpy.core.events import HandshakeCompleted, HandshakeResponded
from wgpy.core.keylog import DSB_SECRETS_TYPE, KeylogEntry, parse_keylog

from .conftest import seeded_rng

ALICE, BOB = ("192.0.2.1", 51820), ("192.0.2.2", 51820)
A_INSIDE, B_INSIDE = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


# ------------------------------------------------------------------------ packets and sessions


def ipv4(source: bytes, destination: bytes, protocol: int, payload: bytes, fragment: int = 0) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, fragment, 64, protocol, 0, source,
                       destination) + payload


def ipv6(source: bytes, destination: bytes, next_header: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64, source, destination) + payload


def udp(source_port: int, destination_port: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload


def tcp(source_port: int, destination_port: int) -> bytes:
    return struct.pack("!HHIIBBHHH", source_port, destination_port, 1, 0, 5 << 4, 0x02, 65535, 0, 0)


def session(keylog_side: str = "initiator", psk: bytes | None = None, seed: int = 0):
    """Alice sends a UDP packet to bob (a handshake, then data), bob answers with TCP; returns the
    datagrams as (source, destination, bytes), the key log text of one side, and the two devices."""
    rng = seeded_rng(seed)
    alice = Device(PrivateKey.generate(rng), rng=rng, epoch_offset=1.7e9)
    bob = Device(PrivateKey.generate(rng), rng=rng, epoch_offset=1.7e9)
    for me, other, endpoint, inside in ((alice, bob, BOB, B_INSIDE), (bob, alice, ALICE, A_INSIDE)):
        peer = me.add_peer(other.private_key.public)
        peer.endpoint, peer.preshared_key = endpoint, psk
        me.allowed_ips.insert(inside, 32, peer)
    alice.keylog_enabled, bob.keylog_enabled = keylog_side == "initiator", keylog_side == "responder"
    carried = []

    def settle():
        for _ in range(10):
            moved = False
            for device, source, other in ((alice, ALICE, bob), (bob, BOB, alice)):
                for datagram, destination in device.datagrams_to_send():
                    carried.append((source, destination, datagram))
                    other.receive_datagram(datagram, source, 0.0)
                    moved = True
            if not moved:
                return

    alice.send_packet(ipv4(A_INSIDE, B_INSIDE, 17, udp(5000, 53, b"question")), 0.0)
    settle()
    bob.send_packet(ipv4(B_INSIDE, A_INSIDE, 6, tcp(80, 40000)), 0.0)
    settle()
    keys = "".join(entry.text() for device in (alice, bob) for entry in device.keylog_entries())
    return carried, keys, alice, bob


# ------------------------------------------------------------------------ capture files


def ethernet(packet: bytes, vlan: bool = False) -> bytes:
    ethertype = 0x0800 if packet[0] >> 4 == 4 else 0x86DD
    tag = struct.pack("!HH", 0x8100, 7) if vlan else b""
    return bytes(6) + bytes([2, 0, 0, 0, 0, 1]) + tag + struct.pack("!H", ethertype) + packet


def sll(packet: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800 if packet[0] >> 4 == 4 else 0x86DD) + packet


def sll2(packet: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", 0x0800 if packet[0] >> 4 == 4 else 0x86DD, 0, 3, 1, 4, 6, bytes(8)) + packet


def null(packet: bytes) -> bytes:
    return struct.pack("<I", 2 if packet[0] >> 4 == 4 else 30) + packet


def pcap(frames: list[bytes], link_type: int, order: str = "<", nanoseconds: bool = False) -> bytes:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, link_type)
    for n, frame in enumerate(frames):
        out += struct.pack(order + "IIII", 1_700_000_000 + n, 500, len(frame), len(frame)) + frame
    return out


def block(order: str, kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack(order + "II", kind, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def pcapng(frames: list[bytes], link_type: int, order: str = "<", secrets: str | None = None,
           nanoseconds: bool = False, simple: bool = False) -> bytes:
    out = block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    options = option(order, 9, bytes([9])) + option(order, 0, b"") if nanoseconds else b""
    out += block(order, 1, struct.pack(order + "HHI", link_type, 0, 0) + options)
    if secrets is not None:
        data = secrets.encode()
        out += block(order, 0x0A, struct.pack(order + "II", 0x544C534B, 4) + b"TLS!")  # another kind: ignored
        out += block(order, 0x0A, struct.pack(order + "II", DSB_SECRETS_TYPE, len(data)) + data)
    for n, frame in enumerate(frames):
        if simple:
            out += block(order, 3, struct.pack(order + "I", len(frame)) + frame)
        else:
            ticks = (1_700_000_000 + n) * (10**9 if nanoseconds else 10**6)
            out += block(order, 6, struct.pack(order + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                                                len(frame)) + frame)
    return out


def v6(endpoint: tuple) -> bytes:
    return bytes.fromhex("20010db8" + "00" * 11) + bytes([int(endpoint[0].split(".")[-1])])


def underlay(carried, family: int = 4) -> list[bytes]:
    """The datagrams as IP packets, with noise: a DNS query and a later IPv4 fragment of a 148-byte
    datagram that starts like an initiation."""
    packets = []
    for source, destination, datagram in carried:
        payload = udp(source[1], destination[1], datagram)
        if family == 4:
            packets.append(ipv4(bytes(map(int, source[0].split("."))), bytes(map(int, destination[0].split("."))),
                                17, payload))
        else:
            packets.append(ipv6(v6(source), v6(destination), 17, payload))
    noise = ipv4(bytes(4), bytes(4), 17, udp(1234, 53, bytes.fromhex("123401000001000000000000") + b"\x04wgpy\x00"))
    fragment = ipv4(bytes(4), bytes(4), 17, b"\x01\x00\x00\x00" + bytes(144), fragment=0x20)
    return [noise, fragment] + packets


CAPTURES = {
    "pcap-ethernet-vlan": lambda p, k: pcap([ethernet(x, vlan=True) for x in p], 1),
    "pcap-big-endian-ns-raw": lambda p, k: pcap(p, 101, order=">", nanoseconds=True),
    "pcap-linux-sll": lambda p, k: pcap([sll(x) for x in p], 113),
    "pcap-bsd-null": lambda p, k: pcap([null(x) for x in p], 0),
    "pcapng-sll2-with-secrets": lambda p, k: pcapng([sll2(x) for x in p], 276, secrets=k, nanoseconds=True),
    "pcapng-big-endian-ethernet": lambda p, k: pcapng([ethernet(x) for x in p], 1, order=">"),
    "pcapng-simple-packets-raw": lambda p, k: pcapng(p, 101, simple=True),
}


# ------------------------------------------------------------------------ fields


def test_every_byte_of_every_message_is_labelled():
    carried, _, alice, bob = session()
    initiation = carried[0][2]
    checker = CookieChecker(bob.private_key.public, seeded_rng(9))
    reply = checker.create_reply(initiation, 7, ALICE, 0.0).pack()
    seen = set()
    for data in [d for _, _, d in carried] + [reply]:
        fields = labels.fields(data)
        assert fields[0].offset == 0 and sum(f.size for f in fields) == len(data)
        assert all(a.offset + a.size == b.offset for a, b in zip(fields, fields[1:]))
        assert b"".join(f.value for f in fields) == data and all(f.meaning for f in fields)
        seen.add(tuple(f.name for f in fields))
    assert seen == {
        ("message_type", "reserved_zero", "sender_index", "unencrypted_ephemeral", "encrypted_static",
         "encrypted_timestamp", "mac1", "mac2"),
        ("message_type", "reserved_zero", "sender_index", "receiver_index", "unencrypted_ephemeral",
         "encrypted_nothing", "mac1", "mac2"),
        ("message_type", "reserved_zero", "receiver_index", "nonce", "encrypted_cookie"),
        ("message_type", "reserved_zero", "receiver_index", "counter", "encrypted_encapsulated_packet"),
    }


@pytest.mark.parametrize("text, reason", [("01000000" + "00" * 10, "WRONG_SIZE"), ("07", "UNKNOWN_TYPE"),
                                          ("04000001" + "00" * 28, "RESERVED_NONZERO"), ("", "EMPTY")])
def test_what_is_not_a_message_is_named(text, reason):
    (_, decoded), = decode.decode_hex([text]).entries
    assert reason in decoded.error


# ------------------------------------------------------------------------ decryption


@pytest.mark.parametrize("side", ["initiator", "responder"])
@pytest.mark.parametrize("psk", [None, bytes(range(32))], ids=["no-psk", "psk"])
def test_either_sides_key_log_decrypts_everything(side, psk):
    carried, keys, alice, bob = session(side, psk)
    report = decode.decode_hex([d.hex() for _, _, d in carried], parse_keylog(keys))
    counts = report.counts()
    assert counts["handshakes_decrypted"] == 1 and counts["transport"] >= 2
    assert counts["transport_decrypted"] == counts["transport"]
    notes = [note for _, d in report.entries for note in d.notes]
    assert f"encrypted_static decrypts to S_pub_i = {base64.b64encode(alice.private_key.public).decode()}" in notes
    assert any(n.startswith("MAC1 valid: addressed to " + base64.b64encode(bob.private_key.public).decode()) for n in notes)
    assert any("2023-11-14" in n for n in notes)  # the timestamp: epoch_offset 1.7e9
    inner = [d.inner for _, d in report.entries if d.inner]
    assert "IPv4 UDP 10.0.0.1:5000 -> 10.0.0.2:53, 36 bytes (+12 bytes of padding)" in inner
    assert "IPv4 TCP 10.0.0.2:80 -> 10.0.0.1:40000, 40 bytes (+8 bytes of padding)" in inner


def test_without_keys_it_labels_and_decrypts_nothing():
    carried, _, _, _ = session()
    report = decode.decode_hex([d.hex() for _, _, d in carried])
    assert report.counts()["transport_decrypted"] == 0
    assert all(not d.notes and d.fields for _, d in report.entries)


def test_public_keys_alone_check_mac1_but_decrypt_nothing():
    carried, _, alice, bob = session()
    keys = "".join(f"REMOTE_STATIC_PUBLIC_KEY = {base64.b64encode(d.private_key.public).decode()}\n" for d in (alice, bob))
    report = decode.decode_hex([d.hex() for _, _, d in carried], parse_keylog(keys))
    first = report.entries[0][1]
    assert first.notes[0].startswith("MAC1 valid") and "cannot decrypt" in first.notes[1]
    assert report.counts()["transport_decrypted"] == 0


def test_a_wrong_key_log_decrypts_nothing():
    carried, _, _, _ = session(seed=1)
    _, other_keys, _, _ = session(seed=2)
    report = decode.decode_hex([d.hex() for _, _, d in carried], parse_keylog(other_keys))
    assert "MAC1 matches no public key in the key log" in report.entries[0][1].notes
    assert report.counts()["transport_decrypted"] == 0


def test_a_cookie_reply_decrypts_with_the_responders_public_key_alone():
    """Section 5.4.7: the cookie's key is HASH(LABEL_COOKIE || S_pub_r); then MAC2 of the retry checks."""
    rng = seeded_rng(4)
    alice, bob = PrivateKey.generate(rng), PrivateKey.generate(rng)
    from wgpy.core import noise, tai64n

    generator, checker = CookieGenerator(bob.public), CookieChecker(bob.public, rng)
    first, _ = noise.create_initiation(alice, bob.public, PrivateKey.generate(rng), 11, tai64n.encode(1.7e9))
    first = generator.add_macs(first.pack(), 0.0)
    reply = checker.create_reply(first, 11, ALICE, 0.0).pack()
    generator.consume_reply(parse(reply), 0.0)
    retry, _ = noise.create_initiation(alice, bob.public, PrivateKey.generate(rng), 12, tai64n.encode(1.7e9 + 5))
    retry = generator.add_macs(retry.pack(), 5.0)
    keys = parse_keylog(f"REMOTE_STATIC_PUBLIC_KEY = {base64.b64encode(bob.public).decode()}\n")
    report = decode.decode_hex([first.hex(), reply.hex(), retry.hex()], keys)
    assert any(n.startswith("encrypted_cookie decrypts to τ = ") for n in report.entries[1][1].notes)
    assert "MAC2 valid: made with the cookie seen" in report.entries[2][1].notes


# ------------------------------------------------------------------------ captures


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("kind", list(CAPTURES))
def test_captures_of_every_link_type_decode_and_decrypt(kind, family):
    carried, keys, _, _ = session("responder", bytes(32 * [5]))
    data = CAPTURES[kind](underlay(carried, family), keys)
    frames, embedded = capture.read_capture(data)
    assert len(frames) == len(carried) + 2
    keylog = None if "secrets" in kind else parse_keylog(keys)
    assert bool(len(embedded)) == (keylog is None)
    report = decode.decode_capture(data, keylog)
    counts = report.counts()
    assert counts["messages"] == len(carried)  # the lookalike and the fragment are not WireGuard
    assert counts["transport_decrypted"] == counts["transport"] > 0 and counts["handshakes_decrypted"] == 1
    first, _ = report.entries[0]
    assert first.source == (("192.0.2.1" if family == 4 else "2001:db8::1"), 51820)
    if "simple-packets" not in kind:  # a simple packet block has no time
        assert first.frame.time == pytest.approx(1_700_000_002, abs=1e-3)
    text = decode.render_text(report)
    assert text.endswith(f"{counts['transport']} decrypted, 0 keepalives)\n")
    assert ("[2001:db8::1]:51820 -> [2001:db8::2]:51820" if family == 6 else "192.0.2.1:51820 -> 192.0.2.2:51820") in text


@pytest.mark.parametrize("data", [b"", b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a" + b"\x10\x00\x00\x00" + bytes(8)])
def test_what_is_not_a_capture_is_refused(data):
    with pytest.raises(capture.CaptureError):
        capture.read_capture(data)


# ------------------------------------------------------------------------ the command


def test_the_command_on_a_capture_and_on_hex(tmp_path, capsys):
    carried, keys, _, _ = session()
    (tmp_path / "keys.log").write_text(keys)
    (tmp_path / "capture.pcapng").write_bytes(pcapng([ethernet(x) for x in underlay(carried)], 1))
    assert cli.main(["decode", "--keylog", str(tmp_path / "keys.log"), str(tmp_path / "capture.pcapng")]) == 0
    out = capsys.readouterr().out
    assert "frame 3  +" in out and "handshake initiation, 148 bytes (whitepaper 5.4.2)" in out
    assert "=> decrypts (initiator to responder): IPv4 UDP 10.0.0.1:5000 -> 10.0.0.2:53" in out
    assert cli.main(["decode", "--format", "json", carried[0][2].hex(), carried[1][2].hex()]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [m["kind"] for m in report["messages"]] == ["handshake initiation", "handshake response"]
    (tmp_path / "not-a-capture").write_text("hello")
    assert cli.main(["decode", str(tmp_path / "not-a-capture")]) == 1
    (tmp_path / "bad.log").write_text("LOCAL_STATIC_PRIVATE_KEY = short\n")
    assert cli.main(["decode", "--keylog", str(tmp_path / "bad.log"), carried[0][2].hex()]) == 1
    assert "line 1" in capsys.readouterr().err


@pytest.mark.parametrize("packet, summary", [
    (ipv6(bytes(15) + b"\x01", bytes(15) + b"\x02", 0, bytes([6, 0]) + bytes(6) + tcp(22, 50000)),
     "IPv6 TCP [::1]:22 -> [::2]:50000, 68 bytes"),
    (ipv6(bytes(15) + b"\x01", bytes(15) + b"\x02", 58, struct.pack("!BBHHH", 128, 0, 0, 9, 4)),
     "IPv6 ICMPv6 ::1 -> ::2 echo request id=9 seq=4, 48 bytes"),
    (ipv4(A_INSIDE, B_INSIDE, 1, struct.pack("!BBHHH", 0, 0, 0, 1, 2) + bytes(4)) + bytes(4),
     "IPv4 ICMP 10.0.0.1 -> 10.0.0.2 echo reply id=1 seq=2, 32 bytes (+4 bytes of padding)"),
    (ipv4(A_INSIDE, B_INSIDE, 47, bytes(4)), "IPv4 protocol 47 10.0.0.1 -> 10.0.0.2, 24 bytes"),
    (b"\x00" * 16, "not an IP packet (16 bytes)"),
])
def test_inner_packets_are_summarized(packet, summary):
    assert ip.summarize_ip(packet) == summary


# ------------------------------------------------------------------------ key logs


def test_key_log_lines_round_trip_and_hide_their_secrets():
    entry = KeylogEntry(bytes([1] * 32), bytes([2] * 32), bytes([3] * 32), bytes(32))
    text = entry.text()
    assert text.splitlines()[0] == f"LOCAL_STATIC_PRIVATE_KEY = {base64.b64encode(bytes([1] * 32)).decode()}"
    assert [line.split(" = ")[0] for line in text.splitlines()] == [
        "LOCAL_STATIC_PRIVATE_KEY", "REMOTE_STATIC_PUBLIC_KEY", "LOCAL_EPHEMERAL_PRIVATE_KEY", "PRESHARED_KEY"]
    keys = parse_keylog("# a comment\n\n" + text.replace(" = ", "=").replace("AQEB", "AQ EB", 1))
    assert keys.static_private == [bytes([1] * 32)] and keys.preshared == {bytes([3] * 32): [bytes(32)]}
    assert "AQEB" not in repr(entry) and "AQEB" not in repr(keys) and "010101" not in repr(entry)


@pytest.mark.parametrize("text", ["SOME_KEY = AAAA", "LOCAL_STATIC_PRIVATE_KEY = AAAA", "no equals sign"])
def test_malformed_key_log_lines_are_named(text):
    with pytest.raises(ValueError, match="line 2"):
        parse_keylog("PRESHARED_KEY = " + base64.b64encode(bytes(32)).decode() + "\n" + text)


def test_devices_log_no_keys_unless_asked_and_report_each_handshake_message():
    carried, keys, alice, bob = session(keylog_side="none")
    assert keys == "" and not alice.keylog_entries()
    carried, keys, alice, bob = session(keylog_side="responder", psk=bytes([8] * 32))
    entry = parse_keylog(keys)
    assert entry.static_private == [bob.private_key.private_bytes()] and entry.static_public == [alice.private_key.public]
    assert list(entry.preshared.values()) == [[bytes([8] * 32)]]
    events = bob.events()
    assert HandshakeResponded(alice.private_key.public) in events
    assert HandshakeCompleted(alice.private_key.public, is_initiator=False) in events
