"""Bounds and timings of the shard store. Every number here has a reason next to it."""

from __future__ import annotations

# Applied log entries between two commits of the store's transaction. Each commit writes the
# open part of the state (all open runs, encoded) and the rows changed since the last one, so
# this trades commit cost against how much of the log a restart replays (the entries after the
# last commit) and how many changed pages wait in SQLite's cache.
COMMIT_EVERY_ENTRIES = 512

# Closed runs and remembered requests an archive holds in memory before writing them to its
# tables in one batch (pending_rows.py); it also writes them at each commit, so this only binds
# when one commit interval closes more runs than this. Each waits as the run itself (a few KiB
# for a short run), so a node holds at most this times its replicas (16 to 64) of them.
PENDING_ROWS_MAX = 1024

# Open runs a store-backed replica keeps decoded in memory (open_run_cache.py); the others are
# read back from their rows on access. Runs the core touched since the last commit stay until
# it writes them, so between commits the cache can exceed this by what those entries touched.
# A node holds a store per shard replica (16 to 64): at 256, about 3-10 MB each for the runs
# `raftflow bench` runs (a few KiB each), while a shard has about 4 runs in flight at 64
# workflows in flight over 16 shards, so the hot runs stay cached with room to spare.
OPEN_RUNS_CACHED = 256

# SQLite page cache per shard store (KiB, as `PRAGMA cache_size=-N` takes it). A node holds a
# store per shard replica (16 to 64), so this times that count is the node's store cache; the
# OS page cache holds the rest of the file.
PAGE_CACHE_KIB = 2048

# Page size of a new store file (bytes). A store holding history updates its random-key indexes
# (run ids, workflow ids, request ids) one page each per workflow, so bigger pages mean more
# bytes through the WAL and its checkpoints: with 12,000 runs retained, 58 KiB written per
# workflow at 8 KiB against 45 KiB at 4 KiB (tools/store_layout.py; CPU differed by less than
# the spread between runs), and `raftflow bench retention` measured the 4 KiB store better once
# it held history (docs/benchmarks.md). A file keeps the page size it was created with.
PAGE_BYTES = 4096

# SQLite's WAL file is folded back into the store once it holds this much (its automatic
# checkpoint, in pages of the file's size; 4 MiB is SQLite's default of 1,000 4-KiB pages). A
# restart after a crash reads the frames still in the WAL of every store of the node (16-64), so
# this bounds that part of restart time. Each checkpoint writes the pages back and syncs the
# files on the event loop, so a smaller bound means more stalls: 2 MiB was tried, and the loaded
# probes of `raftflow bench retention` fell once the stores held history (docs/benchmarks.md).
WAL_AUTOCHECKPOINT_BYTES = 4 * 1024 * 1024

assert OPEN_RUNS_CACHED >= 1
assert COMMIT_EVERY_ENTRIES >= 1 and PAGE_CACHE_KIB >= 256 and PENDING_ROWS_MAX >= 1
assert WAL_AUTOCHECKPOINT_BYTES >= 64 * 1024
assert PAGE_BYTES in (4096, 8192, 16384, 32768, 65536)
