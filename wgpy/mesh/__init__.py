"""``wgpy mesh``: a fleet from a roster (docs/mesh.md).

    roster.py   the TOML roster, validated, every problem named with its line
    plan.py     stable addresses, topology, routes, keepalives: each host's interface (pure)
    state.py    keys, preshared keys and the address record, in a directory beside the roster
    render.py   a host's wg-quick file (pure)
    apply.py    an interface brought to its plan with syncconf semantics, over the UAPI
    status.py   each peer's handshake, endpoint and transfer, and who is unreachable (pure)
    command.py  the subcommands
"""
