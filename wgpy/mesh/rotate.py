"""``wgpy mesh rotate ROSTER HOST``: a new key for HOST without an outage (docs/rotation.md).

    1. the new key is made beside the old one:      keys/HOST.next.key   (0600; reused if a run stopped)
    2. HOST's interface rotates to it, keeping the old one for the grace (the UAPI extension
       ``wgpy_rotate_private_key`` + ``wgpy_rotation_grace``; only wgpy's daemon has it)
    3. the state promotes it:                        keys/HOST.key -> keys/HOST.previous.key,
                                                     keys/HOST.next.key -> keys/HOST.key   (a rename)
    4. every other host runs ``wgpy mesh apply`` within the grace: its entry for HOST is replaced (old public
       key removed, new one added with the same allowed IPs, endpoint and preshared key), the ordinary
       change a stock peer (wireguard-go, the kernel) understands.

``--finish`` ends the grace at once on HOST's interface and removes ``HOST.previous.key``.
"""

from __future__ import annotations

import os

from ..core.crypto import public_key
from ..core.encoding import key_to_base64, key_to_hex
from .apply import parse_get
from .state import State, StateError


def rotation_operation(new_private: bytes, grace: int) -> str:
    """The ``set=1`` operation that rotates an interface to ``new_private`` with a grace of ``grace`` s."""
    return f"set=1\nwgpy_rotate_private_key={key_to_hex(new_private)}\nwgpy_rotation_grace={int(grace)}\n\n"


def rotate(state: State, name: str, interface: str, grace: int, *, request=None, rng=os.urandom) -> list[str]:
    """Steps 1 to 3 for host ``name`` whose interface is ``interface``; returns what was done."""
    if request is None:
        from ..runtime.uapi_socket import request
    old = state.private_key(name)
    if old is None:
        raise StateError(f"the state holds no key for {name}: it cannot rotate (a roster public_key is kept elsewhere)")
    new = state.ensure_next_key(name, rng)
    current = parse_get(request(interface, "get=1\n\n")).private_key
    said = []
    if current == key_to_hex(old):
        answer = request(interface, rotation_operation(new, grace))
        if "errno=0" not in answer.splitlines():
            raise OSError(f"{interface} refused the rotation ({answer.strip()}): is it wgpy's daemon? "
                          "A stock peer cannot keep its old key; change its key the ordinary way instead")
        said.append(f"rotated: public key now {key_to_base64(public_key(new))}; the previous one, "
                    f"{key_to_base64(public_key(old))}, answers for {grace} s")
    elif current != key_to_hex(new):
        raise OSError(f"{interface} does not hold {name}'s key: not rotated")
    else:
        said.append("already rotated on the interface")
    state.promote_next_key(name)
    said.append(f"state: keys/{name}.key is the new key, keys/{name}.previous.key the old one")
    return said


def finish(state: State, name: str, interface: str, *, request=None) -> list[str]:
    """End the grace now and forget the old key on disk."""
    if request is None:
        from ..runtime.uapi_socket import request
    answer = request(interface, "set=1\nwgpy_rotation_grace=0\n\n")
    said = ["grace ended on the interface" if "errno=0" in answer.splitlines() else "no rotation in progress on the interface"]
    if state.forget_previous_key(name):
        said.append(f"state: keys/{name}.previous.key removed")
    return said
