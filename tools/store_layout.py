"""Measure the CPU and disk a closed run costs in the shard store's SQLite layout.

Standalone (nothing in `raftflow/` imports it); run it alone on the machine, ~2 minutes:

    .venv/bin/python tools/store_layout.py [RUNS]

Table 1 writes RUNS closed runs (default 20,000) into a fresh file per variant, with the row
sizes of a 3-activity workflow as `raftflow bench` runs it (a ~400-byte run blob, a ~150-byte
close event, one ~3.9 KB history chunk), one commit per 512 runs, as the store does (WAL mode,
synchronous=NORMAL, 2 MiB page cache), and prints CPU (`time.process_time`) and file bytes per
run. Variants: `runs`/`history` as WITHOUT ROWID or rowid tables, at 4, 8 and 16 KiB pages.

Table 2 uses the store's own schema (format 2) and a workflow's whole write set (request-id
lookup and row, run-id and latest-run lookups, run row, history chunk, latest pointer, with
random workflow and request ids and uuid4 run ids) on a store already holding 12,000 runs (one
shard's share of 200,000), one commit per 110 workflows (512 log entries), and prints CPU and
bytes written (`/proc/self/io` wchar: WAL frames and checkpoints) per workflow, by page size and
WAL checkpoint bound. The numbers it gave are in docs/benchmarks.md.
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


def _written_bytes() -> int:
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("wchar"))


def _one_workflow(db: sqlite3.Connection, n: int) -> None:
    run_id, workflow_id, request_id = (str(uuid.uuid4()) for _ in range(3))
    key = ("start", "default", workflow_id, request_id)
    db.execute("SELECT result FROM requests WHERE kind = ? AND namespace = ? AND "
               "workflow_id = ? AND request_id = ?", key).fetchone()
    db.execute("SELECT run_id FROM latest WHERE namespace = ? AND workflow_id = ?",
               key[1:3]).fetchone()
    db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    db.execute("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?)", (*key, 5_000 + n, b"q" * 90))
    db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (run_id, "default", workflow_id, "Type", "queue", "Completed", 1_000 + n,
                2_000 + n, 9_000_000 + n, 23, b"c" * CLOSE_EVENT_BYTES, b"r" * RUN_BLOB_BYTES))
    db.execute("INSERT INTO history VALUES (?, ?, ?)", (run_id, 1, b"h" * HISTORY_CHUNK_BYTES))
    db.execute("INSERT OR REPLACE INTO latest VALUES (?, ?, ?)", ("default", workflow_id, run_id))


def _retained(path: str, retained: int, measured: int, page_bytes: int,
              checkpoint_bytes: int) -> tuple[float, float]:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from raftflow.shards.store.sqlite_archive import SCHEMA  # the store's real tables

    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA page_size={page_bytes}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA cache_size=-2048")
    db.execute(f"PRAGMA wal_autocheckpoint={checkpoint_bytes // page_bytes}")
    for statement in SCHEMA:
        db.execute(statement)
    db.execute("BEGIN")
    cpu = written = 0.0
    for n in range(retained + measured):
        if n == retained:
            db.execute("COMMIT")
            db.execute("BEGIN")
            cpu, written = time.process_time(), _written_bytes()
        _one_workflow(db, n)
        if n % 110 == 109:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")
    result = ((time.process_time() - cpu) / measured * 1e6,
              (_written_bytes() - written) / measured / 1024)
    db.close()
    return result


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
        print()
        print("| page | WAL checkpoint at | CPU µs / workflow | KiB written / workflow |  "
              "(12,000 retained, 5,000 measured)")
        print("|---|---|---|---|")
        for page_bytes, checkpoint_bytes in ((4096, 2 << 20), (4096, 4 << 20), (8192, 2 << 20),
                                             (8192, 8 << 20)):
            path = os.path.join(directory, f"retained-{page_bytes}-{checkpoint_bytes}.db")
            cpu_us, kib = _retained(path, 12_000, 5_000, page_bytes, checkpoint_bytes)
            print(f"| {page_bytes // 1024} KiB | {checkpoint_bytes >> 20} MiB | {cpu_us:.1f} | "
                  f"{kib:.1f} |")


if __name__ == "__main__":
    main()
