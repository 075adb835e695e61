"""A device under test in each state of a session, the peer that fuzz inputs speak for, and a snapshot of
the device's public state (what "a dropped datagram changes nothing" compares).

    alice (crafted with wgpy.craft; 192.0.2.1:51820, tunnel 10.0.0.1/32) ---- datagrams ----> bob (a Device)

Bob is a real :class:`~wgpy.core.device.Device` with a seeded rng; alice exists only as keys and the
crafting API, so that any message she could send (and any mutation of it) can be built. Every state is
built afresh for every fuzz input, deterministically: an input means the same thing on every run.

The states (the issue's list):

* ``NO_SESSION``: bob knows alice (endpoint, allowed IPs, preshared key) and nothing happened yet.
* ``INITIATION_SENT``: bob had a packet for alice and sent her an initiation; the packet waits.
* ``INITIATION_RECEIVED``: alice's initiation reached bob, who answered; his keypair waits in ``next``.
* ``IN_SESSION``: bob initiated, alice answered, bob confirmed with his waiting packet: ``current``.
* ``UNDER_LOAD``: as ``NO_SESSION``, with bob's load meter past its threshold and a cookie from bob for
  alice's address, so that alice can still get through with MAC2.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum

from wgpy import craft
from wgpy.core.constants import UNDER_LOAD_QUEUE_LENGTH
from wgpy.core.crypto import PrivateKey, clamp
from wgpy.core.device import Device
from wgpy.core.errors import Drop
from wgpy.core.events import PacketDropped
from wgpy.core.keypairs import Keypair
from wgpy.core.peer import Peer

from ..conftest import seeded_rng

ALICE = PrivateKey(clamp(bytes([0xA1]) * 32))
BOB = PrivateKey(clamp(bytes([0xB0]) * 32))
STRANGER = PrivateKey(clamp(bytes([0x5E]) * 32))     # a key bob does not know
PSK = bytes(range(0x40, 0x60))
ALICE_ENDPOINT = ("192.0.2.1", 51820)
# The local addresses of bob that datagrams reach (opaque to the core, as the runtime's are): alice's own
# datagrams reach the first; fuzzed ones the second, so a drop that moved the reply source would show.
BOB_LOCAL, BOB_OTHER_LOCAL = "bob-address-1", "bob-address-2"
ALICE_TUNNEL = bytes([10, 0, 0, 1])
BOB_TUNNEL = bytes([10, 0, 0, 2])
EPOCH = 1_700_000_000.0
START = 1000.0                 # bob's monotonic clock when each state begins
ALICE_INDEX = 0xA11CE000       # alice's session indices (bob's come from his rng)


def ephemeral(n: int) -> PrivateKey:
    """Alice's n-th ephemeral key."""
    return PrivateKey(clamp(bytes([0xE0 + n]) * 32))


def ipv4_packet(source: bytes, destination: bytes, payload: bytes, protocol: int = 17) -> bytes:
    """A minimal IPv4 packet (WireGuard checks neither checksum)."""
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, protocol, 0, source, destination) + payload


PING = ipv4_packet(BOB_TUNNEL, ALICE_TUNNEL, b"bob to alice")
DATA = ipv4_packet(ALICE_TUNNEL, BOB_TUNNEL, b"alice to bob, some data")


class State(Enum):
    NO_SESSION = "no session"
    INITIATION_SENT = "initiation sent"
    INITIATION_RECEIVED = "initiation received"
    IN_SESSION = "in session"
    UNDER_LOAD = "under load"


STATES = tuple(State)


@dataclass
class World:
    """Bob's device in one state, and what alice knows in it (to craft messages bob would accept)."""

    state: State
    device: Device
    now: float
    source: tuple = ALICE_ENDPOINT
    bob_initiation: bytes | None = None      # bob's pending initiation (INITIATION_SENT)
    alice_keys: object = None                 # alice's TransportKeys of the session with bob
    bob_index: int | None = None              # bob's index of that session
    alice_counter: int = 0                    # the next counter alice sends with
    cookie: bytes | None = None               # bob's cookie for alice's address (UNDER_LOAD)
    awaits_cookie: bool = False               # bob sent a handshake message and no cookie reply since
    latest_timestamp: int = 0                 # seconds of alice's last accepted initiation

    @property
    def peer(self) -> Peer:
        return self.device.peers[ALICE.public]

    def deliver(self, data: bytes) -> list[tuple[bytes, tuple]]:
        """Hand bob one datagram from alice's address now; return what bob sent."""
        self.device.receive_datagram(data, self.source, self.now, BOB_LOCAL)
        return self.device.datagrams_to_send()

    # ------------------------------------------------------------------ messages bob accepts in this state

    def valid_initiation(self, seconds_later: int = 1) -> craft.Crafted:
        """An initiation from alice with a timestamp newer than any bob accepted (and bob's cookie)."""
        return craft.initiation(
            ALICE, BOB.public, ephemeral=ephemeral(1), sender_index=ALICE_INDEX + 1,
            timestamp=craft.timestamp(int(EPOCH) + self.latest_timestamp + seconds_later), cookie=self.cookie,
        )

    def valid_response(self) -> craft.Crafted:
        """Alice's answer to bob's pending initiation."""
        return craft.response(ALICE, self.bob_initiation, ephemeral=ephemeral(2), sender_index=ALICE_INDEX + 2, psk=PSK)

    def valid_cookie_reply(self) -> craft.Crafted:
        """A cookie reply from alice (as if she were under load) to bob's pending initiation."""
        return craft.cookie_reply(
            ALICE.public, receiver_index=int.from_bytes(self.bob_initiation[4:8], "little"),
            nonce=bytes(range(24)), cookie=bytes([0xC0]) * 16, mac1=craft.mac1_of(self.bob_initiation),
        )

    def valid_transport(self, payload: bytes = DATA) -> craft.Crafted:
        """A data packet from alice in the session, with her next counter."""
        return craft.transport(self.alice_keys.sending_key, receiver_index=self.bob_index, counter=self.alice_counter, payload=payload)


def build(state: State) -> World:
    """Bob's device in ``state``, built from scratch (a few milliseconds: several Diffie-Hellmans)."""
    device = Device(BOB, rng=seeded_rng(7), epoch_offset=EPOCH - START)
    peer = device.add_peer(ALICE.public)
    peer.endpoint = ALICE_ENDPOINT
    peer.preshared_key = PSK
    device.allowed_ips.insert(ALICE_TUNNEL, 32, peer)
    world = World(state, device, START)

    if state in (State.INITIATION_SENT, State.IN_SESSION):
        device.send_packet(PING, START)
        (world.bob_initiation, _), = device.datagrams_to_send()
        world.awaits_cookie = True
        if state is State.IN_SESSION:
            world.now = START + 0.05
            answer = world.valid_response()
            world.alice_keys = answer.keys
            sent = world.deliver(answer.data)
            assert len(sent) == 1 and sent[0][0][0] == 4, "bob confirms the session with his waiting packet"
            world.bob_index = int.from_bytes(world.bob_initiation[4:8], "little")
            world.alice_counter = 0
    elif state is State.INITIATION_RECEIVED:
        hello = world.valid_initiation()
        (answer, _), = world.deliver(hello.data)
        world.alice_keys = craft.finish(hello, answer, psk=PSK)
        world.bob_index = int.from_bytes(answer[4:8], "little")
        world.latest_timestamp = 1
        world.awaits_cookie = True
    elif state is State.UNDER_LOAD:
        world.now = START + 0.5
        # A backlog of handshake messages deep enough to put bob under load, as a flood leaves one; he
        # answers them with cookie replies, and stays under load for UNDER_LOAD_AFTER_TIME.
        flood = world.valid_initiation().data
        device.receive_datagrams([(flood, ("198.18.0.1", 1000 + n), None) for n in range(UNDER_LOAD_QUEUE_LENGTH)], world.now)
        while device.handshake_queue:
            device.handle_timer(world.now)
        device.datagrams_to_send()
        hello = world.valid_initiation()
        (reply, _), = world.deliver(hello.data)
        world.cookie = craft.open_cookie_reply(reply, BOB.public, craft.mac1_of(hello.data))
        world.now += 0.001
    device.events()
    if state is not State.UNDER_LOAD:
        world.now = START + 1.0
    return world


# ------------------------------------------------------------------------------------------- snapshot


def snapshot(device: Device, now: float) -> dict:
    """Everything public a datagram could change, except the drop counters and the outputs: the identity
    and configuration, and per peer its endpoint and the address replies leave from, handshake, keypairs and their counters, timers,
    timestamps, staged packets, cookie and byte counts, and which owner each session index names.

    The load meter, the rate limiter and the cookie secret are left out on purpose: every handshake
    message moves them, whatever becomes of it (the kernel counts its queue the same way)."""
    return {
        "identity": (device.private_key.public if device.private_key else None, device.listen_port, device.fwmark, device.mtu),
        "peers": {key: _peer_state(device, peer, now) for key, peer in device.peers.items()},
        # The timers' next deadline and the handshake backlog (not Device.next_deadline(), which also
        # wakes the device to sweep the rate limiter, left out with it).
        "next_deadline": device.schedule.next_deadline(),
        "queued_handshakes": len(device.handshake_queue),
    }


def _peer_state(device: Device, peer: Peer, now: float) -> tuple:
    handshake = peer.handshake
    return (
        peer.endpoint,
        device.reply_source(peer.endpoint) if peer.endpoint else None,
        peer.preshared_key,
        peer.persistent_keepalive_interval,
        tuple(device.allowed_ips.entries(peer)),
        None if handshake is None else (handshake.local_index, _owns(device, handshake.local_index, peer, handshake)),
        peer.latest_timestamp,
        peer.last_initiation_consumption,
        peer.last_sent_handshake,
        peer.handshake_attempts,
        peer.sent_lastminute_handshake,
        peer.need_another_keepalive,
        tuple(sorted((timer.name, deadline) for timer, deadline in peer.timers.items())),
        tuple(peer.staged),
        peer.rx_bytes,
        peer.tx_bytes,
        peer.last_handshake_time,
        repr(peer.cookie),
        peer.cookie.has_fresh_cookie(now),
        tuple(_keypair_state(device, peer, keypair) for keypair in (peer.keypairs.previous, peer.keypairs.current, peer.keypairs.next)),
    )


def _keypair_state(device: Device, peer: Peer, keypair: Keypair | None) -> tuple | None:
    if keypair is None:
        return None
    return (
        keypair.local_index,
        keypair.remote_index,
        keypair.is_initiator,
        keypair.created,
        keypair.sending_counter,
        keypair.replay.window(),   # the bitmaps, not only the highest counter
        _owns(device, keypair.local_index, peer, keypair),
    )


def _owns(device: Device, index: int, peer: Peer, owner: object) -> bool:
    entry = device.indices.lookup(index)
    return entry is not None and entry[0] is peer and entry[1] is owner


# ------------------------------------------------------------------------------------------- events


def check_events(events: list) -> None:
    """Events name peers by public key (events.py): never by a Peer object."""
    for event in events:
        peer = getattr(event, "peer", None)
        assert peer is None or isinstance(peer, bytes), f"{type(event).__name__} names its peer by {type(peer).__name__}"
        if isinstance(event, PacketDropped):
            assert isinstance(event.reason, Drop)


# Drops of datagrams that authenticated: like the kernel, the session state (counters, timers, endpoint)
# already moved for them, and only the inner packet is refused.
AFTER_AUTHENTICATION = frozenset({Drop.NOT_IP, Drop.BAD_INNER_LENGTH, Drop.UNALLOWED_SOURCE})
