"""Every fuzz target of tests/fuzz/targets.py under Hypothesis, with a bounded number of examples; the
checked-in corpus and every crash ever found, replayed; the two new stateful models; and the bugs the
targets found, each as a named regression test.

    Hypothesis strategy --bytes--> target(data) <--bytes-- atheris (make fuzz), corpus files, crash files

Long campaigns run the same targets under atheris: ``make fuzz TARGET=receive_path SECONDS=600``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wgpy import craft
from wgpy.core.constants import MessageType
from wgpy.core.crypto import PrivateKey, clamp
from wgpy.core.errors import Drop
from wgpy.core.events import PacketDropped
from wgpy.core.timers import Timer

from .fuzz import inputs, netstack_world, targets, world
from .fuzz.models import AllowedIPsModel, KeypairRotation
from .fuzz.source import Source, blob

FUZZ = Path(__file__).resolve().parent / "fuzz"
# About 40 s for everything here on one idle core; a campaign (make fuzz) is the place for more.
SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def files(kind: str) -> list:
    """Every file of tests/fuzz/<kind>/<target>/ as a (target, path) parameter."""
    found = []
    for directory in sorted((FUZZ / kind).glob("*")):
        for path in sorted(directory.iterdir()):
            found.append(pytest.param(directory.name, path, id=f"{directory.name}/{path.name}"))
    return found


# ------------------------------------------------------------------------------------ strategies

def structured(strategy) -> st.SearchStrategy[bytes]:
    """Fuzz bytes: mostly shaped by ``strategy``, sometimes raw."""
    return st.one_of(strategy, strategy, strategy, st.binary(max_size=300))


def _mutated(seeds: tuple[bytes, ...]) -> st.SearchStrategy[bytes]:
    """A seed with a few bytes overwritten, truncated or extended (a dumb mutator's moves)."""
    def apply(seed: bytes, edits: list[tuple[int, int]], cut: int | None, extra: bytes) -> bytes:
        data = bytearray(seed)
        for at, value in edits:
            if data:
                data[at % len(data)] = value
        data = data[:cut] if cut is not None else data
        return bytes(data) + extra
    return st.builds(apply, st.sampled_from(seeds), st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), max_size=3),
                     st.none() | st.integers(0, 160), st.binary(max_size=8))


@st.composite
def receive_inputs(draw) -> bytes:
    state = draw(st.sampled_from(world.STATES))
    valid = inputs.valid_datagrams(state)
    datagram = st.one_of(st.sampled_from(valid), _mutated(valid), st.binary(max_size=160))
    records = draw(st.lists(st.tuples(st.integers(0, len(targets.TIME_STEPS) - 1), datagram), min_size=1, max_size=3))
    return inputs.receive_input(state, [d for _, d in records], [s for s, _ in records], roaming=draw(st.booleans()))


HEX_KEYS = [key.hex() for key in targets.UAPI_PEERS] + [inputs.PUBLIC[1].hex(), world.BOB.public.hex(), "00" * 32,
                                                         craft.LOW_ORDER_POINTS[4].hex(), "ab" * 31]
# A plausible value for each key, so that most lines are valid and a set gets deep before it fails.
UAPI_VALUES = {
    "private_key": HEX_KEYS,
    "listen_port": ["0", "1", "51820", "65536", "-1"],
    "fwmark": ["0", "1", "4294967295", "4294967296"],
    "replace_peers": ["true", "false"],
    "public_key": HEX_KEYS,
    "remove": ["true", "1"],
    "update_only": ["true", "yes"],
    "preshared_key": HEX_KEYS,
    "endpoint": ["192.0.2.1:1", "192.0.2.3:51820", "[2001:db8::1]:2", "[fe80::1%eth0]:3", "[fe80::1%nope]:3", "1.2.3.4"],
    "persistent_keepalive_interval": ["0", "1", "25", "65535", "65536"],
    "replace_allowed_ips": ["true", "false"],
    "allowed_ip": ["10.0.0.0/8", "-10.0.0.1/32", "-10.0.0.3/32", "fd00::3/128", "0.0.0.0/0", "10.0.0.1/33"],
    "protocol_version": ["1", "2"],
    "bogus": ["1"],
}


def uapi_lines(keys: list[str]) -> st.SearchStrategy[bytes]:
    value = lambda key: st.one_of(st.sampled_from(UAPI_VALUES[key]), st.sampled_from(UAPI_VALUES[key]), st.text(max_size=12))
    return st.sampled_from(keys).flatmap(lambda key: value(key).map(lambda v: f"{key}={v}".encode("utf-8", "surrogateescape")))


DEVICE_KEYS = ["private_key", "listen_port", "fwmark", "replace_peers"]
PEER_KEYS = ["remove", "update_only", "preshared_key", "endpoint", "persistent_keepalive_interval",
             "replace_allowed_ips", "allowed_ip", "protocol_version"]
BAD_LINES = st.sampled_from([b"bogus=1", b"noequals", b"=", b"listen_port=1\r", b"x" * 65536, b"public_key=zz"])


@st.composite
def uapi_bodies(draw) -> bytes:
    """A set's body in the protocol's shape (device lines, then peer sections), perhaps with a bad line."""
    lines = draw(st.lists(uapi_lines(DEVICE_KEYS), max_size=3))
    for key, section in draw(st.lists(st.tuples(st.sampled_from(HEX_KEYS), st.lists(uapi_lines(PEER_KEYS), max_size=5)), max_size=3)):
        lines += [f"public_key={key}".encode()] + section
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(BAD_LINES))
    return b"\n".join(line.replace(b"\n", b"") for line in lines)


@st.composite
def uapi_streams(draw) -> bytes:
    pieces = draw(st.lists(st.one_of(
        uapi_bodies().map(lambda body: b"set=1\n" + body + b"\n\n"),
        st.sampled_from([b"get=1\n\n", b"get=1\nx", b"set=1\r\n", b"\n", b"\r\n", b"set=1\n", b"get"]),
        st.binary(max_size=20),
    ), max_size=6))
    return bytes([draw(st.integers(0, 255))]) + b"".join(pieces)


CONFIG_KEYS = ["PrivateKey", "ListenPort", "FwMark", "PublicKey", "PresharedKey", "AllowedIPs", "Endpoint",
               "PersistentKeepalive", "Address", "DNS", "MTU", "Table", "PreUp", "PostDown", "SaveConfig",
               "privatekey", "Allowed IPs", "Bogus", ""]
CONFIG_VALUES = [inputs._b64(inputs.KEYS[0].private_bytes()), *(inputs._b64(k) for k in inputs.PUBLIC), "AAAA",
                 "51820", "0", "65536", "off", "0x1f", "0x", "10.0.0.0/8, fd00::/64", "10.0.0.1/33", "::ffff:1.2.3.4/128",
                 "192.0.2.1:51820", "[2001:db8::1]:51820", "[fe80::1%eth0]:1", "[fe80::1%12345678901]:1",
                 "example.com:51820", "host:0", "true", "false", "1420", "67", "auto", "1.1.1.1, example.com",
                 "echo hi # not a comment", "", "=", "[", "1e3"]
CONFIG_LINE = st.one_of(
    st.sampled_from(["[Interface]", "[Peer]", "[interface]", " [ Peer ] ", "[Other]", "", "# comment", "=", "Key",
                     "\0", "\t"]),
    st.tuples(st.sampled_from(CONFIG_KEYS), st.one_of(st.sampled_from(CONFIG_VALUES), st.text(max_size=16)))
    .map(lambda kv: f"{kv[0]} = {kv[1]}"),
    st.text(max_size=30),
)
config_texts = st.lists(CONFIG_LINE, max_size=16).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogateescape"))


# ------------------------------------------------------------------------------------ the targets, under Hypothesis

@SETTINGS
@given(structured(st.sampled_from(list(inputs.message_seeds().values())) | _mutated(tuple(inputs.message_seeds().values()))))
def test_message_parsing(data):
    targets.message_parsing(data)


@settings(SETTINGS, max_examples=1200)
@given(structured(receive_inputs()))
def test_receive_path(data):
    targets.receive_path(data)


@st.composite
def batch_inputs(draw) -> bytes:
    state = draw(st.sampled_from(world.STATES))
    valid = inputs.valid_datagrams(state)
    datagrams = draw(st.lists(st.one_of(st.sampled_from(valid), _mutated(valid), st.binary(max_size=100)), min_size=1, max_size=6))
    return inputs.batch_input(state, datagrams, draw(st.integers(0, len(targets.TIME_STEPS) - 1)))


@settings(SETTINGS, max_examples=500)
@given(structured(batch_inputs()))
def test_receive_batch(data):
    targets.receive_batch(data)


@st.composite
def send_inputs(draw) -> bytes:
    head = bytes([draw(st.integers(0, len(world.STATES) - 1)), draw(st.integers(0, len(targets.TIME_STEPS) - 1))])
    return head + draw(st.binary(max_size=40))


@settings(SETTINGS, max_examples=400)
@given(structured(send_inputs()))
def test_send_batch(data):
    targets.send_batch(data)


@settings(SETTINGS, max_examples=2000)
@given(st.binary(max_size=80))
def test_mutated_messages(data):
    targets.mutated_messages(data)


@settings(SETTINGS, max_examples=500)
@given(structured(uapi_streams()))
def test_uapi_stream(data):
    targets.uapi_stream(data)


@settings(SETTINGS, max_examples=700)
@given(structured(uapi_bodies()))
def test_uapi_set(data):
    targets.uapi_set(data)


@settings(SETTINGS, max_examples=1000)
@given(structured(config_texts))
def test_config_file(data):
    targets.config_file(data)


@SETTINGS
@given(st.binary(max_size=400))
def test_replay_window(data):
    targets.replay_window(data)


@SETTINGS
@given(st.binary(max_size=400))
def test_keypair_rotation(data):
    targets.keypair_rotation(data)


@SETTINGS
@given(st.binary(max_size=400))
def test_allowed_ips(data):
    targets.allowed_ips(data)


@st.composite
def netstack_inputs(draw) -> bytes:
    valid = netstack_world.packets()
    index = st.integers(0, len(valid) - 1)
    step = st.one_of(
        index.map(netstack_world.step_valid),
        st.builds(netstack_world.step_edited, index, st.lists(st.tuples(st.integers(0, 1500), st.integers(0, 255)), max_size=3)),
        st.builds(netstack_world.step_resized, index, st.integers(-64, 63)),
        st.binary(max_size=120).map(netstack_world.step_raw),
        st.integers(0, len(netstack_world.TIME_STEPS) - 1).map(netstack_world.step_time),
    )
    return b"".join(draw(st.lists(step, min_size=1, max_size=12)))


@settings(SETTINGS, max_examples=500)
@given(structured(netstack_inputs()))
def test_netstack(data):
    targets.netstack(data)


KeypairRotation.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_keypair_rotation_model = KeypairRotation.TestCase
AllowedIPsModel.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_allowed_ips_model = AllowedIPsModel.TestCase


def test_every_target_is_tested_here():
    assert {name.removeprefix("test_") for name in globals() if name.startswith("test_")} >= set(targets.TARGETS)


# ------------------------------------------------------------------------------------ corpus and crashes

@pytest.mark.parametrize("target, path", files("corpus") + files("regressions"))
def test_corpus_and_regression_files_pass(target, path):
    """The seed corpus keeps passing, and every crash file found by a campaign stays fixed."""
    targets.TARGETS[target](path.read_bytes())


def test_every_target_has_a_seed_corpus():
    assert {path.name for path in (FUZZ / "corpus").iterdir()} == set(targets.TARGETS)


# ------------------------------------------------------------------------------------ the harness itself

def test_seeds_are_accepted_in_their_state():
    """The crafted messages each state is seeded with are ones bob accepts: the targets start where
    the interesting code is, not at MAC1."""
    for state in world.STATES:
        for number, datagram in enumerate(inputs.valid_datagrams(state)):
            refused = state is world.State.UNDER_LOAD and number == 1   # the initiation without a cookie
            assert targets.observe(world.build(state), datagram) is (Drop.COOKIE_REPLY_SENT if refused else None)


def test_every_field_of_every_case_has_an_expectation():
    for state, kind in targets.CASES:
        built = world.build(state)
        valid = targets.valid_message(built, kind, Source(b"\x01"))
        for field in craft.fields(valid):
            for remac in (True, False):
                for seed in range(3):
                    mutation = craft.mutate(valid, field, rng=Source(bytes([seed]) * 64).bytes, remac=remac)
                    targets.expected_drop(built, valid, mutation)


def test_observe_catches_a_drop_that_changes_state(monkeypatch):
    """The snapshot sees a change a buggy drop would make (here: the endpoint moved before a refusal)."""
    built = world.build(world.State.IN_SESSION)
    from wgpy.core.errors import Rejected
    from wgpy.core.keypairs import Keypair

    def roams_then_refuses(keypair, data):
        built.device.set_endpoint(built.peer, ("203.0.113.9", 1))
        raise Rejected(Drop.DECRYPTION_FAILED)

    monkeypatch.setattr(Keypair, "decrypt", roams_then_refuses)
    with pytest.raises(AssertionError, match="changed"):
        targets.observe(built, b"\x04\0\0\0" + built.bob_index.to_bytes(4, "little") + bytes(40))


def test_source_reads_zeros_past_the_end():
    source = Source(b"\x05")
    assert source.byte() == 5 and source.bytes(3) == bytes(3) and not source
    assert Source(blob(b"abc") + b"z").blob() == b"abc"


# ------------------------------------------------------------------------------------ bugs found, as regressions

def test_regression_a_batch_keeps_the_timers_a_handshake_in_it_changed():
    """Found by receive_batch: the fast path applied its timer bookkeeping at the end of the batch, after
    a handshake message later in the same batch had already been answered, so data received before the
    handshake re-armed the keepalive the response had just stood in for (and, the other way round, a
    received packet could clear the new-handshake timer that staged data sent after it had armed)."""
    session = inputs.valid_datagrams(world.State.IN_SESSION)
    targets.receive_batch(inputs.batch_input(world.State.IN_SESSION, [session[0], session[2]]))
    built = world.build(world.State.IN_SESSION)
    built.device.receive_datagrams([(session[0], world.ALICE_ENDPOINT, None), (session[2], world.ALICE_ENDPOINT, None)], built.now)
    assert Timer.SEND_KEEPALIVE not in built.peer.timers   # the response was the answer


def test_regression_a_peer_with_a_low_order_public_key_makes_no_exception():
    """Found by uapi_set/uapi_stream: a peer whose public key is a low-order point (here all zeros), with an
    endpoint and a keepalive, made the initiation's Diffie-Hellman raise Rejected out of
    ``UapiConnection.feed`` (and of ``send_packet`` and ``handle_timer``). Like the kernel's failed
    ``wg_noise_handshake_create_initiation``, nothing is sent and the drop is counted."""
    device = targets.uapi_device()
    reply, _ = targets._apply(device, [b"public_key=" + b"00" * 32, b"endpoint=192.0.2.1:1", b"persistent_keepalive_interval=1"])
    assert reply == targets.OK
    assert device.datagrams_to_send() == []
    dropped = [e for e in device.events() if isinstance(e, PacketDropped)]
    assert [(e.reason, e.peer) for e in dropped] == [(Drop.ZERO_SHARED_SECRET, bytes(32))]
    peer = device.peers[bytes(32)]
    assert peer.handshake is None
    device.handle_timer(1000.0)   # the timers run, and raise nothing either
    device.send_packet(world.ipv4_packet(world.BOB_TUNNEL, bytes([10, 0, 0, 1]), b"x"), 1000.0)


def test_regression_a_failed_set_sends_no_keepalive():
    """Found by uapi_set: a set failing after ``persistent_keepalive_interval`` turned the keepalive on sent
    one (a handshake initiation) although wireguard-go returns before its post-config; it stores the
    interval and sends nothing."""
    device = targets.uapi_device()
    alice = targets.UAPI_PEERS[0].hex().encode()
    reply, _ = targets._apply(device, [b"public_key=" + alice, b"persistent_keepalive_interval=15", b"bogus=1"])
    assert reply != targets.OK
    assert device.datagrams_to_send() == []
    assert device.peers[targets.UAPI_PEERS[0]].persistent_keepalive_interval == 15


def test_regression_a_line_too_long_finishes_the_section_as_wireguard_go_does():
    """Found while writing uapi_set's model: wireguard-go's scanner stops at a line it cannot read and
    then runs the open section's post-config (a keepalive, staged packets) before answering -EIO."""
    device = targets.uapi_device()
    alice = targets.UAPI_PEERS[0].hex().encode()
    reply, _ = targets._apply(device, [b"public_key=" + alice, b"persistent_keepalive_interval=15", b"x" * 70000])
    assert reply == b"errno=-5\n\n"
    assert [d[0][0] for d in device.datagrams_to_send()] == [MessageType.INITIATION]


def test_regression_drop_events_name_the_peer_by_public_key():
    """Found by uapi_stream: a staged packet for a peer, after the private key was removed, was dropped
    with ``PacketDropped.peer`` holding the Peer object rather than its public key (events.py promises
    keys); so was a packet for a peer without an endpoint."""
    device = targets.uapi_device(staged=True)
    carol = targets.UAPI_PEERS[1]
    reply, _ = targets._apply(device, [b"private_key=" + b"00" * 32, b"public_key=" + carol.hex().encode(), b"endpoint=192.0.2.3:3"])
    assert reply == targets.OK
    events = [e for e in device.events() if isinstance(e, PacketDropped)]
    assert [(e.reason, e.peer) for e in events] == [(Drop.NO_PRIVATE_KEY, carol)]


def test_regression_a_numeric_scope_past_32_bits_is_a_bad_endpoint():
    """Found by config_file: ``Endpoint = [fe80::1%12345678901]:1`` parsed, but no scope id is that large
    (glibc's getaddrinfo refuses it, so wg does), and the UAPI refused what the parser had accepted."""
    from wgpy import config

    key = inputs._b64(inputs.PUBLIC[1])
    with pytest.raises(config.ConfigError) as refused:
        config.parse(f"[Peer]\nPublicKey = {key}\nEndpoint = [fe80::1%12345678901]:1\n")
    assert refused.value.reason is config.Reason.BAD_ENDPOINT
    assert config.parse(f"[Peer]\nPublicKey = {key}\nEndpoint = [fe80::1%4294967295]:1\n").peers[0].endpoint.port == 1


def test_low_order_points_are_refused_by_the_core():
    """craft.LOW_ORDER_POINTS are the points the core's Diffie-Hellman refuses, each of them."""
    from wgpy.core.errors import Rejected

    key = PrivateKey(clamp(bytes(range(32))))
    for point in craft.LOW_ORDER_POINTS:
        with pytest.raises(Rejected) as refused:
            key.exchange(point)
        assert refused.value.reason is Drop.ZERO_SHARED_SECRET
    assert len(set(craft.LOW_ORDER_POINTS)) == 14
