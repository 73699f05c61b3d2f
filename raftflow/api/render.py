"""JSON shapes of the public API, built from protocol values (and task tokens, both ways).

User payloads travel inside the engine as the bytes of their JSON text; here, at the edge, they
become JSON values again. Task tokens are opaque to workers: base64url of a msgpack array.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgpack

from raftflow.api.errors import InvalidArgumentError, NotFoundError
from raftflow.protocol import http_answers as answers
from raftflow.protocol.commands import TaskKind, TaskToken
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
from raftflow.protocol.search_attributes import json_map

TOKEN_BYTES_MAX = 8 * 1024


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


def encode_token(token: TaskToken) -> str:
    packed = msgpack.packb([token.namespace, token.workflow_id, token.run_id,
                            token.scheduled_event_id, token.attempt, token.kind.value])
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode_token(text: str, field: str = "task_token") -> TaskToken:
    """The task a token names. A token no poll could have handed out names no task: 404, the
    answer for a task that is gone (a token is opaque, so its spelling is no client error)."""
    if not text or len(text) > TOKEN_BYTES_MAX:
        raise InvalidArgumentError(f"{field} must be a task token from a poll", field)
    try:
        raw = msgpack.unpackb(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        namespace, workflow_id, run_id, scheduled_event_id, attempt, kind = raw
        token = TaskToken(namespace=str(namespace), workflow_id=str(workflow_id),
                          run_id=str(run_id), scheduled_event_id=int(scheduled_event_id),
                          attempt=int(attempt), kind=TaskKind(kind))
    except (ValueError, TypeError, OverflowError, binascii.Error,
            msgpack.UnpackException) as error:
        raise NotFoundError(f"{field} names no task (not a token from a poll)", field) from error
    return token


def event_answer(event: HistoryEvent) -> answers.HistoryEventAnswer:
    return answers.HistoryEventAnswer(
        event_id=event.event_id, event_type=event.event_type, timestamp=timestamp(event.time_ms),
        attributes=attributes_json(event.attributes))


def workflow_task_answer(task: WorkflowTaskInfo) -> answers.WorkflowTask:
    return answers.WorkflowTask(
        task_token=encode_token(task.token), namespace=task.namespace,
        workflow_id=task.workflow_id, run_id=task.run_id, workflow_type=task.workflow_type,
        task_queue=task.task_queue, attempt=task.attempt,
        scheduled_event_id=task.scheduled_event_id, started_event_id=task.started_event_id,
        previous_started_event_id=task.previous_started_event_id,
        history=[event_answer(e) for e in task.history])


def activity_task_answer(task: ActivityTaskInfo) -> answers.ActivityTask:
    return answers.ActivityTask(
        task_token=encode_token(task.token), namespace=task.namespace,
        workflow_id=task.workflow_id, run_id=task.run_id, workflow_type=task.workflow_type,
        activity_id=task.activity_id, activity_type=task.activity_type,
        task_queue=task.task_queue, input=payload_json(task.input), attempt=task.attempt,
        heartbeat_details=payload_json(task.heartbeat_details),
        scheduled_time=timestamp(task.scheduled_time_ms),
        current_attempt_scheduled_time=timestamp(task.current_attempt_scheduled_time_ms),
        started_time=timestamp(task.started_time_ms),
        schedule_to_close_timeout_ms=task.schedule_to_close_timeout_ms,
        start_to_close_timeout_ms=task.start_to_close_timeout_ms,
        heartbeat_timeout_ms=task.heartbeat_timeout_ms)
