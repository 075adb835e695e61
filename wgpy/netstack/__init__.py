"""A userspace IP stack, sans-IO, for wgpy without root and without a TUN (docs/netstack.md).

IP packets and ``now`` go in; IP packets, the next deadline and socket events come out.
"""
