"""A worker's calls on a task (complete, fail, cancel, heartbeat), whichever way they came.

A call arrives as an HTTP request (task_handlers.py) or inside a task stream's frame
(task_stream_handler.py); both become a `TaskCall` and run here, so the body is validated, the
token checked, the caller authorized and the command routed to its shard's leader by one piece
of code. A call this node cannot run (it does not lead the token's shard) is forwarded as an
HTTP call from its `source` (routing.py), and its answer relayed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from raftflow.api import validation as v
from raftflow.api.access import require_in
from raftflow.api.answers import TaskOutcome
from raftflow.api.errors import InvalidArgumentError, accepted
from raftflow.api.principals import Permission, Principal
from raftflow.api.routing import CallSource, Gateway, Relayed
from raftflow.protocol.commands import (
    Command,
    RecordActivityTaskHeartbeat,
    RespondActivityTaskCanceled,
    RespondActivityTaskCompleted,
    RespondActivityTaskFailed,
    RespondWorkflowTaskCompleted,
    RespondWorkflowTaskFailed,
    TaskKind,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.http_bodies import (
    ActivityTaskCanceledRequest,
    CompleteActivityTaskRequest,
    CompleteWorkflowTaskRequest,
    FailActivityTaskRequest,
    FailWorkflowTaskRequest,
    HeartbeatRequest,
)
from raftflow.protocol.results import (
    Ack,
    ActivityTaskCompletedResult,
    HeartbeatResult,
    WorkflowTaskCompletedResult,
)
from raftflow.protocol.search_attributes import UpsertWorkflowSearchAttributes, unencodable
from raftflow.protocol.workflow_commands import FoldedWorkflowTask
from raftflow.shards.actor import ShardActor

_TASK_OUTCOMES = (Ack, WorkflowTaskCompletedResult, ActivityTaskCompletedResult, HeartbeatResult)


@dataclass(frozen=True, slots=True)
class TaskCall:
    """One call on a task: its JSON body, its caller (None: auth is off on this node), and
    where it came from (forwarded from there when another node leads the token's shard)."""

    body: bytes
    principal: Principal | None
    source: CallSource


def _token(gateway: Gateway, call: TaskCall, raw: str, kind: TaskKind) -> TaskToken:
    """The attempt a returned token names, checked before anything is proposed: the token
    is this cluster's, and the caller is a worker of the token's namespace."""
    token = gateway.tokens.check(raw, kind)
    if call.principal is not None:
        require_in(call.principal, Permission.WORK, token.namespace)
    return token


async def _execute(gateway: Gateway, call: TaskCall, token: TaskToken,
                   command: Command) -> TaskOutcome | Relayed:
    """Run a task's completion (or heartbeat) on the leader of the token's workflow's shard;
    routed like every shard-addressed call, by the namespace and workflow id it names."""

    async def execute(actor: ShardActor) -> TaskOutcome:
        outcome = accepted(await actor.execute(command))
        assert isinstance(outcome, _TASK_OUTCOMES), outcome
        return outcome

    return await gateway.on_leader(
        call.source, gateway.shard_of(token.namespace, token.workflow_id), execute)


def _check_upserts(commands: list[WorkflowCommand], field: str) -> None:
    for index, command in enumerate(commands):
        # The shard types upserts against its registry; only values no log entry can hold
        # are refused here.
        if isinstance(command, UpsertWorkflowSearchAttributes):
            problem = unencodable(command.search_attributes)
            if problem is not None:
                raise InvalidArgumentError(problem.message,
                                           f"{field}[{index}].{problem.field}")


async def complete_workflow_task(gateway: Gateway, call: TaskCall) -> TaskOutcome | Relayed:
    body = v.decode_body(call.body, CompleteWorkflowTaskRequest)
    _check_upserts(body.commands, "commands")
    token = _token(gateway, call, body.task_token, TaskKind.WORKFLOW)
    return await _execute(gateway, call, token, RespondWorkflowTaskCompleted(
        now_ms=gateway.now_ms(), token=token, commands=tuple(body.commands),
        identity=body.identity, sticky_queue=body.sticky_queue or "",
        eager_task_queue=body.eager_task_queue or "",
        eager_activities_max=body.eager_activities_max,
        update_responses=tuple(body.update_responses)))


async def fail_workflow_task(gateway: Gateway, call: TaskCall) -> TaskOutcome | Relayed:
    body = v.decode_body(call.body, FailWorkflowTaskRequest)
    token = _token(gateway, call, body.task_token, TaskKind.WORKFLOW)
    return await _execute(gateway, call, token, RespondWorkflowTaskFailed(
        now_ms=gateway.now_ms(), token=token,
        cause=body.cause or "WorkflowWorkerUnhandledFailure", failure=body.failure,
        identity=body.identity))


async def complete_activity_task(gateway: Gateway, call: TaskCall) -> TaskOutcome | Relayed:
    body = v.decode_body(call.body, CompleteActivityTaskRequest)
    folded = body.workflow_task_completion
    if folded is not None:
        _check_upserts(folded.commands, "workflow_task_completion.commands")
    token = _token(gateway, call, body.task_token, TaskKind.ACTIVITY)
    return await _execute(gateway, call, token, RespondActivityTaskCompleted(
        now_ms=gateway.now_ms(), token=token, result=body.result, identity=body.identity,
        eager_task_queue=body.eager_task_queue or "", sticky_queue=body.sticky_queue or "",
        workflow_task_completion=None if folded is None else FoldedWorkflowTask(
            after_event_id=folded.after_event_id, workflow_time_ms=folded.workflow_time_ms,
            commands=tuple(folded.commands),
            eager_activities_max=folded.eager_activities_max)))


async def fail_activity_task(gateway: Gateway, call: TaskCall) -> TaskOutcome | Relayed:
    body = v.decode_body(call.body, FailActivityTaskRequest)
    token = _token(gateway, call, body.task_token, TaskKind.ACTIVITY)
    return await _execute(gateway, call, token, RespondActivityTaskFailed(
        now_ms=gateway.now_ms(), token=token, failure=body.failure, identity=body.identity))


async def cancel_activity_task(gateway: Gateway, call: TaskCall) -> TaskOutcome | Relayed:
    body = v.decode_body(call.body, ActivityTaskCanceledRequest)
    token = _token(gateway, call, body.task_token, TaskKind.ACTIVITY)
    return await _execute(gateway, call, token, RespondActivityTaskCanceled(
        now_ms=gateway.now_ms(), token=token, details=body.details, identity=body.identity))


async def heartbeat_activity_task(gateway: Gateway, call: TaskCall) -> TaskOutcome | Relayed:
    body = v.decode_body(call.body, HeartbeatRequest)
    token = _token(gateway, call, body.task_token, TaskKind.ACTIVITY)
    return await _execute(gateway, call, token, RecordActivityTaskHeartbeat(
        now_ms=gateway.now_ms(), token=token, details=body.details))


TaskCallRunner = Callable[[Gateway, TaskCall], Awaitable[TaskOutcome | Relayed]]

# Every task call by its HTTP path: the routes (app.py) and a stream's `Call.path` alike.
TASK_CALLS: dict[str, TaskCallRunner] = {
    "/api/v1/tasks/workflow/complete": complete_workflow_task,
    "/api/v1/tasks/workflow/fail": fail_workflow_task,
    "/api/v1/tasks/activity/complete": complete_activity_task,
    "/api/v1/tasks/activity/fail": fail_activity_task,
    "/api/v1/tasks/activity/canceled": cancel_activity_task,
    "/api/v1/tasks/activity/heartbeat": heartbeat_activity_task,
}
