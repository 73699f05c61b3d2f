"""`PendingRows`: the closed runs and remembered requests a shard store has taken since its last
flush, written to SQLite together (sqlite_archive.py).

Theory of operation. Every workflow adds a closed run (a `runs` row, its history chunks, its
`latest` pointer) and a remembered start to the store, and every replica of the shard adds the
same. Written one statement at a time, between the commands of unrelated workflows, those rows
cost each replica ~0.2 ms of CPU per workflow on a loaded node, more than twice what the same
statements cost run back to back (the b-tree pages they touch are cold by then, and each
statement hands the GIL to the node's WAL thread and waits to get it back). So the archive keeps
them here and `flush` writes each table's rows with one `executemany`: at the store's commit, when
more than `PENDING_ROWS_MAX` are waiting, and before any SQL that reads a table they belong to.

Nothing here changes what the archive answers: lookups by key (`has_run`, `latest_closed`,
`recall`, `closed_head`) read these rows first, every other read flushes first, and a flush
writes exactly the rows the one-by-one statements wrote, in the same order. They are part of the
store's open transaction in all but place: a crash loses them with it, and the Raft log replays
both.
"""

from __future__ import annotations

import sqlite3

import msgspec

from raftflow.protocol.codec import ENCODER
from raftflow.protocol.results import Result, WorkflowStatus
from raftflow.shards.core import limits
from raftflow.shards.core.archive import ClosedRunHead
from raftflow.shards.core.state import Execution, RequestKey, WorkflowKey
from raftflow.visibility.query_sql import attribute_columns

# What a closed run's status is called in the `runs` table (the visibility API's names).
StatusNames = dict[WorkflowStatus, str]


class PendingRows:
    """Rows taken since the last flush, by table, in the order they were taken."""

    __slots__ = ("latest", "requests", "runs")

    def __init__(self) -> None:
        self.runs: dict[str, tuple[Execution, int]] = {}  # run id -> (run, delete_at_ms)
        self.latest: dict[WorkflowKey, str] = {}
        self.requests: dict[RequestKey, tuple[Result, int]] = {}  # -> (answer, expires_at_ms)

    def __len__(self) -> int:
        return len(self.runs) + len(self.requests)

    def head(self, run_id: str) -> ClosedRunHead | None:
        """A pending run as `SqliteArchive.closed_head` reads it back from its row."""
        pending = self.runs.get(run_id)
        if pending is None:
            return None
        execution = pending[0]
        return ClosedRunHead(
            execution=msgspec.structs.replace(execution, history=[], spilled_events=0),
            history_length=execution.history_length, close_event=execution.history[-1])

    def flush(self, db: sqlite3.Connection, status_names: StatusNames) -> None:
        """Write every pending row into the store's open transaction, and forget them."""
        if self.runs:
            runs = list(self.runs.values())
            db.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [_run_row(execution, delete_at_ms, status_names)
                            for execution, delete_at_ms in runs])
            # After the spilled chunks already in `history`, the in-memory tail's.
            db.executemany("INSERT INTO history VALUES (?, ?, ?)", [
                (execution.run_id, execution.spilled_events + first + 1,
                 ENCODER.encode(execution.history[first:first + limits.HISTORY_CHUNK_EVENTS]))
                for execution, _ in runs
                for first in range(0, len(execution.history), limits.HISTORY_CHUNK_EVENTS)])
            db.executemany("INSERT INTO search_attributes VALUES (?, ?, ?, ?, ?)", [
                (execution.run_id, a.name, *attribute_columns(a.type, a.value))
                for execution, _ in runs for a in execution.search_attributes])
            self.runs.clear()
        if self.latest:
            db.executemany("INSERT OR REPLACE INTO latest VALUES (?, ?, ?)",
                           [(*key, run_id) for key, run_id in self.latest.items()])
            self.latest.clear()
        if self.requests:
            db.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?)",
                           [(*key, expires_at_ms, ENCODER.encode(result))
                            for key, (result, expires_at_ms) in self.requests.items()])
            self.requests.clear()


def _run_row(execution: Execution, delete_at_ms: int,
             status_names: StatusNames) -> tuple[object, ...]:
    assert not execution.is_open and execution.close_time_ms is not None, execution.run_id
    assert execution.spilled_events % limits.HISTORY_CHUNK_EVENTS == 0, execution.run_id
    # The row holds the run without its history and whole (spilled_events 0, as it reads back).
    blob = ENCODER.encode(msgspec.structs.replace(execution, history=[], spilled_events=0))
    return (execution.run_id, execution.namespace, execution.workflow_id,
            execution.workflow_type, execution.task_queue, status_names[execution.status],
            execution.start_time_ms, execution.close_time_ms, delete_at_ms,
            execution.history_length, ENCODER.encode(execution.history[-1]), blob)
