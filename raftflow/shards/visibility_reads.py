"""One shard's answer to a visibility query: a page of runs after a position, or a count.

Theory of operation. A shard's runs are in two places: open runs in memory (`state.executions`)
and closed runs in its archive. Open runs are matched by `query_eval` over rows built from
their state; closed runs by the archive: SQL (`query_sql`) in a store-backed replica, the same
evaluator over the reference archive's contents otherwise. Both use one total order
(`query_eval.compare_rows`), so the two parts merge into one ordered page, and the gateway
merges the shards' pages the same way (api/visibility_handlers.py). These are reads: the caller
runs them on the shard's leader behind a barrier, so a run whose start was acknowledged is
found (DESIGN §4 I6).
"""

from __future__ import annotations

from collections.abc import Iterable

from raftflow.protocol.results import WorkflowDescription
from raftflow.shards.core.memory_archive import MemoryArchive
from raftflow.shards.core.queries import description_of
from raftflow.shards.core.runs import Execution
from raftflow.shards.core.state import ShardState
from raftflow.shards.store.sqlite_archive import API_STATUS, SqliteArchive
from raftflow.visibility.paging import PageCursor, after_sql, is_after
from raftflow.visibility.query_ast import Query
from raftflow.visibility.query_eval import VisibilityRow, matches, sort_key
from raftflow.visibility.query_sql import to_sql

Found = tuple[VisibilityRow, WorkflowDescription]


def page(state: ShardState, namespace: str, query: Query, after: PageCursor | None,
         limit: int) -> list[Found]:
    """Up to `limit` runs of the namespace that `query` selects, after `after`, in order."""
    assert limit >= 1, limit
    found = _matching(_open_runs(state, namespace), query, after)
    archive = state.archive
    if isinstance(archive, SqliteArchive):
        condition = None if after is None else after_sql(after, query.order_by)
        found += archive.visible_page(namespace, to_sql(query), condition, limit)
    else:
        assert isinstance(archive, MemoryArchive), type(archive)
        found += _matching(_closed_runs(archive, namespace), query, after)
    key = sort_key(query.order_by)
    found.sort(key=lambda item: key(item[0]))
    return found[:limit]


def count(state: ShardState, namespace: str, query: Query) -> int:
    """How many runs of the namespace `query` selects."""
    total = len(_matching(_open_runs(state, namespace), query, None))
    archive = state.archive
    if isinstance(archive, SqliteArchive):
        return total + archive.visible_count(namespace, to_sql(query))
    assert isinstance(archive, MemoryArchive), type(archive)
    return total + len(_matching(_closed_runs(archive, namespace), query, None))


def row_of(execution: Execution) -> VisibilityRow:
    return VisibilityRow(run_id=execution.run_id, workflow_id=execution.workflow_id,
                         workflow_type=execution.workflow_type, task_queue=execution.task_queue,
                         status=API_STATUS[execution.status],
                         start_time_ms=execution.start_time_ms,
                         close_time_ms=execution.close_time_ms,
                         attributes={a.name: a.value for a in execution.search_attributes})


def _matching(runs: Iterable[Found], query: Query, after: PageCursor | None) -> list[Found]:
    return [(row, description) for row, description in runs
            if matches(query.where, row)
            and (after is None or is_after(row, after, query.order_by))]


def _open_runs(state: ShardState, namespace: str) -> Iterable[Found]:
    for execution in state.executions.values():
        if execution.namespace == namespace:
            yield row_of(execution), description_of(execution, execution.history_length, None)


def _closed_runs(archive: MemoryArchive, namespace: str) -> Iterable[Found]:
    for run in archive.contents()[0]:
        execution = run.execution
        if execution.namespace == namespace:
            yield row_of(execution), description_of(execution, len(execution.history),
                                                    execution.history[-1])
