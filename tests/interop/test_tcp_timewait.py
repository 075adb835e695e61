"""A four-tuple that Linux holds in TIME-WAIT, opened again by a SYN whose ISN is below the old connection's
(as a new process's RFC 6528 secret gives half the time): Linux takes it at once when the SYN carries a
TSval newer than the old connection's (RFC 6191, Linux's tcp_timewait_state_process); without timestamps
it answers with an ACK, our RST clears the TIME-WAIT, and the SYN waits for its 1 s retransmission.

    this process                                  namespace tts<pid>ns
    TcpConnection 10.78.0.2 ── fd of TUN tts<pid> ──► tts<pid>: 10.78.0.1/24, fd78::1/64,
                  fd78::2                                        a Python server that writes "hello" and
                                                                 closes first (so Linux keeps TIME-WAIT)

The harness is test_tcp_kernel.py's (a TUN moved into a namespace, its descriptor kept here), with the
prefix ``tts`` and its own addresses. Needs root: fails in CI without it, skips elsewhere.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import time

import pytest

from wgpy.netstack.checksum import checksum
from wgpy.netstack.errors import NetDrop
from wgpy.netstack.tcp import TcpConfig, TcpConnection, TcpState, parse
from wgpy.netstack.tcp.segment import ACK, SYN, Segment

from ..netns import require, sh

ADDRESSES = {4: (bytes([10, 78, 0, 2]), bytes([10, 78, 0, 1])),  # (ours, the kernel's)
             6: (bytes.fromhex("fd780000000000000000000000000002"), bytes.fromhex("fd780000000000000000000000000001"))}
KERNEL_ADDRESS = {4: "10.78.0.1", 6: "fd78::1"}
MTU = 1420
MSS = {4: MTU - 40, 6: MTU - 60}
IPV4 = struct.Struct("!BBHHHBBH4s4s")
IPV6 = struct.Struct("!IHBB16s16s")
PORT = 7000
FIRST_LOCAL_PORT = 50000
STEP_LIMIT = 10.0  # seconds for one connection's whole life, at most

# Accept ``count`` connections; to each, write "hello" and close first: Linux's side ends in TIME-WAIT.
KERNEL_SERVER = """
import socket, sys
address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
server = socket.create_server((address, port), family=socket.AF_INET6 if ":" in address else socket.AF_INET)
print("listening", flush=True)
for _ in range(count):
    connection, _ = server.accept()
    connection.sendall(b"hello")
    connection.close()
print("served", flush=True)
"""


def ip_packet(source: bytes, destination: bytes, payload: bytes) -> bytes:
    if len(source) == 16:
        return IPV6.pack(6 << 28, len(payload), 6, 64, source, destination) + payload
    header = IPV4.pack(0x45, 0, 20 + len(payload), 0, 0x4000, 64, 6, 0, source, destination)
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


class Link:
    """The TUN device in its namespace, and the kernel's server in it."""

    def __init__(self, family: int) -> None:
        from wgpy.runtime.tun import Tun
        self.family = family
        self.ours, self.theirs = ADDRESSES[family]
        self.name = f"tts{os.getpid() % 100000}"
        self.namespace = f"{self.name}ns"
        self.tun = Tun(self.name, mtu=MTU, vnet_hdr=False)
        self.process: subprocess.Popen | None = None
        try:
            subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)
            sh("ip", "netns", "add", self.namespace)
            sh("ip", "link", "set", self.name, "netns", self.namespace)
            sh("ip", "-n", self.namespace, "addr", "add", "10.78.0.1/24", "dev", self.name)
            sh("ip", "-n", self.namespace, "addr", "add", "fd78::1/64", "dev", self.name, "nodad")
            sh("ip", "-n", self.namespace, "link", "set", self.name, "up")
            sh("ip", "-n", self.namespace, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.tun.close()
        for pid in subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True,
                                  text=True).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)

    def serve(self, count: int) -> None:
        self.process = subprocess.Popen(["ip", "netns", "exec", self.namespace, sys.executable, "-c", KERNEL_SERVER,
                                         KERNEL_ADDRESS[self.family], str(PORT), str(count)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "listening"

    def time_wait_count(self) -> int:
        out = subprocess.run(["ip", "netns", "exec", self.namespace, "ss", "-Htn", "state", "time-wait"],
                             capture_output=True, text=True).stdout
        return len(out.splitlines())

    def receive(self, timeout: float) -> list[Segment]:
        ready, _, _ = select.select([self.tun.fd], [], [], max(timeout, 0.0))
        segments = []
        while ready and len(segments) < 256:
            packet = self.tun.read()
            if packet is None:
                break
            if packet[0] >> 4 == 4 and packet[9] == 6 and packet[16:20] == self.ours:
                source, payload = packet[12:16], packet[(packet[0] & 0xF) * 4:]
            elif packet[0] >> 4 == 6 and packet[6] == 6 and packet[24:40] == self.ours:
                source, payload = packet[8:24], packet[40:]
            else:
                continue
            segment = parse(payload, source, self.ours)
            if not isinstance(segment, NetDrop):
                segments.append(segment)
        return segments

    def life(self, connection: TcpConnection) -> tuple[float | None, int]:
        """Drive one connection: read "hello", close after the kernel did. Returns (seconds from the first
        SYN to ESTABLISHED, SYNs sent)."""
        start = time.monotonic()
        established_at = None
        syns = 0
        received = b""
        while time.monotonic() - start < STEP_LIMIT:
            now = time.monotonic()
            if connection.next_deadline() is not None and connection.next_deadline() <= now:
                connection.handle_timer(now)
            received += connection.recv(1 << 16)
            if connection.at_eof and not connection.write_shut:
                connection.shutdown_write()
            for segment in connection.segments_to_send(now):
                syns += bool(segment.flags & SYN)
                self.tun.write(ip_packet(self.ours, self.theirs, segment.pack(self.ours, self.theirs)))
            if established_at is None and connection.state is not TcpState.SYN_SENT:
                established_at = now - start
            if connection.state is TcpState.CLOSED:
                assert connection.error is None and received == b"hello", (connection.error, received)
                return established_at, syns
            deadline = connection.next_deadline()
            for segment in self.receive(0.05 if deadline is None else min(0.05, deadline - now)):
                connection.receive(segment, time.monotonic())
        raise AssertionError(f"not closed in {STEP_LIMIT} s: {connection}")


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def link(request):
    require("ip", "ss")
    link = Link(request.param)
    try:
        yield link
    finally:
        link.close()


def reopen(link: Link, config: TcpConfig, count: int) -> list[tuple[float, int]]:
    """For ``count`` local ports in a row: one connection, closed first by Linux (TIME-WAIT there), then
    a new one on the same four-tuple, its ISN 2^30 below the first's, its TS clock the same wall-clock
    milliseconds (as ``Stack(epoch_offset=...)`` in a new process). Returns each new one's (seconds to
    ESTABLISHED, SYNs sent)."""
    link.serve(2 * count)
    mss = MSS[link.family]
    results = []
    for i in range(count):
        local, remote = (link.ours, FIRST_LOCAL_PORT + i), (link.theirs, PORT)
        iss = (0x9E3779B9 * (i + 1)) & 0xFFFFFFFF
        ts_offset = int((time.time() - time.monotonic()) * 1000)
        first = TcpConnection.open(local, remote, iss, time.monotonic(), mss, config, ts_offset)
        established, syns = link.life(first)
        assert syns == 1 and established is not None and first.ts_ok == config.timestamps
        before = link.time_wait_count()
        assert before >= 1, "Linux did not keep the old connection in TIME-WAIT"
        ts_offset = int((time.time() - time.monotonic()) * 1000)  # a "new process" reads its clocks again
        second = TcpConnection.open(local, remote, (iss - (1 << 30)) & 0xFFFFFFFF, time.monotonic(), mss, config,
                                    ts_offset)
        results.append(link.life(second))
    assert link.process.wait(10) == 0
    return results


def test_linux_takes_our_syn_for_a_four_tuple_in_time_wait_at_once_thanks_to_timestamps(link):
    results = reopen(link, TcpConfig(), 8)
    assert all(syns == 1 for _, syns in results), results  # no SYN retransmitted
    assert max(seconds for seconds, _ in results) < 0.5, results


def test_without_timestamps_linux_refuses_it_and_the_syn_waits_a_second():
    """The check that the test above can fail: the same sequence without timestamps (IPv4 shows it)."""
    require("ip", "ss")
    link = Link(4)
    try:
        results = reopen(link, TcpConfig(timestamps=False), 3)
    finally:
        link.close()
    assert all(syns == 2 and seconds >= 0.9 for seconds, syns in results), results
