"""wgpy show (wgpy/uapi/show.py, runtime/show_command.py): a UAPI get answer printed as wg show prints it,
checked against wg itself reading the same answer from a socket in /var/run/wireguard."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from wgpy.uapi.show import ago, parse_get, pretty_bytes, pretty_time

ROOT = Path(__file__).resolve().parent.parent
KEY = "a8" * 32
PEERS = ("b0" * 32, "c1" * 32, "d2" * 32)


def answer(now: int) -> str:
    return (f"private_key={KEY}\nlisten_port=51820\nfwmark=4660\n"
            f"public_key={PEERS[0]}\npreshared_key={'00' * 32}\nprotocol_version=1\nendpoint=[fd00::1]:51820\n"
            f"last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
            f"persistent_keepalive_interval=0\n"
            f"public_key={PEERS[1]}\npreshared_key={'11' * 32}\nprotocol_version=1\nendpoint=192.0.2.7:1\n"
            f"last_handshake_time_sec={now - 3725}\nlast_handshake_time_nsec=5\ntx_bytes=3000000\nrx_bytes=1023\n"
            f"persistent_keepalive_interval=25\nallowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\n"
            f"public_key={PEERS[2]}\nlast_handshake_time_sec={now - 40}\nlast_handshake_time_nsec=0\n"
            f"rx_bytes=5000000000\ntx_bytes=1024\npersistent_keepalive_interval=3600\nallowed_ip=10.1.0.1/32\n"
            "errno=0\n\n")


def test_the_units_as_wg_writes_them():
    assert [pretty_bytes(n) for n in (0, 1023, 1024, 1536, 1024 ** 2, 5 * 1024 ** 4)] == [
        "0 B", "1023 B", "1.00 KiB", "1.50 KiB", "1.00 MiB", "5.00 TiB"]
    assert pretty_time(3725) == "1 hour, 2 minutes, 5 seconds" and pretty_time(86400 * 366) == "1 year, 1 day"
    assert ago(100, 100) == "Now" and ago(40, 100) == "1 minute ago"


def test_a_nonzero_errno_is_an_error():
    with pytest.raises(ValueError):
        parse_get("errno=-22\n\n")


def serve_once_per_client(path: str, text: str, stop: threading.Event) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(8)
    listener.settimeout(0.2)

    def loop():
        with listener:
            while not stop.is_set():
                try:
                    client, _ = listener.accept()
                except socket.timeout:
                    continue
                with client:
                    client.settimeout(5)
                    request = b""
                    while not request.endswith(b"\n\n"):
                        chunk = client.recv(4096)
                        if not chunk:
                            break
                        request += chunk
                    if request == b"get=1\n\n":
                        client.sendall(answer(int(time.time())).encode())
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_wgpy_show_prints_what_wg_show_prints():
    if shutil.which("wg") is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("needs wg (wireguard-tools)")
    if os.geteuid() != 0:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("wg looks only in /var/run/wireguard, root's")
    os.makedirs("/var/run/wireguard", mode=0o700, exist_ok=True)
    path = "/var/run/wireguard/prx-show.sock"
    if os.path.exists(path):
        os.unlink(path)
    stop = threading.Event()
    thread = serve_once_per_client(path, "", stop)
    try:
        for _ in range(3):    # the two may straddle a second boundary ("40 seconds ago")
            wg = subprocess.run(["wg", "show", "prx-show"], capture_output=True, text=True, timeout=10,
                                env=dict(os.environ, WG_COLOR_MODE="never"))
            ours = subprocess.run([sys.executable, "-m", "wgpy", "show", "prx-show"], capture_output=True, text=True,
                                  timeout=10, cwd=ROOT)
            if wg.stdout == ours.stdout:
                break
    finally:
        stop.set()
        thread.join(5)
        os.unlink(path)
    assert wg.returncode == 0 and ours.returncode == 0, (wg.stderr, ours.stderr)
    assert "latest handshake: 1 hour, 2 minutes, 5 seconds ago" in ours.stdout
    assert ours.stdout == wg.stdout
