"""Configuration changes are events (wgpy/core/events.py), as wireguard-go logs them at LOG_LEVEL=verbose:
a peer added ("UAPI: Created") or removed ("UAPI: Removing"), the private key changed ("UAPI: Updating
private key"), an endpoint set ("UAPI: Updating endpoint"). The core emits them; the runtime's loop logs them."""

from __future__ import annotations

from wgpy.core.crypto import PrivateKey
from wgpy.core.device import Device
from wgpy.core.events import EndpointChanged, PeerAdded, PeerRemoved, PrivateKeyChanged
from wgpy.uapi import UapiConnection

from .conftest import seeded_rng

OWN = PrivateKey(bytes(range(1, 33)))
OTHER = PrivateKey(bytes(range(2, 34)))
ALICE = PrivateKey(bytes(range(3, 35))).public
BOB = PrivateKey(bytes(range(4, 36))).public


def new_device() -> Device:
    return Device(rng=seeded_rng(7), epoch_offset=1.7e9)


def test_peers_added_and_removed_once_each():
    device = new_device()
    device.add_peer(ALICE)
    device.add_peer(ALICE)            # already there: no event
    device.add_peer(BOB)
    device.remove_peer(ALICE)
    device.remove_peer(ALICE)         # already gone: no event
    device.remove_all_peers()
    assert device.events() == [PeerAdded(ALICE), PeerAdded(BOB), PeerRemoved(ALICE), PeerRemoved(BOB)]


def test_private_key_changed_names_the_new_public_key_only():
    device = new_device()
    device.set_private_key(OWN)
    device.set_private_key(OWN)       # the same key: no event
    device.add_peer(OTHER.public)
    device.set_private_key(OTHER)     # the peer with our new public key goes, as in wireguard-go
    device.set_private_key(None)
    assert device.events() == [PrivateKeyChanged(OWN.public), PeerAdded(OTHER.public),
                               PrivateKeyChanged(OTHER.public), PeerRemoved(OTHER.public), PrivateKeyChanged(None)]


def test_a_uapi_set_reports_each_change():
    device = new_device()
    connection = UapiConnection(device)
    operation = (f"set=1\nprivate_key={bytes(range(1, 33)).hex()}\n"
                 f"public_key={ALICE.hex()}\nendpoint=192.0.2.1:51820\nallowed_ip=10.0.0.1/32\n\n").encode()
    assert connection.feed(operation, now=100.0) == b"errno=0\n\n"
    events = device.events()
    assert [type(event) for event in events] == [PrivateKeyChanged, PeerAdded, EndpointChanged]
    assert events[1] == PeerAdded(ALICE) and events[2].endpoint == ("192.0.2.1", 51820)
    assert connection.feed(f"set=1\npublic_key={ALICE.hex()}\nremove=true\n\n".encode(), now=101.0) == b"errno=0\n\n"
    assert device.events() == [PeerRemoved(ALICE)]
