"""``wgpy mesh status``: the fleet as one host sees it. Pure: the plan, a ``get=1`` answer and ``now`` in,
text out.

A peer is unreachable when its latest handshake is older than 180 seconds or never happened: a session
that carries traffic is renewed every REKEY_AFTER_TIME (120 s, whitepaper section 6.1), and a keepalive
side renews it too, so three minutes without one means the peer has not answered. A host reached through
a hub is not a peer here: its state is on the hub (``wgpy mesh status --host HUB`` there).
"""

from __future__ import annotations

from ..core.encoding import key_to_hex
from ..uapi.show import ago, pretty_bytes
from .apply import Current, format_endpoint
from .plan import HostPlan

UNREACHABLE_AFTER = 180      # seconds without a handshake


def status(host: HostPlan, roster_names: list[str], current: Current, now: int,
           hubs: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    """The text, and the names of the unreachable peers."""
    out = [f"host {host.name} ({', '.join(map(str, host.addresses))})"]
    unreachable = []
    peers = {key_to_hex(peer.public_key): peer for peer in host.peers}
    for public, peer in peers.items():
        seen = current.peers.get(public)
        if seen is None:
            out.append(f"  {peer.name:<15} not configured on this interface (run wgpy mesh apply)")
            unreachable.append(peer.name)
            continue
        handshake = seen["handshake"]
        endpoint = format_endpoint(seen["endpoint"]) if seen["endpoint"] else "(none)"
        when = "never" if handshake == 0 else ago(handshake, now)
        late = handshake == 0 or now - handshake > UNREACHABLE_AFTER
        if late:
            unreachable.append(peer.name)
        out.append(f"  {peer.name:<15} {'UNREACHABLE' if late else 'reachable':<11}  handshake: {when}; "
                   f"endpoint: {endpoint}; transfer: {pretty_bytes(seen['rx'])} received, "
                   f"{pretty_bytes(seen['tx'])} sent")
    named = {peer.name for peer in host.peers} | {host.name}
    for name in roster_names:
        if name not in named:
            out.append(f"  {name:<15} via {hubs[0] if hubs else 'a hub'}")
    for public in current.peers:
        if public not in peers:
            out.append(f"  (a peer not in the roster: {public[:16]}...; wgpy mesh apply removes it)")
    out.append(f"unreachable: {', '.join(unreachable) if unreachable else 'none'}")
    return "\n".join(out) + "\n", unreachable
