"""Benchmarks of a running raftflow cluster (`raftflow bench`, `make bench`).

Numbers go to docs/benchmarks.md, never into test assertions (DESIGN §7, layer 5).
"""
