"""Fuzz targets: plain functions taking bytes, each checking one invariant (h11's fuzz harness, STYLE.md).

A target returns None when the invariant holds and raises (AssertionError, or whatever escaped the code
under test) when it does not. The same functions run under Hypothesis in the test suite
(tests/test_fuzz.py), under atheris for long campaigns (``make fuzz``, tests/fuzz/run.py), and on single
files to reproduce a crash (``python -m tests.fuzz.run TARGET FILE``). Inputs are read through
:class:`~tests.fuzz.source.Source`, so one input means the same thing everywhere.

    message_parsing      any bytes parse to a message that packs back to them, or one Rejected with a Drop
    receive_path         any datagrams, into a device in each state: nothing escapes, a drop changes no
                         state, at most one datagram answers
    receive_batch        a batch of datagrams has the outcome of the same datagrams one at a time
    send_batch           a batch of packets from the TUN side has the outcome of the same packets one at a time
    mutated_messages     a valid crafted message with one field mutated earns exactly the expected drop
    uapi_stream          any bytes on a UAPI connection: answered or hung up on, never an exception
    uapi_set             a failed ``set`` leaves the device as wireguard-go leaves it
    config_file          any configuration text parses or raises ConfigError; what parses, the UAPI takes
    replay_window        the replay window against a set of seen counters (tests/test_replay.py)
    keypair_rotation     keypair slots keep their invariants (tests/fuzz/models.py)
    allowed_ips          the allowed-IPs table against a linear scan (tests/fuzz/models.py)
    netstack             any packets into the userspace stack: nothing escapes, each packet is taken or
                         counted under one NetDrop, and every packet it sends is well formed
"""

from __future__ import annotations

import errno
import re
from typing import Callable

from wgpy import config, craft
from wgpy.core import messages
from wgpy.core.constants import INITIATIONS_PER_SECOND, REJECT_AFTER_TIME, MessageType
from wgpy.core.crypto import PrivateKey
from wgpy.core.device import Device
from wgpy.core.errors import Drop, Rejected
from wgpy.core.events import PacketDropped
from wgpy.core.keypairs import Keypair
from wgpy.core.messages import message_type
from wgpy.uapi import UapiConnection, get_operation

from wgpy.netstack import icmp as ns_icmp
from wgpy.netstack import ip as ns_ip
from wgpy.netstack import udp as ns_udp
from wgpy.netstack.errors import NetDrop
from wgpy.netstack.tcp import segment as ns_tcp

from ..conftest import seeded_rng
from ..test_allowedips import BASES, PEERS
from ..test_replay import BITS, ReplayModel
from . import netstack_world as nw
from . import world as w
from .models import AllowedIPsModel, KeypairRotation
from .source import Source

# ------------------------------------------------------------------------------------ message parsing


def message_parsing(data: bytes) -> None:
    """Any bytes either parse to a message that packs back to the same bytes, or raise ``Rejected``
    with a named ``Drop`` reason; nothing else."""
    try:
        message = messages.parse(data)
    except Rejected as refused:
        assert isinstance(refused.reason, Drop)
        return
    assert message.pack() == data
    assert type(message).parse(data) == message


# ------------------------------------------------------------------------------------ the receive path

# Time between datagrams: nothing, within the initiation rate limit, around REKEY_TIMEOUT, the keepalive
# timeout, REKEY_AFTER_TIME, the last-minute handshake, REJECT_AFTER_TIME and the key zeroing.
TIME_STEPS = (0.0, 0.001, 0.019, 0.021, 1.0, 4.9, 5.1, 10.0, 15.5, 120.5, 165.5, 179.9, 180.1, 540.5)


ELSEWHERE = ("198.51.100.7", 4242)   # another address: alice roaming, or someone else


def observe(world: w.World, data: bytes, source: tuple | None = None) -> Drop | None:
    """Deliver one datagram to bob (from alice's address unless ``source`` says otherwise) and check the
    receive path's invariants; return why it was dropped (None if accepted). Timers due before it run
    first, and what they send is not counted as an answer."""
    device, now, source = world.device, world.now, source or world.source
    deadline = device.next_deadline()
    if deadline is not None and deadline <= now:
        device.handle_timer(now)
    device.datagrams_to_send()
    device.packets_to_deliver()
    w.check_events(device.events())

    before = w.snapshot(device, now)
    device.receive_datagram(data, source, now, w.BOB_OTHER_LOCAL)      # anything raised here is a bug
    answers = device.datagrams_to_send()
    events = device.events()
    w.check_events(events)
    refused = [e.reason for e in events if isinstance(e, PacketDropped) and e.source == source]
    assert len(refused) <= 1, f"one datagram, several drops: {refused}"
    assert len(answers) <= 1, f"{len(answers)} datagrams answered one"
    reason = refused[0] if refused else None
    if reason is not None and reason not in w.AFTER_AUTHENTICATION:
        assert w.snapshot(device, now) == before, f"dropped ({reason.name}) but the device changed"
        assert not answers or reason is Drop.COOKIE_REPLY_SENT, f"dropped ({reason.name}) but answered"
    return reason


def receive_path(data: bytes) -> None:
    """Up to four datagrams of any bytes, into bob in any state, each after a chosen pause and from
    alice's address or another: nothing escapes ``receive_datagram``, a dropped datagram changes no state
    (except drops of authentic datagrams whose inner packet is refused), at most one datagram goes out in
    answer to each."""
    source = Source(data)
    world = w.build(source.choice(w.STATES))
    for _ in range(4):
        if not source:
            break
        world.now += source.choice(TIME_STEPS)
        sender = ELSEWHERE if source.byte() >= 200 else world.source
        observe(world, source.blob(), sender)


def outcome(world: w.World) -> tuple:
    """Everything a device shows after some input: state, output, delivered packets, drops and events."""
    device = world.device
    return (w.snapshot(device, world.now), device.datagrams_to_send(), device.packets_to_deliver(),
            dict(device.drops), device.events())


def receive_batch(data: bytes) -> None:
    """The batch entry point (``Device.receive_datagrams``, the runtime's fast path) has the outcome of
    ``receive_datagram`` on each datagram in turn, transport data first and handshake messages after (they
    wait in the handshake queue): the same state, datagrams out, packets delivered, drops and events. Input as for ``receive_path``; the whole batch arrives at the first pause."""
    source = Source(data)
    state = source.choice(w.STATES)
    step = source.choice(TIME_STEPS)
    batch = []
    while source and len(batch) < 8:
        batch.append((source.blob(), w.ALICE_ENDPOINT if source.byte() < 200 else ELSEWHERE))
        if batch and source.flag():
            batch.append(batch[source.below(len(batch))])   # a duplicate: replays within one batch
    one, many = w.build(state), w.build(state)
    for world in (one, many):
        world.now += step
        outcome(world)
    # Handshake messages wait in the handshake queue until the batch's transport data is done.
    handshakes = [(d, s) for d, s in batch if _is_handshake(d)]
    for datagram, sender in [(d, s) for d, s in batch if not _is_handshake(d)] + handshakes:
        one.device.receive_datagram(datagram, sender, one.now)
    many.device.receive_datagrams([(d, s, None) for d, s in batch], many.now)
    expected, got = outcome(one), outcome(many)
    for what, a, b in zip(("state", "datagrams", "packets", "drops"), expected, got):
        assert a == b, f"the batch differs in its {what}"
    # The events, in any order: a run of the fast path reports the handshake it starts at its end.
    assert sorted(map(repr, expected[4])) == sorted(map(repr, got[4])), "the batch differs in its events"


def _is_handshake(data: bytes) -> bool:
    """Whether the device queues this datagram as a handshake message (or cookie reply)."""
    try:
        return message_type(data) != MessageType.TRANSPORT
    except Rejected:
        return False


def _tun_packet(source: Source) -> bytes:
    """An IP packet from bob's TUN side: to alice (small or MTU-sized), to nowhere, IPv6, or junk."""
    choice = source.below(7)
    if choice == 0:
        return w.PING
    if choice == 1:
        return w.ipv4_packet(w.BOB_TUNNEL, w.ALICE_TUNNEL, source.bytes(1400))
    if choice == 2:
        return w.ipv4_packet(w.BOB_TUNNEL, bytes([10, 0, 0, 9]), b"no route")
    if choice == 3:
        return bytes([0x60]) + bytes(23) + bytes(15) + b"\x01" + b"v6 to nowhere"
    if choice == 4:
        return w.ipv4_packet(w.BOB_TUNNEL, w.ALICE_TUNNEL, b"")[: source.below(21)]
    return source.blob(200)


def send_batch(data: bytes) -> None:
    """The batch entry point of the TUN side (``Device.send_packets``) has the outcome of ``send_packet``
    on each packet in turn: the same state, datagrams out, drops and events."""
    source = Source(data)
    state = source.choice(w.STATES)
    step = source.choice(TIME_STEPS)
    packets = []
    while source and len(packets) < 8:
        packets.append(_tun_packet(source))
    one, many = w.build(state), w.build(state)
    for world in (one, many):
        world.now += step
        outcome(world)
    for packet in packets:
        one.device.send_packet(packet, one.now)
    many.device.send_packets(packets, many.now)
    expected, got = outcome(one), outcome(many)
    for what, a, b in zip(("state", "packets", "drops"), expected[:1] + expected[2:4], got[:1] + got[2:4]):
        assert a == b, f"the batch differs in its {what}"
    # The same datagrams, the data in the same order; a rekeying initiation may leave after the whole
    # batch rather than after the packet that called for it.
    assert sorted(expected[1]) == sorted(got[1]), "the batch differs in its datagrams"
    transport = lambda datagrams: [d for d in datagrams if d[0][:1] == b"\x04"]
    assert transport(expected[1]) == transport(got[1]), "the batch sends its data in another order"
    assert sorted(map(repr, expected[4])) == sorted(map(repr, got[4])), "the batch differs in its events"


# ------------------------------------------------------------------------------- structure-aware mutation

# (state of bob, kind of alice's message) pairs where bob accepts the unmutated message.
CASES = (
    (w.State.NO_SESSION, MessageType.INITIATION),
    (w.State.INITIATION_SENT, MessageType.RESPONSE),
    (w.State.INITIATION_SENT, MessageType.COOKIE_REPLY),
    (w.State.INITIATION_RECEIVED, MessageType.TRANSPORT),
    (w.State.IN_SESSION, MessageType.TRANSPORT),
    (w.State.IN_SESSION, MessageType.INITIATION),
    (w.State.UNDER_LOAD, MessageType.INITIATION),
)
# Why the genuine message is refused the second time.
REPLAYED = {
    MessageType.INITIATION: Drop.STALE_TIMESTAMP,
    MessageType.RESPONSE: Drop.NO_MATCHING_INITIATION,
    MessageType.COOKIE_REPLY: Drop.NO_MATCHING_INITIATION,
    MessageType.TRANSPORT: Drop.REPLAYED,
}
_SIZES = {MessageType.INITIATION: 148, MessageType.RESPONSE: 92, MessageType.COOKIE_REPLY: 64}
HANDSHAKE = (MessageType.INITIATION, MessageType.RESPONSE)


def valid_message(world: w.World, kind: MessageType, source: Source) -> craft.Crafted:
    if kind is MessageType.INITIATION:
        return world.valid_initiation()
    if kind is MessageType.RESPONSE:
        return world.valid_response()
    if kind is MessageType.COOKIE_REPLY:
        return world.valid_cookie_reply()
    return world.valid_transport(w.DATA if source.flag() else b"")


def framing_drop(data: bytes) -> Drop | None:
    """Section 5.4's framing, read independently of messages.py, in wgpy's documented order."""
    if not data:
        return Drop.EMPTY
    kind = data[0]
    if kind not in (1, 2, 3, 4):
        return Drop.UNKNOWN_TYPE
    if len(data) < 4:
        return Drop.TOO_SHORT if kind == 4 else Drop.WRONG_SIZE
    if data[1:4] != bytes(3):
        return Drop.RESERVED_NONZERO
    if kind in _SIZES and len(data) != _SIZES[kind]:
        return Drop.WRONG_SIZE
    if kind == 4 and len(data) < 32:
        return Drop.TOO_SHORT
    return None


def index_drop(world: w.World, index: int) -> Drop:
    """Why a transport message under ``index`` that does not decrypt is refused."""
    entry = world.device.indices.lookup(index)
    if entry is None or not isinstance(entry[1], Keypair):
        return Drop.UNKNOWN_INDEX
    if world.now - entry[1].created >= REJECT_AFTER_TIME:
        return Drop.KEYPAIR_EXPIRED
    return Drop.DECRYPTION_FAILED


def inner_drop(plaintext: bytes) -> Drop | None:
    """Why bob refuses an authentic transport message's padded plaintext (section 2's cryptokey routing,
    the kernel's "dishonest packet" checks), read independently of receive.py."""
    if not plaintext:
        return None   # a keepalive
    version = plaintext[0] >> 4
    if version == 4 and len(plaintext) >= 20:
        length, inner_source = int.from_bytes(plaintext[2:4], "big"), plaintext[12:16]
        if length < 20:
            return Drop.BAD_INNER_LENGTH
    elif version == 6 and len(plaintext) >= 40:
        length, inner_source = 40 + int.from_bytes(plaintext[4:6], "big"), plaintext[8:24]
    else:
        return Drop.NOT_IP
    if length > len(plaintext):
        return Drop.BAD_INNER_LENGTH
    return None if inner_source == w.ALICE_TUNNEL else Drop.UNALLOWED_SOURCE


def expected_drop(world: w.World, valid: craft.Crafted, mutation: craft.Mutation) -> Drop | None:
    """The exact reason bob must give for ``mutation`` of ``valid`` (None: he must accept it)."""
    F = craft.Field
    data, field = mutation.data, mutation.field
    framing = framing_drop(data)
    if framing is not None:
        return framing
    kind = MessageType(data[0])
    under_load = world.state is w.State.UNDER_LOAD
    if kind is not valid.kind:   # the type byte now names another message of the same size
        if kind is MessageType.TRANSPORT:
            return index_drop(world, int.from_bytes(data[4:8], "little"))
        if kind is MessageType.COOKIE_REPLY:
            entry = world.device.indices.lookup(int.from_bytes(data[4:8], "little"))
            if entry is None:
                return Drop.UNKNOWN_INDEX
            return Drop.DECRYPTION_FAILED if world.awaits_cookie else Drop.NO_MATCHING_INITIATION
        return Drop.BAD_MAC1
    if kind in HANDSHAKE:
        if field is F.MAC1 or (field.on_the_wire and field is not F.MAC2 and not mutation.remac):
            return Drop.BAD_MAC1
        if field is F.MAC2:
            return Drop.COOKIE_REPLY_SENT if under_load else None
    low_order = field is F.EPHEMERAL and mutation.after in craft.LOW_ORDER_POINTS
    if kind is MessageType.INITIATION:
        if field is F.SENDER_INDEX:
            return None   # covered by MAC1 only: not part of the Noise transcript
        if field is F.EPHEMERAL:
            return Drop.ZERO_SHARED_SECRET if low_order else Drop.DECRYPTION_FAILED
        if field in (F.ENCRYPTED_STATIC, F.ENCRYPTED_TIMESTAMP):
            return Drop.DECRYPTION_FAILED
        if field is F.STATIC:
            return None if mutation.after in world.device.peers else Drop.UNKNOWN_PEER
        if field is F.TIMESTAMP:
            peer = world.peer
            if mutation.after <= peer.latest_timestamp:
                return Drop.STALE_TIMESTAMP
            last = peer.last_initiation_consumption
            if last is not None and world.now - last < 1 / INITIATIONS_PER_SECOND:
                return Drop.INITIATION_FLOOD
            return None
    elif kind is MessageType.RESPONSE:
        if field is F.SENDER_INDEX:
            return None
        if field is F.RECEIVER_INDEX:
            return Drop.NO_MATCHING_INITIATION
        if field is F.EPHEMERAL:
            return Drop.ZERO_SHARED_SECRET if low_order else Drop.DECRYPTION_FAILED
        if field in (F.ENCRYPTED_NOTHING, F.PSK):
            return Drop.DECRYPTION_FAILED
    elif kind is MessageType.COOKIE_REPLY:
        if field is F.RECEIVER_INDEX:
            entry = world.device.indices.lookup(int.from_bytes(mutation.after, "little"))
            if entry is None:
                return Drop.UNKNOWN_INDEX
            return None if entry[0] is world.peer else Drop.DECRYPTION_FAILED
        if field in (F.NONCE, F.ENCRYPTED_COOKIE):
            return Drop.DECRYPTION_FAILED
    else:
        if field is F.RECEIVER_INDEX:
            return index_drop(world, int.from_bytes(mutation.after, "little"))
        if field in (F.COUNTER, F.ENCRYPTED_PACKET, F.LENGTH):
            return Drop.DECRYPTION_FAILED
        if field is F.PAYLOAD:
            return inner_drop(mutation.after + bytes(-len(mutation.after) % 16))
    raise AssertionError(f"no expectation for {field.name} of a {kind.name}")


def mutated_messages(data: bytes) -> None:
    """A message bob would accept, crafted for his state, with one field mutated (and MACs recomputed
    or not): bob gives exactly the expected drop reason (or accepts, where the protocol does). When
    the mutation was refused before authentication, the genuine message is still accepted afterwards,
    and refused as a replay the time after."""
    source = Source(data)
    state, kind = source.choice(CASES)
    world = w.build(state)
    valid = valid_message(world, kind, source)
    field = source.choice(craft.fields(valid))
    remac = source.byte() < 224   # mostly: a mutation that stops at MAC1 teaches little
    mutation = craft.mutate(valid, field, rng=source.bytes, remac=remac)
    expected = expected_drop(world, valid, mutation)
    got = observe(world, mutation.data)
    assert got is expected, f"{field.name} of a {kind.name} in {state.name}: expected {expected}, got {got}"
    if got is not None and got not in w.AFTER_AUTHENTICATION:
        assert observe(world, valid.data) is None, "the genuine message is refused after a refused forgery"
        assert observe(world, valid.data) is REPLAYED[kind]


# ------------------------------------------------------------------------------------ the UAPI

OK = b"errno=0\n\n"
ERRNOS = {0, -errno.EINVAL, -errno.EPROTO, -errno.EADDRINUSE, -errno.EIO}
_ERRNO_LINE = re.compile(rb"errno=(-?\d+)\n\n")


def _bind(port: int, fwmark: int) -> int:
    """The runtime's bind hook: port 0 binds an ephemeral port; nothing is refused (a refused bind is
    a partial effect of the failing line, which tests/test_uapi.py covers)."""
    return port or 40000


def _interface_index(name: str) -> int:
    if name not in ("lo", "eth0"):
        raise OSError(errno.ENODEV, "No such device")
    return 1 if name == "lo" else 2


UAPI_PEERS = (w.ALICE.public, PrivateKey(bytes([0xC0]) * 32).public)


def uapi_device(staged: bool = False) -> Device:
    """Bob with two peers: alice (endpoint, an allowed IP) and carol (no endpoint, keepalive, two IPs);
    with ``staged``, a packet for carol waits for her endpoint (since long before the operation)."""
    device = Device(w.BOB, rng=seeded_rng(11), epoch_offset=w.EPOCH)
    alice = device.add_peer(UAPI_PEERS[0])
    alice.endpoint = w.ALICE_ENDPOINT
    device.allowed_ips.insert(w.ALICE_TUNNEL, 32, alice)
    carol = device.add_peer(UAPI_PEERS[1])
    device.set_persistent_keepalive(carol, 25, -100.0)
    device.allowed_ips.insert(bytes([10, 0, 0, 3]), 32, carol)
    device.allowed_ips.insert(bytes.fromhex("fd00" + "00" * 13 + "03"), 128, carol)
    if staged:
        device.send_packet(w.ipv4_packet(w.BOB_TUNNEL, bytes([10, 0, 0, 3]), b"for carol"), -100.0)
    device.datagrams_to_send()
    device.events()
    return device


def _connection(device: Device) -> UapiConnection:
    return UapiConnection(device, bind=_bind, interface_index=_interface_index)


def _answers(reply: bytes) -> list[int]:
    """The errno of every answer in ``reply`` (a get's key=value lines come before its errno line)."""
    codes = []
    for text in reply.split(b"\n\n")[:-1]:
        last = text.rsplit(b"\n", 1)[-1]
        assert last.startswith(b"errno="), f"an answer without errno: {text[-60:]!r}"
        codes.append(int(last[6:]))
    assert reply.endswith(b"\n\n") or not reply
    return codes


def uapi_stream(data: bytes) -> None:
    """Any bytes on a UAPI connection, cut into any pieces, then end of input: nothing raises, every
    answer ends with a known errno, the cut changes nothing, and the device still answers ``get``."""
    source = Source(data)
    size = 1 + source.byte() % 64
    stream = source.rest()
    device = uapi_device(staged=True)
    connection = _connection(device)
    reply = b"".join(connection.feed(stream[at : at + size], 1.0) for at in range(0, len(stream), size))
    reply += connection.eof(1.0)
    assert set(_answers(reply)) <= ERRNOS
    whole = _connection(uapi_device(staged=True))
    assert whole.feed(stream, 1.0) + whole.eof(1.0) == reply, "cutting the input differently changed the answers"
    w.check_events(device.events())
    assert _connection(device).feed(b"get=1\n\n", 2.0).endswith(OK)


def set_body(data: bytes) -> list[bytes]:
    """The lines of one ``set`` operation from fuzz bytes: empty lines (which would end it) removed."""
    return [line for line in data.split(b"\n") if line not in (b"", b"\r")]


def _apply(device: Device, lines: list[bytes]) -> tuple[bytes, UapiConnection]:
    connection = _connection(device)
    operation = b"set=1\n" + b"".join(line + b"\n" for line in lines) + b"\n"
    return connection.feed(operation, 1.0), connection


def _without_counters(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("tx_bytes=")]


def uapi_set(data: bytes) -> None:
    """One ``set`` operation: it is answered with one known errno; when it fails at line n, the device
    is exactly as wireguard-go leaves it (device/uapi.go ``IpcSetOperation``): lines 1..n-1 applied,
    and the section that line n was in not finished -- its keepalive interval stored, but no keepalive
    and no staged packet sent -- except when line n is too long to read (-EIO), where wireguard-go's
    scanner stops and the section is finished as at the end of the input.

    The reference is a second device given lines 1..n-1 as operations that succeed: the sections before
    the unfinished one in one operation, the unfinished one alone in another (without its keepalive
    lines, the interval stored afterwards as wireguard-go's line handler stores it), whose own sending
    is discarded."""
    lines = set_body(data)
    device = uapi_device(staged=True)
    reply, connection = _apply(device, lines)
    codes = _answers(reply)
    assert len(codes) == 1 and codes[0] in ERRNOS and not connection.closed
    w.check_events(device.events())
    if codes[0] == 0:
        return
    match = re.search(r"line (\d+)", str(connection.last_error))
    assert match, f"a failed set names its line: {connection.last_error}"
    failed_at = int(match.group(1))
    before = lines[: failed_at - 1]
    expected = uapi_device(staged=True)
    starts = [i for i, line in enumerate(before) if line.startswith(b"public_key=")]
    if codes[0] == -errno.EIO or not starts or lines[failed_at - 1].startswith(b"public_key="):
        assert _apply(expected, before)[0] == OK, f"lines 1..{failed_at - 1} alone failed"
        assert get_operation(device) == get_operation(expected), f"line {failed_at} failed; the device differs"
        assert device.datagrams_to_send() == expected.datagrams_to_send(), f"line {failed_at} failed; what was sent differs"
        return
    start = starts[-1]
    section = before[start:]
    keepalives = [line for line in section if line.split(b"=", 1)[0] == b"persistent_keepalive_interval"]
    assert _apply(expected, before[:start])[0] == OK, f"lines 1..{start} alone failed"
    sent = expected.datagrams_to_send()
    assert _apply(expected, [line for line in section if line not in keepalives])[0] == OK
    expected.datagrams_to_send()   # what finishing the section sends: wireguard-go never finishes it
    key = bytes.fromhex(section[0].split(b"=", 1)[1].rstrip(b"\r").decode())
    if keepalives and key in expected.peers:
        expected.peers[key].persistent_keepalive_interval = int(keepalives[-1].split(b"=", 1)[1].rstrip(b"\r"))
    assert _without_counters(get_operation(device)) == _without_counters(get_operation(expected)), (
        f"line {failed_at} failed; the device differs")
    assert device.datagrams_to_send() == sent, f"line {failed_at} failed; what was sent differs"


# ------------------------------------------------------------------------------------ configuration files


def _resolve(host: str, port: int) -> str:
    return "192.0.2.53"


def config_file(data: bytes) -> None:
    """Any text: ``config.parse`` (both dialects) returns a configuration or raises ConfigError, and
    nothing else; a file ``wg setconf`` would take, wg-quick takes the same; and what parses, the UAPI
    accepts as ``wg setconf`` would send it (errno=0, the same peers)."""
    text = data.decode("utf-8", "surrogateescape")
    results = {}
    for quick in (False, True):
        try:
            results[quick] = config.parse(text, quick=quick)
        except config.ConfigError as error:
            assert isinstance(error.reason, config.Reason)
            results[quick] = None
    try:
        config.strip(text)
    except config.ConfigError as error:
        assert error.reason is config.Reason.BAD_BOOL
    if results[False] is not None:
        assert results[True] == results[False], "wg-quick reads a wg setconf file differently"
    parsed = results[True]
    if parsed is None:
        return
    device = Device(None, rng=seeded_rng(13), epoch_offset=w.EPOCH)
    connection = UapiConnection(device, interface_index=lambda name: 7)
    reply = connection.feed(config.to_uapi_set(parsed, resolve=_resolve).encode(), 1.0)
    assert reply == OK, f"the UAPI refused what the file parser accepted: {connection.last_error!r}"
    own = device.private_key.public if device.private_key is not None else bytes(32)
    assert set(device.peers) == {peer.public_key for peer in parsed.peers} - {own}


# ------------------------------------------------------------------------------------ stateful models


class _Draw:
    """Stands in for Hypothesis's ``data`` argument of a rule: picks from a ``sampled_from``."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def draw(self, strategy):
        return self.source.choice(strategy.elements)


def replay_window(data: bytes) -> None:
    """The anti-replay window against the set of seen counters: ``ReplayModel`` of tests/test_replay.py,
    its rules chosen and fed by the bytes."""
    source = Source(data)
    model = ReplayModel()
    model.start(limit=source.choice([2**64 - 2**13 - 1, 2**64 - 8130, 40_000]), start_near_the_limit=source.flag())
    bit = lambda: source.choice(BITS.elements)
    rules = (
        lambda: model.near_the_top(blocks=source.below(134) - 130, bit=bit()),
        lambda: model.at_the_window_edge(delta=source.below(5) - 2),
        lambda: model.jump_ahead(blocks=1 + source.below(260), bit=bit()),
        lambda: model.advance_most_of_the_ring(blocks=64 + source.below(64), bit=bit()),
        lambda: model.at_the_limit(delta=source.below(5) - 2),
        lambda: model.small(counter=source.below(20_001)),
        lambda: model.replay_a_seen_counter(earlier=_Draw(source)),
        lambda: model.same_slot_and_bit_as_a_seen_counter(earlier=_Draw(source)),
        lambda: model.reset(),
    )
    for _ in range(200):
        if not source:
            break
        source.choice(rules)()


def keypair_rotation(data: bytes) -> None:
    """Keypair rotation by its invariants: ``KeypairRotation`` (models.py), its rules chosen by the bytes."""
    source = Source(data)
    machine = KeypairRotation()
    rules = (
        lambda: machine.handshake_completes(initiator=source.flag()),
        lambda: machine.packet_received(which=source.below(65536)),
        lambda: machine.cleared(),
    )
    for _ in range(200):
        if not source:
            break
        source.choice(rules)()
        machine.slots_are_consistent()


def _address(source: Source, size: int | None = None) -> bytes:
    """An address near one of tests/test_allowedips.py's bases, as its ``addresses`` strategy draws them."""
    size = size or source.choice((4, 16))
    bits = size * 8
    value = source.choice(BASES[size]) ^ (source.byte() << source.choice((0, 5, bits // 2, bits - 9, bits - 8)))
    return value.to_bytes(size, "big")


def _prefix(source: Source) -> tuple[bytes, int]:
    address = _address(source)
    bits = len(address) * 8
    cidr = source.choice((0, 1, 8, bits // 2, bits - 1, bits)) if source.flag() else source.below(bits + 1)
    return address, cidr


def allowed_ips(data: bytes) -> None:
    """The allowed-IPs table against a linear scan: ``AllowedIPsModel`` (models.py), fed by the bytes."""
    source = Source(data)
    machine = AllowedIPsModel()
    rules = (
        lambda: machine.insert(prefix=_prefix(source), peer=source.choice(PEERS)),
        lambda: machine.remove(prefix=_prefix(source), peer=source.choice(PEERS + [None])),
        lambda: machine.remove_by_peer(peer=source.choice(PEERS)),
        lambda: machine.lookup(address=_address(source)),
    )
    for _ in range(200):
        if not source:
            break
        source.choice(rules)()
    machine.agrees()


# ------------------------------------------------------------------------------------ the userspace stack


def _stack_packet(source: Source) -> tuple[bytes, float | None]:
    """The next step of a ``netstack`` input: a packet to deliver, or (b"", seconds) for time passing."""
    valid = nw.packets()
    kind = source.below(5)
    if kind == nw.RAW:
        return source.blob(1600), None
    if kind == nw.TIME:
        return b"", source.choice(nw.TIME_STEPS)
    packet = source.choice(valid)
    if kind == nw.EDITED:
        edited = bytearray(packet)
        for _ in range(source.byte() % 4):
            at, value = source.below(65536), source.byte()
            edited[at % len(edited)] = value
        packet = bytes(edited)
    elif kind == nw.RESIZED:
        change = (source.byte() & 0x7F) - 64
        packet = packet[:len(packet) + change] if change < 0 else packet + bytes(change)
    return packet, None


def _check_sent(stack, packet: bytes) -> None:
    """A packet the stack sent: IP that parses, from one of its addresses, with a correct upper-layer checksum."""
    parsed = ns_ip.parse(packet)
    assert not isinstance(parsed, NetDrop), (parsed, packet.hex())
    assert len(packet) <= stack.mtu
    assert parsed.source in {entry.address for entry in stack.addresses}
    if parsed.protocol == ns_ip.UDP:
        assert not isinstance(ns_udp.parse(parsed.source, parsed.destination, parsed.payload), NetDrop)
    elif parsed.protocol == ns_ip.TCP:
        assert not isinstance(ns_tcp.parse(parsed.payload, parsed.source, parsed.destination), NetDrop)
    else:
        assert parsed.protocol == ns_icmp.protocol(parsed.version), parsed
        assert not isinstance(ns_icmp.parse(parsed.version, parsed.source, parsed.destination, parsed.payload), NetDrop)


def netstack(data: bytes) -> None:
    """Any packets into a Stack: nothing raises, each packet is taken or counted under exactly one NetDrop,
    and everything the stack sends is a well-formed packet of its own."""
    source = Source(data)
    stack = nw.build()
    now = 1000.0
    for _ in range(64):
        if not source:
            break
        packet, wait = _stack_packet(source)
        if wait is not None:
            now += wait
            stack.poll(now)
        else:
            before = stack.taken + sum(stack.drops.values())
            stack.receive_packets([packet], now)
            assert stack.taken + sum(stack.drops.values()) == before + 1
            assert all(isinstance(reason, NetDrop) for reason in stack.drops)
        assert stack.connections <= stack.max_connections
        for sent in stack.packets_to_send():
            _check_sent(stack, sent)
        stack.events()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "message_parsing": message_parsing,
    "receive_path": receive_path,
    "receive_batch": receive_batch,
    "send_batch": send_batch,
    "mutated_messages": mutated_messages,
    "uapi_stream": uapi_stream,
    "uapi_set": uapi_set,
    "config_file": config_file,
    "replay_window": replay_window,
    "keypair_rotation": keypair_rotation,
    "allowed_ips": allowed_ips,
    "netstack": netstack,
}
