"""The runtime: the only code that touches the operating system (TUN, UDP, the UAPI socket, the clock).

Thin adapters around the sans-IO :class:`wgpy.core.device.Device`; ``loop.py`` moves bytes between them.
"""
