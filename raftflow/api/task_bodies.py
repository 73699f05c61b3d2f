"""Parsing worker request bodies: workflow-task commands, failures and retry policies.

Shapes (JSON): a command is `{"type": <Temporal command name>, ...fields}`; payload fields
(`input`, `result`, `details`) are any JSON value; durations are integers in milliseconds.
Every refusal names the field path, e.g. `commands[2].start_to_fire_timeout_ms`.
"""

from __future__ import annotations

from collections.abc import Mapping

from raftflow.api import validation as v
from raftflow.api.errors import InvalidArgumentError
from raftflow.protocol.commands import (
    CancelTimer,
    CancelWorkflowExecution,
    CompleteWorkflowExecution,
    ContinueAsNewWorkflowExecution,
    Failure,
    FailWorkflowExecution,
    RecordMarker,
    RequestCancelActivityTask,
    RetryPolicy,
    ScheduleActivityTask,
    StartTimer,
    WorkflowCommand,
)
from raftflow.protocol.limits import COMMANDS_PER_TASK_MAX


def _obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"field {where!r}: must be an object", where)
    return value


def _str(body: Mapping[str, object], name: str, where: str, *, required: bool = True,
         default: str = "") -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidArgumentError(f"field '{where}.{name}': is required", f"{where}.{name}")
        return default
    if not isinstance(value, str) or len(value) > v.NAME_LENGTH_MAX:
        raise InvalidArgumentError(
            f"field '{where}.{name}': must be a string of at most {v.NAME_LENGTH_MAX} characters",
            f"{where}.{name}")
    return value


def _ms(body: Mapping[str, object], name: str, where: str, *, required: bool = False) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidArgumentError(f"field '{where}.{name}': is required", f"{where}.{name}")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= v.INTEGER_MAX:
        raise InvalidArgumentError(
            f"field '{where}.{name}': must be a non-negative integer (milliseconds) of at most "
            f"{v.INTEGER_MAX}", f"{where}.{name}")
    return value


def _payload(body: Mapping[str, object], name: str, where: str) -> bytes:
    if name not in body:
        return b""
    return v.encode_payload(body[name], field=f"{where}.{name}")


def parse_failure(value: object, where: str) -> Failure:
    body = _obj(value, where)
    non_retryable = body.get("non_retryable", False)
    if not isinstance(non_retryable, bool):
        raise InvalidArgumentError(f"field '{where}.non_retryable': must be a boolean",
                                   f"{where}.non_retryable")
    return Failure(message=_str(body, "message", where, required=False),
                   type=_str(body, "type", where, required=False),
                   non_retryable=non_retryable, details=_payload(body, "details", where))


def parse_retry_policy(value: object, where: str) -> RetryPolicy | None:
    if value is None:
        return None
    body = _obj(value, where)
    coefficient = body.get("backoff_coefficient", 2.0)
    if isinstance(coefficient, bool) or not isinstance(coefficient, int | float):
        raise InvalidArgumentError(f"field '{where}.backoff_coefficient': must be a number",
                                   f"{where}.backoff_coefficient")
    types = body.get("non_retryable_error_types", [])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise InvalidArgumentError(
            f"field '{where}.non_retryable_error_types': must be a list of strings",
            f"{where}.non_retryable_error_types")
    return RetryPolicy(
        initial_interval_ms=_ms(body, "initial_interval_ms", where) or 1000,
        backoff_coefficient=float(coefficient),
        maximum_interval_ms=_ms(body, "maximum_interval_ms", where),
        maximum_attempts=_ms(body, "maximum_attempts", where) or 0,
        non_retryable_error_types=tuple(types))


def parse_command(value: object, where: str) -> WorkflowCommand:
    body = _obj(value, where)
    kind = body.get("type")
    match kind:
        case "ScheduleActivityTask":
            return ScheduleActivityTask(
                activity_id=_str(body, "activity_id", where),
                activity_type=_str(body, "activity_type", where),
                task_queue=_str(body, "task_queue", where, required=False),
                input=_payload(body, "input", where),
                schedule_to_close_timeout_ms=_ms(body, "schedule_to_close_timeout_ms", where),
                schedule_to_start_timeout_ms=_ms(body, "schedule_to_start_timeout_ms", where),
                start_to_close_timeout_ms=_ms(body, "start_to_close_timeout_ms", where),
                heartbeat_timeout_ms=_ms(body, "heartbeat_timeout_ms", where),
                retry_policy=parse_retry_policy(body.get("retry_policy"), f"{where}.retry_policy"))
        case "RequestCancelActivityTask":
            scheduled = _ms(body, "scheduled_event_id", where, required=True)
            assert scheduled is not None
            return RequestCancelActivityTask(scheduled_event_id=scheduled)
        case "StartTimer":
            fire = _ms(body, "start_to_fire_timeout_ms", where, required=True)
            assert fire is not None
            return StartTimer(timer_id=_str(body, "timer_id", where), start_to_fire_timeout_ms=fire)
        case "CancelTimer":
            return CancelTimer(timer_id=_str(body, "timer_id", where))
        case "CompleteWorkflowExecution":
            return CompleteWorkflowExecution(result=_payload(body, "result", where))
        case "FailWorkflowExecution":
            return FailWorkflowExecution(failure=parse_failure(body.get("failure"), f"{where}.failure"))
        case "CancelWorkflowExecution":
            return CancelWorkflowExecution(details=_payload(body, "details", where))
        case "ContinueAsNewWorkflowExecution":
            return ContinueAsNewWorkflowExecution(
                workflow_type=_str(body, "workflow_type", where, required=False),
                task_queue=_str(body, "task_queue", where, required=False),
                input=_payload(body, "input", where),
                run_timeout_ms=_ms(body, "run_timeout_ms", where),
                task_timeout_ms=_ms(body, "task_timeout_ms", where))
        case "RecordMarker":
            return RecordMarker(marker_name=_str(body, "marker_name", where),
                                details=_payload(body, "details", where))
        case _:
            raise InvalidArgumentError(f"field '{where}.type': unknown command type {kind!r}",
                                       f"{where}.type")


def parse_commands(value: object) -> tuple[WorkflowCommand, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidArgumentError("field 'commands': must be a list", "commands")
    if len(value) > COMMANDS_PER_TASK_MAX:
        raise InvalidArgumentError(
            f"field 'commands': at most {COMMANDS_PER_TASK_MAX} commands per task", "commands")
    return tuple(parse_command(item, f"commands[{i}]") for i, item in enumerate(value))
