"""Results: the answer `apply` gives the proposer of each command, and read-side views.

A refusal is a value, `Rejected(code, message, field)`, never an exception. Every refusal
except `unhandled_command` changes nothing (see `errors.py`).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from raftflow.protocol.commands import TaskToken
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.messages import MessageOutcome
from raftflow.protocol.run_details import RunDetails
from raftflow.protocol.search_attributes import SearchAttribute
from raftflow.protocol.updates import WorkflowUpdateRequest, WorkflowUpdateResult


class WorkflowStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    CONTINUED_AS_NEW = "continued_as_new"
    TIMED_OUT = "timed_out"


class WorkflowExecutionStatus(StrEnum):
    """A run's status as the HTTP API and the SDK name it (Temporal's names). `WorkflowStatus`
    is the form shard snapshots store; `of` maps it, so the two never drift apart."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    TIMED_OUT = "TIMED_OUT"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"

    @staticmethod
    def of(status: WorkflowStatus) -> WorkflowExecutionStatus:
        return WorkflowExecutionStatus(status.value.upper())


assert {WorkflowExecutionStatus.of(s) for s in WorkflowStatus} == set(WorkflowExecutionStatus), (
    "one API status per stored status")


class Ack(msgspec.Struct, frozen=True, kw_only=True, tag="Ack", tag_field="result"):
    pass


class Rejected(msgspec.Struct, frozen=True, kw_only=True, tag="Rejected", tag_field="result"):
    code: ErrorCode
    message: str = ""
    field: str | None = None


class WorkflowStartedResult(msgspec.Struct, frozen=True, kw_only=True, tag="WorkflowStartedResult",
                            tag_field="result"):
    """`created` is False when an open run with the same request id was found.

    `workflow_task` is the first workflow task when it was started eagerly for the caller; a
    retried start (same request id) gets it again while it is still started (the first
    answer may have been lost), and the answer without it once it is not.
    """

    run_id: str
    created: bool
    workflow_task: WorkflowTaskInfo | None = None


class WorkflowTaskInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a worker needs to run one workflow task.

    `history` holds the events of the run up to and including this task's WorkflowTaskStarted,
    starting at `history[0].event_id`: event 1 (the full history), or, for the sticky worker
    that completed the previous task, the event after `previous_started_event_id` (only the
    events that worker has not seen).
    """

    token: TaskToken
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    attempt: int
    scheduled_event_id: int
    started_event_id: int
    previous_started_event_id: int
    history: tuple[HistoryEvent, ...]
    # The updates admitted before this task started, in admission order (updates.py).
    updates: tuple[WorkflowUpdateRequest, ...] = ()


class WorkflowTaskStartedResult(msgspec.Struct, frozen=True, kw_only=True,
                                tag="WorkflowTaskStartedResult", tag_field="result"):
    task: WorkflowTaskInfo


class ActivityTaskInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a worker needs to run one activity attempt."""

    token: TaskToken
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    activity_id: str
    activity_type: str
    task_queue: str
    input: bytes
    attempt: int
    heartbeat_details: bytes
    scheduled_time_ms: int
    current_attempt_scheduled_time_ms: int
    started_time_ms: int
    schedule_to_close_timeout_ms: int | None
    start_to_close_timeout_ms: int
    heartbeat_timeout_ms: int | None
    traceparent: str = ""  # the scheduling workflow task's W3C traceparent ("": none)


class ActivityTaskStartedResult(msgspec.Struct, frozen=True, kw_only=True,
                                tag="ActivityTaskStartedResult", tag_field="result"):
    task: ActivityTaskInfo


class WorkflowTaskCompletedResult(msgspec.Struct, frozen=True, kw_only=True,
                                  tag="WorkflowTaskCompletedResult", tag_field="result"):
    """The activities started eagerly for the completing worker (may be empty); for a sticky
    worker, the events the completion wrote to the open run (WorkflowTaskCompleted onwards),
    so that its cached replay can follow them before its next task (a folded one)."""

    activity_tasks: tuple[ActivityTaskInfo, ...] = ()
    events: tuple[HistoryEvent, ...] = ()


class ActivityTaskCompletedResult(msgspec.Struct, frozen=True, kw_only=True,
                                  tag="ActivityTaskCompletedResult", tag_field="result"):
    """The run's next workflow task, started eagerly for the completing worker, if any; or,
    when the completion carried that task completed in advance and it was applied
    (`workflow_task_completed`), the activities its commands started for the worker."""

    workflow_task: WorkflowTaskInfo | None = None
    workflow_task_completed: bool = False
    activity_tasks: tuple[ActivityTaskInfo, ...] = ()
    events: tuple[HistoryEvent, ...] = ()  # as WorkflowTaskCompletedResult's


class HeartbeatResult(msgspec.Struct, frozen=True, kw_only=True, tag="HeartbeatResult",
                      tag_field="result"):
    cancel_requested: bool


class MessagesDelivered(msgspec.Struct, frozen=True, kw_only=True, tag="MessagesDelivered",
                        tag_field="result"):
    """`DeliverMessages`' answer: one outcome per entry, in order (messages.py)."""

    outcomes: tuple[MessageOutcome, ...]


Result = (
    Ack
    | Rejected
    | WorkflowStartedResult
    | WorkflowTaskStartedResult
    | ActivityTaskStartedResult
    | WorkflowTaskCompletedResult
    | ActivityTaskCompletedResult
    | HeartbeatResult
    | MessagesDelivered
    | WorkflowUpdateResult
)


class WorkflowDescription(msgspec.Struct, frozen=True, kw_only=True):
    """A read-side view of one run (`raftflow.shards.core.queries.describe`).

    `close_event` is the run's last event once it closed (carries result / failure / reason).
    """

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowStatus
    start_time_ms: int
    close_time_ms: int | None
    history_length: int
    pending_activity_count: int
    pending_timer_count: int
    workflow_task_pending: bool
    first_execution_run_id: str
    continued_execution_run_id: str | None
    close_event: HistoryEvent | None
    search_attributes: tuple[SearchAttribute, ...] = ()  # typed, sorted by name
    # What the run waits on and its parent: describe sets it, a list's entries do not.
    details: RunDetails | None = None
