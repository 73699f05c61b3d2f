"""Commands proposed to a shard's log, and the commands a workflow task answers with.

Theory of operation. A shard's state is a deterministic function of its committed commands
(DESIGN §4 I2). So every command carries `now_ms`, chosen once by the proposer (the leader's
clock), and every new identifier (`run_id`) it needs; the core reads nothing else. Commands are
small frozen values; `codec.py` is the only place that turns them into bytes.

Wire contract (log entries outlive the code that wrote them, and the same types are HTTP bodies):
every type is a frozen msgspec Struct encoded as a map of its field names. A member of a union
carries its class name under the union's own tag field (`command` for log commands, `type`
for workflow commands, the key workers have always sent), so no tag clashes with a field.
Payload fields are `payload.Payload`: bin in msgpack, the JSON value itself over HTTP. Fields
are added with a default (an older value lacks the key and decodes with it), never renamed or
retyped, and a renamed class keeps its old tag; bounds are edge rules, never msgspec
constraints (`edge_rules.py` says why). Release 0.1 wrote arrays `[ClassName, f1, ..., fn]`;
`legacy_arrays.py` reads those. Commands refuse unknown fields (`forbid_unknown_fields`): a
replica that meets a field it does not know, written by newer code, must stop (fail-stop, as on
any apply error) rather than apply the command without it and diverge from the replicas that
understood it (I2). `Failure` and `RetryPolicy` are strict too: they are HTTP request bodies
as well, where a typo must be refused; clients reading them inside history events are not
broken by a newer field, because `history_json` reads only the fields it declares.

A mailbox drain becomes one `Proposal(proposer, incarnation, seq, commands)` log entry: the
(proposer, incarnation, seq) triple identifies the entry for the proposer's waiting futures.
"""


from __future__ import annotations

from enum import StrEnum

import msgspec

from raftflow.protocol.batches import RecordBatchProgress, StartBatch, StopBatch
from raftflow.protocol.limits import WORKFLOW_TASK_TIMEOUT_MS_DEFAULT
from raftflow.protocol.messages import AckMessages, DeliverMessages
from raftflow.protocol.reset_commands import ResetType, ResetWorkflow
from raftflow.protocol.schedule_commands import (
    CreateSchedule,
    DeleteSchedule,
    PatchSchedule,
    ScheduleTick,
    UpdateSchedule,
)
from raftflow.protocol.search_attributes import (
    AttributeType,
    JsonAttributeValue,
    UpsertWorkflowSearchAttributes,
)
from raftflow.protocol.updates import RequestWorkflowUpdate, WorkflowUpdateResponse
from raftflow.protocol.workflow_commands import (
    NO_PAYLOAD,
    CancelTimer,
    CancelWorkflowExecution,
    Coefficient,
    CompleteWorkflowExecution,
    CompleteWorkflowUpdate,
    ContinueAsNewWorkflowExecution,
    Count,
    DurationMs,
    EventId,
    Failure,
    FailWorkflowExecution,
    FoldedWorkflowTask,
    Id,
    Message,
    Name,
    ParentClosePolicy,
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

# Public names, including the workflow commands and field types defined in `workflow_commands.py`:
# most of the tree imports every command from this one module.
__all__ = [
    "RecordBatchProgress",
    "StartBatch",
    "StopBatch",
    "AckMessages",
    "DeliverMessages",
    "Barrier",
    "CancelTimer",
    "CancelWorkflowExecution",
    "Coefficient",
    "Command",
    "CompleteWorkflowExecution",
    "CompleteWorkflowUpdate",
    "ConfigureNamespace",
    "ContinueAsNewWorkflowExecution",
    "Count",
    "DurationMs",
    "EventId",
    "FailWorkflowExecution",
    "Failure",
    "FireTimers",
    "Id",
    "IdReusePolicy",
    "Message",
    "NO_PAYLOAD",
    "Name",
    "Proposal",
    "RecordActivityTaskHeartbeat",
    "RecordActivityTaskStarted",
    "RecordMarker",
    "RecordWorkflowTaskStarted",
    "RequestCancelActivityTask",
    "RequestCancelExternalWorkflowExecution",
    "ParentClosePolicy",
    "StartChildWorkflowExecution",
    "RequestCancelWorkflow",
    "ResetType",
    "ResetWorkflow",
    "RequestWorkflowUpdate",
    "CreateSchedule",
    "UpdateSchedule",
    "PatchSchedule",
    "DeleteSchedule",
    "ScheduleTick",
    "RespondActivityTaskCanceled",
    "RespondActivityTaskCompleted",
    "RespondActivityTaskFailed",
    "RespondWorkflowTaskCompleted",
    "RespondWorkflowTaskFailed",
    "RetryPolicy",
    "ScheduleActivityTask",
    "SignalExternalWorkflowExecution",
    "SignalWorkflow",
    "StartTimer",
    "StartWorkflow",
    "TaskKind",
    "TaskToken",
    "TerminateWorkflow",
    "UpsertWorkflowSearchAttributes",
    "WorkflowCommand",
    "WorkflowUpdateResponse",
]



class IdReusePolicy(StrEnum):
    """What `StartWorkflow` does when the workflow id was used before (Temporal's policies)."""

    ALLOW_DUPLICATE = "allow_duplicate"
    ALLOW_DUPLICATE_FAILED_ONLY = "allow_duplicate_failed_only"
    REJECT_DUPLICATE = "reject_duplicate"
    TERMINATE_IF_RUNNING = "terminate_if_running"


class TaskKind(StrEnum):
    WORKFLOW = "workflow"
    ACTIVITY = "activity"


class TaskToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Names one attempt of one task. A completion whose token is not the current attempt of a
    started task is stale and changes nothing (DESIGN §4 I3)."""

    namespace: str
    workflow_id: str
    run_id: str
    scheduled_event_id: int
    attempt: int
    kind: TaskKind



# --- Commands proposed to a shard log ------------------------------------------------------------


class StartWorkflow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="StartWorkflow",
                    tag_field="command"):
    now_ms: int
    namespace: str
    workflow_id: str
    workflow_type: str
    task_queue: str
    input: bytes = b""
    request_id: str
    run_id: str
    id_reuse_policy: IdReusePolicy = IdReusePolicy.ALLOW_DUPLICATE
    execution_timeout_ms: int | None = None
    run_timeout_ms: int | None = None
    task_timeout_ms: int = WORKFLOW_TASK_TIMEOUT_MS_DEFAULT
    # Eager workflow start (Temporal's): when `eager_task_queue` is the run's task queue, the
    # first workflow task is started in the same commit for the worker named by
    # `eager_identity`, which lives in the starting client's process, and returned.
    eager_task_queue: str = ""
    eager_identity: str = ""
    # JSON forms, typed by the core against its copy of the namespace's registry.
    search_attributes: dict[str, JsonAttributeValue] = msgspec.field(default_factory=dict)
    # Signal-with-start ("": a plain start): the run this opens, or the open run it then
    # signals instead of refusing, gets the signal in the same commit (on_start.py).
    signal_name: str = ""
    signal_input: bytes = b""
    # The workflow's retry policy (None: a failed run is not retried): a run that fails or
    # reaches its run timeout starts its next attempt after the back-off (workflow_retry.py).
    retry_policy: RetryPolicy | None = None
    # The caller's W3C traceparent ("": none), checked by the gateway, copied opaque into
    # WorkflowExecutionStarted for the workers (docs/observability.md).
    traceparent: str = ""


class SignalWorkflow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="SignalWorkflow",
                     tag_field="command"):
    now_ms: int
    namespace: str
    workflow_id: str
    run_id: str | None = None
    signal_name: str
    input: bytes = b""
    request_id: str


class RequestCancelWorkflow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="RequestCancelWorkflow",
                            tag_field="command"):
    now_ms: int
    namespace: str
    workflow_id: str
    run_id: str | None = None
    reason: str = ""
    request_id: str


class TerminateWorkflow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="TerminateWorkflow",
                        tag_field="command"):
    now_ms: int
    namespace: str
    workflow_id: str
    run_id: str | None = None
    reason: str = ""
    request_id: str


class RecordWorkflowTaskStarted(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                tag="RecordWorkflowTaskStarted", tag_field="command"):
    now_ms: int
    namespace: str
    workflow_id: str
    run_id: str
    scheduled_event_id: int
    identity: str = ""
    request_id: str
    # The poller's sticky queue (one per worker process): when it is the one that completed
    # the run's last task, the task carries only the events that worker has not seen.
    sticky_queue: str = ""


class RespondWorkflowTaskCompleted(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                   tag="RespondWorkflowTaskCompleted", tag_field="command"):
    now_ms: int
    token: TaskToken
    commands: tuple[WorkflowCommand, ...] = ()
    identity: str = ""
    # Sticky execution: the completing worker keeps the replayed run under this queue name.
    sticky_queue: str = ""
    # Eager activities: up to `eager_activities_max` of the activities these commands schedule
    # on `eager_task_queue` are started for the completing worker in the same commit and
    # returned in the answer (Temporal's eager activity execution), saving a poll and a commit.
    eager_task_queue: str = ""
    eager_activities_max: int = 0
    # Workflow updates: the worker's accept or reject of each update the task carried.
    update_responses: tuple[WorkflowUpdateResponse, ...] = ()


class RespondWorkflowTaskFailed(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                tag="RespondWorkflowTaskFailed", tag_field="command"):
    now_ms: int
    token: TaskToken
    cause: str = "WorkflowWorkerUnhandledFailure"
    failure: bytes = b""
    identity: str = ""


class RecordActivityTaskStarted(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                tag="RecordActivityTaskStarted", tag_field="command"):
    now_ms: int
    namespace: str
    workflow_id: str
    run_id: str
    scheduled_event_id: int
    attempt: int
    identity: str = ""
    request_id: str


class RespondActivityTaskCompleted(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                   tag="RespondActivityTaskCompleted", tag_field="command"):
    now_ms: int
    token: TaskToken
    result: bytes = b""
    identity: str = ""
    # Eager workflow task: if the completion schedules the run's next workflow task on
    # `eager_task_queue`, it is started for this worker in the same commit and returned; the
    # worker's sticky queue decides whether the task carries the full history or only new events.
    eager_task_queue: str = ""
    sticky_queue: str = ""
    # That task completed in advance by this worker, in the same commit if still valid.
    workflow_task_completion: FoldedWorkflowTask | None = None


class RespondActivityTaskFailed(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                tag="RespondActivityTaskFailed", tag_field="command"):
    now_ms: int
    token: TaskToken
    failure: Failure
    identity: str = ""


class RespondActivityTaskCanceled(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                  tag="RespondActivityTaskCanceled", tag_field="command"):
    now_ms: int
    token: TaskToken
    details: bytes = b""
    identity: str = ""


class RecordActivityTaskHeartbeat(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                                  tag="RecordActivityTaskHeartbeat", tag_field="command"):
    now_ms: int
    token: TaskToken
    details: bytes = b""


class FireTimers(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="FireTimers", tag_field="command"):
    """Fire every durable timer due at or before `now_ms` (proposed by the leader's clock)."""

    now_ms: int


class Barrier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="Barrier", tag_field="command"):
    """No-op marker proposed by a new leader and behind linearizable reads (DESIGN §4 I6)."""

    now_ms: int
    leader_node: str
    term: int


class ConfigureNamespace(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True,
                         tag="ConfigureNamespace", tag_field="command"):
    """Give a shard a namespace's settings, as the cluster map holds them (a set, not a change:
    proposing the same settings again changes nothing)."""

    now_ms: int
    namespace: str
    retention_ms: int
    search_attributes: dict[str, AttributeType] = msgspec.field(default_factory=dict)


Command = (
    StartWorkflow
    | SignalWorkflow
    | RequestCancelWorkflow
    | TerminateWorkflow
    | RecordWorkflowTaskStarted
    | RespondWorkflowTaskCompleted
    | RespondWorkflowTaskFailed
    | RecordActivityTaskStarted
    | RespondActivityTaskCompleted
    | RespondActivityTaskFailed
    | RespondActivityTaskCanceled
    | RecordActivityTaskHeartbeat
    | FireTimers
    | Barrier
    | ConfigureNamespace
    | DeliverMessages
    | AckMessages
    | StartBatch
    | RecordBatchProgress
    | StopBatch
    | ResetWorkflow
    | RequestWorkflowUpdate
    | CreateSchedule
    | UpdateSchedule
    | PatchSchedule
    | DeleteSchedule
    | ScheduleTick
)


class Proposal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One log entry: a mailbox drain, applied command by command in order.

    (proposer, incarnation, seq) names the entry so the proposing node can resolve its waiting
    futures; another node or an older incarnation of the same node just applies it.
    """

    proposer: str
    incarnation: int
    seq: int
    commands: tuple[Command, ...]
