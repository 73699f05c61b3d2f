"""Request bodies of the HTTP API as typed structs: the one definition of what each route takes.

Theory of operation. The gateway decodes a body straight into its struct with `msgspec.json`
(strict types: no string for an integer, no integer for a boolean), so every bound below is
checked at the edge and a refusal names the field (`$.commands[2].timer_id`) and the rule. The
same structs generate the OpenAPI document's request schemas (`msgspec.json.schema_components`),
so the document says exactly what the gateway accepts. Unknown fields are refused: a typo
(`workflowId`) must not be silently ignored.

JSON `null` in an optional field means "not given", as it always did. Payload fields (any JSON
value) decode into `payload.Payload`, their compact JSON text, the bytes the engine stores; one
above `PAYLOAD_BYTES_MAX` is refused with 413 `payload_too_large`. Workflow commands and
failures are the log's own types (`commands.py`): their bounds are edge rules, which the gateway
checks after decoding (`edge_rules.first_violation`), and so are the fields below typed `Id`,
`Name` or `DurationMs`. Each bound is the one the shard core enforces, so a body the document
calls valid is not refused later for its shape (DESIGN §4 I7).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from raftflow.protocol.commands import (
    NO_PAYLOAD,
    DurationMs,
    EventId,
    Failure,
    Id,
    IdReusePolicy,
    Name,
    ResetType,
    RetryPolicy,
    WorkflowCommand,
)
from raftflow.protocol.limits import (
    COMMANDS_PER_TASK_MAX,
    DURATION_MS_MAX,
    EAGER_ACTIVITIES_MAX,
    ID_LENGTH_MAX,
    MESSAGE_LENGTH_MAX,
    MESSAGES_PER_DELIVERY_MAX,
    PAYLOAD_BYTES_MAX,
    WORKFLOW_TASK_TIMEOUT_MS_MAX,
)
from raftflow.protocol.messages import OutboxEntry
from raftflow.protocol.payload import PayloadField
from raftflow.protocol.search_attributes import SEARCH_ATTRIBUTES_PER_RUN_MAX, JsonAttributeValue
from raftflow.protocol.updates import UpdateStage, WorkflowUpdateResponse

# A workflow task carries at most this many updates (the core's in-flight bound per run).
UPDATES_PER_TASK_MAX = 10

# A body carries at most one payload plus ids and names; 256 KiB of headroom covers them.
BODY_BYTES_MAX = PAYLOAD_BYTES_MAX + 256 * 1024
REASON_LENGTH_MAX = 10_000
# A long poll (tasks, a workflow's result, a query) waits at most this long: below the
# forwarding timeout, so a forwarded poll answers before its hop gives up.
WAIT_MS_MAX = 60_000
# Task tokens are base64url of a short msgpack array: ids bound them well below this.
TOKEN_LENGTH_MAX = 8 * 1024
# A poll id names one gateway poll (a uuid4 hex); one call ends at most this many.
POLL_ID_LENGTH_MAX = 64
POLL_ENDS_PER_CALL_MAX = 1_000
assert BODY_BYTES_MAX > PAYLOAD_BYTES_MAX > TOKEN_LENGTH_MAX > ID_LENGTH_MAX
assert DURATION_MS_MAX > WORKFLOW_TASK_TIMEOUT_MS_MAX > WAIT_MS_MAX

NonEmptyName = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_LENGTH_MAX)]
Reason = Annotated[str, msgspec.Meta(max_length=REASON_LENGTH_MAX)]
WaitMs = Annotated[int, msgspec.Meta(ge=0, le=WAIT_MS_MAX, description=(
    "How long a long poll waits, in milliseconds; 0 answers at once."))]
TaskToken = Annotated[str, msgspec.Meta(
    min_length=1, max_length=TOKEN_LENGTH_MAX, pattern="^[A-Za-z0-9_-]+$",
    description="Opaque task token from a poll; echo it back unchanged.")]
RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_LENGTH_MAX, description=(
    "Idempotency key: a retry with the same request_id gets the first answer."))]


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


# --- Client bodies --------------------------------------------------------------------------------


class _RunSettings(_Body, frozen=True):
    """What a start and a signal-with-start both say about the run they may open."""

    workflow_type: NonEmptyName
    task_queue: NonEmptyName
    input: PayloadField = NO_PAYLOAD
    request_id: RequestId | None = None
    id_reuse_policy: IdReusePolicy | None = None
    execution_timeout_ms: DurationMs | None = None
    run_timeout_ms: DurationMs | None = None
    task_timeout_ms: Annotated[int, msgspec.Meta(ge=1, le=WORKFLOW_TASK_TIMEOUT_MS_MAX)] | None = None
    # Custom search attributes, by registered name, in their JSON form: keyword a string, int
    # an integer, double a number, bool true/false, datetime an RFC 3339 string.
    search_attributes: Annotated[dict[str, JsonAttributeValue], msgspec.Meta(
        max_length=SEARCH_ATTRIBUTES_PER_RUN_MAX)] | None = None
    # The workflow's retry policy: a failed or run-timed-out run starts its next attempt.
    retry_policy: RetryPolicy | None = None


class StartWorkflowRequest(_RunSettings, frozen=True, kw_only=True):
    workflow_id: Id
    # Eager start: when this is the task_queue, the first workflow task is started for the
    # caller's own worker (eager_identity) and returned in the answer's workflow_task.
    eager_task_queue: Name | None = None
    eager_identity: Name | None = None


class SignalWithStartWorkflowRequest(_RunSettings, frozen=True, kw_only=True):
    """`POST .../workflows/{workflow_id}/signal-with-start`: a start's settings (no eager start)
    and a signal, which the run gets whether this call opens it or finds it open. Both payloads
    together fit the body limit."""

    signal_name: NonEmptyName
    signal_input: PayloadField = NO_PAYLOAD


class SignalWorkflowRequest(_Body, frozen=True):
    signal_name: NonEmptyName
    input: PayloadField = NO_PAYLOAD
    request_id: RequestId | None = None
    run_id: Id | None = None


class TerminateWorkflowRequest(_Body, frozen=True):
    reason: Reason | None = None
    request_id: RequestId | None = None
    run_id: Id | None = None


class CancelWorkflowRequest(_Body, frozen=True):
    reason: Reason | None = None
    request_id: RequestId | None = None
    run_id: Id | None = None


class ResetWorkflowRequest(_Body, frozen=True):
    """`POST .../workflows/{workflow_id}/reset`: re-run the workflow from one of its workflow
    tasks, named by `event_id` (its WorkflowTaskCompleted, Started, Failed or TimedOut event)
    or by `reset_type`, exactly one of the two; `run_id` picks the base run (default: the
    latest). Idempotent by `request_id`."""

    event_id: EventId | None = None
    reset_type: ResetType | None = None
    reason: Reason | None = None
    request_id: RequestId | None = None
    run_id: Id | None = None


class QueryWorkflowRequest(_Body, frozen=True):
    query_type: NonEmptyName
    args: Annotated[list[Any], msgspec.Meta(description="The query handler's arguments.")] | None = None
    run_id: Id | None = None
    timeout_ms: Annotated[int, msgspec.Meta(ge=1, le=WAIT_MS_MAX)] | None = None


class UpdateWorkflowRequest(_Body, frozen=True):
    """`POST .../workflows/{workflow_id}/updates`: run the workflow's update handler `name`
    (Temporal's workflow update). The answer says the stage reached within wait_ms."""

    name: NonEmptyName
    input: PayloadField = NO_PAYLOAD
    update_id: RequestId | None = None  # the gateway makes one (uuid4) when left out
    run_id: Id | None = None
    wait_for_stage: UpdateStage | None = None  # default: accepted
    wait_ms: WaitMs | None = None  # default 30000


# --- Worker bodies --------------------------------------------------------------------------------


class PollRequest(_Body, frozen=True):
    identity: Name | None = None
    # This worker's sticky queue: a workflow task of a run whose last task this worker completed
    # carries only the events it has not seen.
    sticky_queue: Name | None = None
    wait_ms: WaitMs | None = None


class QueryFailureBody(_Body, frozen=True):
    message: Annotated[str, msgspec.Meta(max_length=MESSAGE_LENGTH_MAX)] = ""
    type: Name = ""


class QueryAnswerRequest(_Body, frozen=True):
    """A worker's answer to a query task: the handler's result, or why it failed."""

    query_id: NonEmptyName
    result: PayloadField = NO_PAYLOAD
    error: QueryFailureBody | Annotated[str, msgspec.Meta(
        max_length=MESSAGE_LENGTH_MAX)] | None = None


class CompleteWorkflowTaskRequest(_Body, frozen=True):
    task_token: TaskToken
    commands: Annotated[list[WorkflowCommand], msgspec.Meta(
        max_length=COMMANDS_PER_TASK_MAX)] = []
    identity: Name = ""
    # The completing worker keeps the replayed run under this queue name (sticky execution).
    sticky_queue: Name | None = None
    # Up to eager_activities_max activities these commands schedule on eager_task_queue are
    # started for this worker in the same commit and returned in activity_tasks.
    eager_task_queue: Name | None = None
    eager_activities_max: Annotated[int, msgspec.Meta(ge=0, le=EAGER_ACTIVITIES_MAX)] = 0
    # Accept (no rejection) or reject each update the task carried (`WorkflowTask.updates`).
    update_responses: Annotated[list[WorkflowUpdateResponse], msgspec.Meta(
        max_length=UPDATES_PER_TASK_MAX)] = []


class FailWorkflowTaskRequest(_Body, frozen=True):
    task_token: TaskToken
    cause: Name | None = None
    failure: PayloadField = NO_PAYLOAD
    identity: Name = ""


class FoldedWorkflowTaskBody(_Body, frozen=True):
    """The workflow task an activity's completion makes, completed in advance by the worker
    that holds the run: its commands, computed on the history up to `after_event_id` followed
    by the events this completion writes, at `workflow_time_ms` (docs/api.md)."""

    after_event_id: EventId
    workflow_time_ms: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    commands: Annotated[list[WorkflowCommand], msgspec.Meta(
        max_length=COMMANDS_PER_TASK_MAX)] = []
    eager_activities_max: Annotated[int, msgspec.Meta(ge=0, le=EAGER_ACTIVITIES_MAX)] = 0


class CompleteActivityTaskRequest(_Body, frozen=True):
    task_token: TaskToken
    result: PayloadField = NO_PAYLOAD
    identity: Name = ""
    # If the completion schedules the run's next workflow task on eager_task_queue, it is
    # started for this worker and returned in workflow_task.
    eager_task_queue: Name | None = None
    sticky_queue: Name | None = None
    # That task, completed in advance: applied with the completion when the history is still
    # what the worker replayed (answer: workflow_task_completed), else ignored.
    workflow_task_completion: FoldedWorkflowTaskBody | None = None


class FailActivityTaskRequest(_Body, frozen=True):
    task_token: TaskToken
    failure: Failure
    identity: Name = ""


class ActivityTaskCanceledRequest(_Body, frozen=True):
    task_token: TaskToken
    details: PayloadField = NO_PAYLOAD
    identity: Name = ""


class HeartbeatRequest(_Body, frozen=True):
    task_token: TaskToken
    details: PayloadField = NO_PAYLOAD


class EndPollsRequest(_Body, frozen=True):
    """Internal (gateway to gateway): these polls have their answer; their legs answer now."""

    poll_ids: Annotated[list[Annotated[str, msgspec.Meta(
        min_length=1, max_length=POLL_ID_LENGTH_MAX)]], msgspec.Meta(
        max_length=POLL_ENDS_PER_CALL_MAX)]


class DeliverMessagesRequest(_Body, frozen=True):
    """Internal (a source shard's leader to a target shard's): outbox messages to apply, in
    order (api/message_courier.py). Payload fields are base64 in JSON."""

    entries: Annotated[tuple[OutboxEntry, ...], msgspec.Meta(max_length=MESSAGES_PER_DELIVERY_MAX)]
