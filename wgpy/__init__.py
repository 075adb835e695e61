"""wgpy: WireGuard in Python.

The protocol lives in :mod:`wgpy.core` (sans-IO: bytes, ``now`` and randomness in; bytes, deadlines and
events out). The runtime adapters that touch the operating system live in :mod:`wgpy.runtime`.
"""

__version__ = "0.1.0"
