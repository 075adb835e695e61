"""Packets Linux sent, as data with their source (STYLE.md: vectors are data with a source).

Captured on 2026-12-04 with ``tcpdump -i lo -w`` in a network namespace of Linux 6.18 (lo up, 10.0.0.2/24
and fd00::2/64 on it; the 14 bytes of lo's Ethernet header removed), from:

    ping -c1 -p 41424344 -s 12 10.0.0.2
    ping -6 -c1 -s 12 fd00::2
    echo -n hello | ncat -u -s 10.0.0.2 -p 40000 10.0.0.2 5353       (nothing listening: port unreachable)
    echo -n hello | ncat -u -s fd00::2 -p 40000 fd00::2 5353

On lo the UDP checksum is offloaded (CHECKSUM_PARTIAL): the captured UDP checksum field holds only the
pseudo-header sum, which tshark flags ("incorrect, should be 0xf6d4 (maybe caused by UDP checksum
offload)"). The correct values tshark 4 computed are below; ICMP checksums are computed by the kernel in
software and are the real ones.
"""

ECHO_REQUEST_V4 = bytes.fromhex("450000287d7840004001a9590a0000020a0000020800526d17fe0001414243444142434441424344")
ECHO_REPLY_V4 = bytes.fromhex("450000287d7900004001e9580a0000020a00000200005a6d17fe0001414243444142434441424344")
ECHO_REQUEST_V6 = bytes.fromhex(
    "6005ab3300143a40fd000000000000000000000000000002fd000000000000000000000000000002"
    "80004f8717ff0001000102030405060708090a0b")
ECHO_REPLY_V6 = bytes.fromhex(
    "600dae9f00143a40fd000000000000000000000000000002fd000000000000000000000000000002"
    "81004e8717ff0001000102030405060708090a0b")
UDP_V4 = bytes.fromhex("45000021651f40004011c1a90a0000020a0000029c4014e9000d142268656c6c6f")
PORT_UNREACHABLE_V4 = bytes.fromhex(
    "45c0003d7d7e00004001e87e0a0000020a0000020303f3d10000000045000021651f40004011c1a90a0000020a0000029c40"
    "14e9000d142268656c6c6f")
UDP_V6 = bytes.fromhex(
    "600f95d8000d1140fd000000000000000000000000000002fd0000000000000000000000000000029c4014e9000dfa2368656c6c6f")
PORT_UNREACHABLE_V6 = bytes.fromhex(
    "60063676003d3a40fd000000000000000000000000000002fd000000000000000000000000000002"
    "0104141700000000600f95d8000d1140fd000000000000000000000000000002fd0000000000000000000000000000029c4014e9"
    "000dfa2368656c6c6f")

UDP_CHECKSUM_V4 = 0xF6D4   # tshark -o udp.check_checksum:TRUE: "should be 0xf6d4"
UDP_CHECKSUM_V6 = 0x10D3   # tshark: "should be 0x10d3"


def with_udp_checksum(packet: bytes, value: int) -> bytes:
    """``packet`` (IPv4 without options, or IPv6 without extension headers) with its UDP checksum set."""
    at = (20 if packet[0] >> 4 == 4 else 40) + 6
    return packet[:at] + value.to_bytes(2, "big") + packet[at + 2:]


ADDRESS_V4 = bytes([10, 0, 0, 2])
ADDRESS_V6 = bytes.fromhex("fd000000000000000000000000000002")
