"""The WireGuard protocol, sans-IO.

Nothing in this package touches a socket, a file, the clock or the operating system's randomness:
callers pass bytes, the current time (``now``, seconds on a monotonic clock), the wall-clock ``epoch``
for TAI64N timestamps, and an ``rng`` (a callable ``rng(n) -> bytes``). ``tests/test_rings.py`` checks
the imports.
"""
