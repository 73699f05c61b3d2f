"""Workflow-task commands (protocol structs) and how they match the history events they write.

Pure functions. `COMMAND_OF_EVENT` pairs each history event class that a command writes with
that command's class; `corresponds(attributes, command)` decides whether a recorded event is
what a command asks for: the classes pair up and their identity fields are equal (ids, types,
marker contents; durations and payloads may change between deployments, as in Temporal).
`describe_*` render both sides for `NondeterminismError` messages.

Payloads are `bytes` holding JSON text, as in the protocol: `payload` encodes a user value
(compact, like the server stores it) and fails at once, naming what it was, on a value JSON
cannot carry; identity payloads are compared as JSON values, not bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from raftflow.protocol.commands import (
    CancelTimer,
    CancelWorkflowExecution,
    CompleteWorkflowExecution,
    CompleteWorkflowUpdate,
    ContinueAsNewWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    RecordMarker,
    RequestCancelActivityTask,
    RequestCancelExternalWorkflowExecution,
    RetryPolicy,
    ScheduleActivityTask,
    SignalExternalWorkflowExecution,
    StartChildWorkflowExecution,
    StartTimer,
    WorkflowCommand,
)
from raftflow.protocol.events import (
    ActivityTaskCancelRequestedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    EventAttributes,
    MarkerRecordedEventAttributes,
    TimerCanceledEventAttributes,
    TimerStartedEventAttributes,
    UpsertWorkflowSearchAttributesEventAttributes,
    WorkflowExecutionCanceledEventAttributes,
    WorkflowExecutionCompletedEventAttributes,
    WorkflowExecutionContinuedAsNewEventAttributes,
    WorkflowExecutionFailedEventAttributes,
)
from raftflow.protocol.events_children import (
    StartChildWorkflowExecutionInitiatedEventAttributes,
)
from raftflow.protocol.events_external import (
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
)
from raftflow.protocol.events_updates import (
    WorkflowExecutionUpdateCompletedEventAttributes,
)
from raftflow.protocol.history_json import payload_json
from raftflow.protocol.payload import EMPTY, Payload
from raftflow.protocol.search_attributes import UpsertWorkflowSearchAttributes
from raftflow.sdk import errors
from raftflow.sdk._search_attribute_values import json_attributes

CommandEventAttributes = (
    ActivityTaskScheduledEventAttributes
    | ActivityTaskCancelRequestedEventAttributes
    | TimerStartedEventAttributes
    | TimerCanceledEventAttributes
    | MarkerRecordedEventAttributes
    | WorkflowExecutionCompletedEventAttributes
    | WorkflowExecutionFailedEventAttributes
    | WorkflowExecutionCanceledEventAttributes
    | WorkflowExecutionContinuedAsNewEventAttributes
    | UpsertWorkflowSearchAttributesEventAttributes
    | SignalExternalWorkflowExecutionInitiatedEventAttributes
    | RequestCancelExternalWorkflowExecutionInitiatedEventAttributes
    | StartChildWorkflowExecutionInitiatedEventAttributes
    | WorkflowExecutionUpdateCompletedEventAttributes
)

# The commands that close the run: the last command of a run, produced once.
CloseCommand = (CompleteWorkflowExecution | FailWorkflowExecution | CancelWorkflowExecution
                | ContinueAsNewWorkflowExecution)

COMMAND_OF_EVENT: Mapping[type[CommandEventAttributes], type[WorkflowCommand]] = {
    ActivityTaskScheduledEventAttributes: ScheduleActivityTask,
    ActivityTaskCancelRequestedEventAttributes: RequestCancelActivityTask,
    TimerStartedEventAttributes: StartTimer,
    TimerCanceledEventAttributes: CancelTimer,
    MarkerRecordedEventAttributes: RecordMarker,
    WorkflowExecutionCompletedEventAttributes: CompleteWorkflowExecution,
    WorkflowExecutionFailedEventAttributes: FailWorkflowExecution,
    WorkflowExecutionCanceledEventAttributes: CancelWorkflowExecution,
    WorkflowExecutionContinuedAsNewEventAttributes: ContinueAsNewWorkflowExecution,
    UpsertWorkflowSearchAttributesEventAttributes: UpsertWorkflowSearchAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes: SignalExternalWorkflowExecution,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes: (
        RequestCancelExternalWorkflowExecution),
    StartChildWorkflowExecutionInitiatedEventAttributes: StartChildWorkflowExecution,
    WorkflowExecutionUpdateCompletedEventAttributes: CompleteWorkflowUpdate,
}

Identity = tuple[tuple[str, object], ...]


def is_command_event(attributes: EventAttributes) -> TypeGuard[CommandEventAttributes]:
    return type(attributes) in COMMAND_OF_EVENT


def identity(value: CommandEventAttributes | WorkflowCommand) -> Identity:
    """The (field, value) pairs that must be equal between a command and its event."""
    match value:
        case ActivityTaskScheduledEventAttributes() | ScheduleActivityTask():
            return (("activity_id", value.activity_id), ("activity_type", value.activity_type))
        case ActivityTaskCancelRequestedEventAttributes() | RequestCancelActivityTask():
            return (("scheduled_event_id", value.scheduled_event_id),)
        case (TimerStartedEventAttributes() | StartTimer() | TimerCanceledEventAttributes()
              | CancelTimer()):
            return (("timer_id", value.timer_id),)
        case MarkerRecordedEventAttributes() | RecordMarker():
            return (("marker_name", value.marker_name), ("details", payload_json(value.details)))
        case UpsertWorkflowSearchAttributesEventAttributes():
            # The names set; values may change between deployments (as payloads may).
            return (("names", tuple(a.name for a in value.search_attributes)),)
        case UpsertWorkflowSearchAttributes():
            return (("names", tuple(sorted(value.search_attributes))),)
        case SignalExternalWorkflowExecutionInitiatedEventAttributes() | (
                SignalExternalWorkflowExecution()):
            return (("workflow_id", value.workflow_id), ("signal_name", value.signal_name))
        case RequestCancelExternalWorkflowExecutionInitiatedEventAttributes() | (
                RequestCancelExternalWorkflowExecution()):
            return (("workflow_id", value.workflow_id),)
        case StartChildWorkflowExecutionInitiatedEventAttributes() | (
                StartChildWorkflowExecution()):
            return (("workflow_id", value.workflow_id), ("workflow_type", value.workflow_type))
        case WorkflowExecutionUpdateCompletedEventAttributes() | CompleteWorkflowUpdate():
            return (("update_id", value.update_id),)
        case _:
            return ()  # a close has no identity: one per run, and it is last


def corresponds(attributes: CommandEventAttributes, command: WorkflowCommand) -> bool:
    return (type(command) is COMMAND_OF_EVENT[type(attributes)]
            and identity(attributes) == identity(command))


def describe_event(attributes: CommandEventAttributes) -> str:
    fields = ", ".join(f"{name}={value!r}" for name, value in identity(attributes))
    return f"{attributes.event_type.value}({fields})"


def describe_command(command: WorkflowCommand | None) -> str:
    if command is None:
        return "no command"
    fields = ", ".join(f"{name}={value!r}" for name, value in identity(command))
    return f"{type(command).__name__}({fields})"


def checked_payload(value: object, what: str) -> object:
    """`value` as the JSON value it travels as (tuples become lists), else TypeError naming
    `what` (query results)."""
    return json.loads(payload(value, what))


def arguments(positional: tuple[Any, ...], args: Sequence[Any]) -> list[Any]:
    """A call's arguments given either way temporalio allows: positionally (`f(wf, x)`) or
    as `args=[x, y]`; both at once is a ValueError."""
    if positional and args:
        raise ValueError("give the arguments positionally or as args=[...], not both")
    return list(positional or args)


def payload(value: object, what: str) -> Payload:
    """The JSON text of a user value, else TypeError naming `what`: read back from a history,
    a payload is this same text (`history_json.payload_from_json`), so replay compares like
    with like."""
    if value is None:
        return EMPTY  # JSON null is the empty payload (`protocol.payload`)
    try:
        return Payload(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError) as error:  # ValueError: circular, or a lone surrogate
        raise TypeError(f"{what} is not JSON-serializable: {error}") from error


def schedule_activity(*, activity_id: str, activity_type: str, args: list[object],
                      task_queue: str | None, start_to_close_timeout_ms: int | None,
                      schedule_to_close_timeout_ms: int | None,
                      schedule_to_start_timeout_ms: int | None,
                      heartbeat_timeout_ms: int | None,
                      retry_policy: RetryPolicy | None) -> ScheduleActivityTask:
    return ScheduleActivityTask(
        activity_id=activity_id, activity_type=activity_type, task_queue=task_queue or "",
        input=payload(args, f"input of activity {activity_type}"),
        schedule_to_close_timeout_ms=schedule_to_close_timeout_ms,
        schedule_to_start_timeout_ms=schedule_to_start_timeout_ms,
        start_to_close_timeout_ms=start_to_close_timeout_ms,
        heartbeat_timeout_ms=heartbeat_timeout_ms, retry_policy=retry_policy)


def start_timer(timer_id: str, duration_ms: int) -> StartTimer:
    assert duration_ms >= 1, duration_ms
    return StartTimer(timer_id=timer_id, start_to_fire_timeout_ms=duration_ms)


def cancel_timer(timer_id: str) -> CancelTimer:
    return CancelTimer(timer_id=timer_id)


def request_cancel_activity(scheduled_event_id: int) -> RequestCancelActivityTask:
    assert scheduled_event_id > 0, scheduled_event_id
    return RequestCancelActivityTask(scheduled_event_id=scheduled_event_id)


def record_marker(marker_name: str, details: object) -> RecordMarker:
    return RecordMarker(marker_name=marker_name,
                        details=payload(details, f"details of marker {marker_name}"))


def upsert_search_attributes(values: Mapping[str, object]) -> UpsertWorkflowSearchAttributes:
    if not values:
        raise ValueError("upsert_search_attributes needs at least one attribute")
    return UpsertWorkflowSearchAttributes(search_attributes=json_attributes(values))


def complete(result: object) -> CompleteWorkflowExecution:
    return CompleteWorkflowExecution(result=payload(result, "workflow result"))


def fail(error: BaseException) -> FailWorkflowExecution:
    # Strict, unlike `errors.failure_of`: details JSON cannot carry fail the workflow task
    # (a bug in workflow code to fix and replay), not the workflow without them.
    parts = errors.failure_parts(error)
    details = EMPTY if parts.details is None else payload(parts.details, "failure details")
    return FailWorkflowExecution(failure=Failure(
        message=parts.message, type=parts.type, non_retryable=parts.non_retryable,
        details=details))


def cancel() -> CancelWorkflowExecution:
    return CancelWorkflowExecution()


def continue_as_new(error: errors.ContinueAsNewError) -> ContinueAsNewWorkflowExecution:
    return ContinueAsNewWorkflowExecution(
        workflow_type=error.workflow_type or "", task_queue=error.task_queue or "",
        input=payload(error.input, "continue-as-new input"),
        run_timeout_ms=error.run_timeout_ms, task_timeout_ms=error.task_timeout_ms)


def signal_external(workflow_id: str, run_id: str | None, signal_name: str,
                    args: list[object]) -> SignalExternalWorkflowExecution:
    return SignalExternalWorkflowExecution(
        workflow_id=workflow_id, run_id=run_id or "", signal_name=signal_name,
        input=payload(args, f"input of signal {signal_name} to {workflow_id}"))


def cancel_external(workflow_id: str, run_id: str | None) -> RequestCancelExternalWorkflowExecution:
    return RequestCancelExternalWorkflowExecution(workflow_id=workflow_id, run_id=run_id or "")
