"""Workflow-task commands (the JSON the HTTP API takes) and how they match history events.

Pure functions. `COMMAND_EVENTS` maps each history event type that a command writes to that
command's type; `corresponds(event, command)` decides whether a recorded event is what a
command asks for (the identity fields only: ids, types, marker contents; durations and
payloads may change between deployments, as in Temporal). `describe_*` render both sides for
`NondeterminismError` messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

Command = dict[str, object]
Event = Mapping[str, object]

COMMAND_EVENTS: dict[str, str] = {
    "ActivityTaskScheduled": "ScheduleActivityTask",
    "ActivityTaskCancelRequested": "RequestCancelActivityTask",
    "TimerStarted": "StartTimer",
    "TimerCanceled": "CancelTimer",
    "MarkerRecorded": "RecordMarker",
    "WorkflowExecutionCompleted": "CompleteWorkflowExecution",
    "WorkflowExecutionFailed": "FailWorkflowExecution",
    "WorkflowExecutionCanceled": "CancelWorkflowExecution",
    "WorkflowExecutionContinuedAsNew": "ContinueAsNewWorkflowExecution",
}

# The fields that must be equal between an event's attributes and its command.
_IDENTITY: dict[str, tuple[str, ...]] = {
    "ActivityTaskScheduled": ("activity_id", "activity_type"),
    "ActivityTaskCancelRequested": ("scheduled_event_id",),
    "TimerStarted": ("timer_id",),
    "TimerCanceled": ("timer_id",),
    "MarkerRecorded": ("marker_name", "details"),
}

CLOSE_COMMANDS = frozenset({"CompleteWorkflowExecution", "FailWorkflowExecution",
                            "CancelWorkflowExecution", "ContinueAsNewWorkflowExecution"})


def attributes(event: Event) -> Mapping[str, object]:
    value = event.get("attributes")
    assert isinstance(value, Mapping), f"event {event.get('event_id')} has no attributes"
    return value


def corresponds(event: Event, command: Command) -> bool:
    event_type = str(event["event_type"])
    if COMMAND_EVENTS.get(event_type) != command["type"]:
        return False
    attrs = attributes(event)
    return all(attrs.get(name) == command.get(name) for name in _IDENTITY.get(event_type, ()))


def describe_event(event: Event) -> str:
    event_type = str(event["event_type"])
    attrs = attributes(event)
    names = _IDENTITY.get(event_type, ())
    fields = ", ".join(f"{name}={attrs.get(name)!r}" for name in names)
    return f"{event_type}({fields})"


def describe_command(command: Command | None) -> str:
    if command is None:
        return "no command"
    kind = str(command["type"])
    event_type = next((e for e, c in COMMAND_EVENTS.items() if c == kind), "")
    names = _IDENTITY.get(event_type, ())
    fields = ", ".join(f"{name}={command.get(name)!r}" for name in names)
    return f"{kind}({fields})"


def checked_payload(value: object, what: str) -> object:
    """`value` as the JSON the server will store (tuples become lists), else TypeError naming
    `what`: commands hold exactly what travels, so replay compares like with like."""
    try:
        normalized: object = json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} is not JSON-serializable: {error}") from error
    return normalized


def schedule_activity(*, activity_id: str, activity_type: str, args: list[object],
                      task_queue: str | None, timeouts_ms: Mapping[str, int | None],
                      retry_policy: Mapping[str, object] | None) -> Command:
    command: Command = {"type": "ScheduleActivityTask", "activity_id": activity_id,
                        "activity_type": activity_type,
                        "input": checked_payload(args, f"input of activity {activity_type}")}
    if task_queue is not None:
        command["task_queue"] = task_queue
    for name, value in timeouts_ms.items():
        if value is not None:
            command[name] = value
    if retry_policy is not None:
        command["retry_policy"] = dict(retry_policy)
    return command


def start_timer(timer_id: str, duration_ms: int) -> Command:
    assert duration_ms >= 1, duration_ms
    return {"type": "StartTimer", "timer_id": timer_id, "start_to_fire_timeout_ms": duration_ms}


def cancel_timer(timer_id: str) -> Command:
    return {"type": "CancelTimer", "timer_id": timer_id}


def request_cancel_activity(scheduled_event_id: int) -> Command:
    assert scheduled_event_id > 0, scheduled_event_id
    return {"type": "RequestCancelActivityTask", "scheduled_event_id": scheduled_event_id}


def record_marker(marker_name: str, details: object) -> Command:
    return {"type": "RecordMarker", "marker_name": marker_name, "details": details}


def complete(result: object) -> Command:
    return {"type": "CompleteWorkflowExecution",
            "result": checked_payload(result, "workflow result")}


def fail(failure: Mapping[str, object]) -> Command:
    return {"type": "FailWorkflowExecution", "failure": dict(failure)}


def cancel() -> Command:
    return {"type": "CancelWorkflowExecution"}
