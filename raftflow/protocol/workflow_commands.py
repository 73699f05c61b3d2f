"""The commands a workflow task completes with (Temporal's names), and the field types they share
with the log commands in `commands.py`.

Same wire contract as `commands.py` (its docstring says it in full): frozen msgspec Structs,
members of the `WorkflowCommand` union tagged under `type` (the key workers have always sent),
fields added only with a default, bounds as edge rules. Split from `commands.py` so that each
file holds one kind of command as the vocabulary grows.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from raftflow.protocol.edge_rules import rule
from raftflow.protocol.limits import (
    DURATION_MS_MAX,
    ID_LENGTH_MAX,
    MESSAGE_LENGTH_MAX,
    TRACEPARENT_LENGTH,
    TRACEPARENT_PATTERN,
)
from raftflow.protocol.payload import EMPTY, Payload, PayloadField
from raftflow.protocol.search_attributes import UpsertWorkflowSearchAttributes

# Field types of values a worker sends over HTTP and the log keeps. Their bounds are edge rules
# (`edge_rules.py`): the OpenAPI document states them and the gateway refuses a request that
# breaks one (400 naming the field); log and snapshot decoding never checks them, so an entry
# an older release accepted always decodes.
Id = Annotated[str, rule(min_length=1, max_length=ID_LENGTH_MAX)]
# Type names and task queues share the id bound; "" means "same as the workflow's" where allowed.
Name = Annotated[str, rule(max_length=ID_LENGTH_MAX)]
DurationMs = Annotated[int, rule(ge=1, le=DURATION_MS_MAX, description="Milliseconds.")]
EventId = Annotated[int, rule(ge=1, le=2**63 - 1)]
Message = Annotated[str, rule(max_length=MESSAGE_LENGTH_MAX)]
Count = Annotated[int, rule(ge=0, le=2**63 - 1)]
Coefficient = Annotated[float, rule(ge=1.0, le=1000.0)]
# "" (no trace) or a W3C traceparent; the engine copies it, never reads it.
TraceParent = Annotated[str, rule(max_length=TRACEPARENT_LENGTH, pattern=TRACEPARENT_PATTERN,
                                  description="W3C traceparent (version 00), or empty.")]
# The empty payload (none given) as a field default. A factory, not `EMPTY` itself: msgspec
# writes a plain default into the JSON Schema and cannot write a custom type there.
NO_PAYLOAD = msgspec.field(default_factory=Payload)
assert not Payload() and Payload() == EMPTY

# Not a union member, so untagged: `type` is Temporal's failure type, not a tag.
class Failure(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Temporal's failure: what went wrong, its kind (matched by retry policies), details."""

    message: Message = ""
    type: Name = ""
    non_retryable: bool = False
    details: PayloadField = NO_PAYLOAD


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Temporal's retry policy. `maximum_interval_ms=None` means 100x the initial interval;
    `maximum_attempts=0` means unlimited (bounded by the schedule-to-close timeout, if any)."""

    initial_interval_ms: DurationMs = 1000
    backoff_coefficient: Coefficient = 2.0
    maximum_interval_ms: DurationMs | None = None
    maximum_attempts: Count = 0
    non_retryable_error_types: tuple[Name, ...] = ()



# --- Commands a workflow task completes with (Temporal's names) ---------------------------------


class ScheduleActivityTask(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="ScheduleActivityTask",
                           tag_field="type"):
    """At least one of schedule_to_close / start_to_close must be set (as in Temporal).
    An empty `task_queue` means the workflow's own task queue."""

    activity_id: Id
    activity_type: Id
    task_queue: Name = ""
    input: PayloadField = NO_PAYLOAD
    schedule_to_close_timeout_ms: DurationMs | None = None
    schedule_to_start_timeout_ms: DurationMs | None = None
    start_to_close_timeout_ms: DurationMs | None = None
    heartbeat_timeout_ms: DurationMs | None = None
    retry_policy: RetryPolicy | None = None
    # The trace context of the workflow task that scheduled it: every attempt's task carries
    # it to the activity worker (docs/observability.md). Not part of replay's match.
    traceparent: TraceParent = ""


class RequestCancelActivityTask(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                tag="RequestCancelActivityTask", tag_field="type"):
    scheduled_event_id: EventId


class StartTimer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="StartTimer",
                 tag_field="type"):
    timer_id: Id
    start_to_fire_timeout_ms: DurationMs


class CancelTimer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="CancelTimer",
                  tag_field="type"):
    timer_id: Id


class CompleteWorkflowExecution(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                tag="CompleteWorkflowExecution", tag_field="type"):
    result: PayloadField = NO_PAYLOAD


class FailWorkflowExecution(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="FailWorkflowExecution",
                            tag_field="type"):
    failure: Failure


class CancelWorkflowExecution(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                              tag="CancelWorkflowExecution", tag_field="type"):
    details: PayloadField = NO_PAYLOAD


class ContinueAsNewWorkflowExecution(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                     tag="ContinueAsNewWorkflowExecution",
                                     tag_field="type"):
    """Empty workflow_type / task_queue and None timeouts mean "same as the current run".
    The new run id is derived in the core from the old run id and the close event id."""

    workflow_type: Name = ""
    task_queue: Name = ""
    input: PayloadField = NO_PAYLOAD
    run_timeout_ms: DurationMs | None = None
    task_timeout_ms: DurationMs | None = None


class RecordMarker(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="RecordMarker",
                   tag_field="type"):
    marker_name: Id
    details: PayloadField = NO_PAYLOAD


class SignalExternalWorkflowExecution(msgspec.Struct, frozen=True, kw_only=True,
                                      forbid_unknown_fields=True,
                                      tag="SignalExternalWorkflowExecution", tag_field="type"):
    """Signal another workflow (or this one) through the shard's outbox. `namespace` "" is the
    workflow's own, the only one allowed for now; `run_id` "" targets the open run."""

    namespace: Name = ""
    workflow_id: Id
    run_id: Name = ""
    signal_name: Id
    input: PayloadField = NO_PAYLOAD


class RequestCancelExternalWorkflowExecution(msgspec.Struct, frozen=True, kw_only=True,
                                             forbid_unknown_fields=True,
                                             tag="RequestCancelExternalWorkflowExecution",
                                             tag_field="type"):
    """Ask another workflow to cancel, through the shard's outbox (same target rules)."""

    namespace: Name = ""
    workflow_id: Id
    run_id: Name = ""
    reason: Message = ""


class ParentClosePolicy(StrEnum):
    """What happens to a child still running when its parent closes (Temporal's policies)."""

    TERMINATE = "terminate"
    REQUEST_CANCEL = "request_cancel"
    ABANDON = "abandon"


class StartChildWorkflowExecution(msgspec.Struct, frozen=True, kw_only=True,
                                  forbid_unknown_fields=True, tag="StartChildWorkflowExecution",
                                  tag_field="type"):
    """Start a child workflow, on whichever shard owns its id, through the shard's outbox.
    `namespace` "" is the parent's (the only one allowed for now); `task_queue` "" is the
    parent's; `id_reuse_policy` "" is allow_duplicate (`commands.IdReusePolicy` values)."""

    namespace: Name = ""
    workflow_id: Id
    workflow_type: Id
    task_queue: Name = ""
    input: PayloadField = NO_PAYLOAD
    execution_timeout_ms: DurationMs | None = None
    run_timeout_ms: DurationMs | None = None
    task_timeout_ms: DurationMs | None = None
    id_reuse_policy: Name = ""
    parent_close_policy: ParentClosePolicy = ParentClosePolicy.TERMINATE
    retry_policy: RetryPolicy | None = None  # the child's own: its parent sees the last attempt
    # The starting workflow task's trace context: the child's WorkflowExecutionStarted records
    # it, so the child's tasks join the parent's trace (docs/observability.md).
    traceparent: TraceParent = ""
class CompleteWorkflowUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                             tag="CompleteWorkflowUpdate", tag_field="type"):
    """An accepted update's handler ended: with `result`, or with `failure` when it raised."""

    update_id: Id
    result: PayloadField = NO_PAYLOAD
    failure: Failure | None = None


WorkflowCommand = (
    ScheduleActivityTask
    | RequestCancelActivityTask
    | StartTimer
    | CancelTimer
    | CompleteWorkflowExecution
    | FailWorkflowExecution
    | CancelWorkflowExecution
    | ContinueAsNewWorkflowExecution
    | RecordMarker
    | UpsertWorkflowSearchAttributes
    | SignalExternalWorkflowExecution
    | RequestCancelExternalWorkflowExecution
    | StartChildWorkflowExecution
    | CompleteWorkflowUpdate
)


class FoldedWorkflowTask(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The workflow task an activity's completion makes, completed in advance by the worker that
    holds the run (shards/core/on_folded_task.py): applied in the completion's own commit only
    if the run's history still ends at `after_event_id` (the last event the worker replayed),
    at `workflow_time_ms`, the worker's clock when the code ran (what it saw as now), which
    becomes the time of the commit's events. Otherwise the completion alone is applied."""

    after_event_id: EventId
    workflow_time_ms: Annotated[int, rule(ge=0, le=2**63 - 1)]
    commands: tuple[WorkflowCommand, ...] = ()
    eager_activities_max: int = 0
