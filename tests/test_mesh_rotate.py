"""``wgpy mesh rotate``: the state directory and the interfaces, in memory (each interface a Device behind a
UapiConnection; the runtime's socket is replaced by a function).

    a (wgpy, rotates)  <->  b (any UAPI interface: its entry for a is replaced by ``mesh apply``)
"""

import os
import stat

from wgpy.core.crypto import PrivateKey, public_key
from wgpy.core.device import Device
from wgpy.core.encoding import key_from_base64
from wgpy.mesh.apply import apply
from wgpy.mesh.command import Fleet
from wgpy.mesh.rotate import finish, rotate
from wgpy.uapi import UapiConnection

from .conftest import seeded_rng

ROSTER = """\
[network]
ipv4 = "10.88.0.0/24"

[[host]]
name = "a"
endpoint = "192.0.2.1:51820"

[[host]]
name = "b"
endpoint = "192.0.2.2:51820"
"""


def interface(device, clock):
    def request(name, text):
        return UapiConnection(device).feed(text.encode(), now=clock[0]).decode()
    return request


def test_rotate_then_apply_on_the_other_host_then_finish(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text(ROSTER)
    fleet = Fleet(str(path))
    clock = [100.0]
    a, b = Device(rng=seeded_rng(1)), Device(rng=seeded_rng(2))
    apply(fleet.host("a"), "a", request=interface(a, clock))
    apply(fleet.host("b"), "b", request=interface(b, clock))
    old = fleet.host("a").private_key
    assert a.private_key.private_bytes() == old
    b_peer = b.peers[public_key(old)]
    b_allowed = list(b.allowed_ips.iter_entries(b_peer))

    said = rotate(fleet.state, "a", "a", 120, request=interface(a, clock))
    assert said[0].startswith("rotated: public key now ")
    keys = tmp_path / "fleet.state" / "keys"
    new = fleet.state.private_key("a")
    assert new != old and a.private_key.private_bytes() == new
    assert key_from_base64((keys / "a.previous.key").read_text().strip()) == fleet.state.previous_key("a") == old
    assert not (keys / "a.next.key").exists()
    for name in ("a.key", "a.previous.key"):
        assert stat.S_IMODE(os.stat(keys / name).st_mode) == 0o600
    assert a.rotation is not None and a.rotation.ends == clock[0] + 120
    assert old.hex() not in "".join(said) and new.hex() not in "".join(said)

    # The roster read again gives b a's new key; apply replaces the entry, with the same settings.
    fleet = Fleet(str(path))
    assert fleet.host("a").public_key == public_key(new)
    assert apply(fleet.host("a"), "a", request=interface(a, clock)) == []     # a: nothing more to change
    changed = apply(fleet.host("b"), "b", request=interface(b, clock))
    assert any(line.startswith("removed peer") for line in changed) and any("added peer a" in l for l in changed)
    assert set(b.peers) == {public_key(new)}
    replacement = b.peers[public_key(new)]
    assert replacement.endpoint == b_peer.endpoint and replacement.preshared_key == b_peer.preshared_key
    assert list(b.allowed_ips.iter_entries(replacement)) == b_allowed != []

    # Running it again rotates again (a fresh key); --finish ends the grace and forgets the old key's file.
    said = finish(fleet.state, "a", "a", request=interface(a, clock))
    assert said == ["grace ended on the interface", "state: keys/a.previous.key removed"]
    assert a.rotation is None and not (keys / "a.previous.key").exists()


def test_rotate_refuses_an_interface_that_is_not_the_host(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text(ROSTER)
    fleet = Fleet(str(path))
    clock = [100.0]
    stranger = Device(PrivateKey.generate(seeded_rng(3)), rng=seeded_rng(4))
    try:
        rotate(fleet.state, "a", "x", 60, request=interface(stranger, clock))
    except OSError as error:
        assert "does not hold a's key" in str(error)
    else:
        raise AssertionError("rotated an interface that is not the host")
    assert stranger.rotation is None
