"""Benchmarks of sipd, run on loopback with `make bench` (`python -m bench`).

Each benchmark measures the real daemon (a subprocess) against a baseline that shows the limit
of the stack underneath it, and writes its results into its own marked section of
docs/performance.md.
"""
