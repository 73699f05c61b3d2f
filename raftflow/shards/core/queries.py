"""Read-side views of a shard's state: describe, history pages, list.

Pure reads: nothing here mutates state, so the shell may run them on any replica; for
linearizable reads (DESIGN §4 I6) it runs them on the leader after a committed `Barrier`.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.results import Rejected, WorkflowDescription
from raftflow.protocol.run_details import (
    ParentInfo,
    PendingActivityInfo,
    PendingActivityState,
    PendingChildInfo,
    PendingTimerInfo,
    RunDetails,
)
from raftflow.shards.core import run_history, validate
from raftflow.shards.core.archive import ClosedRunHead
from raftflow.shards.core.state import (
    ActivityPhase,
    ActivityState,
    Execution,
    ShardState,
    TimerKind,
)

__all__ = ["WorkflowDescription", "describe", "description_of", "history", "run_details"]

# Largest page `history` returns, whatever the caller asks: bounds one response.
HISTORY_PAGE_SIZE_MAX = 1_000



def _find(state: ShardState, namespace: str, workflow_id: str,
          run_id: str | None) -> Execution | ClosedRunHead | Rejected:
    """The given run, else the open run, else the latest run of the workflow id: an open run
    whole, a closed one as its head (its history stays in the archive, read a page at a time)."""
    key = (namespace, workflow_id)
    if run_id is None:
        run_id = state.latest_run_id(key)
    found: Execution | ClosedRunHead | None = None
    if run_id is not None:
        found = state.executions.get(run_id) or state.archive.closed_head(run_id)
    if found is None or _key_of(found) != key:
        return validate.not_found(f"workflow {workflow_id} run {run_id} not found")
    return found


def _key_of(found: Execution | ClosedRunHead) -> tuple[str, str]:
    return (found.execution if isinstance(found, ClosedRunHead) else found).key


def _description(found: Execution | ClosedRunHead) -> WorkflowDescription:
    if isinstance(found, ClosedRunHead):
        return description_of(found.execution, found.history_length, found.close_event)
    assert found.history and found.is_open, found.run_id
    return description_of(found, found.history_length, None)


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
        close_event=close_event, search_attributes=execution.search_attributes)


def describe(state: ShardState, namespace: str, workflow_id: str,
             run_id: str | None = None) -> WorkflowDescription | Rejected:
    """Describe a run (default: the open run, else the latest closed one)."""
    found = _find(state, namespace, workflow_id, run_id)
    if isinstance(found, Rejected):
        return found
    execution = found.execution if isinstance(found, ClosedRunHead) else found
    return msgspec.structs.replace(_description(found),
                                   details=run_details(state, execution))


def run_details(state: ShardState, execution: Execution) -> RunDetails:
    """What the run waits on (its activities, user timers and children, in the order they
    were scheduled) and its parent. A closed run waits on nothing: its lists are empty."""
    run_id = execution.run_id
    activities = tuple(_pending_activity(state, run_id, a)
                       for a in execution.activities.values())
    timers = tuple(PendingTimerInfo(
        timer_id=timer_id, started_event_id=event_id,
        fire_time_ms=state.timers[(run_id, TimerKind.USER, event_id)])
        for timer_id, event_id in execution.timers.items())
    children = tuple(PendingChildInfo(
        workflow_id=child.workflow_id, run_id=child.run_id or None,
        workflow_type=child.workflow_type, initiated_event_id=initiated,
        parent_close_policy=child.parent_close_policy)
        for initiated, child in execution.children.items())
    parent = execution.parent
    assert len(activities) == len(execution.activities)
    assert execution.is_open or not (activities or timers or children), run_id
    return RunDetails(
        pending_activities=activities, pending_timers=timers, pending_children=children,
        parent=None if parent is None or parent.schedule_id else ParentInfo(
            namespace=parent.namespace, workflow_id=parent.workflow_id, run_id=parent.run_id))


_ACTIVITY_STATES = {ActivityPhase.SCHEDULED: PendingActivityState.SCHEDULED,
                    ActivityPhase.STARTED: PendingActivityState.STARTED,
                    ActivityPhase.BACKOFF: PendingActivityState.BACKOFF}


def _pending_activity(state: ShardState, run_id: str,
                      activity: ActivityState) -> PendingActivityInfo:
    started = activity.phase is ActivityPhase.STARTED
    backoff = activity.phase is ActivityPhase.BACKOFF
    retry_at = state.timers.get((run_id, TimerKind.ACTIVITY_RETRY, activity.scheduled_event_id))
    assert not backoff or retry_at is not None, (run_id, activity.scheduled_event_id)
    return PendingActivityInfo(
        activity_id=activity.activity_id, activity_type=activity.activity_type,
        task_queue=activity.task_queue, scheduled_event_id=activity.scheduled_event_id,
        state=_ACTIVITY_STATES[activity.phase],
        cancel_requested=activity.cancel_requested_event_id > 0, attempt=activity.attempt,
        maximum_attempts=activity.retry_policy.maximum_attempts,
        scheduled_time_ms=activity.scheduled_time_ms,
        # In back-off the attempt counter already names the next attempt: it is scheduled
        # for its retry time.
        attempt_scheduled_time_ms=(retry_at if backoff and retry_at is not None
                                   else activity.attempt_scheduled_time_ms),
        started_time_ms=activity.started_time_ms if started else None,
        next_attempt_time_ms=retry_at if backoff else None,
        identity=activity.identity if started else "",
        heartbeat_details=activity.heartbeat_details, last_failure=activity.last_failure)


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
    if isinstance(found, ClosedRunHead):
        length = found.history_length
        events = state.archive.stored_events(found.execution.run_id, first_event_id, size)
    else:
        length = found.history_length
        events = run_history.events(state.archive, found, first_event_id,
                                    first_event_id + size - 1)
    end = first_event_id - 1 + len(events)
    next_event_id = end + 1 if end < length else None
    assert not events or events[0].event_id == first_event_id
    assert len(events) == max(0, min(size, length - first_event_id + 1)), (len(events), length)
    return events, next_event_id
