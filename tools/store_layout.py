"""Measure the CPU and disk a closed run costs in the shard store's SQLite layout, by table kind.

Standalone (nothing in `raftflow/` imports it); run it alone on the machine, ~1 minute:

    .venv/bin/python tools/store_layout.py [RUNS]

It writes RUNS closed runs (default 20,000) into a fresh file per variant, with the row sizes of
a 3-activity workflow as `raftflow bench` runs it (a ~400-byte run blob, a ~150-byte close
event, one ~3.9 KB history chunk), one commit per 512 runs, as the store does (WAL mode,
synchronous=NORMAL, 2 MiB page cache), and prints CPU (`time.process_time`) and file bytes per
run. Variants: `runs`/`history` as WITHOUT ROWID or rowid tables, at 4, 8 and 16 KiB pages. The
numbers it gave for the store's choice are in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
import time
import uuid

RUNS_TABLE = """CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, workflow_id TEXT NOT NULL,
    workflow_type TEXT NOT NULL, task_queue TEXT NOT NULL, status TEXT NOT NULL,
    start_time_ms INTEGER NOT NULL, close_time_ms INTEGER NOT NULL,
    delete_at_ms INTEGER NOT NULL, history_length INTEGER NOT NULL,
    close_event BLOB NOT NULL, run BLOB NOT NULL)"""
RUNS_INDEXES = (
    "CREATE INDEX runs_due ON runs (delete_at_ms, run_id)",
    "CREATE INDEX runs_started ON runs (namespace, start_time_ms, run_id)",
    "CREATE INDEX runs_closed ON runs (namespace, close_time_ms, run_id)",
)
HISTORY_TABLE = """CREATE TABLE history (
    run_id TEXT NOT NULL, first_event_id INTEGER NOT NULL, events BLOB NOT NULL,
    PRIMARY KEY (run_id, first_event_id))"""
LATEST_TABLE = """CREATE TABLE latest (
    namespace TEXT NOT NULL, workflow_id TEXT NOT NULL, run_id TEXT NOT NULL,
    PRIMARY KEY (namespace, workflow_id)) WITHOUT ROWID"""

RUN_BLOB_BYTES = 400
CLOSE_EVENT_BYTES = 150
HISTORY_CHUNK_BYTES = 3_900
RUNS_PER_COMMIT = 512


def _measure(path: str, runs: int, *, without_rowid: bool, page_bytes: int) -> tuple[float, float]:
    suffix = " WITHOUT ROWID" if without_rowid else ""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA page_size={page_bytes}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-2048")
    for statement in (RUNS_TABLE + suffix, *RUNS_INDEXES, HISTORY_TABLE + suffix, LATEST_TABLE):
        db.execute(statement)
    run_ids = [str(uuid.uuid4()) for _ in range(runs)]
    started = time.process_time()
    db.execute("BEGIN")
    for n, run_id in enumerate(run_ids):
        workflow_id = f"wf-{run_id}"
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (run_id, "default", workflow_id, "Type", "queue", "Completed", 1_000 + n,
                    2_000 + n, 9_000_000 + n, 23, b"c" * CLOSE_EVENT_BYTES,
                    b"r" * RUN_BLOB_BYTES))
        db.execute("INSERT INTO history VALUES (?, ?, ?)", (run_id, 1, b"h" * HISTORY_CHUNK_BYTES))
        db.execute("INSERT OR REPLACE INTO latest VALUES (?, ?, ?)",
                   ("default", workflow_id, run_id))
        if n % RUNS_PER_COMMIT == RUNS_PER_COMMIT - 1:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")
    cpu_us = (time.process_time() - started) / runs * 1e6
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return cpu_us, os.path.getsize(path) / runs


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"| layout | page | CPU µs / run | bytes / run |  ({runs} runs)")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as directory:
        for without_rowid in (True, False):
            for page_bytes in (4096, 8192, 16384):
                path = os.path.join(directory, f"{without_rowid}-{page_bytes}.db")
                cpu_us, size = _measure(path, runs, without_rowid=without_rowid,
                                        page_bytes=page_bytes)
                layout = "WITHOUT ROWID" if without_rowid else "rowid"
                print(f"| {layout} | {page_bytes // 1024} KiB | {cpu_us:.1f} | {size:.0f} |")


if __name__ == "__main__":
    main()
