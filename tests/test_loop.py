"""The runtime survives its own bugs (h11's error strategy): an exception from the device while it handles a
UAPI operation, a TUN read batch, a UDP read batch, timers or the flush is logged with its traceback and
counted, and the loop goes on.

    test thread: UAPI client, UDP sender, "TUN" pipe  ──►  Runtime.run() in the main thread
                                                           (a real Udp, a real UapiServer in tmp_path,
                                                            a pipe standing in for the TUN device)
"""

import errno
import logging
import os
import signal
import socket
import threading
import time

import pytest

from wgpy.core.device import Device
from wgpy.runtime.keylog import KeylogFile
from wgpy.core.encoding import key_to_base64
from wgpy.runtime.loop import Runtime, peer_name
from wgpy.runtime.uapi_socket import UapiServer, socket_path
from wgpy.runtime.udp import Udp

from .conftest import seeded_rng

EIO = b"errno=%d\n\n" % -errno.EIO


class PipeTun:
    """A TUN device stand-in: each byte written to ``feed`` makes one packet to read."""

    name = "wgtest0"

    def __init__(self) -> None:
        self.fd, self.feed = os.pipe()
        os.set_blocking(self.fd, False)
        self.gone = False

    def read(self) -> bytes | None:
        try:
            os.read(self.fd, 1)
        except BlockingIOError:
            return None
        return bytes(20)

    def write_many(self, packets) -> None:
        pass

    def exists(self) -> bool:
        return not self.gone

    def mtu(self) -> int | None:
        return None

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.feed)


def broken(*args, **kwargs):
    raise RuntimeError("injected")


def answer(client: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n\n"):
        chunk = client.recv(65536)
        assert chunk, f"the daemon hung up after {data!r}"
        data += chunk
    return data


@pytest.fixture
def signals():
    """Runtime.run() installs its own SIGTERM and SIGINT handlers: put pytest's back afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def wait_for(condition, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def serve_while(runtime: Runtime, tun: "PipeTun", client, caplog, level: int) -> dict:
    """Run the loop while ``client(results)`` talks to it from a thread; the loop stops (the TUN "goes")
    when the client is done, and whatever the client raised fails the test."""
    results: dict = {}

    def run_client() -> None:
        try:
            client(results)
        except BaseException as error:
            results["error"] = error
        finally:
            tun.gone = True   # stops the loop at its next housekeeping

    thread = threading.Thread(target=run_client, daemon=True)
    with caplog.at_level(level, logger="wgpy"):
        thread.start()
        try:
            assert runtime.run() == "interface was deleted"
        finally:
            tun.gone = True
            thread.join(10)
    assert "error" not in results, results["error"]
    return results


def test_a_bug_anywhere_is_logged_counted_and_survived(tmp_path, monkeypatch, caplog, signals):
    device = Device(rng=seeded_rng(3), epoch_offset=1.7e9)
    tun = PipeTun()
    runtime = Runtime(device, tun, Udp(offload=False), UapiServer("wgtest0", directory=str(tmp_path)))
    for method in ("remove_all_peers", "send_packets", "receive_datagrams", "datagrams_to_send"):
        monkeypatch.setattr(device, method, broken)
    monkeypatch.setattr("wgpy.core.prepare.prepare", broken)   # inside Device.prepare_handshakes

    def client(results: dict) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as uapi:
            uapi.settimeout(5)
            uapi.connect(socket_path("wgtest0", str(tmp_path)))
            # A bug in a UAPI operation: -EIO, and the same connection serves the next operation.
            uapi.sendall(b"set=1\nreplace_peers=true\n\n")
            results["set"] = answer(uapi)
            uapi.sendall(b"get=1\n\n")
            results["get"] = answer(uapi)
            # A bug in a TUN read batch and in a UDP read batch: dropped, and the UAPI still answers.
            os.write(tun.feed, b"x")
            wait_for(lambda: runtime.bugs["TUN read batch"] == 1, "the TUN batch's bug")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.sendto(b"\x01" + bytes(147), ("127.0.0.1", device.listen_port))
            wait_for(lambda: runtime.bugs["UDP read batch"] == 1, "the UDP batch's bug")
            uapi.sendall(b"get=1\n\n")
            results["get again"] = answer(uapi)
            # A bug while preparing handshakes (a peer to prepare for): the rest are computed when due.
            uapi.sendall(f"set=1\nprivate_key={bytes(range(1, 33)).hex()}\npublic_key={bytes(range(32, 64)).hex()}\n\n"
                         .encode())
            results["set peer"] = answer(uapi)
            wait_for(lambda: runtime.bugs["preparing handshakes"] == 1 and not device.to_prepare, "the bug")

    results = serve_while(runtime, tun, client, caplog, logging.ERROR)
    assert results["set"] == EIO
    assert results["get"].endswith(b"errno=0\n\n") and results["get again"].endswith(b"errno=0\n\n")
    assert runtime.bugs["UAPI operation"] == 1 and runtime.bugs["flush"] >= 1   # datagrams_to_send, each time
    # Each kind's first bug is logged with its traceback; a bug every flush is logged once a second at most.
    logged = {record.getMessage().split(",")[0]: record for record in caplog.records if record.exc_info}
    assert set(logged) == {f"Bug in wgpy ({kind}" for kind in ("UAPI operation", "TUN read batch", "UDP read batch",
                                                                "flush", "preparing handshakes")}
    assert runtime.bugs["preparing handshakes"] == 1
    assert all(isinstance(record.exc_info[1], RuntimeError) for record in logged.values())
    assert len([record for record in caplog.records if "flush" in record.getMessage()]) <= 3


def test_the_key_log_is_closed_with_the_rest_when_the_loop_stops(tmp_path, signals):
    tun = PipeTun()
    runtime = Runtime(Device(rng=seeded_rng(3), epoch_offset=1.7e9), tun, Udp(offload=False),
                      UapiServer("wgtest1", directory=str(tmp_path)))
    runtime.keylog = KeylogFile(str(tmp_path / "keys.log"))
    tun.gone = True
    assert runtime.run() == "interface was deleted"
    assert runtime.keylog.closed


def test_verbose_log_names_every_configuration_change(tmp_path, caplog, signals):
    """LOG_LEVEL=verbose shows what a UAPI set changed, as wireguard-go's log does."""
    device = Device(rng=seeded_rng(3), epoch_offset=1.7e9)
    tun = PipeTun()
    runtime = Runtime(device, tun, Udp(offload=False), UapiServer("wgtest2", directory=str(tmp_path)))
    peer = bytes(range(32, 64))

    def client(results: dict) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as uapi:
            uapi.settimeout(5)
            uapi.connect(socket_path("wgtest2", str(tmp_path)))
            uapi.sendall(f"set=1\nprivate_key={bytes(range(1, 33)).hex()}\npublic_key={peer.hex()}\n"
                         "endpoint=192.0.2.1:51820\n\n".encode())
            results["set"] = answer(uapi)
            uapi.sendall(f"set=1\npublic_key={peer.hex()}\nremove=true\n\n".encode())
            results["remove"] = answer(uapi)
            wait_for(lambda: any("Peer removed" in r.getMessage() for r in caplog.records), "the log line")

    serve_while(runtime, tun, client, caplog, logging.DEBUG)
    lines = [record.getMessage() for record in caplog.records]
    name = peer_name(peer)   # wireguard-go's short form: peer(ICEi…9Pj8)
    assert [line for line in lines if "Private key" in line or name in line] == [
        f"Private key changed: public key now {key_to_base64(device.private_key.public)}",
        f"{name} - Peer added", f"{name} - Endpoint changed to 192.0.2.1:51820", f"{name} - Peer removed"]


def test_the_idle_loop_prepares_every_peers_next_handshakes(tmp_path, caplog, signals):
    """Configured peers get their next initiation and response prepared while the loop has nothing else
    to do (core/prepare.py), and again after a handshake used them."""
    device = Device(rng=seeded_rng(3), epoch_offset=1.7e9)
    tun = PipeTun()
    runtime = Runtime(device, tun, Udp(offload=False), UapiServer("wgtest3", directory=str(tmp_path)))
    peers = [bytes(range(n, n + 32)) for n in (32, 64, 96)]

    def client(results: dict) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as uapi:
            uapi.settimeout(5)
            uapi.connect(socket_path("wgtest3", str(tmp_path)))
            lines = "".join(f"public_key={peer.hex()}\nendpoint=192.0.2.{n}:51820\n" for n, peer in enumerate(peers, 1))
            uapi.sendall(f"set=1\nprivate_key={bytes(range(1, 33)).hex()}\n{lines}\n".encode())
            results["set"] = answer(uapi)
            wait_for(lambda: not device.to_prepare, "the peers' handshakes prepared")
            results["prepared"] = [(device.peers[peer].prepared_initiation is not None,
                                    device.peers[peer].prepared_response is not None) for peer in peers]

    results = serve_while(runtime, tun, client, caplog, logging.ERROR)
    assert results["set"] == b"errno=0\n\n"
    assert results["prepared"] == [(True, True)] * 3
