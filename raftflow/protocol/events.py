"""History events: what happened to a workflow execution, in order.

Theory of operation. Every execution owns an append-only history of `HistoryEvent`s whose ids are
1..n with no gap (DESIGN §4 I3). What happened is `attributes`, one frozen struct per event type
named as Temporal names it (`ActivityTaskScheduledEventAttributes`), tagged under `event_type`
with Temporal's event name (`EventType`), so users and SDK code read familiar names and
`event.event_type` is that name. Payloads (`input`, `result`, `details`, failure `details`) are
`bytes` holding the user's JSON text: the engine never parses them; the gateway renders them as
JSON. `WorkflowTaskFailed.failure` is the worker's failure payload (bytes); every other failure
is a `Failure`.

Every field has its zero value as default (0, "", b"", None, the default `RetryPolicy`), except
the closed enums and the `Failure` of a failed activity or run: an event written before a field
existed, or by release 0.1 without it, decodes with the default. Fields are listed in the order
the core wrote them as maps in 0.1, which is the key order of their JSON (one exception: 0.1 put
`started_event_id` second in an ActivityTaskCanceled written for an attempt never started).
"""

from __future__ import annotations

import typing
from enum import StrEnum
from typing import ClassVar

import msgspec

from raftflow.protocol.commands import Failure, RetryPolicy
from raftflow.protocol.event_types import EventType as EventType
from raftflow.protocol.events_children import (
    ChildWorkflowExecutionCanceledEventAttributes,
    ChildWorkflowExecutionCompletedEventAttributes,
    ChildWorkflowExecutionFailedEventAttributes,
    ChildWorkflowExecutionStartedEventAttributes,
    ChildWorkflowExecutionTerminatedEventAttributes,
    ChildWorkflowExecutionTimedOutEventAttributes,
    StartChildWorkflowExecutionFailedEventAttributes,
    StartChildWorkflowExecutionInitiatedEventAttributes,
)
from raftflow.protocol.events_external import (
    ExternalWorkflowExecutionCancelRequestedEventAttributes,
    ExternalWorkflowExecutionSignaledEventAttributes,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    SignalExternalWorkflowExecutionFailedEventAttributes,
    SignalExternalWorkflowExecutionInitiatedEventAttributes,
)
from raftflow.protocol.events_updates import (
    WorkflowExecutionUpdateAcceptedEventAttributes,
    WorkflowExecutionUpdateCompletedEventAttributes,
)
from raftflow.protocol.search_attributes import SearchAttribute

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


class TimeoutType(StrEnum):
    """Which timeout of a workflow task or activity attempt fired (Temporal's names)."""

    START_TO_CLOSE = "StartToClose"
    SCHEDULE_TO_START = "ScheduleToStart"
    SCHEDULE_TO_CLOSE = "ScheduleToClose"
    HEARTBEAT = "Heartbeat"


class WorkflowTimeoutType(StrEnum):
    RUN = "run"
    EXECUTION = "execution"


class RetryState(StrEnum):
    """Why an activity gets no further attempt (Temporal's RetryState names)."""

    CANCEL_REQUESTED = "CancelRequested"
    NON_RETRYABLE_FAILURE = "NonRetryableFailure"
    MAXIMUM_ATTEMPTS_REACHED = "MaximumAttemptsReached"
    TIMEOUT = "Timeout"


class WorkflowExecutionStartedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionStarted",
                                              tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_STARTED
    workflow_type: str = ""
    task_queue: str = ""
    input: bytes = b""
    workflow_id: str = ""
    namespace: str = ""
    request_id: str = ""
    execution_timeout_ms: int | None = None
    run_timeout_ms: int | None = None
    task_timeout_ms: int = 0
    continued_execution_run_id: str | None = None
    first_execution_run_id: str = ""
    attempt: int = 1
    # Added with workflow retries: the chain's retry policy, and how long this attempt's
    # first workflow task waited after the previous attempt failed (0 for attempt 1).
    retry_policy: RetryPolicy | None = None
    first_workflow_task_backoff_ms: int = 0
    # Added with tracing: the starter's W3C traceparent ("": none), inherited by the runs a
    # continue-as-new or a retry starts; workers parent their workflow task spans on it.
    traceparent: str = ""


class WorkflowTaskScheduledEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowTaskScheduled",
                                           tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_TASK_SCHEDULED
    task_queue: str = ""
    start_to_close_timeout_ms: int = 0
    attempt: int = 1


class WorkflowTaskStartedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowTaskStarted",
                                         tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_TASK_STARTED
    scheduled_event_id: int = 0
    identity: str = ""
    request_id: str = ""


class WorkflowTaskCompletedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowTaskCompleted",
                                           tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_TASK_COMPLETED
    scheduled_event_id: int = 0
    started_event_id: int = 0
    identity: str = ""


class WorkflowTaskFailedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowTaskFailed",
                                        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_TASK_FAILED
    scheduled_event_id: int = 0
    started_event_id: int = 0
    cause: str = ""
    failure: bytes = b""
    identity: str = ""


class WorkflowTaskTimedOutEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowTaskTimedOut",
                                          tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_TASK_TIMED_OUT
    scheduled_event_id: int = 0
    started_event_id: int = 0
    timeout_type: TimeoutType


class ActivityTaskScheduledEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="ActivityTaskScheduled",
                                           tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.ACTIVITY_TASK_SCHEDULED
    activity_id: str = ""
    activity_type: str = ""
    task_queue: str = ""
    input: bytes = b""
    schedule_to_close_timeout_ms: int | None = None
    schedule_to_start_timeout_ms: int | None = None
    start_to_close_timeout_ms: int = 0
    heartbeat_timeout_ms: int | None = None
    retry_policy: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    workflow_task_completed_event_id: int = 0
    traceparent: str = ""  # added with tracing: the scheduling workflow task's context


class ActivityTaskStartedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="ActivityTaskStarted",
                                         tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.ACTIVITY_TASK_STARTED
    scheduled_event_id: int = 0
    identity: str = ""
    request_id: str = ""
    attempt: int = 1
    last_failure: Failure | None = None


class ActivityTaskCompletedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="ActivityTaskCompleted",
                                           tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.ACTIVITY_TASK_COMPLETED
    scheduled_event_id: int = 0
    result: bytes = b""
    identity: str = ""
    started_event_id: int = 0


class ActivityTaskFailedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="ActivityTaskFailed",
                                        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.ACTIVITY_TASK_FAILED
    scheduled_event_id: int = 0
    failure: Failure
    identity: str = ""
    retry_state: RetryState
    started_event_id: int = 0


class ActivityTaskTimedOutEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="ActivityTaskTimedOut",
                                          tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.ACTIVITY_TASK_TIMED_OUT
    scheduled_event_id: int = 0
    timeout_type: TimeoutType
    last_failure: Failure | None = None
    retry_state: RetryState
    started_event_id: int = 0


class ActivityTaskCancelRequestedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="ActivityTaskCancelRequested",
                                                 tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.ACTIVITY_TASK_CANCEL_REQUESTED
    scheduled_event_id: int = 0
    workflow_task_completed_event_id: int = 0


class ActivityTaskCanceledEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="ActivityTaskCanceled",
                                          tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.ACTIVITY_TASK_CANCELED
    scheduled_event_id: int = 0
    latest_cancel_requested_event_id: int = 0
    details: bytes = b""
    identity: str = ""
    started_event_id: int = 0


class TimerStartedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="TimerStarted",
                                  tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.TIMER_STARTED
    timer_id: str = ""
    start_to_fire_timeout_ms: int = 0
    workflow_task_completed_event_id: int = 0


class TimerFiredEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="TimerFired",
                                tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.TIMER_FIRED
    timer_id: str = ""
    started_event_id: int = 0


class TimerCanceledEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="TimerCanceled",
                                   tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.TIMER_CANCELED
    timer_id: str = ""
    started_event_id: int = 0
    workflow_task_completed_event_id: int = 0


class WorkflowExecutionSignaledEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionSignaled",
                                               tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_SIGNALED
    signal_name: str = ""
    input: bytes = b""
    request_id: str = ""


class WorkflowExecutionCancelRequestedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionCancelRequested",
                                                      tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_CANCEL_REQUESTED
    cause: str = ""
    request_id: str = ""


class MarkerRecordedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="MarkerRecorded",
                                    tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.MARKER_RECORDED
    marker_name: str = ""
    details: bytes = b""
    workflow_task_completed_event_id: int = 0


class UpsertWorkflowSearchAttributesEventAttributes(
        msgspec.Struct, frozen=True, kw_only=True, tag="UpsertWorkflowSearchAttributes",
        tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    search_attributes: tuple[SearchAttribute, ...] = ()  # the ones set, typed, by name
    workflow_task_completed_event_id: int = 0


class WorkflowExecutionCompletedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionCompleted",
                                                tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_COMPLETED
    result: bytes = b""
    workflow_task_completed_event_id: int = 0


class WorkflowExecutionFailedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionFailed",
                                             tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_FAILED
    failure: Failure
    workflow_task_completed_event_id: int = 0
    new_execution_run_id: str = ""  # not "": the retry policy started this next attempt


class WorkflowExecutionCanceledEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionCanceled",
                                               tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_CANCELED
    details: bytes = b""
    workflow_task_completed_event_id: int = 0


class WorkflowExecutionTerminatedEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionTerminated",
                                                 tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_TERMINATED
    reason: str = ""
    request_id: str = ""


class WorkflowExecutionTimedOutEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionTimedOut",
                                               tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_TIMED_OUT
    timeout_type: WorkflowTimeoutType
    new_execution_run_id: str = ""  # not "": the retry policy started this next attempt


class WorkflowExecutionContinuedAsNewEventAttributes(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowExecutionContinuedAsNew",
                                                     tag_field="event_type"):
    event_type: ClassVar[EventType] = EventType.WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    new_execution_run_id: str = ""
    workflow_type: str = ""
    task_queue: str = ""
    input: bytes = b""
    run_timeout_ms: int | None = None
    task_timeout_ms: int = 0
    workflow_task_completed_event_id: int = 0


EventAttributes = (
    WorkflowExecutionStartedEventAttributes
    | WorkflowTaskScheduledEventAttributes
    | WorkflowTaskStartedEventAttributes
    | WorkflowTaskCompletedEventAttributes
    | WorkflowTaskFailedEventAttributes
    | WorkflowTaskTimedOutEventAttributes
    | ActivityTaskScheduledEventAttributes
    | ActivityTaskStartedEventAttributes
    | ActivityTaskCompletedEventAttributes
    | ActivityTaskFailedEventAttributes
    | ActivityTaskTimedOutEventAttributes
    | ActivityTaskCancelRequestedEventAttributes
    | ActivityTaskCanceledEventAttributes
    | TimerStartedEventAttributes
    | TimerFiredEventAttributes
    | TimerCanceledEventAttributes
    | WorkflowExecutionSignaledEventAttributes
    | WorkflowExecutionCancelRequestedEventAttributes
    | MarkerRecordedEventAttributes
    | UpsertWorkflowSearchAttributesEventAttributes
    | WorkflowExecutionCompletedEventAttributes
    | WorkflowExecutionFailedEventAttributes
    | WorkflowExecutionCanceledEventAttributes
    | WorkflowExecutionTerminatedEventAttributes
    | WorkflowExecutionTimedOutEventAttributes
    | WorkflowExecutionContinuedAsNewEventAttributes
    | SignalExternalWorkflowExecutionInitiatedEventAttributes
    | SignalExternalWorkflowExecutionFailedEventAttributes
    | ExternalWorkflowExecutionSignaledEventAttributes
    | RequestCancelExternalWorkflowExecutionInitiatedEventAttributes
    | RequestCancelExternalWorkflowExecutionFailedEventAttributes
    | ExternalWorkflowExecutionCancelRequestedEventAttributes
    | StartChildWorkflowExecutionInitiatedEventAttributes
    | StartChildWorkflowExecutionFailedEventAttributes
    | ChildWorkflowExecutionStartedEventAttributes
    | ChildWorkflowExecutionCompletedEventAttributes
    | ChildWorkflowExecutionFailedEventAttributes
    | ChildWorkflowExecutionCanceledEventAttributes
    | ChildWorkflowExecutionTimedOutEventAttributes
    | ChildWorkflowExecutionTerminatedEventAttributes
    | WorkflowExecutionUpdateAcceptedEventAttributes
    | WorkflowExecutionUpdateCompletedEventAttributes
)

assert {cls.event_type.value for cls in typing.get_args(EventAttributes)} == (
    {cls.__struct_config__.tag for cls in typing.get_args(EventAttributes)}) == (
    {t.value for t in EventType}), "one attributes struct per event type, tagged with its name"


class HistoryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event of one execution's history.

    Guarantees: `event_id` is the 1-based position in the history; `time_ms` is the `now_ms` of
    the command that wrote it (the proposer's clock, never read by the core).
    """

    event_id: int
    time_ms: int
    attributes: EventAttributes

    @property
    def event_type(self) -> EventType:
        return self.attributes.event_type
