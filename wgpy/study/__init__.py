"""The study wing: ``wgpy explain``, ``wgpy decode`` and ``wgpy demo --in-memory``.

It uses the core and nothing uses it (STYLE.md, "the rings"): the core never imports from here, and the
daemon never needs it.
"""
