"""The UAPI's stream framing (wgpy/uapi/connection.py): operations read off a byte stream however it is
cut, hang-ups, bounds, bugs answered -EIO, and the slices and lock that let long operations share the loop.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wgpy.uapi import IpcLock, UapiConnection

from .test_uapi import (
    EADDRINUSE, EINVAL, EIO, EPROTO, OK, OWN, A, B, C, FakeBind, answer, get_text, interfaces, new_device, run_set,
    set_op,
)


# ------------------------------------------------------------------------------------ framing


def test_a_first_line_that_is_no_operation_closes_without_an_answer():
    for data in [b"hello\n", b"get=2\n", b"set=1 \n", b"set=1\r\n", b"\n", b"GET=1\n"]:
        connection = UapiConnection(new_device())
        assert connection.feed(data, now=0.0) == b""
        assert connection.closed
        assert connection.feed(b"get=1\n\n", now=0.0) == b""


def test_a_partial_operation_waits_and_garbage_closes_early():
    connection = UapiConnection(new_device())
    assert connection.feed(b"get", now=0.0) == b"" and not connection.closed
    assert connection.feed(b"=1\n", now=0.0) == b"" and not connection.closed
    assert connection.feed(b"\n", now=0.0).endswith(OK)
    connection = UapiConnection(new_device())
    assert connection.feed(b"gex", now=0.0) == b"" and connection.closed   # no need to wait for its end


def test_several_operations_on_one_connection():
    device = new_device()
    connection = UapiConnection(device)
    data = (
        set_op(f"public_key={A.hex()}", "allowed_ip=10.0.0.0/8")
        + b"get=1\n\n"
        + set_op("bogus=1")
        + set_op(f"public_key={A.hex()}", "remove=true")
        + b"get=1\n\n"
    )
    reply = connection.feed(data, now=0.0)
    own = f"private_key={OWN.private_bytes().hex()}\n".encode()
    peer = (
        f"public_key={A.hex()}\npreshared_key={'0' * 64}\nprotocol_version=1\nlast_handshake_time_sec=0\n"
        "last_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\nallowed_ip=10.0.0.0/8\n"
    ).encode()
    assert reply == OK + own + peer + OK + answer(EINVAL) + OK + own + OK


def test_operations_split_across_many_small_feeds_give_the_same_answers():
    data = (
        set_op(f"public_key={A.hex()}", "allowed_ip=10.0.0.0/8", "endpoint=[2001:db8::1]:5")
        + b"get=1\n\n" + set_op("bogus") + b"get=1\nx" + b"set=1\r\n"
    )
    whole = UapiConnection(new_device())
    expected = whole.feed(data, now=0.0)
    for size in (1, 2, 3, 7, 64):
        connection = UapiConnection(new_device())
        reply = b"".join(connection.feed(data[i:i + size], now=0.0) for i in range(0, len(data), size))
        assert reply == expected and connection.closed == whole.closed is True


def test_crlf_lines_are_read_like_go_scanlines():
    device = new_device()
    connection = UapiConnection(device)
    reply = connection.feed("set=1\r\n".encode(), now=0.0)   # the operation line itself must be exact
    assert connection.closed and reply == b""
    connection = UapiConnection(device)
    data = f"set=1\nlisten_port=7\r\npublic_key={A.hex()}\r\n\r\nget=1\n\n".encode()
    assert connection.feed(data, now=0.0).startswith(OK + b"private_key=")
    assert device.listen_port == 7 and A in device.peers


def test_an_empty_set_is_fine():
    assert UapiConnection(new_device()).feed(b"set=1\n\n", now=0.0) == OK


def test_eof_ends_an_open_set_as_wireguard_go_does():
    device = new_device()
    connection = UapiConnection(device)
    assert connection.feed(f"set=1\nlisten_port=9\npublic_key={A.hex()}".encode(), now=0.0) == b""
    assert device.listen_port == 0   # nothing applied before the operation is complete
    assert connection.eof(now=0.0) == OK
    assert device.listen_port == 9 and A in device.peers and connection.closed
    connection = UapiConnection(device)
    connection.feed(b"set=1\nbogus=1\n", now=0.0)
    assert connection.eof(now=0.0) == answer(EINVAL)
    connection = UapiConnection(device)
    connection.feed(b"get=1\n", now=0.0)
    assert connection.eof(now=0.0) == b"" and connection.closed   # wireguard-go: ReadByte fails, no answer


def test_an_operation_past_the_bound_is_eio_applies_nothing_and_the_connection_goes_on():
    device = new_device()
    connection = UapiConnection(device, max_operation_size=1000)
    lines = [f"public_key={A.hex()}"] + [f"allowed_ip=10.0.{i}.0/24" for i in range(100)]
    data = set_op(*lines) + b"get=1\n\n"
    replies = b"".join(connection.feed(data[i:i + 100], now=0.0) for i in range(0, len(data), 100))
    assert replies.startswith(answer(EIO)) and replies.endswith(OK)
    assert device.peers == {}
    assert connection.buffered < 1000
    connection = UapiConnection(device, max_operation_size=1000)
    assert connection.feed(data, now=0.0).startswith(answer(EIO))   # the same in one piece
    connection = UapiConnection(device, max_operation_size=1000)
    connection.feed(data[:1500], now=0.0)
    assert connection.eof(now=0.0) == answer(EIO)


def test_a_bug_in_a_set_is_eio_for_the_log_and_the_connection_goes_on(monkeypatch):
    """h11's error strategy: an exception that is not a UapiError is a bug in wgpy. The operation is
    answered -EIO, last_error carries the exception (with its traceback) for the runtime's log, and the
    next operation on the same connection is served."""
    device = new_device()

    def broken() -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(device, "remove_all_peers", broken)
    connection = UapiConnection(device)
    assert connection.feed(set_op("listen_port=9", "replace_peers=true", "fwmark=3"), now=0.0) == answer(EIO)
    error = connection.last_error
    assert error.errno == EIO and isinstance(error.__cause__, RuntimeError)
    assert error.__cause__.__traceback__ is not None
    assert (device.listen_port, device.fwmark) == (9, 0)   # kept what came before, skipped the rest
    assert not connection.closed
    assert connection.feed(set_op("fwmark=3"), now=0.0) == OK and connection.last_error is None
    assert connection.feed(b"get=1\n\n", now=0.0).endswith(OK)
    connection.feed(b"set=1\nreplace_peers=true\n", now=0.0)
    assert connection.eof(now=0.0) == answer(EIO)   # the same when the set ends at the end of input


def test_a_bug_in_a_get_is_eio_and_the_connection_goes_on(monkeypatch):
    import wgpy.uapi.connection

    def broken(device):
        raise RuntimeError("injected")

    connection = UapiConnection(new_device())
    with monkeypatch.context() as patch:
        patch.setattr(wgpy.uapi.connection, "get_lines", broken)
        assert connection.feed(b"get=1\n\n", now=0.0) == answer(EIO)
    assert isinstance(connection.last_error.__cause__, RuntimeError)
    assert connection.feed(b"get=1\n\n", now=0.0).endswith(OK) and connection.last_error is None


def test_the_default_bound_is_16_mib():
    from wgpy.uapi import MAX_OPERATION_SIZE
    assert MAX_OPERATION_SIZE == 16 * 1024 * 1024


# ------------------------------------------------------------------------------------ fuzz

FRAGMENTS = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"set=1\n", b"get=1\n", b"\n", b"\r\n", b"=", b"-", b"%", b"[", b"]", b":", b"/"]),
    st.sampled_from([
        f"public_key={A.hex()}\n", f"public_key={OWN.public.hex()}\n", f"private_key={OWN.private_bytes().hex()}\n",
        "private_key=" + "0" * 64 + "\n", "replace_peers=true\n", "remove=true\n", "update_only=true\n",
        "replace_allowed_ips=true\n", "allowed_ip=10.0.0.0/8\n", "allowed_ip=-10.0.0.0/8\n", "endpoint=[fe80::1%2]:1\n",
        "persistent_keepalive_interval=1\n", "listen_port=1\n", "fwmark=1\n", "protocol_version=1\n",
    ]).map(str.encode),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FRAGMENTS, max_size=30), st.lists(st.integers(1, 20), min_size=1, max_size=10))
def test_garbage_never_raises_and_is_answered_or_closed(fragments, sizes):
    data = b"".join(fragments)
    device = new_device()
    connection = UapiConnection(device, bind=FakeBind(refuse={1}), interface_index=interfaces)
    replies, at, turn = [], 0, 0
    while at < len(data):
        size = sizes[turn % len(sizes)]
        replies.append(connection.feed(data[at:at + size], now=0.0))
        at, turn = at + size, turn + 1
    whole = UapiConnection(new_device(), bind=FakeBind(refuse={1}), interface_index=interfaces)
    assert b"".join(replies) == whole.feed(data, now=0.0)   # how the bytes were cut changes nothing
    # An empty line completes whatever is open (or is a bad operation line): answered, or hung up on.
    tail = connection.feed(b"\n\n", now=99.0)
    assert connection.closed or tail.endswith(b"\n\n")
    for reply in replies + [tail]:
        for line in reply.decode().splitlines():
            if line.startswith("errno="):
                assert int(line[6:]) in (0, EINVAL, EPROTO, EADDRINUSE, EIO)
    connection.eof(now=100.0)
    assert connection.closed
    # Whatever happened, the device still answers a get that wg can read.
    text = get_text(device)
    assert all("=" in line for line in text.splitlines())


# ------------------------------------------------------------------------------------ slices
# With a budget, a connection applies or writes at most that many lines per call and the runtime comes
# back (resume) between packet batches; the answers and the device end up as without one.


def run_in_slices(connection: UapiConnection, data: bytes, budget: int, chunk: int = 65536, eof: bool = False) -> tuple[bytes, int]:
    """Go on with what the connection has left, then feed ``data`` (and the end of input, if ``eof``) as the
    runtime does: nothing more while the connection is working. The answers, and how many calls it took."""
    replies: list[bytes] = []

    def finish() -> None:
        while connection.working:
            replies.append(connection.resume(now=0.0, budget=budget))

    finish()
    for at in range(0, len(data), chunk):
        replies.append(connection.feed(data[at:at + chunk], now=0.0, budget=budget))
        finish()
    if eof:
        replies.append(connection.eof(now=0.0, budget=budget))
        finish()
    return b"".join(replies), len(replies)


def test_a_set_is_applied_a_slice_at_a_time():
    device = new_device()
    connection = UapiConnection(device)
    data = set_op(f"public_key={A.hex()}", *(f"allowed_ip=10.0.{i >> 8}.{i & 255}/32" for i in range(1000)))
    assert connection.feed(data, now=0.0, budget=100) == b""
    assert connection.working and connection.in_operation
    assert len(device.allowed_ips) == 99   # the public_key line was one of the 100
    applied = [len(device.allowed_ips)]
    while connection.working:
        reply = connection.resume(now=0.0, budget=100)
        applied.append(len(device.allowed_ips))
    assert reply == OK and not connection.in_operation
    assert applied[-1] == 1000 and all(b - a <= 100 for a, b in zip(applied, applied[1:]))


@pytest.mark.parametrize("budget", [1, 2, 3, 7, 100])
def test_slices_give_the_same_answers_and_device_as_one_call(budget):
    data = (
        set_op("listen_port=7", f"public_key={A.hex()}", "allowed_ip=10.0.0.0/8", "persistent_keepalive_interval=5",
               "endpoint=192.0.2.1:1", f"public_key={B.hex()}", *(f"allowed_ip=10.1.0.{i}/32" for i in range(20)))
        + b"get=1\n\n"
        # The bad line comes after lines that stay applied, and errno comes after the whole operation.
        + set_op(f"public_key={C.hex()}", "allowed_ip=10.2.0.0/16", "allowed_ip=10.3.0.0/33", "allowed_ip=10.4.0.0/16")
        + b"get=1\nx" + set_op("fwmark=3") + b"get=1\n\n"
    )
    whole = new_device()
    expected = UapiConnection(whole).feed(data, now=0.0)
    device = new_device()
    reply, calls = run_in_slices(UapiConnection(device), data, budget, chunk=5)
    assert reply == expected and get_text(device) == get_text(whole)
    assert whole.datagrams_to_send() == device.datagrams_to_send()   # the keepalive's handshake, once


def test_a_get_is_written_a_slice_at_a_time():
    device = new_device()
    assert run_set(device, f"public_key={A.hex()}", *(f"allowed_ip=10.0.{i >> 8}.{i & 255}/32" for i in range(1000))) == OK
    expected = UapiConnection(device).feed(b"get=1\n\n", now=0.0)
    connection = UapiConnection(device)
    first = connection.feed(b"get=1\n\n", now=0.0, budget=50)
    assert first.count(b"\n") == 50 and connection.working
    reply, calls = run_in_slices(connection, b"", budget=50)
    assert first + reply == expected and 1 + calls == -(-1009 // 50)   # 9 lines before the allowed IPs


def test_another_connection_waits_until_an_operation_under_way_is_done():
    """wireguard-go's ipcMutex: a get never sees half of a set, and a set never lands inside a get."""
    device, lock = new_device(), IpcLock()
    setting, getting, other = (UapiConnection(device, lock=lock) for _ in range(3))
    data = set_op(f"public_key={A.hex()}", *(f"allowed_ip=10.0.{i >> 8}.{i & 255}/32" for i in range(1000)))
    assert setting.feed(data, now=0.0, budget=100) == b""
    assert getting.feed(b"get=1\n\n", now=0.0, budget=100) == b"" and getting.working and not getting.in_operation
    assert other.feed(set_op(f"public_key={A.hex()}", "remove=true"), now=0.0, budget=100) == b"" and other.working
    for _ in range(5):   # however often they are called, they wait
        assert getting.resume(now=0.0, budget=100) == other.resume(now=0.0, budget=100) == b""
    while setting.working:
        setting.resume(now=0.0, budget=100)
    answer, _ = run_in_slices(getting, b"", budget=100)
    assert answer.count(b"allowed_ip=") == 1000 and answer.endswith(OK)
    assert run_in_slices(other, b"", budget=100)[0] == OK and device.peers == {}


def test_eof_ends_an_open_set_in_slices_too():
    device = new_device()
    connection = UapiConnection(device)
    data = f"set=1\npublic_key={A.hex()}\n".encode() + b"".join(b"allowed_ip=10.0.0.%d/32\n" % i for i in range(200))
    reply, _ = run_in_slices(connection, data, budget=16, eof=True)
    assert reply == OK and connection.closed and len(device.allowed_ips) == 200


def test_a_bug_in_the_middle_of_an_operation_frees_the_lock():
    """An exception that is not a UapiError is a bug: the operation is answered -EIO and dropped, and no
    other connection of the device waits for it for ever."""
    def broken_bind(port: int, fwmark: int) -> int:
        raise RuntimeError("bug")

    device, lock = new_device(), IpcLock()
    broken = UapiConnection(device, bind=broken_bind, lock=lock)
    data = set_op("fwmark=0", "fwmark=0", "listen_port=1") + b"get=1\n\n"   # the third line calls bind
    answered = broken.feed(data, now=0.0, budget=1)
    while broken.working and not answered:
        answered += broken.resume(now=0.0, budget=1)
    assert answered == answer(EIO) and isinstance(broken.last_error.__cause__, RuntimeError)
    assert not broken.in_operation
    assert UapiConnection(device, lock=lock).feed(b"get=1\n\n", now=0.0, budget=100).endswith(OK)
    assert broken.working and broken.resume(now=0.0).endswith(OK)   # what came after it is served


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FRAGMENTS, max_size=30), st.integers(1, 5), st.integers(1, 20), st.booleans())
def test_how_the_work_is_sliced_changes_nothing(fragments, budget, chunk, eof):
    data = b"".join(fragments)
    whole_device = new_device()
    whole = UapiConnection(whole_device, bind=FakeBind(refuse={1}), interface_index=interfaces)
    expected = whole.feed(data, now=0.0) + (whole.eof(now=0.0) if eof else b"")
    device = new_device()
    connection = UapiConnection(device, bind=FakeBind(refuse={1}), interface_index=interfaces)
    reply, _ = run_in_slices(connection, data, budget, chunk, eof)
    assert reply == expected and connection.closed == whole.closed
    assert not connection.working and not connection.in_operation
    assert get_text(device) == get_text(whole_device)


def test_a_connection_is_idle_only_between_operations():
    connection = UapiConnection(new_device())
    assert connection.idle
    for piece in (b"g", b"et=1\n", b"\n"):
        assert connection.feed(piece, now=0.0) == b"" or piece == b"\n"
        assert connection.idle == (piece == b"\n")
    connection.feed(set_op(f"public_key={A.hex()}", *(f"allowed_ip=10.0.0.{i}/32" for i in range(10))), now=0.0, budget=2)
    assert connection.working and not connection.idle
