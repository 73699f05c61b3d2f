"""One run's mutable state (`Execution`) and the keys and kinds shard state is indexed by.

The classes are msgspec Structs (slotted, mutable) encoded as maps of their field names, like
the protocol types (`snapshot.py`); none is a union member, so none carries a tag. Snapshots of
release 0.1 (arrays `[ClassName, field_1, ..., field_n]`) are read by
`raftflow.protocol.legacy_arrays`, which walks these classes' fields.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from raftflow.protocol.commands import Failure, RetryPolicy
from raftflow.protocol.events import (
    EventAttributes,
    EventType,
    HistoryEvent,
)
from raftflow.protocol.results import WorkflowStatus
from raftflow.protocol.search_attributes import SearchAttribute
from raftflow.shards.core.update_state import UpdateState


class TimerKind(StrEnum):
    USER = "user"
    ACTIVITY_SCHEDULE_TO_START = "activity_schedule_to_start"
    ACTIVITY_START_TO_CLOSE = "activity_start_to_close"
    ACTIVITY_SCHEDULE_TO_CLOSE = "activity_schedule_to_close"
    ACTIVITY_HEARTBEAT = "activity_heartbeat"
    ACTIVITY_RETRY = "activity_retry"
    WORKFLOW_TASK_START_TO_CLOSE = "workflow_task_start_to_close"
    RUN_TIMEOUT = "run_timeout"
    EXECUTION_TIMEOUT = "execution_timeout"
    # A retried run's first workflow task waits out the retry policy's back-off
    # (workflow_retry.py); ref 0.
    WORKFLOW_BACKOFF = "workflow_backoff"


ACTIVITY_TIMER_KINDS: tuple[TimerKind, ...] = (
    TimerKind.ACTIVITY_SCHEDULE_TO_START,
    TimerKind.ACTIVITY_START_TO_CLOSE,
    TimerKind.ACTIVITY_SCHEDULE_TO_CLOSE,
    TimerKind.ACTIVITY_HEARTBEAT,
    TimerKind.ACTIVITY_RETRY,
)

# (run_id, kind, ref): ref is the TimerStarted event id (user timers), the scheduled event id
# (activity and workflow task timers) or 0 (run and execution timeouts, workflow back-off).
TimerKey = tuple[str, str, int]
WorkflowKey = tuple[str, str]  # (namespace, workflow_id)
RequestKey = tuple[str, str, str, str]  # (command kind, namespace, workflow_id, request_id)


class ActivityPhase(StrEnum):
    SCHEDULED = "scheduled"  # dispatched, waiting for RecordActivityTaskStarted
    STARTED = "started"  # a worker runs the current attempt
    BACKOFF = "backoff"  # waiting for the retry timer before the next attempt


class WorkflowTaskState(msgspec.Struct, kw_only=True):
    scheduled_event_id: int
    attempt: int
    scheduled_time_ms: int
    started_event_id: int = 0  # 0 while scheduled and not started
    started_time_ms: int = 0
    request_id: str = ""
    identity: str = ""


class ActivityState(msgspec.Struct, kw_only=True):
    scheduled_event_id: int
    activity_id: str
    activity_type: str
    task_queue: str
    input: bytes
    schedule_to_close_timeout_ms: int | None
    schedule_to_start_timeout_ms: int | None
    start_to_close_timeout_ms: int
    heartbeat_timeout_ms: int | None
    retry_policy: RetryPolicy
    scheduled_time_ms: int
    attempt: int = 1
    attempt_scheduled_time_ms: int
    phase: ActivityPhase = ActivityPhase.SCHEDULED
    started_time_ms: int = 0
    request_id: str = ""
    identity: str = ""
    heartbeat_details: bytes = b""
    last_failure: Failure | None = None
    cancel_requested_event_id: int = 0  # 0 unless the workflow asked to cancel it
    # Added with tracing, last with a default (older snapshots lack it): the W3C traceparent
    # its ScheduleActivityTask carried, handed to every attempt's worker ("": none).
    traceparent: str = ""


class ChildState(msgspec.Struct, kw_only=True):
    """A child this run started (StartChildWorkflowExecutionInitiated) and has not seen close."""

    workflow_id: str
    workflow_type: str
    parent_close_policy: str  # ParentClosePolicy value
    run_id: str = ""  # set when ChildWorkflowExecutionStarted is written
    started_event_id: int = 0  # that event's id, if it was written (not buffered) then


class ParentRef(msgspec.Struct, frozen=True, kw_only=True):
    """The parent run of a child run: told when the child's last run closes."""

    namespace: str
    workflow_id: str
    run_id: str
    initiated_event_id: int
    # Not "": the run is an action of this schedule (workflow_id is then the schedule id,
    # run_id the action's first run id, initiated_event_id 0); its close is told to the
    # schedule (schedule_actions.py), not to a parent run.
    schedule_id: str = ""


class BufferedEvent(msgspec.Struct, kw_only=True):
    """An event that arrived while a workflow task was started; written after that task closes
    (Temporal's buffered events), so a started task's history never changes under it."""

    time_ms: int
    attributes: EventAttributes

    @property
    def event_type(self) -> EventType:
        return self.attributes.event_type


class Execution(msgspec.Struct, kw_only=True):
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowStatus = WorkflowStatus.RUNNING
    start_time_ms: int
    close_time_ms: int | None = None
    task_timeout_ms: int
    run_timeout_ms: int | None
    execution_timeout_ms: int | None
    execution_expire_ms: int | None  # shared by the whole continue-as-new chain
    first_execution_run_id: str
    continued_execution_run_id: str | None = None
    history: list[HistoryEvent] = msgspec.field(default_factory=list)
    buffered: list[BufferedEvent] = msgspec.field(default_factory=list)
    workflow_task: WorkflowTaskState | None = None
    previous_started_event_id: int = 0  # started id of the last completed workflow task
    activities: dict[int, ActivityState] = msgspec.field(default_factory=dict)
    activity_ids: dict[str, int] = msgspec.field(default_factory=dict)
    # timer_id -> TimerStarted event id
    timers: dict[str, int] = msgspec.field(default_factory=dict)
    cancel_requested: bool = False
    # Fields added later go last, with a default: 0.1 snapshot arrays lack trailing fields
    # and current maps lack their keys, and both decode with the defaults.
    sticky_queue: str = ""  # the worker that completed the last task keeps the run replayed
    # Typed, sorted by name: given at start, merged by upserts, carried over a continue-as-new.
    search_attributes: tuple[SearchAttribute, ...] = ()
    # How many of the oldest events live in the archive, not in `history` (which then starts
    # at event spilled_events + 1): whole chunks of an open run (run_history.py). Always 0
    # for a closed run as the archive hands it out (its history whole).
    spilled_events: int = 0
    # Messages this run queued in the shard's outbox and not acknowledged yet (outbox.py).
    pending_messages: int = 0
    # Children started and not closed, by initiating event id; and this run's parent, if it
    # is a child (child_links.py).
    children: dict[int, ChildState] = msgspec.field(default_factory=dict)
    parent: ParentRef | None = None
    # Workflow updates admitted or accepted and not completed yet, by update id, in admission
    # order (on_update.py); a completed or rejected one is remembered in the archive instead.
    updates: dict[str, UpdateState] = msgspec.field(default_factory=dict)
    # The chain's retry policy (None: no retry), this run's attempt in it (1 unless the
    # policy started it after a failed one), and whether its first workflow task still waits
    # for the back-off timer: nothing schedules a task meanwhile (workflow_retry.py).
    retry_policy: RetryPolicy | None = None
    attempt: int = 1
    awaiting_backoff: bool = False

    @property
    def key(self) -> WorkflowKey:
        return (self.namespace, self.workflow_id)

    @property
    def history_length(self) -> int:
        """Events written so far, spilled ones included (the last event's id)."""
        return self.spilled_events + len(self.history)

    @property
    def is_open(self) -> bool:
        return self.status is WorkflowStatus.RUNNING

    @property
    def has_task_to_dispatch(self) -> bool:
        """A workflow task or an activity attempt is scheduled and not started: a new leader's
        shell must hold a dispatch for it (`apply.pending_effects`)."""
        task = self.workflow_task
        return ((task is not None and task.started_event_id == 0)
                or any(a.phase is ActivityPhase.SCHEDULED for a in self.activities.values()))

    def task_started(self) -> bool:
        return self.workflow_task is not None and self.workflow_task.started_event_id > 0
