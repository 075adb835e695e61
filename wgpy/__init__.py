"""wgpy: WireGuard in Python.

Start here. A :class:`Device` is one WireGuard interface with the operating system taken out (sans-IO):
IP packets, UDP datagrams, the time and randomness go in; datagrams to send, packets to deliver, the next
deadline and events come out. The runtime (:mod:`wgpy.runtime`) is what moves them to and from a TUN
device and UDP sockets; a test or another program can move them itself::

    import os, time
    from wgpy import Device, PrivateKey

    device = Device(PrivateKey.generate(os.urandom), rng=os.urandom)
    peer = device.add_peer(their_public_key)
    device.set_endpoint(peer, ("192.0.2.2", 51820))
    device.allowed_ips.insert(bytes([10, 0, 0, 2]), 32, peer)

    device.send_packets([ip_packet], time.monotonic())          # from the TUN side
    device.receive_datagrams([(data, source, None)], now)        # from the network; never raises
    device.handle_timer(now)                                     # when now >= device.next_deadline()
    device.datagrams_to_send(), device.packets_to_deliver(), device.events()

``parse_config(text)`` and ``load_config(path)`` read wg and wg-quick configuration files into an
:class:`InterfaceConfig`; the events (``HandshakeCompleted``, ``PacketDropped``, ...) are exported here
too, and every reason to refuse input is a :class:`Drop`. docs/architecture.md maps the modules to the kernel's
files, docs/howto.md has runnable examples.

:class:`Tunnel` is the same device with a userspace IP stack where the TUN would be: no root, and asyncio's
own calls through the tunnel (docs/library.md)::

    async with wgpy.Tunnel.from_file("wg0.conf") as tunnel:
        reader, writer = await tunnel.open_connection("10.0.0.2", 80)
"""

__version__ = "0.1.0"

# Exported lazily (PEP 562): ``import wgpy`` stays cheap for commands that need none of this.
_EXPORTS = {
    "Device": ("wgpy.core.device", "Device"),
    "PrivateKey": ("wgpy.core.crypto", "PrivateKey"),
    "Drop": ("wgpy.core.errors", "Drop"),
    "InterfaceConfig": ("wgpy.config", "InterfaceConfig"),
    "parse_config": ("wgpy.config", "parse"),
    "load_config": ("wgpy.config", "load"),
    "Tunnel": ("wgpy.runtime.tunnel", "Tunnel"),
    **{name: ("wgpy.core.events", name) for name in (
        "Event", "HandshakeInitiated", "HandshakeResponded", "HandshakeCompleted", "HandshakeGaveUp",
        "CookieReceived", "SessionExpired", "KeysZeroed", "EndpointChanged", "PeerAdded", "PeerRemoved", "PrivateKeyChanged", "UnderLoad",
        "PacketDropped", "KeyRotated", "PreviousKeyRetired")},
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'wgpy' has no attribute {name!r}")
    import importlib

    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
