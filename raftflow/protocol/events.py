"""History events: what happened to a workflow execution, in order.

Theory of operation. Every execution owns an append-only history of `HistoryEvent`s whose ids are
1..n with no gap (DESIGN §4 I3). `event_type` is Temporal's event name (`EventType`), so users
and SDK code read familiar names. `attributes` is a flat map of msgpack-able values: str, int,
float, bool, None, bytes, lists (never tuples: the codec decodes arrays as lists) and maps of
those. Payload attributes (`input`, `result`,
`details`, failure `details`) are `bytes` holding the user's JSON text: the engine never parses
them; the gateway renders them as JSON.

Attributes per event type (all written by `raftflow.shards.core`):

| event_type | attributes |
|---|---|
| WorkflowExecutionStarted | workflow_type, task_queue, input, workflow_id, namespace, request_id, execution_timeout_ms, run_timeout_ms, task_timeout_ms, continued_execution_run_id, first_execution_run_id, attempt |
| WorkflowTaskScheduled | task_queue, start_to_close_timeout_ms, attempt |
| WorkflowTaskStarted | scheduled_event_id, identity, request_id |
| WorkflowTaskCompleted | scheduled_event_id, started_event_id, identity |
| WorkflowTaskFailed | scheduled_event_id, started_event_id, cause, failure, identity |
| WorkflowTaskTimedOut | scheduled_event_id, started_event_id, timeout_type |
| ActivityTaskScheduled | activity_id, activity_type, task_queue, input, schedule_to_close_timeout_ms, schedule_to_start_timeout_ms, start_to_close_timeout_ms, heartbeat_timeout_ms, retry_policy (map), workflow_task_completed_event_id |
| ActivityTaskStarted | scheduled_event_id, identity, request_id, attempt, last_failure (map or None) |
| ActivityTaskCompleted | scheduled_event_id, started_event_id, result, identity |
| ActivityTaskFailed | scheduled_event_id, started_event_id, failure (map), identity, retry_state |
| ActivityTaskTimedOut | scheduled_event_id, started_event_id, timeout_type, last_failure, retry_state |
| ActivityTaskCancelRequested | scheduled_event_id, workflow_task_completed_event_id |
| ActivityTaskCanceled | scheduled_event_id, started_event_id, latest_cancel_requested_event_id, details, identity |
| TimerStarted | timer_id, start_to_fire_timeout_ms, workflow_task_completed_event_id |
| TimerFired | timer_id, started_event_id |
| TimerCanceled | timer_id, started_event_id, workflow_task_completed_event_id |
| WorkflowExecutionSignaled | signal_name, input, request_id |
| WorkflowExecutionCancelRequested | cause, request_id |
| MarkerRecorded | marker_name, details, workflow_task_completed_event_id |
| WorkflowExecutionCompleted | result, workflow_task_completed_event_id |
| WorkflowExecutionFailed | failure (map), workflow_task_completed_event_id |
| WorkflowExecutionCanceled | details, workflow_task_completed_event_id |
| WorkflowExecutionTerminated | reason, request_id |
| WorkflowExecutionTimedOut | timeout_type ("run" or "execution") |
| WorkflowExecutionContinuedAsNew | new_execution_run_id, workflow_type, task_queue, input, run_timeout_ms, task_timeout_ms, workflow_task_completed_event_id |

A failure map is `{"message": str, "type": str, "non_retryable": bool, "details": bytes}`.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class EventType(StrEnum):
    """Temporal's history event names; the value is what clients see."""

    WORKFLOW_EXECUTION_STARTED = "WorkflowExecutionStarted"
    WORKFLOW_EXECUTION_COMPLETED = "WorkflowExecutionCompleted"
    WORKFLOW_EXECUTION_FAILED = "WorkflowExecutionFailed"
    WORKFLOW_EXECUTION_TIMED_OUT = "WorkflowExecutionTimedOut"
    WORKFLOW_EXECUTION_CANCELED = "WorkflowExecutionCanceled"
    WORKFLOW_EXECUTION_TERMINATED = "WorkflowExecutionTerminated"
    WORKFLOW_EXECUTION_CONTINUED_AS_NEW = "WorkflowExecutionContinuedAsNew"
    WORKFLOW_EXECUTION_SIGNALED = "WorkflowExecutionSignaled"
    WORKFLOW_EXECUTION_CANCEL_REQUESTED = "WorkflowExecutionCancelRequested"
    WORKFLOW_TASK_SCHEDULED = "WorkflowTaskScheduled"
    WORKFLOW_TASK_STARTED = "WorkflowTaskStarted"
    WORKFLOW_TASK_COMPLETED = "WorkflowTaskCompleted"
    WORKFLOW_TASK_FAILED = "WorkflowTaskFailed"
    WORKFLOW_TASK_TIMED_OUT = "WorkflowTaskTimedOut"
    ACTIVITY_TASK_SCHEDULED = "ActivityTaskScheduled"
    ACTIVITY_TASK_STARTED = "ActivityTaskStarted"
    ACTIVITY_TASK_COMPLETED = "ActivityTaskCompleted"
    ACTIVITY_TASK_FAILED = "ActivityTaskFailed"
    ACTIVITY_TASK_TIMED_OUT = "ActivityTaskTimedOut"
    ACTIVITY_TASK_CANCEL_REQUESTED = "ActivityTaskCancelRequested"
    ACTIVITY_TASK_CANCELED = "ActivityTaskCanceled"
    TIMER_STARTED = "TimerStarted"
    TIMER_FIRED = "TimerFired"
    TIMER_CANCELED = "TimerCanceled"
    MARKER_RECORDED = "MarkerRecorded"


# Events that close a run: at most one per history and it is the last event (DESIGN §4 I3).
CLOSE_EVENT_TYPES: frozenset[str] = frozenset(
    {
        EventType.WORKFLOW_EXECUTION_COMPLETED,
        EventType.WORKFLOW_EXECUTION_FAILED,
        EventType.WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.WORKFLOW_EXECUTION_CANCELED,
        EventType.WORKFLOW_EXECUTION_TERMINATED,
        EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)


class HistoryEvent(msgspec.Struct, frozen=True, kw_only=True, array_like=True, tag="HistoryEvent"):
    """One event of one execution's history.

    Guarantees: `event_id` is the 1-based position in the history; `time_ms` is the `now_ms` of
    the command that wrote it (the proposer's clock, never read by the core).
    """

    event_id: int
    event_type: str
    time_ms: int
    attributes: dict[str, object]
