"""Fuzz a local wireguard-go with wgpy's crafting API (wgpy/craft.py): a bounded campaign of handshake and
transport messages, each with one field mutated, and after every batch the proof that wireguard-go still
completes a legitimate handshake and carries a ping through it.

    this process: UDP 127.0.0.1:<ours>                       wireguard-go, interface wgfuzz0, UDP 127.0.0.1:<port>
      F  fuzzes initiations and transport    ---- loopback --->  peer F  10.77.0.3/32 (preshared key)
      R  fuzzes responses and cookie replies  <--- initiations --  peer R  10.77.0.4/32 (preshared key)
      P  probes: handshake, ping, wg show     <------------------> peer P  10.77.0.2/32; tunnel 10.77.0.1/24

Everything runs in a network namespace of its own, created here and deleted at the end (``--here`` runs in
the current one instead, as the CI test does inside its own). Needs root, ``ip``, ``wg`` and wireguard-go::

    python examples/fuzz_wireguard_go.py --count 20000 --seconds 300 --seed 1

Each batch sends ``--batch`` mutated messages: initiations from F (any field but the timestamp, since a
timestamp from the future would lock F out for good, as the protocol intends), responses from R to
wireguard-go's pending initiation, cookie replies to it, and transport messages in F's session. Then P
does a fresh handshake (answering a cookie reply with MAC2 if wireguard-go is under load), pings
10.77.0.1 through the tunnel and finds its handshake in ``wg show latest-handshakes``. The campaign stops
at ``--count`` messages or ``--seconds``; the exit status is 1 if wireguard-go died or a check failed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wgpy import craft  # noqa: E402
from wgpy.core.crypto import PrivateKey  # noqa: E402
from wgpy.core.encoding import key_to_base64  # noqa: E402
from wgpy.core.errors import Rejected  # noqa: E402

TUNNEL = "10.77.0.1"
P_ADDRESS, F_ADDRESS, R_ADDRESS = "10.77.0.2", "10.77.0.3", "10.77.0.4"
SOCKETS = Path("/var/run/wireguard")
INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT = 1, 2, 3, 4


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(source: str, destination: str, protocol: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, protocol, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def echo_request(identifier: int, sequence: int) -> bytes:
    body = struct.pack("!BBHHH", 8, 0, 0, identifier, sequence) + b"wgpy craft probe"
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]


class Clock:
    """TAI64N timestamps that only go forward, however fast they are asked for."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> bytes:
        self.last = max(time.time_ns(), self.last + 1)
        return craft.timestamp(self.last // 10**9, self.last % 10**9)


class Campaign:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.clock = Clock()
        self.keys = {name: PrivateKey.generate(self.randbytes) for name in "WFRP"}
        self.psk = self.randbytes(32)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.trigger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.target = ("127.0.0.1", args.port)
        self.sent: collections.Counter = collections.Counter()
        self.answers: collections.Counter = collections.Counter()
        self.checks = 0
        self.process: subprocess.Popen | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="wgpy-fuzz-"))
        self.pending_initiation: bytes | None = None     # wireguard-go's latest initiation to R
        self.session = None                               # (keys, wireguard-go's index) of F's session
        self.counter = 0

    def randbytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def index(self) -> int:
        return self.rng.getrandbits(32)

    # ------------------------------------------------------------------ wireguard-go

    def start(self) -> None:
        name = self.args.interface
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        log = open(self.workdir / "wireguard-go.log", "w")
        env = dict(os.environ, LOG_LEVEL="verbose" if self.args.verbose else "error")
        self.process = subprocess.Popen([self.args.wireguard_go, "-f", name], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 10
        while not (SOCKETS / f"{name}.sock").exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("wireguard-go did not start")
            time.sleep(0.05)
        for label, key in (("private", self.keys["W"].private_bytes()), ("psk", self.psk)):
            path = self.workdir / label
            path.write_text(key_to_base64(key) + "\n")
            path.chmod(0o600)
        ours = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.wg("set", name, "private-key", str(self.workdir / "private"), "listen-port", str(self.args.port),
                "peer", key_to_base64(self.keys["P"].public), "allowed-ips", f"{P_ADDRESS}/32", "endpoint", ours,
                "peer", key_to_base64(self.keys["F"].public), "allowed-ips", f"{F_ADDRESS}/32", "endpoint", ours,
                "preshared-key", str(self.workdir / "psk"))
        self.add_r()
        subprocess.run(["ip", "address", "add", f"{TUNNEL}/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)

    def add_r(self) -> None:
        """(Re)make peer R, so that wireguard-go has no session with it and initiates when asked to."""
        ours = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.wg("set", self.args.interface, "peer", key_to_base64(self.keys["R"].public), "remove")
        self.wg("set", self.args.interface, "peer", key_to_base64(self.keys["R"].public), "allowed-ips", f"{R_ADDRESS}/32",
                "endpoint", ours, "preshared-key", str(self.workdir / "psk"))
        self.pending_initiation = None

    def wg(self, *args: str) -> str:
        return subprocess.run(["wg", *args], check=True, capture_output=True, text=True).stdout

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        (SOCKETS / f"{self.args.interface}.sock").unlink(missing_ok=True)
        subprocess.run(["ip", "link", "del", self.args.interface], capture_output=True)

    def log_tail(self) -> str:
        lines = (self.workdir / "wireguard-go.log").read_text(errors="replace").splitlines()
        return "\n".join(lines[-20:])

    # ------------------------------------------------------------------ the network

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.target)

    def receive(self, timeout: float) -> list[bytes]:
        """Everything that arrives within ``timeout`` (at least what is already waiting)."""
        found, deadline = [], time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return found
            data = self.sock.recv(65535)
            found.append(data)
            self.note(data)

    def note(self, data: bytes) -> None:
        kind = data[0] if data else 0
        self.answers[{1: "initiation", 2: "response", 3: "cookie reply", 4: "transport"}.get(kind, "other")] += 1
        if kind == INITIATION and len(data) == 148 and craft.stamp_macs(data, self.keys["R"].public)[-32:-16] == data[-32:-16]:
            self.pending_initiation = data   # MAC1 says it is for R

    def wait_for(self, predicate, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for data in self.receive(min(0.05, deadline - time.monotonic())):
                if predicate(data):
                    return data
        return None

    # ------------------------------------------------------------------ legitimate handshakes

    def handshake(self, name: str, attempts: int = 8):
        """A full handshake as ``name`` (F or P), answering a cookie reply with MAC2: the keys, the indices."""
        key, psk = self.keys[name], self.psk if name == "F" else None
        cookie = None
        for attempt in range(attempts):
            ours = self.index()
            hello = craft.initiation(key, self.keys["W"].public, ephemeral=PrivateKey.generate(self.randbytes),
                                     sender_index=ours, timestamp=self.clock.next(), cookie=cookie)
            self.send(hello.data)
            answer = self.wait_for(lambda d: len(d) in (64, 92) and d[0] in (2, 3)
                                   and int.from_bytes(d[4 if d[0] == 3 else 8:][:4], "little") == ours, 1.0)
            if answer is None:
                time.sleep(0.05 * (attempt + 1))   # wireguard-go refuses initiations closer than 20 ms
                continue
            if answer[0] == COOKIE_REPLY:
                cookie = craft.open_cookie_reply(answer, self.keys["W"].public, craft.mac1_of(hello.data))
                continue
            keys = craft.finish(hello, answer, psk=psk)
            return keys, ours, int.from_bytes(answer[4:8], "little")
        return None

    def probe(self, since: float) -> str | None:
        """P's handshake, a ping through the tunnel, and the handshake in wg show; None when all is well."""
        done = self.handshake("P")
        if done is None:
            return "no response to a legitimate initiation"
        keys, ours, theirs = done
        identifier, sequence = self.rng.getrandbits(16), self.checks & 0xFFFF
        ping = ipv4(P_ADDRESS, TUNNEL, 1, echo_request(identifier, sequence))
        self.send(craft.transport(keys.sending_key, receiver_index=theirs, counter=0, payload=ping).data)
        reply, deadline = None, time.monotonic() + 3
        while reply is None and time.monotonic() < deadline:
            data = self.wait_for(lambda d: d[:1] == b"\x04" and int.from_bytes(d[4:8], "little") == ours,
                                 deadline - time.monotonic())
            if data is None:
                break
            try:
                plain = craft.open_transport(keys.receiving_key, data)
            except Rejected:
                return "a transport message to P that does not decrypt"
            if len(plain) >= 28 and plain[9] == 1 and plain[20] == 0 and struct.unpack("!HH", plain[24:28]) == (identifier, sequence):
                reply = plain
        if reply is None:
            return "no echo reply through the tunnel"
        latest = dict(line.split("\t") for line in self.wg("show", self.args.interface, "latest-handshakes").split("\n") if line)
        if int(latest.get(key_to_base64(self.keys["P"].public), "0")) < int(since) - 1:
            return f"wg show latest-handshakes does not show P's handshake: {latest}"
        return None

    # ------------------------------------------------------------------ mutated messages

    def base(self, kind: str) -> craft.Crafted | None:
        """A valid message of ``kind`` to mutate, or None when this batch has none to offer."""
        if kind == "initiation":
            return craft.initiation(self.keys["F"], self.keys["W"].public, ephemeral=PrivateKey.generate(self.randbytes),
                                    sender_index=self.index(), timestamp=self.clock.next())
        pending = self.pending_initiation
        if kind == "response" and pending is not None:
            return craft.response(self.keys["R"], pending, ephemeral=PrivateKey.generate(self.randbytes),
                                  sender_index=self.index(), psk=self.psk)
        if kind == "cookie reply" and pending is not None:
            return craft.cookie_reply(self.keys["R"].public, receiver_index=int.from_bytes(pending[4:8], "little"),
                                      nonce=self.randbytes(24), cookie=self.randbytes(16), mac1=craft.mac1_of(pending))
        if kind == "transport" and self.session is not None:
            keys, theirs = self.session
            self.counter += 1
            payload = ipv4(F_ADDRESS, TUNNEL, 17, struct.pack("!HHHH", 4242, 9, 12, 0) + b"fuzz")
            return craft.transport(keys.sending_key, receiver_index=theirs, counter=self.counter, payload=payload)
        return None

    def batch(self, size: int) -> None:
        # A fresh R, initiated to by wireguard-go; a fresh session for F.
        self.add_r()
        self.trigger.sendto(b"to R", (R_ADDRESS, 9))
        self.wait_for(lambda d: self.pending_initiation is not None, 1.0)
        done = self.handshake("F")
        self.session = (done[0], done[2]) if done else None
        if self.session:
            self.send(craft.transport(self.session[0].sending_key, receiver_index=self.session[1], counter=0, payload=b"").data)
            self.counter = 0
        sent = 0
        while sent < size:
            kind = self.rng.choice(("initiation", "response", "cookie reply", "transport"))
            base = self.base(kind)
            if base is None:
                continue
            fields = [f for f in craft.fields(base) if f is not craft.Field.TIMESTAMP]
            mutation = craft.mutate(base, self.rng.choice(fields), rng=self.randbytes, remac=self.rng.random() < 0.9)
            self.send(mutation.data)
            self.sent[f"{kind}: {mutation.field.name}"] += 1
            sent += 1
            if sent % 32 == 0:
                self.receive(0)

    def run(self) -> int:
        self.start()
        started, total, failure = time.monotonic(), 0, None
        try:
            while total < self.args.count and time.monotonic() - started < self.args.seconds:
                size = min(self.args.batch, self.args.count - total)
                since = time.time()
                self.batch(size)
                total += size
                self.receive(0.05)
                if self.process.poll() is not None:
                    failure = f"wireguard-go exited with {self.process.returncode}"
                    break
                failure = self.probe(since)
                self.checks += 1
                if failure:
                    break
        finally:
            elapsed = time.monotonic() - started
            alive = self.process.poll() is None
            report = {
                "messages": total, "batches": self.checks, "seconds": round(elapsed, 1),
                "messages_per_second": round(total / elapsed) if elapsed else 0,
                "wireguard_go_alive": alive, "failure": failure,
                "answers": dict(self.answers), "sent": dict(sorted(self.sent.items())),
            }
            print(json.dumps(report, indent=1))
            if failure:
                print(self.log_tail(), file=sys.stderr)
            self.stop()
            shutil.rmtree(self.workdir, ignore_errors=True)
        return 1 if failure else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000, help="mutated messages in all (default 5000)")
    parser.add_argument("--seconds", type=float, default=60, help="time limit (default 60)")
    parser.add_argument("--batch", type=int, default=250, help="messages between two legitimate handshakes")
    parser.add_argument("--seed", type=int, default=None, help="seed of the mutations and keys")
    parser.add_argument("--interface", default="wgfuzz0")
    parser.add_argument("--port", type=int, default=51999, help="wireguard-go's UDP port")
    parser.add_argument("--wireguard-go", default="wireguard-go")
    parser.add_argument("--here", action="store_true", help="run in this network namespace")
    parser.add_argument("--verbose", action="store_true", help="wireguard-go's LOG_LEVEL=verbose")
    args = parser.parse_args()
    if args.here:
        sys.exit(Campaign(args).run())
    namespace = f"wgpyfuzz{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        code = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, __file__, "--here", *sys.argv[1:]]).returncode
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
