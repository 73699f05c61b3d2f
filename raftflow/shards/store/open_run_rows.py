"""Open runs as rows of the shard store: each written when it changed, not every run at every
commit.

Theory of operation. The store's `meta` row holds the open part of the state without its runs
(`open_part_without_runs`: open-run and timer indexes, namespaces, applied index); each open run
is a row of `open_runs`. At a commit the store rewrites the rows of the runs the core touched
since the last one (`ShardState.touched_runs`) and deletes those of runs that closed, so a
commit costs what changed, not what is open (with 50,000 open runs, encoding them all took
78 ms and wrote 51 MB at every commit).

`ShardState.executions` is ordered (runs in the order they opened), the digest and every walk
over it depend on that order, and every replica must rebuild it alike. So each row carries
`seq`, taken from a counter of the store when the row is first written: the touched runs are
walked in the order they were first touched, and a new run is first touched when it opens, so
new rows get increasing numbers in opening order, after every older row (a rewrite keeps the
row's number). Loading the rows by `seq` rebuilds the same order.
"""

from __future__ import annotations

import sqlite3

from raftflow.protocol.codec import ENCODER, decoder
from raftflow.shards.core.snapshot import open_part_bytes
from raftflow.shards.core.state import ShardState
from raftflow.shards.store import open_run_cache

TABLE = """CREATE TABLE IF NOT EXISTS open_runs (
    run_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, run BLOB NOT NULL) WITHOUT ROWID"""


def open_part_without_runs(state: ShardState) -> bytes:
    """The open part as the `meta` row holds it: every field but `executions` (empty)."""
    executions = state.executions
    state.executions = {}
    try:
        return open_part_bytes(state)
    finally:
        state.executions = executions


def write_touched(db: sqlite3.Connection, state: ShardState, next_seq: int) -> int:
    """Rewrite the rows of the runs touched since the last call (delete closed ones), forget
    the touched set, and return the counter for the next new row."""
    touched = state.touched_runs
    assert touched is not None, "a store-backed state tracks touched runs"
    if not touched:
        return next_seq
    rows, gone = [], []
    for run_id in touched:
        execution = state.executions.get(run_id)
        if execution is None:
            gone.append((run_id,))
        else:
            rows.append((run_id, next_seq, ENCODER.encode(execution)))
            next_seq += 1
    # An existing row keeps its seq: only its run changes.
    db.executemany("INSERT INTO open_runs VALUES (?, ?, ?) "
                   "ON CONFLICT (run_id) DO UPDATE SET run = excluded.run", rows)
    db.executemany("DELETE FROM open_runs WHERE run_id = ?", gone)
    touched.clear()
    return next_seq


def read_into(db: sqlite3.Connection, state: ShardState) -> int:
    """Give `state` its open runs (a cache over the rows, none decoded yet), in opening order;
    return the counter for the next new row."""
    assert not state.executions, "the meta row holds no runs"
    rows = db.execute("SELECT run_id, seq FROM open_runs ORDER BY seq").fetchall()
    state.touched_runs = {}
    open_run_cache.attach(state, db, (run_id for run_id, _ in rows))
    return rows[-1][1] + 1 if rows else 1


def move_out_of_open_part(db: sqlite3.Connection, open_part: bytes) -> bytes:
    """Store format 3 to 4: the runs of a format-3 open part become rows, in their order;
    returns the open part without them."""
    db.execute(TABLE)
    state = _STATE.decode(open_part)
    db.executemany("INSERT INTO open_runs VALUES (?, ?, ?)",
                   [(run_id, seq, ENCODER.encode(execution))
                    for seq, (run_id, execution) in enumerate(state.executions.items(), 1)])
    return open_part_without_runs(state)


_STATE = decoder(ShardState)
