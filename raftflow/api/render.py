"""JSON shapes of the public API, built from protocol values.

User payloads travel inside the engine as the bytes of their JSON text; here, at the edge, they
become JSON values again. Task tokens are opaque to workers and signed (task_tokens.py).
"""

from __future__ import annotations

from typing import Any

from raftflow.api.task_tokens import TaskTokens
from raftflow.protocol import http_answers as answers
from raftflow.protocol.events import (
    HistoryEvent,
    WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionFailedEventAttributes,
    WorkflowExecutionTerminatedEventAttributes,
)
from raftflow.protocol.history_json import attributes_json, payload_json, timestamp
from raftflow.protocol.payload import Payload
from raftflow.protocol.results import (
    ActivityTaskInfo,
    WorkflowDescription,
    WorkflowExecutionStatus,
    WorkflowTaskInfo,
)
from raftflow.protocol.run_details import PendingActivityInfo, RunDetails
from raftflow.protocol.search_attributes import json_map


def description_answer(d: WorkflowDescription) -> answers.WorkflowDescription:
    """A run's description as the API answers it; the close event gives a completed run's
    result, a failed run's failure and a terminated run's reason."""
    close = None if d.close_event is None else d.close_event.attributes
    extra: dict[str, Any] = {}
    match close:
        case WorkflowExecutionCompletedEventAttributes():
            extra["result"] = Payload(close.result)
        case WorkflowExecutionFailedEventAttributes():
            extra["failure"] = close.failure
        case WorkflowExecutionTerminatedEventAttributes():
            extra["reason"] = close.reason
    if d.details is not None:
        extra.update(_details_answer(d.details))
    return answers.WorkflowDescription(
        workflow_id=d.workflow_id, run_id=d.run_id, workflow_type=d.workflow_type,
        task_queue=d.task_queue, status=WorkflowExecutionStatus.of(d.status),
        history_length=d.history_length, start_time=timestamp(d.start_time_ms),
        close_time=None if d.close_time_ms is None else timestamp(d.close_time_ms),
        pending_activity_count=d.pending_activity_count,
        pending_timer_count=d.pending_timer_count,
        workflow_task_pending=d.workflow_task_pending,
        continued_execution_run_id=d.continued_execution_run_id,
        search_attributes=json_map(d.search_attributes), **extra)


def _details_answer(details: RunDetails) -> dict[str, Any]:
    parent = details.parent
    return {
        "pending_activities": [_pending_activity(a) for a in details.pending_activities],
        "pending_timers": [answers.PendingTimer(timer_id=t.timer_id,
                                                started_event_id=t.started_event_id,
                                                fire_time=timestamp(t.fire_time_ms))
                           for t in details.pending_timers],
        "pending_children": [answers.PendingChild(
            workflow_id=c.workflow_id, run_id=c.run_id, workflow_type=c.workflow_type,
            initiated_event_id=c.initiated_event_id, parent_close_policy=c.parent_close_policy)
            for c in details.pending_children],
        "parent": None if parent is None else answers.WorkflowParent(
            namespace=parent.namespace, workflow_id=parent.workflow_id, run_id=parent.run_id)}


def _pending_activity(a: PendingActivityInfo) -> answers.PendingActivity:
    return answers.PendingActivity(
        activity_id=a.activity_id, activity_type=a.activity_type, task_queue=a.task_queue,
        scheduled_event_id=a.scheduled_event_id, state=a.state,
        cancel_requested=a.cancel_requested, attempt=a.attempt,
        maximum_attempts=a.maximum_attempts, scheduled_time=timestamp(a.scheduled_time_ms),
        current_attempt_scheduled_time=timestamp(a.attempt_scheduled_time_ms),
        last_started_time=None if a.started_time_ms is None else timestamp(a.started_time_ms),
        next_attempt_schedule_time=None if a.next_attempt_time_ms is None
        else timestamp(a.next_attempt_time_ms),
        last_worker_identity=a.identity, heartbeat_details=payload_json(a.heartbeat_details),
        last_failure=a.last_failure)


def event_answer(event: HistoryEvent) -> answers.HistoryEventAnswer:
    return answers.HistoryEventAnswer(
        event_id=event.event_id, event_type=event.event_type, timestamp=timestamp(event.time_ms),
        attributes=attributes_json(event.attributes))


def workflow_task_answer(task: WorkflowTaskInfo, tokens: TaskTokens) -> answers.WorkflowTask:
    return answers.WorkflowTask(
        task_token=tokens.for_workflow_task(task), namespace=task.namespace,
        workflow_id=task.workflow_id, run_id=task.run_id, workflow_type=task.workflow_type,
        task_queue=task.task_queue, attempt=task.attempt,
        scheduled_event_id=task.scheduled_event_id, started_event_id=task.started_event_id,
        previous_started_event_id=task.previous_started_event_id,
        history=[event_answer(e) for e in task.history],
        updates=[answers.WorkflowUpdateRequestAnswer(
            update_id=u.update_id, name=u.name, input=payload_json(u.input))
            for u in task.updates])


def activity_task_answer(task: ActivityTaskInfo, tokens: TaskTokens) -> answers.ActivityTask:
    return answers.ActivityTask(
        task_token=tokens.for_activity_task(task), namespace=task.namespace,
        workflow_id=task.workflow_id, run_id=task.run_id, workflow_type=task.workflow_type,
        activity_id=task.activity_id, activity_type=task.activity_type,
        task_queue=task.task_queue, input=payload_json(task.input), attempt=task.attempt,
        heartbeat_details=payload_json(task.heartbeat_details),
        scheduled_time=timestamp(task.scheduled_time_ms),
        current_attempt_scheduled_time=timestamp(task.current_attempt_scheduled_time_ms),
        started_time=timestamp(task.started_time_ms),
        schedule_to_close_timeout_ms=task.schedule_to_close_timeout_ms,
        start_to_close_timeout_ms=task.start_to_close_timeout_ms,
        heartbeat_timeout_ms=task.heartbeat_timeout_ms, traceparent=task.traceparent,
        scheduled_event_id=task.token.scheduled_event_id)
