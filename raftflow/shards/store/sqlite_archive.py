"""`SqliteArchive`: the core's archive (closed runs, request ids) in a shard store's tables.

Theory of operation. Every call runs on the store's one connection, inside the transaction the
store keeps open between commits (shard_store.py), so a read sees every write before it and
a crash rolls the tables back to the last commit, together with the open part and the log index
stored in the same transaction. Closed runs and remembered requests reach the tables in
batches (pending_rows.py), which changes when they are written, never what a read answers.
Every statement is parameterised: no value is ever formatted into SQL text (a visibility filter
is SQL that raftflow.visibility builds from its own constants, every value of it a parameter
too).

Rows answer exactly like `MemoryArchive`'s (the digest compares `canonical_rows`): orders are
SQLite's BINARY collation on UTF-8 text, which sorts like Python's `str` (code point order),
and composite keys compare column by column like Python tuples.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import msgspec

from raftflow.protocol.codec import ENCODER, decoder
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.results import Result, WorkflowDescription, WorkflowStatus
from raftflow.shards.core import limits
from raftflow.shards.core.archive import (
    ArchivedRun,
    ClosedRunHead,
    RememberedRequest,
    SpilledChunk,
    canonical_latest,
    canonical_request,
    canonical_run,
    canonical_spilled,
)
from raftflow.shards.core.queries import description_of
from raftflow.shards.core.state import Execution, RequestKey, WorkflowKey
from raftflow.shards.store import limits as store_limits
from raftflow.shards.store.pending_rows import PendingRows
from raftflow.visibility.query_ast import ExecutionStatus
from raftflow.visibility.query_eval import VisibilityRow
from raftflow.visibility.query_sql import SqlFilter

# The core's run status -> the name visibility queries use (ExecutionStatus = 'Completed').
API_STATUS: dict[WorkflowStatus, str] = {
    WorkflowStatus.RUNNING: ExecutionStatus.RUNNING.value,
    WorkflowStatus.COMPLETED: ExecutionStatus.COMPLETED.value,
    WorkflowStatus.FAILED: ExecutionStatus.FAILED.value,
    WorkflowStatus.CANCELED: ExecutionStatus.CANCELED.value,
    WorkflowStatus.TERMINATED: ExecutionStatus.TERMINATED.value,
    WorkflowStatus.CONTINUED_AS_NEW: ExecutionStatus.CONTINUED_AS_NEW.value,
    WorkflowStatus.TIMED_OUT: ExecutionStatus.TIMED_OUT.value,
}
assert set(API_STATUS) == set(WorkflowStatus)

SCHEMA = (
    # `runs` and `history` are rowid tables: their rows hold blobs of hundreds of bytes to a few
    # KiB, and a WITHOUT ROWID b-tree keeps whole rows in its key order, which made each closed
    # run cost 2.5-4x the CPU and ~10 % more disk (tools/store_layout.py, docs/benchmarks.md).
    # The small keyed tables stay WITHOUT ROWID. The primary keys are unique indexes either way.
    # `status` holds the visibility API's names ('Completed', ...), as raftflow.visibility's
    # SQL expects; `run` is the run without its history, `close_event` its last event.
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, workflow_id TEXT NOT NULL,
        workflow_type TEXT NOT NULL, task_queue TEXT NOT NULL, status TEXT NOT NULL,
        start_time_ms INTEGER NOT NULL, close_time_ms INTEGER NOT NULL,
        delete_at_ms INTEGER NOT NULL, history_length INTEGER NOT NULL,
        close_event BLOB NOT NULL, run BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS runs_due ON runs (delete_at_ms, run_id)",
    "CREATE INDEX IF NOT EXISTS runs_started ON runs (namespace, start_time_ms, run_id)",
    "CREATE INDEX IF NOT EXISTS runs_closed ON runs (namespace, close_time_ms, run_id)",
    """CREATE TABLE IF NOT EXISTS search_attributes (
        run_id TEXT NOT NULL, name TEXT NOT NULL, value_int INTEGER, value_real REAL,
        value_text TEXT, PRIMARY KEY (run_id, name)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS history (
        run_id TEXT NOT NULL, first_event_id INTEGER NOT NULL, events BLOB NOT NULL,
        PRIMARY KEY (run_id, first_event_id))""",
    """CREATE TABLE IF NOT EXISTS latest (
        namespace TEXT NOT NULL, workflow_id TEXT NOT NULL, run_id TEXT NOT NULL,
        PRIMARY KEY (namespace, workflow_id)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS requests (
        kind TEXT NOT NULL, namespace TEXT NOT NULL, workflow_id TEXT NOT NULL,
        request_id TEXT NOT NULL, expires_at_ms INTEGER NOT NULL, result BLOB NOT NULL,
        PRIMARY KEY (kind, namespace, workflow_id, request_id)) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS requests_due
        ON requests (expires_at_ms, kind, namespace, workflow_id, request_id)""",
)

_EXECUTION = decoder(Execution)
_EVENTS = decoder(list[HistoryEvent])
_EVENT = decoder(HistoryEvent)
_RESULT: msgspec.msgpack.Decoder[Result] = decoder(Result)  # type: ignore[arg-type]


class SqliteArchive:
    """An `Archive` whose rows live in the shard store's SQLite tables."""

    __slots__ = ("_db", "_next_expiry", "_pending")

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._pending = PendingRows()
        self._next_expiry: int | None = None
        self._recompute_next_expiry()

    # -- closed runs ---------------------------------------------------------------------------

    def put_closed(self, execution: Execution, delete_at_ms: int) -> None:
        # Written with the other pending rows (pending_rows.py); the caller never changes it.
        assert not execution.is_open and execution.close_time_ms is not None, execution.run_id
        self._pending.runs[execution.run_id] = (execution, delete_at_ms)
        self._pending.latest[execution.key] = execution.run_id
        self._lower_next_expiry(delete_at_ms)
        self._flush_if_full()

    def flush(self) -> None:
        """Write the pending rows (the store's commit calls this first)."""
        self._pending.flush(self._db, API_STATUS)

    def _flush_if_full(self) -> None:
        if len(self._pending) >= store_limits.PENDING_ROWS_MAX:
            self.flush()

    def closed_run(self, run_id: str) -> Execution | None:
        if run_id in self._pending.runs:
            self.flush()  # whole, with its spilled chunks: read it back
        row = self._db.execute("SELECT run FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        return self._with_history(_EXECUTION.decode(row[0]))

    def closed_head(self, run_id: str) -> ClosedRunHead | None:
        pending = self._pending.head(run_id)
        if pending is not None:
            return pending
        row = self._db.execute("SELECT run, history_length, close_event FROM runs "
                               "WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        return ClosedRunHead(execution=_EXECUTION.decode(row[0]), history_length=row[1],
                             close_event=_EVENT.decode(row[2]))

    def put_spilled(self, run_id: str, first_event_id: int, events: list[HistoryEvent]) -> None:
        # The same table and chunk layout as a closed run's history: when the run closes,
        # `put_closed` adds the rest after these.
        assert (first_event_id - 1) % limits.HISTORY_CHUNK_EVENTS == 0, (run_id, first_event_id)
        assert len(events) == limits.HISTORY_CHUNK_EVENTS, (run_id, len(events))
        self._db.execute("INSERT INTO history VALUES (?, ?, ?)",
                         (run_id, first_event_id, ENCODER.encode(events)))

    def stored_events(self, run_id: str, first_event_id: int, limit: int) -> list[HistoryEvent]:
        assert first_event_id >= 1 and limit >= 0, (first_event_id, limit)
        if limit == 0:
            return []
        if run_id in self._pending.runs:
            self.flush()
        # Only the chunks overlapping [first_event_id, first_event_id + limit): a chunk starts
        # at first_event_id = 1 + k * limits.HISTORY_CHUNK_EVENTS and holds up to that many events.
        last_event_id = first_event_id + limit - 1
        chunks = self._db.execute(
            "SELECT events FROM history WHERE run_id = ? AND first_event_id > ? "
            "AND first_event_id <= ? ORDER BY first_event_id",
            (run_id, first_event_id - limits.HISTORY_CHUNK_EVENTS, last_event_id)).fetchall()
        return [event for (chunk,) in chunks for event in _EVENTS.decode(chunk)
                if first_event_id <= event.event_id <= last_event_id]

    def has_run(self, run_id: str) -> bool:
        if run_id in self._pending.runs:
            return True
        return self._db.execute("SELECT 1 FROM runs WHERE run_id = ?",
                                (run_id,)).fetchone() is not None

    def latest_closed(self, key: WorkflowKey) -> str | None:
        pending = self._pending.latest.get(key)
        if pending is not None:
            return pending
        row = self._db.execute("SELECT run_id FROM latest WHERE namespace = ? AND workflow_id = ?",
                               key).fetchone()
        return None if row is None else str(row[0])

    def closed_count(self) -> int:
        self.flush()
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def visible_page(self, namespace: str, where: SqlFilter, after: tuple[str, list[object]] | None,
                     limit: int) -> list[tuple[VisibilityRow, WorkflowDescription]]:
        """Up to `limit` closed runs of the namespace that `where` selects, after the page
        position `after` (a condition of raftflow.visibility.paging), in `where`'s order."""
        condition, params = after if after is not None else ("1", [])
        self.flush()
        rows = self._db.execute(
            "SELECT runs.run_id, runs.workflow_id, runs.workflow_type, runs.task_queue, "
            "runs.status, runs.start_time_ms, runs.close_time_ms, runs.history_length, "
            "runs.close_event, runs.run FROM runs WHERE runs.namespace = ? AND "
            f"({where.where_sql}) AND {condition} ORDER BY {where.order_sql} LIMIT ?",
            [namespace, *where.params, *params, limit]).fetchall()
        page = []
        for (run_id, workflow_id, workflow_type, task_queue, status, start_ms, close_ms,
             history_length, close_event, blob) in rows:
            execution = _EXECUTION.decode(blob)
            row = VisibilityRow(run_id=run_id, workflow_id=workflow_id,
                                workflow_type=workflow_type, task_queue=task_queue,
                                status=status, start_time_ms=start_ms, close_time_ms=close_ms,
                                attributes={a.name: a.value for a in execution.search_attributes})
            page.append((row, description_of(execution, history_length,
                                             _EVENT.decode(close_event))))
        return page

    def visible_count(self, namespace: str, where: SqlFilter) -> int:
        """How many closed runs of the namespace `where` selects."""
        self.flush()
        return int(self._db.execute(
            f"SELECT COUNT(*) FROM runs WHERE runs.namespace = ? AND ({where.where_sql})",
            [namespace, *where.params]).fetchone()[0])

    def _with_history(self, execution: Execution) -> Execution:
        chunks = self._db.execute(
            "SELECT events FROM history WHERE run_id = ? ORDER BY first_event_id",
            (execution.run_id,)).fetchall()
        execution.history = [event for (chunk,) in chunks for event in _EVENTS.decode(chunk)]
        return execution

    # -- request ids ---------------------------------------------------------------------------

    def recall(self, key: RequestKey) -> Result | None:
        pending = self._pending.requests.get(key)
        if pending is not None:
            return pending[0]
        row = self._db.execute(
            "SELECT result FROM requests WHERE kind = ? AND namespace = ? AND workflow_id = ? "
            "AND request_id = ?", key).fetchone()
        return None if row is None else _RESULT.decode(row[0])

    def remember(self, key: RequestKey, result: Result, expires_at_ms: int) -> None:
        self._pending.requests[key] = (result, expires_at_ms)
        self._lower_next_expiry(expires_at_ms)
        self._flush_if_full()

    # -- expiry --------------------------------------------------------------------------------

    def expire(self, now_ms: int, limit: int) -> int:
        assert limit >= 0, limit
        if self._next_expiry is None or self._next_expiry > now_ms:
            return 0
        self.flush()
        db = self._db
        runs = db.execute(
            "SELECT run_id, namespace, workflow_id FROM runs WHERE delete_at_ms <= ? "
            "ORDER BY delete_at_ms, run_id LIMIT ?", (now_ms, limit)).fetchall()
        for run_id, namespace, workflow_id in runs:
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM history WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM search_attributes WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM latest WHERE namespace = ? AND workflow_id = ? AND run_id = ?",
                       (namespace, workflow_id, run_id))
        requests = db.execute(
            "SELECT kind, namespace, workflow_id, request_id FROM requests "
            "WHERE expires_at_ms <= ? ORDER BY expires_at_ms, kind, namespace, workflow_id, "
            "request_id LIMIT ?", (now_ms, limit - len(runs))).fetchall()
        db.executemany("DELETE FROM requests WHERE kind = ? AND namespace = ? AND workflow_id = ? "
                       "AND request_id = ?", requests)
        self._recompute_next_expiry()
        return len(runs) + len(requests)

    def next_expiry_ms(self) -> int | None:
        return self._next_expiry

    def _lower_next_expiry(self, at_ms: int) -> None:
        if self._next_expiry is None or at_ms < self._next_expiry:
            self._next_expiry = at_ms

    def _recompute_next_expiry(self) -> None:
        # Cached: the leader asks after every applied entry; only `expire` can raise it.
        heads = [row[0] for row in (
            self._db.execute("SELECT MIN(delete_at_ms) FROM runs").fetchone(),
            self._db.execute("SELECT MIN(expires_at_ms) FROM requests").fetchone(),
        ) if row[0] is not None]
        self._next_expiry = min(heads) if heads else None

    # -- whole contents ------------------------------------------------------------------------

    def canonical_rows(self) -> Iterator[bytes]:
        self.flush()
        db = self._db
        for delete_at_ms, blob in db.execute(
                "SELECT delete_at_ms, run FROM runs ORDER BY run_id").fetchall():
            execution = self._with_history(_EXECUTION.decode(blob))
            yield canonical_run(ArchivedRun(delete_at_ms=delete_at_ms, execution=execution))
        for namespace, workflow_id, run_id in db.execute(
                "SELECT namespace, workflow_id, run_id FROM latest "
                "ORDER BY namespace, workflow_id").fetchall():
            yield canonical_latest((namespace, workflow_id), run_id)
        for kind, namespace, workflow_id, request_id, expires_at_ms, blob in db.execute(
                "SELECT kind, namespace, workflow_id, request_id, expires_at_ms, result "
                "FROM requests ORDER BY kind, namespace, workflow_id, request_id").fetchall():
            yield canonical_request(RememberedRequest(
                key=(kind, namespace, workflow_id, request_id), result=_RESULT.decode(blob),
                expires_at_ms=expires_at_ms))
        for chunk in self.spilled_contents():
            yield canonical_spilled(chunk)

    def spilled_contents(self) -> list[SpilledChunk]:
        # An open run's chunks are the history rows of a run id `runs` does not hold.
        self.flush()
        return [SpilledChunk(run_id=run_id, first_event_id=first, events=_EVENTS.decode(blob))
                for run_id, first, blob in self._db.execute(
                    "SELECT run_id, first_event_id, events FROM history WHERE NOT EXISTS "
                    "(SELECT 1 FROM runs WHERE runs.run_id = history.run_id) "
                    "ORDER BY run_id, first_event_id").fetchall()]

    def load(self, runs: list[ArchivedRun], latest: list[tuple[WorkflowKey, str]],
             requests: list[RememberedRequest], spilled: list[SpilledChunk]) -> None:
        """Replace every row with the given ones (a state restored from a full snapshot)."""
        self.flush()
        for table in ("runs", "history", "latest", "requests", "search_attributes"):
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608 (a constant table name)
        for chunk in spilled:
            self.put_spilled(chunk.run_id, chunk.first_event_id, chunk.events)
        for run in runs:
            self.put_closed(run.execution, run.delete_at_ms)
        self.flush()
        self._db.execute("DELETE FROM latest")  # put_closed set them in run order: use the given
        self._db.executemany("INSERT INTO latest VALUES (?, ?, ?)",
                             [(key[0], key[1], run_id) for key, run_id in latest])
        for request in requests:
            self.remember(request.key, request.result, request.expires_at_ms)
        self.flush()
        self._recompute_next_expiry()
