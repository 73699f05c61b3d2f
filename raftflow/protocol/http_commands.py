"""Workflow commands and failures as HTTP JSON: what a worker's workflow-task completion carries.

Theory of operation. The JSON shape predates the typed vocabulary and stays: a command is a flat
object tagged by `type` (Temporal's command name), and its payload fields (`input`, `result`,
`details`) are any JSON value, not the engine's bytes. So these structs mirror
`commands.WorkflowCommand` field for field, with `msgspec.Raw` (the JSON text as sent) where
the engine keeps bytes; the gateway decodes a body into them with `msgspec.json` (types and
bounds checked there) and `workflow_command` turns one into the protocol command the shard
logs. `http_command` is the inverse, for a client that builds protocol commands and sends them.

Payload conventions, kept from the hand-written parser they replace: an absent payload field
of a command is the empty payload (`b""`); a present one is its compact JSON text. Durations are
integers in milliseconds, bounded by `limits.DURATION_MS_MAX` (the shard core's own bound) so
that a body the document calls valid is one the core accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, assert_never

import msgspec

from raftflow.protocol import commands as c
from raftflow.protocol.limits import DURATION_MS_MAX, ID_LENGTH_MAX, PAYLOAD_BYTES_MAX

# Failure messages are for people: long enough for a traceback summary.
MESSAGE_LENGTH_MAX = 32_768

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_LENGTH_MAX)]
# Type names and task queues share the id bound; "" means "same as the workflow's" where allowed.
Name = Annotated[str, msgspec.Meta(max_length=ID_LENGTH_MAX)]
DurationMs = Annotated[int, msgspec.Meta(ge=1, le=DURATION_MS_MAX)]
# Payloads are checked for size (and finite numbers) when turned into bytes, not by the schema.
Payload = Annotated[msgspec.Raw | msgspec.UnsetType, msgspec.Meta(
    description=f"Any JSON value, at most {PAYLOAD_BYTES_MAX} bytes encoded.")]
EventId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every HTTP body: a typo (`workflowId`) is refused, never silently ignored."""


class FailureBody(_Body, frozen=True):
    """Temporal's failure: what went wrong, its kind (matched by retry policies), details."""

    message: Annotated[str, msgspec.Meta(max_length=MESSAGE_LENGTH_MAX)] = ""
    type: Name = ""
    non_retryable: bool = False
    details: Payload = msgspec.UNSET


class RetryPolicyBody(_Body, frozen=True):
    """Temporal's retry policy; maximum_interval_ms >= initial_interval_ms (checked by the core)."""

    initial_interval_ms: DurationMs = 1000
    backoff_coefficient: Annotated[float, msgspec.Meta(ge=1.0, le=1000.0)] = 2.0
    maximum_interval_ms: DurationMs | None = None
    maximum_attempts: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = 0
    non_retryable_error_types: list[Name] = []


class _Command(_Body, frozen=True, tag_field="type"):
    pass


class ScheduleActivityTaskCommand(_Command, frozen=True, tag="ScheduleActivityTask"):
    activity_id: Id
    activity_type: Annotated[str, msgspec.Meta(min_length=1, max_length=ID_LENGTH_MAX)]
    task_queue: Name = ""
    input: Payload = msgspec.UNSET
    schedule_to_close_timeout_ms: DurationMs | None = None
    schedule_to_start_timeout_ms: DurationMs | None = None
    start_to_close_timeout_ms: DurationMs | None = None
    heartbeat_timeout_ms: DurationMs | None = None
    retry_policy: RetryPolicyBody | None = None


class RequestCancelActivityTaskCommand(_Command, frozen=True, tag="RequestCancelActivityTask"):
    scheduled_event_id: EventId


class StartTimerCommand(_Command, frozen=True, tag="StartTimer"):
    timer_id: Id
    start_to_fire_timeout_ms: DurationMs


class CancelTimerCommand(_Command, frozen=True, tag="CancelTimer"):
    timer_id: Id


class CompleteWorkflowExecutionCommand(_Command, frozen=True, tag="CompleteWorkflowExecution"):
    result: Payload = msgspec.UNSET


class FailWorkflowExecutionCommand(_Command, frozen=True, tag="FailWorkflowExecution"):
    failure: FailureBody


class CancelWorkflowExecutionCommand(_Command, frozen=True, tag="CancelWorkflowExecution"):
    details: Payload = msgspec.UNSET


class ContinueAsNewWorkflowExecutionCommand(_Command, frozen=True, tag="ContinueAsNewWorkflowExecution"):
    workflow_type: Name = ""
    task_queue: Name = ""
    input: Payload = msgspec.UNSET
    run_timeout_ms: DurationMs | None = None
    task_timeout_ms: DurationMs | None = None


class RecordMarkerCommand(_Command, frozen=True, tag="RecordMarker"):
    marker_name: Id
    details: Payload = msgspec.UNSET


HttpWorkflowCommand = (
    ScheduleActivityTaskCommand
    | RequestCancelActivityTaskCommand
    | StartTimerCommand
    | CancelTimerCommand
    | CompleteWorkflowExecutionCommand
    | FailWorkflowExecutionCommand
    | CancelWorkflowExecutionCommand
    | ContinueAsNewWorkflowExecutionCommand
    | RecordMarkerCommand
)


# How a body's payload field (value, its path) becomes the engine's bytes: the gateway's size
# and number checks live there, so this module holds no policy.
PayloadBytes = Callable[[msgspec.Raw | msgspec.UnsetType, str], bytes]


def failure(body: FailureBody, field: str, payload: PayloadBytes) -> c.Failure:
    return c.Failure(message=body.message, type=body.type, non_retryable=body.non_retryable,
                     details=payload(body.details, f"{field}.details"))


def retry_policy(body: RetryPolicyBody) -> c.RetryPolicy:
    return c.RetryPolicy(initial_interval_ms=body.initial_interval_ms,
                         backoff_coefficient=body.backoff_coefficient,
                         maximum_interval_ms=body.maximum_interval_ms,
                         maximum_attempts=body.maximum_attempts,
                         non_retryable_error_types=tuple(body.non_retryable_error_types))


def workflow_command(command: HttpWorkflowCommand, field: str,
                     payload: PayloadBytes) -> c.WorkflowCommand:
    """The protocol command of one decoded HTTP command; `field` names it in errors."""
    match command:
        case ScheduleActivityTaskCommand():
            policy = command.retry_policy
            return c.ScheduleActivityTask(
                activity_id=command.activity_id, activity_type=command.activity_type,
                task_queue=command.task_queue, input=payload(command.input, f"{field}.input"),
                schedule_to_close_timeout_ms=command.schedule_to_close_timeout_ms,
                schedule_to_start_timeout_ms=command.schedule_to_start_timeout_ms,
                start_to_close_timeout_ms=command.start_to_close_timeout_ms,
                heartbeat_timeout_ms=command.heartbeat_timeout_ms,
                retry_policy=None if policy is None else retry_policy(policy))
        case RequestCancelActivityTaskCommand():
            return c.RequestCancelActivityTask(scheduled_event_id=command.scheduled_event_id)
        case StartTimerCommand():
            return c.StartTimer(timer_id=command.timer_id,
                                start_to_fire_timeout_ms=command.start_to_fire_timeout_ms)
        case CancelTimerCommand():
            return c.CancelTimer(timer_id=command.timer_id)
        case CompleteWorkflowExecutionCommand():
            return c.CompleteWorkflowExecution(result=payload(command.result, f"{field}.result"))
        case FailWorkflowExecutionCommand():
            return c.FailWorkflowExecution(
                failure=failure(command.failure, f"{field}.failure", payload))
        case CancelWorkflowExecutionCommand():
            return c.CancelWorkflowExecution(details=payload(command.details, f"{field}.details"))
        case ContinueAsNewWorkflowExecutionCommand():
            return c.ContinueAsNewWorkflowExecution(
                workflow_type=command.workflow_type, task_queue=command.task_queue,
                input=payload(command.input, f"{field}.input"),
                run_timeout_ms=command.run_timeout_ms, task_timeout_ms=command.task_timeout_ms)
        case RecordMarkerCommand():
            return c.RecordMarker(marker_name=command.marker_name,
                                  details=payload(command.details, f"{field}.details"))
        case _:
            assert_never(command)


def _raw(data: bytes) -> msgspec.Raw | msgspec.UnsetType:
    return msgspec.Raw(data) if data else msgspec.UNSET


def http_failure(value: c.Failure) -> FailureBody:
    return FailureBody(message=value.message, type=value.type,
                       non_retryable=value.non_retryable, details=_raw(value.details))


def http_command(command: c.WorkflowCommand) -> HttpWorkflowCommand:
    """The HTTP command of a protocol command (`workflow_command`'s inverse): payload bytes,
    which are JSON text, are sent as they are; the empty payload is left out."""
    match command:
        case c.ScheduleActivityTask():
            policy = command.retry_policy
            return ScheduleActivityTaskCommand(
                activity_id=command.activity_id, activity_type=command.activity_type,
                task_queue=command.task_queue, input=_raw(command.input),
                schedule_to_close_timeout_ms=command.schedule_to_close_timeout_ms,
                schedule_to_start_timeout_ms=command.schedule_to_start_timeout_ms,
                start_to_close_timeout_ms=command.start_to_close_timeout_ms,
                heartbeat_timeout_ms=command.heartbeat_timeout_ms,
                retry_policy=None if policy is None else RetryPolicyBody(
                    initial_interval_ms=policy.initial_interval_ms,
                    backoff_coefficient=policy.backoff_coefficient,
                    maximum_interval_ms=policy.maximum_interval_ms,
                    maximum_attempts=policy.maximum_attempts,
                    non_retryable_error_types=list(policy.non_retryable_error_types)))
        case c.RequestCancelActivityTask():
            return RequestCancelActivityTaskCommand(scheduled_event_id=command.scheduled_event_id)
        case c.StartTimer():
            return StartTimerCommand(timer_id=command.timer_id,
                                     start_to_fire_timeout_ms=command.start_to_fire_timeout_ms)
        case c.CancelTimer():
            return CancelTimerCommand(timer_id=command.timer_id)
        case c.CompleteWorkflowExecution():
            return CompleteWorkflowExecutionCommand(result=_raw(command.result))
        case c.FailWorkflowExecution():
            return FailWorkflowExecutionCommand(failure=http_failure(command.failure))
        case c.CancelWorkflowExecution():
            return CancelWorkflowExecutionCommand(details=_raw(command.details))
        case c.ContinueAsNewWorkflowExecution():
            return ContinueAsNewWorkflowExecutionCommand(
                workflow_type=command.workflow_type, task_queue=command.task_queue,
                input=_raw(command.input), run_timeout_ms=command.run_timeout_ms,
                task_timeout_ms=command.task_timeout_ms)
        case c.RecordMarker():
            return RecordMarkerCommand(marker_name=command.marker_name,
                                       details=_raw(command.details))
        case _:
            assert_never(command)
