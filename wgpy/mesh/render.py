"""A host's plan as a wg-quick file (wg-quick(8)), which the kernel's ``wg-quick``, ``wgpy up`` and, after
``wg-quick strip``, ``wg setconf`` all read. Pure: text out.

The Address lines carry the network's prefix length (``10.88.0.3/24``), so the interface has a route to
the whole network from the start and a host added later needs no new route on the others.
"""

from __future__ import annotations

from ..core.encoding import key_to_base64
from .plan import HostPlan


def render(host: HostPlan, roster_name: str = "") -> str:
    out = [f"# wgpy mesh: host {host.name}{f' of {roster_name}' if roster_name else ''}. "
           "Made by `wgpy mesh render`: edit the roster, not this file.",
           "[Interface]"]
    if host.private_key is not None:
        out.append(f"PrivateKey = {key_to_base64(host.private_key)}")
    else:
        out.append("# PrivateKey: kept on the host (the roster gives only its public key)")
    out.append(f"Address = {', '.join(str(address) for address in host.addresses)}")
    if host.listen_port is not None:
        out.append(f"ListenPort = {host.listen_port}")
    out.extend(f"{key} = {value}" for key, value in host.extra)
    out.extend(f"# Note: {note}" for note in host.notes)
    for peer in host.peers:
        out += ["", "[Peer]", f"# {peer.name}", f"PublicKey = {key_to_base64(peer.public_key)}",
                f"PresharedKey = {key_to_base64(peer.preshared_key)}",
                f"AllowedIPs = {', '.join(str(network) for network in peer.allowed_ips)}"]
        if peer.endpoint is not None:
            out.append(f"Endpoint = {peer.endpoint}")
        if peer.keepalive is not None:
            out.append(f"PersistentKeepalive = {peer.keepalive}")
    return "\n".join(out) + "\n"
