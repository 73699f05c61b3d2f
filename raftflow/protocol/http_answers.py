"""Response bodies of the HTTP API as typed structs: what each route answers, by status.

Theory of operation. The gateway renders its answers into these structs and encodes them with
`msgspec.json`, and the OpenAPI document's response schemas are generated from the same structs,
so the document describes what clients really get. Response structs accept unknown fields when
read (a newer server may add one; additive changes are compatible), and a field that only some
answers carry is `UNSET` (left out) rather than `null` in the others, as the JSON always was.

Payloads (a workflow's result, an activity's input) are the user's JSON values: `Any` here, or
`payload.PayloadField` where the answer carries the engine's bytes as they are (encoded with
`payload.json_enc_hook`); a failure is the protocol's own `Failure`.
Times are ISO 8601 UTC strings with milliseconds; durations are integer milliseconds.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from raftflow.protocol.commands import Failure
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import EventType
from raftflow.protocol.messages import MessageOutcome
from raftflow.protocol.payload import PayloadField
from raftflow.protocol.results import WorkflowExecutionStatus
from raftflow.protocol.run_details import PendingActivityState
from raftflow.protocol.search_attributes import JsonAttributeValue
from raftflow.protocol.updates import UpdateStage

Timestamp = Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
JsonPayload = Annotated[Any, msgspec.Meta(description="The user's JSON value (null: none).")]
TaskToken = Annotated[str, msgspec.Meta(
    description="Opaque task token: echo it back unchanged to complete or fail the task.")]


class _Answer(msgspec.Struct, frozen=True, kw_only=True):
    pass


class ErrorDetail(_Answer, frozen=True):
    code: ErrorCode
    message: str
    field: str | None = None


class ErrorAnswer(_Answer, frozen=True):
    """Every refusal: 4xx and 5xx answers carry this body, 429/503 with Retry-After."""

    error: ErrorDetail


class Empty(_Answer, frozen=True):
    """A write that succeeded and has nothing to tell (signal, cancel, a task completion...)."""


class HistoryEventAnswer(_Answer, frozen=True):
    event_id: Annotated[int, msgspec.Meta(ge=1)]
    event_type: EventType
    timestamp: Timestamp
    attributes: Annotated[dict[str, Any], msgspec.Meta(description=(
        "The event type's attributes (Temporal's names); payloads as JSON values."))]


class WorkflowUpdateRequestAnswer(_Answer, frozen=True):
    """An update a workflow task carries: validate it, then accept or reject it."""

    update_id: str
    name: str
    input: JsonPayload


class WorkflowTask(_Answer, frozen=True):
    """A workflow task: replay `history` (from event 1, or only the events this sticky worker
    has not seen) and answer with commands."""

    task_token: TaskToken
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    attempt: int
    scheduled_event_id: int
    started_event_id: int
    previous_started_event_id: int
    history: list[HistoryEventAnswer]
    # Updates admitted before the task started: answer each in update_responses.
    updates: list[WorkflowUpdateRequestAnswer] = []


class QueryTask(_Answer, frozen=True):
    """A query for a worker of the run's task queue (handed out by workflow-task polls):
    answer it at /api/v1/tasks/query/respond with its query_id."""

    query_id: str
    query_type: str
    args: list[Any]
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    history: list[HistoryEventAnswer]


class ActivityTask(_Answer, frozen=True):
    task_token: TaskToken
    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    activity_id: str
    activity_type: str
    task_queue: str
    input: JsonPayload
    attempt: Annotated[int, msgspec.Meta(ge=1)]
    heartbeat_details: JsonPayload
    scheduled_time: Timestamp
    current_attempt_scheduled_time: Timestamp
    started_time: Timestamp
    schedule_to_close_timeout_ms: int | None
    start_to_close_timeout_ms: int | None
    heartbeat_timeout_ms: int | None
    # The W3C traceparent of the workflow task that scheduled the activity ("": none).
    traceparent: str = ""
    # Its ActivityTaskScheduled event (0 from an older server): a worker holding the run names
    # it in the events it expects this completion to write (workflow_task_completion).
    scheduled_event_id: int = 0


class StartWorkflowAnswer(_Answer, frozen=True):
    """201 when this call started the run, 200 when a retry (same request_id) found it."""

    workflow_id: str
    run_id: str
    # Eager start: the first workflow task, started for the caller's worker (first answer only).
    workflow_task: WorkflowTask | msgspec.UnsetType = msgspec.UNSET


class PendingActivity(_Answer, frozen=True):
    """An activity the run scheduled and has not seen close (Temporal's PendingActivityInfo)."""

    activity_id: str
    activity_type: str
    task_queue: str
    scheduled_event_id: int
    state: PendingActivityState  # SCHEDULED, STARTED, or BACKOFF between two attempts
    cancel_requested: bool
    attempt: Annotated[int, msgspec.Meta(ge=1)]
    maximum_attempts: Annotated[int, msgspec.Meta(description="0: unlimited")]
    scheduled_time: Timestamp
    current_attempt_scheduled_time: Timestamp
    last_started_time: Timestamp | None  # of the current attempt, while a worker runs it
    next_attempt_schedule_time: Timestamp | None  # in BACKOFF: when the next attempt comes
    last_worker_identity: str
    heartbeat_details: JsonPayload  # the last heartbeat's details of the current attempt
    last_failure: Failure | None  # why the previous attempt failed


class PendingTimer(_Answer, frozen=True):
    timer_id: str
    started_event_id: int
    fire_time: Timestamp


class PendingChild(_Answer, frozen=True):
    """A child the run started and has not seen close; run_id null until it started."""

    workflow_id: str
    run_id: str | None
    workflow_type: str
    initiated_event_id: int
    parent_close_policy: str


class WorkflowParent(_Answer, frozen=True):
    namespace: str
    workflow_id: str
    run_id: str


class WorkflowDescription(_Answer, frozen=True):
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus  # the API's (Temporal's) names, shared with the SDK
    history_length: int
    start_time: Timestamp
    close_time: Timestamp | None
    pending_activity_count: int
    pending_timer_count: int
    workflow_task_pending: bool
    continued_execution_run_id: str | None
    # Set by the close event: the result of a completed run, the failure of a failed one, the
    # reason of a terminated one.
    result: PayloadField | msgspec.UnsetType = msgspec.UNSET
    failure: Failure | msgspec.UnsetType = msgspec.UNSET
    reason: str | msgspec.UnsetType = msgspec.UNSET
    # Custom search attributes in their JSON form (datetimes as RFC 3339, UTC), by name.
    search_attributes: dict[str, JsonAttributeValue] = msgspec.field(default_factory=dict)
    # Describe's answer only (left out of a list's entries): what the run waits on, in the
    # order it scheduled them (empty once closed), and the parent run of a child.
    pending_activities: list[PendingActivity] | msgspec.UnsetType = msgspec.UNSET
    pending_timers: list[PendingTimer] | msgspec.UnsetType = msgspec.UNSET
    pending_children: list[PendingChild] | msgspec.UnsetType = msgspec.UNSET
    parent: WorkflowParent | None | msgspec.UnsetType = msgspec.UNSET


class WorkflowList(_Answer, frozen=True):
    """A page of runs a visibility query selects, in its order (default: newest start first)."""

    workflows: list[WorkflowDescription]
    # Give it back as next_page_token for the next page; null when this page is the last.
    next_page_token: str | None = None


class WorkflowCount(_Answer, frozen=True):
    """How many runs a visibility query selects."""

    count: int


class HistoryPage(_Answer, frozen=True):
    events: list[HistoryEventAnswer]
    # Give it back as next_page_token for the next page; null at the history's current end.
    next_page_token: str | None


class QueryWorkflowAnswer(_Answer, frozen=True):
    result: JsonPayload


class WorkflowUpdateAnswer(_Answer, frozen=True):
    """Where an update stands. Once `completed`: `result` (the handler's return value) or
    `failure` (the validator rejected it, or the handler raised)."""

    workflow_id: str
    run_id: str
    update_id: str
    stage: UpdateStage
    result: JsonPayload | msgspec.UnsetType = msgspec.UNSET
    failure: Failure | msgspec.UnsetType = msgspec.UNSET


class CompleteWorkflowTaskAnswer(_Answer, frozen=True):
    """Activities started eagerly for the completing worker (eager_activities_max); for a
    worker that gave a sticky_queue, the events the completion wrote to the still open run
    (WorkflowTaskCompleted onwards), which its cached replay follows."""

    activity_tasks: list[ActivityTask]
    events: list[HistoryEventAnswer] | msgspec.UnsetType = msgspec.UNSET


class CompleteActivityTaskAnswer(_Answer, frozen=True):
    """The run's next workflow task, when it was started eagerly for this worker; or, when the
    completion's workflow_task_completion was applied with it (workflow_task_completed), the
    activities its commands started eagerly for this worker."""

    workflow_task: WorkflowTask | msgspec.UnsetType = msgspec.UNSET
    workflow_task_completed: bool | msgspec.UnsetType = msgspec.UNSET
    activity_tasks: list[ActivityTask] | msgspec.UnsetType = msgspec.UNSET
    events: list[HistoryEventAnswer] | msgspec.UnsetType = msgspec.UNSET


class HeartbeatAnswer(_Answer, frozen=True):
    cancel_requested: bool


class Health(_Answer, frozen=True):
    status: str
    node: str


class ClusterNode(_Answer, frozen=True):
    id: str
    address: str | None
    pid: int | None  # null when the node did not answer
    alive: bool
    state: str = "active"  # its membership: joining | active | draining
    replicas: int = 0  # groups of shards the map places on it (voter or learner)
    leaders: int = 0  # shards it leads, as the live nodes report


class ClusterShard(_Answer, frozen=True):
    shard: int
    leader: str | None
    replicas: list[str]
    term: int
    commit_index: int
    # Entries each live replica (voter or learner) has not applied yet, behind the highest
    # commit index reported; a replica that did not answer is left out.
    replica_lags: dict[str, int] = {}


class ClusterMove(_Answer, frozen=True):
    """A replica move in progress: `learner` catches up, is `promoted`, then `leaving` goes."""

    shard: int  # -1: the meta group
    learner: str | None
    promoted: str | None
    leaving: str | None


class ClusterStatus(_Answer, frozen=True):
    nodes: list[ClusterNode]
    shards: list[ClusterShard]
    epoch: int = 0  # of the cluster map the answering node follows
    moves: list[ClusterMove] = []


class ReplicaStatus(_Answer, frozen=True):
    shard: int
    is_leader: bool
    leader: str | None
    term: int
    commit_index: int
    applied_index: int
    last_index: int
    members: list[str]
    learners: list[str] = []
    # On the leader: entries each learner is behind its last index.
    learner_lags: dict[str, int] = {}


class NodeStatus(_Answer, frozen=True):
    """One node's own view of its replicas."""

    id: str
    address: str | None
    pid: int
    shards: list[ReplicaStatus]
    map_epoch: int = 0  # epoch of the cluster map this node follows


class ReplicaDigest(_Answer, frozen=True):
    shard: int
    applied_index: int
    digest: str
    outbox_messages: int = 0  # messages waiting in the shard's outbox (0 once all delivered)


class NodeDigests(_Answer, frozen=True):
    id: str
    shards: list[ReplicaDigest]


class DeliverMessagesAnswer(_Answer, frozen=True):
    """Internal: what the target shard did with each message, in the request's order."""

    outcomes: list[MessageOutcome]
