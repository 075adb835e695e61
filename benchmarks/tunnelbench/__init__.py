"""The tunnel benchmark in parts: topology (netns.py), the systems under test (systems.py),
the measurements (measure.py) and the figures, table, plot and docs (report.py). Run bench_tunnel.py."""
