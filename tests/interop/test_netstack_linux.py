"""The userspace stack against Linux's own IP, ICMP, UDP and TCP, over a TUN device.

    ns "nsip<pid>"                                      this process
    tun "nsip<pid>t" 10.77.0.1/24, fd77::1/64  <--fd-->  Stack 10.77.0.2/24, fd77::2/64 (a thread: reads the
      ping, ncat, the kernel's TCP                       TUN, runs the stack on the monotonic clock, serves)

The TUN device is made here and moved into the namespace; its descriptor stays with the stack's thread.
Linux pings the stack, meets its port unreachable and its RST, sends to and receives from its TCP
listener, and takes a connection the stack opens: 1 MiB each time, checked by SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import random
import select
import subprocess
import sys
import threading
import time

import pytest

from wgpy.netstack.stack import Stack

from ..netns import require

PAYLOAD = random.Random(77).randbytes(1 << 20)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
LINUX4, LINUX6 = "10.77.0.1", "fd77::1"
STACK4, STACK6 = "10.77.0.2", "fd77::2"
UDP_KNOCK = """
import errno, socket
s = socket.socket(socket.{family}, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("{address}", 9))
s.send(b"knock")
try:
    s.recv(100)
    print("ANSWERED")
except ConnectionRefusedError:
    print("ECONNREFUSED")
except socket.timeout:
    print("TIMEOUT")
"""


class StackThread:
    """A Stack on a TUN descriptor, run in a thread with the monotonic clock; ``serve`` is called each turn."""

    def __init__(self, tun, stack: Stack) -> None:
        self.tun, self.stack = tun, stack
        self.jobs: list = []            # callables (stack, now) -> bool (True: done, drop it)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def add(self, job) -> None:
        with self.lock:
            self.jobs.append(job)

    def _run(self) -> None:
        try:
            stack, tun = self.stack, self.tun
            while not self.stop.is_set():
                deadline = stack.next_deadline()
                wait = 0.005 if deadline is None else min(max(deadline - time.monotonic(), 0.0), 0.005)
                select.select([tun.fd], [], [], wait)
                packets = []
                while (packet := tun.read()) is not None and len(packets) < 256:
                    packets.append(packet)
                now = time.monotonic()
                if packets:
                    stack.receive_packets(packets, now)
                stack.poll(now)
                with self.lock:
                    self.jobs = [job for job in self.jobs if not job(stack, now)]
                for packet in stack.packets_to_send():
                    tun.write(packet)
                stack.events()
        except BaseException as error:   # the test reports it
            self.error = error

    def __enter__(self) -> StackThread:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def linux():
    require("ip", "ping", "ncat")
    from wgpy.runtime.tun import Tun

    ns, name = f"nsip{os.getpid() % 10000}", f"nsip{os.getpid() % 10000}t"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    tun = Tun(name, mtu=1420, vnet_hdr=False)
    try:
        def run(*command: str) -> None:
            subprocess.run(command, check=True, capture_output=True, timeout=10)
        run("ip", "link", "set", "dev", name, "netns", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "addr", "add", f"{LINUX4}/24", "dev", name)
        run("ip", "-n", ns, "addr", "add", f"{LINUX6}/64", "dev", name, "nodad")
        run("ip", "-n", ns, "link", "set", name, "up")
        stack = Stack([f"{STACK4}/24", f"{STACK6}/64"], mtu=1420, rng=os.urandom)
        with StackThread(tun, stack) as runner:
            yield ns, runner
            assert runner.error is None, repr(runner.error)
    finally:
        tun.close()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def in_ns(ns: str, *command: str, data: bytes | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *command], input=data, capture_output=True, timeout=timeout)


def test_linux_pings_the_stack_and_meets_its_refusals(linux):
    ns, runner = linux
    for address in (STACK4, STACK6):
        result = in_ns(ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", address)
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
        assert b" 0% packet loss" in result.stdout
    # UDP to a closed port: Linux reads the stack's port unreachable as ECONNREFUSED on a connected socket.
    for family, address in (("AF_INET", STACK4), ("AF_INET6", STACK6)):
        udp = in_ns(ns, sys.executable, "-c", UDP_KNOCK.format(family=family, address=address))
        assert udp.stdout.strip() == b"ECONNREFUSED", udp.stdout + udp.stderr
    # TCP to a closed port: the stack's RST is a refusal for Linux too, in both families.
    for address in (STACK4, STACK6):
        tcp = in_ns(ns, "ncat", "-w", "3", address, "81", data=b"")
        assert b"Connection refused" in tcp.stderr, tcp.stderr


def _serve_once(port: int, received: dict, send: bytes | None = None):
    """A job: listen on ``port``; for one connection, send ``send`` then close, or read to EOF into ``received``."""
    state = {"listener": None, "conn": None, "sent": 0, "data": bytearray()}

    def job(stack, now) -> bool:
        if state["listener"] is None:
            state["listener"] = stack.tcp_listen(port=port)
        conn = state["conn"] or state["listener"].accept()
        if conn is None:
            return False
        state["conn"] = conn
        if send is not None:
            if state["sent"] < len(send):
                state["sent"] += conn.send(send[state["sent"]:state["sent"] + 65536])
                if state["sent"] == len(send):
                    conn.close()
            return False
        while chunk := conn.recv(65536):
            state["data"] += chunk
        if conn.at_eof:
            received["data"] = bytes(state["data"])
            conn.close()
            return True
        return False
    return job


@pytest.mark.parametrize("address", [STACK4, STACK6])
def test_linux_tcp_sends_a_mib_to_the_stack_and_receives_one(address, linux):
    ns, runner = linux
    received: dict = {}
    runner.add(_serve_once(8080, received))
    start = time.monotonic()
    upload = in_ns(ns, "ncat", "--send-only", "-w", "10", address, "8080", data=PAYLOAD)
    assert upload.returncode == 0, upload.stderr
    for _ in range(200):
        if "data" in received:
            break
        time.sleep(0.05)
    assert hashlib.sha256(received.get("data", b"")).hexdigest() == DIGEST
    upload_seconds = time.monotonic() - start
    runner.add(_serve_once(8081, {}, send=PAYLOAD))
    start = time.monotonic()
    download = in_ns(ns, "ncat", "--recv-only", "-w", "10", address, "8081")
    assert hashlib.sha256(download.stdout).hexdigest() == DIGEST, (len(download.stdout), download.stderr)
    print(f"\n{address}: 1 MiB Linux -> stack in {upload_seconds:.2f} s, stack -> Linux in {time.monotonic() - start:.2f} s")


def test_the_stack_connects_to_linux_and_sends_a_mib(linux):
    ns, runner = linux
    server = subprocess.Popen(["ip", "netns", "exec", ns, "ncat", "-l", "--recv-only", LINUX4, "9000"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)   # ncat listening
        state = {"conn": None, "sent": 0}

        def job(stack, now) -> bool:
            if state["conn"] is None:
                state["conn"] = stack.tcp_connect((LINUX4, 9000), now)
            conn = state["conn"]
            if state["sent"] < len(PAYLOAD):
                state["sent"] += conn.send(PAYLOAD[state["sent"]:state["sent"] + 65536])
                if state["sent"] == len(PAYLOAD):
                    conn.close()
            return False
        runner.add(job)
        out, err = server.communicate(timeout=30)
        assert hashlib.sha256(out).hexdigest() == DIGEST, (len(out), err)
        assert state["conn"].error is None
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
