"""The public face: what ``import wgpy`` offers a newcomer, and no module reaching into another's privates."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import wgpy

ROOT = Path(__file__).resolve().parent.parent


def test_every_exported_name_resolves_and_import_stays_cheap():
    for name in wgpy.__all__:
        assert getattr(wgpy, name) is not None
    # The exports are lazy: importing the package alone loads neither the core nor cryptography.
    code = "import sys, wgpy; print(any(m.startswith(('wgpy.core', 'cryptography')) for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout.strip() == "False"


def test_the_docstring_example_carries_a_packet_between_two_devices():
    """The calls the package docstring shows, between two devices in memory."""
    alice = wgpy.Device(wgpy.PrivateKey.generate(os.urandom), rng=os.urandom)
    bob = wgpy.Device(wgpy.PrivateKey.generate(os.urandom), rng=os.urandom)
    for me, other, address, tunnel in ((alice, bob, "192.0.2.2", 2), (bob, alice, "192.0.2.1", 1)):
        peer = me.add_peer(other.private_key.public)
        me.set_endpoint(peer, (address, 51820))
        me.allowed_ips.insert(bytes([10, 0, 0, tunnel]), 32, peer)
    packet = bytes([0x45, 0, 0, 24, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]) + b"ping"
    alice.send_packets([packet], 1.0)
    for _ in range(4):   # initiation, response, the packet itself
        for sender, receiver, source in ((alice, bob, ("192.0.2.1", 51820)), (bob, alice, ("192.0.2.2", 51820))):
            receiver.receive_datagrams([(data, source, None) for data, _ in sender.datagrams_to_send()], 1.0)
    assert bob.packets_to_deliver() == [packet]
    assert any(isinstance(e, wgpy.HandshakeCompleted) for e in alice.events())


def test_no_module_reaches_into_another_objects_private_attributes():
    """``x._name`` only on ``self`` or ``cls``: anything else means an API is missing."""
    reaches = []
    for path in sorted((ROOT / "wgpy").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", "os", "sys"))):
                reaches.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert reaches == []
