"""Host-name endpoints re-resolved while running: the schedule and the rule (runtime/reresolve.py) with the
clock in the test's hand and a fake resolver; the lookup threads (runtime/resolver.py) with a fake
getaddrinfo; the ``wgpy_endpoint_host`` UAPI extension, and what ``wg`` makes of it in a get answer."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from wgpy.config import parse, to_uapi_set
from wgpy.core.crypto import PrivateKey
from wgpy.core.device import Device
from wgpy.core.encoding import key_to_base64, key_to_hex
from wgpy.runtime.reresolve import (LOOKUP_TIMEOUT, RERESOLVE_PERIOD, STALE_HANDSHAKE, UNANSWERED_INTERVAL, Kept,
                                    Lookup, Move, Reresolver)
from wgpy.runtime.resolver import ThreadResolver, endpoint_of
from wgpy.uapi import UapiConnection
from wgpy.uapi.show import parse_get, show

PEER = bytes(range(32))
OTHER = bytes(range(1, 33))
NAME = "far.example:51820"
OLD = ("192.0.2.7", 51820)
NEW = ("192.0.2.8", 51820)
ROAMED = ("198.51.100.9", 40000)


def tracked(endpoint=OLD, now: float = 0.0, rng=lambda: 0.5) -> Reresolver:
    reresolver = Reresolver(rng)
    reresolver.sync([(PEER, NAME, endpoint)], now)
    return reresolver


def one(lookups: list[Lookup]) -> Lookup:
    assert len(lookups) == 1
    return lookups[0]


# ---------------------------------------------------------------------------------------------- schedule

def test_a_name_is_looked_up_again_after_the_period_and_not_before():
    reresolver = tracked()
    assert reresolver.lookups(RERESOLVE_PERIOD - 0.001) == []
    lookup = one(reresolver.lookups(RERESOLVE_PERIOD))
    assert (lookup.peer, lookup.name, lookup.host, lookup.port) == (PEER, NAME, "far.example", 51820)
    assert reresolver.lookups(RERESOLVE_PERIOD + 1) == []          # under way: not twice
    assert reresolver.resolved(lookup, [OLD], OLD, 10.0) is None
    assert reresolver.lookups(2 * RERESOLVE_PERIOD - 0.001) == []
    assert one(reresolver.lookups(2 * RERESOLVE_PERIOD)).name == NAME


@pytest.mark.parametrize("draw, due", [(0.0, 0.9 * RERESOLVE_PERIOD), (0.999999, 1.1 * RERESOLVE_PERIOD)])
def test_the_period_has_jitter_of_a_tenth(draw, due):
    reresolver = tracked(rng=lambda: draw)
    assert reresolver.lookups(due - 0.01) == []
    assert len(reresolver.lookups(due + 0.01)) == 1


def test_a_name_without_an_endpoint_is_looked_up_at_once():
    reresolver = tracked(endpoint=None, now=7.0)
    lookup = one(reresolver.lookups(7.0))
    assert reresolver.resolved(lookup, [NEW], None, None) == Move(PEER, NAME, None, NEW)


def test_an_unanswered_handshake_starts_a_lookup_at_once_and_at_most_once_per_retransmission():
    reresolver = tracked()
    assert reresolver.handshake_unanswered(PEER, 20.0)
    lookup = one(reresolver.lookups(20.0))
    reresolver.resolved(lookup, [OLD], OLD, 30.0)
    reresolver.handshake_unanswered(PEER, 21.0)
    assert reresolver.lookups(21.0) == []                                  # too soon after the last
    assert len(reresolver.lookups(20.0 + UNANSWERED_INTERVAL)) == 1        # the next retransmission's


def test_an_unanswered_handshake_of_a_peer_without_a_name_is_nothing():
    reresolver = tracked()
    assert not reresolver.handshake_unanswered(OTHER, 1.0)
    assert reresolver.lookups(1.0) == []


def test_a_lookup_that_never_answers_is_forgotten_after_the_timeout_and_its_late_answer_ignored():
    reresolver = tracked()
    reresolver.handshake_unanswered(PEER, 1.0)
    lost = one(reresolver.lookups(1.0))
    reresolver.handshake_unanswered(PEER, 7.0)
    assert reresolver.lookups(1.0 + LOOKUP_TIMEOUT - 0.01) == []
    again = one(reresolver.lookups(1.0 + LOOKUP_TIMEOUT))
    assert again.serial != lost.serial
    assert reresolver.resolved(lost, [NEW], OLD, None) is None            # late: ignored
    assert reresolver.resolved(again, [NEW], OLD, None) == Move(PEER, NAME, OLD, NEW)


def test_a_failed_lookup_keeps_the_endpoint_and_the_schedule():
    reresolver = tracked()
    lookup = one(reresolver.lookups(RERESOLVE_PERIOD))
    reresolver.failed(lookup)
    assert reresolver.lookups(RERESOLVE_PERIOD + 1) == []
    assert len(reresolver.lookups(2 * RERESOLVE_PERIOD)) == 1


def test_a_peer_removed_or_its_name_forgotten_or_changed():
    reresolver = tracked()
    lookup = one(reresolver.lookups(RERESOLVE_PERIOD))
    reresolver.sync([(PEER, None, OLD)], RERESOLVE_PERIOD)
    assert len(reresolver) == 0 and reresolver.name_of(PEER) is None
    assert reresolver.resolved(lookup, [NEW], OLD, None) is None
    reresolver.sync([(PEER, NAME, OLD)], 400.0)
    reresolver.sync([(PEER, "other.example:1", OLD)], 401.0)
    assert reresolver.name_of(PEER) == "other.example:1"
    reresolver.sync([], 402.0)
    assert len(reresolver) == 0


# ---------------------------------------------------------------------------------------------- the rule

def answer(reresolver: Reresolver, addresses, endpoint, age, unanswered=False, now=RERESOLVE_PERIOD):
    if unanswered:
        reresolver.handshake_unanswered(PEER, now)
    return reresolver.resolved(one(reresolver.lookups(now)), addresses, endpoint, age)


def test_rule_1_an_endpoint_among_the_names_addresses_does_not_move():
    reresolver = tracked()
    assert answer(reresolver, [NEW, OLD], OLD, 5.0, unanswered=True) is None


def test_rule_2_the_name_moved_so_the_endpoint_follows_once():
    reresolver = tracked()
    assert answer(reresolver, [NEW, ("2001:db8::8", 51820)], OLD, 5.0) == Move(PEER, NAME, OLD, NEW)
    assert answer(reresolver, [NEW], NEW, 5.0, now=2 * RERESOLVE_PERIOD) is None


@pytest.mark.parametrize("age", [5.0, STALE_HANDSHAKE])
def test_rule_3_a_roamed_endpoint_that_answers_is_kept(age):
    reresolver = tracked()
    assert answer(reresolver, [NEW], ROAMED, age) == Kept(PEER, NAME, ROAMED, NEW)


@pytest.mark.parametrize("age, unanswered", [(5.0, True), (STALE_HANDSHAKE + 0.5, False), (None, False)])
def test_rule_3_a_roamed_endpoint_gives_way_when_the_peer_is_silent(age, unanswered):
    reresolver = tracked()
    assert answer(reresolver, [NEW], ROAMED, age, unanswered) == Move(PEER, NAME, ROAMED, NEW)


def test_rule_3_once_the_name_gave_the_roamed_address_it_is_the_names_again():
    reresolver = tracked()
    assert answer(reresolver, [ROAMED], ROAMED, 5.0) is None               # rule 1: applied is ROAMED now
    assert answer(reresolver, [NEW], ROAMED, 5.0, now=2 * RERESOLVE_PERIOD) == Move(PEER, NAME, ROAMED, NEW)


# ---------------------------------------------------------------------------------------------- threads

def test_lookups_run_in_at_most_two_threads_and_come_back_with_a_wake_up_byte():
    gate, lock = threading.Event(), threading.Lock()
    running, most = [0], [0]

    def fake(host: str, port: int) -> list[tuple]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        gate.wait(5)
        with lock:
            running[0] -= 1
        if host == "missing.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(f"192.0.2.{port}", port)]

    read, write = os.pipe()
    resolver = ThreadResolver(write, workers=2, lookup=fake)
    try:
        lookups = [Lookup(PEER, f"h{i}.example:{i}", "missing.example" if i == 3 else f"h{i}.example", i, i)
                   for i in range(1, 6)]
        for lookup in lookups:
            resolver.submit(lookup)
        time.sleep(0.2)
        assert most[0] == 2 and not resolver.pending
        gate.set()
        deadline, got = time.monotonic() + 5, []
        while len(got) < 5 and time.monotonic() < deadline:
            got += resolver.answers()
            time.sleep(0.01)
        assert most[0] == 2
        results = {lookup.serial: result for lookup, result in got}
        assert sorted(results) == [1, 2, 3, 4, 5]
        assert isinstance(results[3], OSError)
        assert results[5] == [("192.0.2.5", 5)]
        assert len(os.read(read, 64)) == 5
    finally:
        resolver.close()
        os.close(read)
        os.close(write)


def test_getaddrinfo_addresses_become_endpoints():
    assert endpoint_of(("192.0.2.1", 51820)) == ("192.0.2.1", 51820)
    assert endpoint_of(("2001:db8::1", 51820, 0, 0)) == ("2001:db8::1", 51820)
    assert endpoint_of(("fe80::1", 51820, 0, 3)) == ("fe80::1", 51820, 0, 3)


# ---------------------------------------------------------------------------------------------- UAPI

def device_with_name() -> tuple[Device, UapiConnection]:
    device = Device(rng=os.urandom)
    connection = UapiConnection(device)
    reply = connection.feed(f"set=1\npublic_key={PEER.hex()}\nendpoint=192.0.2.7:51820\n"
                            f"wgpy_endpoint_host={NAME}\n\n".encode(), 0.0)
    assert reply == b"errno=0\n\n"
    return device, connection


def test_wgpy_endpoint_host_is_kept_answered_after_the_endpoint_and_forgotten_when_empty():
    device, connection = device_with_name()
    assert device.peers[PEER].endpoint_name == NAME
    lines = connection.feed(b"get=1\n\n", 0.0).decode().splitlines()
    assert lines[lines.index("endpoint=192.0.2.7:51820") + 1] == f"wgpy_endpoint_host={NAME}"
    assert connection.feed(f"set=1\npublic_key={PEER.hex()}\nendpoint=192.0.2.9:1\n\n".encode(), 0.0) == b"errno=0\n\n"
    assert device.peers[PEER].endpoint_name == NAME                       # endpoint= leaves the name alone
    assert connection.feed(f"set=1\npublic_key={PEER.hex()}\nwgpy_endpoint_host=\n\n".encode(), 0.0) == b"errno=0\n\n"
    assert device.peers[PEER].endpoint_name is None
    assert "wgpy_endpoint_host" not in connection.feed(b"get=1\n\n", 0.0).decode()


@pytest.mark.parametrize("value", ["far.example", "far_example:1", "-far.example:1", "far.example:0",
                                   "far.example:65536", ":51820", "a..b:1", "x" * 64 + ".example:1",
                                   "[2001:db8::1]:51820", "f\u00e4r.example:1"])
def test_a_bad_wgpy_endpoint_host_is_einval(value):
    device, connection = device_with_name()
    reply = connection.feed(f"set=1\npublic_key={PEER.hex()}\nwgpy_endpoint_host={value}\n\n".encode(), 0.0)
    assert reply == b"errno=-22\n\n"
    assert device.peers[PEER].endpoint_name == NAME


def test_wgpy_up_sends_the_name_after_the_address_and_only_for_names():
    key = PrivateKey(bytes(range(32)))
    conf = parse(f"[Interface]\nPrivateKey = {key_to_base64(key.private_bytes())}\n"
                 f"[Peer]\nPublicKey = {key_to_base64(PEER)}\nEndpoint = far.example:51820\nAllowedIPs = 10.0.0.2/32\n"
                 f"[Peer]\nPublicKey = {key_to_base64(OTHER)}\nEndpoint = 192.0.2.3:51820\nAllowedIPs = 10.0.0.3/32\n")
    resolve = lambda host, port: "192.0.2.7"
    text = to_uapi_set(conf, resolve=resolve, endpoint_names=True)
    assert "endpoint=192.0.2.7:51820\nwgpy_endpoint_host=far.example:51820\n" in text
    assert text.count("wgpy_endpoint_host") == 1
    assert "wgpy_endpoint_host" not in to_uapi_set(conf, resolve=resolve)   # what a stock wg would send
    device = Device(rng=os.urandom)
    assert UapiConnection(device).feed(text.encode(), 0.0) == b"errno=0\n\n"
    assert device.peers[PEER].endpoint_name == "far.example:51820" and device.peers[OTHER].endpoint_name is None


def test_wgpy_show_shows_the_name():
    device, connection = device_with_name()
    text = show("rrs0", parse_get(connection.feed(b"get=1\n\n", 0.0).decode()), int(time.time()), key_to_base64,
                lambda raw: PrivateKey(raw).public)
    assert f"  endpoint: 192.0.2.7:51820\n  endpoint name: {NAME} (re-resolved while running)\n" in text


def test_wg_ignores_the_extension_in_a_get_answer():
    """What lets ``get`` answer the name: wireguard-tools' ``wg`` skips a key it does not know
    (ipc-uapi.h userspace_get_device), so ``wg showconf`` of a wgpy daemon is what it was."""
    if shutil.which("wg") is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("needs wg (wireguard-tools)")
    if os.geteuid() != 0:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("wg looks only in /var/run/wireguard, root's")
    device, connection = device_with_name()
    device.set_private_key(PrivateKey(bytes(range(2, 34))))
    answer = connection.feed(b"get=1\n\n", 0.0)
    assert b"wgpy_endpoint_host=" in answer
    os.makedirs("/var/run/wireguard", mode=0o700, exist_ok=True)
    path = f"/var/run/wireguard/rrs{os.getpid() % 10000}g.sock"
    listener = socket.socket(socket.AF_UNIX)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with client:
                client.settimeout(5)
                try:
                    if client.recv(64) == b"get=1\n\n":   # wg first connects and hangs up, to probe
                        client.sendall(answer)
                except OSError:
                    pass

    try:
        listener.bind(path)
        os.chmod(path, 0o600)
        listener.listen(4)
        listener.settimeout(1)
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        interface = os.path.basename(path)[:-5]
        result = subprocess.run(["wg", "showconf", interface], capture_output=True, text=True, timeout=10)
        stop.set()
        thread.join(5)
    finally:
        listener.close()
        if os.path.exists(path):
            os.unlink(path)
    assert result.returncode == 0, result.stderr
    assert "Endpoint = 192.0.2.7:51820" in result.stdout and f"PublicKey = {key_to_base64(PEER)}" in result.stdout
    assert key_to_hex(PEER) not in result.stdout
