"""Read-side views of a shard's state: describe, history pages, list.

Pure reads: nothing here mutates state, so the shell may run them on any replica; for
linearizable reads (DESIGN §4 I6) it runs them on the leader after a committed `Barrier`.
"""

from __future__ import annotations

from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.results import Rejected, WorkflowDescription
from raftflow.shards.core import validate
from raftflow.shards.core.state import Execution, ShardState

__all__ = ["WorkflowDescription", "describe", "description_of", "history"]

# Largest page `history` returns, whatever the caller asks: bounds one response.
HISTORY_PAGE_SIZE_MAX = 1_000



def _find(state: ShardState, namespace: str, workflow_id: str,
          run_id: str | None) -> Execution | Rejected:
    """The given run, else the open run, else the latest run of the workflow id."""
    key = (namespace, workflow_id)
    if run_id is None:
        run_id = state.latest_run_id(key)
    execution = None if run_id is None else state.find_run(run_id)
    if execution is None or execution.key != key:
        return validate.not_found(f"workflow {workflow_id} run {run_id} not found")
    return execution


def _description(execution: Execution) -> WorkflowDescription:
    assert execution.history, execution.run_id
    close_event = None if execution.is_open else execution.history[-1]
    return description_of(execution, len(execution.history), close_event)


def description_of(execution: Execution, history_length: int,
                   close_event: HistoryEvent | None) -> WorkflowDescription:
    """A run's description from its state and what of its history a description shows (a
    store lists closed runs without reading their histories)."""
    assert close_event is None or execution.close_time_ms is not None
    assert (close_event is None) == execution.is_open, execution.run_id
    return WorkflowDescription(
        namespace=execution.namespace, workflow_id=execution.workflow_id,
        run_id=execution.run_id, workflow_type=execution.workflow_type,
        task_queue=execution.task_queue, status=execution.status,
        start_time_ms=execution.start_time_ms, close_time_ms=execution.close_time_ms,
        history_length=history_length,
        pending_activity_count=len(execution.activities),
        pending_timer_count=len(execution.timers),
        workflow_task_pending=execution.workflow_task is not None,
        first_execution_run_id=execution.first_execution_run_id,
        continued_execution_run_id=execution.continued_execution_run_id,
        close_event=close_event)


def describe(state: ShardState, namespace: str, workflow_id: str,
             run_id: str | None = None) -> WorkflowDescription | Rejected:
    """Describe a run (default: the open run, else the latest closed one)."""
    found = _find(state, namespace, workflow_id, run_id)
    if isinstance(found, Rejected):
        return found
    return _description(found)


def history(state: ShardState, namespace: str, workflow_id: str, run_id: str | None,
            first_event_id: int = 1, page_size: int = HISTORY_PAGE_SIZE_MAX,
            ) -> tuple[list[HistoryEvent], int | None] | Rejected:
    """One page of a run's history from `first_event_id`, and the next page's first id
    (None when this page reaches the current end). Events buffered during a started workflow
    task are not history yet and are not shown."""
    if first_event_id < 1 or page_size < 1:
        return Rejected(code=ErrorCode.INVALID_ARGUMENT,
                        message="first_event_id and page_size must be >= 1")
    found = _find(state, namespace, workflow_id, run_id)
    if isinstance(found, Rejected):
        return found
    size = min(page_size, HISTORY_PAGE_SIZE_MAX)
    assert size >= 1
    events = found.history[first_event_id - 1:first_event_id - 1 + size]
    end = first_event_id - 1 + len(events)
    next_event_id = end + 1 if end < len(found.history) else None
    assert not events or events[0].event_id == first_event_id
    return events, next_event_id
