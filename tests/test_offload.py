"""Coalesced TUN writes (runtime/offload.py): what is merged, and that the merged packet segments back
into exactly the original segments, checksums included."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wgpy.runtime.offload import GSO_TCPV4, GSO_TCPV6, NEEDS_CSUM, ZERO_HEADER, coalesce, complete_checksum

ACK, PSH, SYN, FIN = 0x10, 0x08, 0x02, 0x01
V4 = (bytes([198, 18, 0, 2]), bytes([198, 18, 0, 1]))
V6 = (bytes.fromhex("20010db8000100000000000000000002"), bytes.fromhex("20010db8000100000000000000000001"))


def fold(total):
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def sum16(data):
    if len(data) % 2:
        data += b"\0"
    return fold(sum(struct.unpack(f"!{len(data) // 2}H", data)))


def segment(seq, payload, flags=ACK, version=4, ports=(5201, 40000), ack=7, options=b"", ident=0, ttl=64):
    """A TCP segment with correct IP and TCP checksums."""
    source, destination = V4 if version == 4 else V6
    doff = 20 + len(options)
    tcp = struct.pack("!HHIIBBHHH", *ports, seq & 0xFFFFFFFF, ack, (doff // 4) << 4, flags, 512, 0, 0) + options
    pseudo = source + destination + struct.pack("!BBH", 0, 6, doff + len(payload))
    check = 0xFFFF - sum16(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", check) + tcp[18:]
    if version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + doff + len(payload), ident, 0x4000, ttl, 6, 0, source, destination)
        ip = ip[:10] + struct.pack("!H", 0xFFFF - sum16(ip)) + ip[12:]
    else:
        ip = struct.pack("!IHBB16s16s", 0x60000000, doff + len(payload), 6, ttl, source, destination)
    return ip + tcp + payload


def resegment(write):
    """What the kernel does with a write: split a GSO packet back into segments with full checksums."""
    vnet, packet = write[0], b"".join(bytes(p) for p in write[1:])
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = struct.unpack("<BBHHHH", vnet)
    if gso_type == 0:
        return [packet]
    assert flags == NEEDS_CSUM and csum_offset == 16
    version = 4 if gso_type == GSO_TCPV4 else 6
    ip_length = csum_start
    header, payload = packet[:hdr_len], packet[hdr_len:]
    if version == 4:
        assert sum16(header[:20]) == 0xFFFF  # the merged IPv4 header's checksum is right
        source, destination = header[12:16], header[16:20]
    else:
        source, destination = header[8:24], header[24:40]
    tcp_total = len(packet) - ip_length
    assert struct.unpack_from("!H", header, ip_length + 16)[0] == sum16(source + destination + struct.pack("!BBH", 0, 6, tcp_total))
    seq = struct.unpack_from("!I", header, ip_length + 4)[0]
    flags_byte = header[ip_length + 13]
    out = []
    chunks = [payload[i : i + gso_size] for i in range(0, len(payload), gso_size)]
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        f = flags_byte if last else flags_byte & ~PSH
        options = bytes(header[ip_length + 20 : hdr_len])
        ports = struct.unpack_from("!HH", header, ip_length)
        ack = struct.unpack_from("!I", header, ip_length + 8)[0]
        out.append(segment(seq, chunk, f, version, ports, ack, options))
        seq += len(chunk)
    return out


def same(a, b):
    """Equal but for the IPv4 ID and header checksum, which GSO rewrites."""
    if a[0] >> 4 == 4:
        return a[:4] + a[6:10] + a[12:] == b[:4] + b[6:10] + b[12:]
    return a == b


@pytest.mark.parametrize("version", [4, 6])
def test_a_run_of_one_flow_becomes_one_write_that_segments_back(version):
    packets = [segment(1000 + 1000 * n, bytes([n]) * 1000, version=version, ident=n) for n in range(10)]
    packets.append(segment(11000, b"end", ACK | PSH, version=version, ident=10))
    writes = coalesce(packets)
    assert len(writes) == 1
    flags, gso_type, hdr_len, gso_size, csum_start, _ = struct.unpack("<BBHHHH", writes[0][0])
    assert (flags, gso_type, gso_size) == (NEEDS_CSUM, GSO_TCPV4 if version == 4 else GSO_TCPV6, 1000)
    assert csum_start == (20 if version == 4 else 40) and hdr_len == csum_start + 20
    again = resegment(writes[0])
    assert len(again) == len(packets) and all(same(x, y) for x, y in zip(again, packets))


def test_timestamps_option_must_match():
    ts = lambda v: b"\x01\x01\x08\x0a" + struct.pack("!II", v, 0)  # noqa: E731
    same_ts = [segment(1 + 100 * n, b"x" * 100, options=ts(5)) for n in range(3)]
    assert len(coalesce(same_ts)) == 1
    assert all(same(x, y) for x, y in zip(resegment(coalesce(same_ts)[0]), same_ts))
    changing = [segment(1 + 100 * n, b"x" * 100, options=ts(n)) for n in range(3)]
    assert len(coalesce(changing)) == 3


@pytest.mark.parametrize("case", ["gap", "other flow", "syn", "fin", "pure ack", "longer after shorter", "udp",
                                  "other ack", "other window", "other ttl", "ipv6 after ipv4"])
def test_what_is_not_merged_is_written_alone(case):
    a = segment(1, b"a" * 100)
    b = {
        "other ack": segment(101, b"b" * 100, ack=8),
        "other window": segment(101, b"b" * 100)[:34] + struct.pack("!H", 513) + segment(101, b"b" * 100)[36:],
        "other ttl": segment(101, b"b" * 100, ttl=63),
        "ipv6 after ipv4": segment(101, b"b" * 100, version=6),
        "gap": segment(150, b"b" * 100),
        "other flow": segment(101, b"b" * 100, ports=(5201, 40001)),
        "syn": segment(101, b"b" * 100, ACK | SYN),
        "fin": segment(101, b"b" * 100, ACK | FIN),
        "pure ack": segment(101, b""),
        "longer after shorter": segment(101, b"b" * 100),
        "udp": struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, *V4) + bytes(8),
    }[case]
    if case == "longer after shorter":
        a = segment(1, b"a" * 50)
        b = segment(51, b"b" * 100)
    writes = coalesce([a, b])
    assert writes == [[ZERO_HEADER, a], [ZERO_HEADER, b]]


def test_psh_ends_a_run_and_a_new_one_starts():
    packets = [segment(1, b"a" * 10), segment(11, b"b" * 10, ACK | PSH), segment(21, b"c" * 10), segment(31, b"d" * 10)]
    writes = coalesce(packets)
    assert len(writes) == 2
    assert [len(resegment(w)) for w in writes] == [2, 2]


def test_the_length_field_bounds_a_run():
    packets = [segment(1 + 1400 * n, b"z" * 1400) for n in range(60)]
    writes = coalesce(packets)
    assert len(writes) == 2
    assert all(len(b"".join(bytes(p) for p in w[1:])) <= 65535 for w in writes)
    assert sum(len(resegment(w)) for w in writes) == 60


@pytest.mark.parametrize("version", [4, 6])
def test_a_run_across_the_sequence_number_wrap_is_one_write(version):
    start = (1 << 32) - 250
    packets = [segment(start + 100 * n, bytes([n]) * 100, version=version) for n in range(5)]
    writes = coalesce(packets)
    assert len(writes) == 1
    assert all(same(x, y) for x, y in zip(resegment(writes[0]), packets))


def test_complete_checksum_finishes_a_partial_one():
    full = segment(1, b"hello world")
    source, destination = V4
    partial = bytearray(full)
    struct.pack_into("!H", partial, 36, sum16(source + destination + struct.pack("!BBH", 0, 6, len(full) - 20)))
    assert complete_checksum(bytes(partial), 20, 16) == full


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 300), st.sampled_from([ACK, ACK | PSH])), min_size=1, max_size=30))
def test_any_stream_segments_back_to_itself(spec):
    """Random runs of segments from a few flows: writing the coalesced result gives back every packet,
    in order (per flow), byte for byte."""
    seqs = {}
    packets = []
    for flow, size, flags in spec:
        seq = seqs.get(flow, 1)
        packets.append(segment(seq, bytes([flow]) * size, flags, ports=(5201, 40000 + flow)))
        seqs[flow] = seq + size
    again = [p for w in coalesce(packets) for p in resegment(w)]
    assert len(again) == len(packets) and all(same(x, y) for x, y in zip(again, packets))
