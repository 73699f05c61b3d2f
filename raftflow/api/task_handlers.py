"""Worker endpoints: long-poll for tasks, complete or fail them, heartbeat activities."""

from __future__ import annotations

from aiohttp import web

from raftflow.actors.errors import NotLeaderError
from raftflow.api import validation as v
from raftflow.api.access import require
from raftflow.api.answers import NoContent, TaskOutcome, respond
from raftflow.api.errors import InvalidArgumentError, accepted
from raftflow.api.handouts import HandoutRequest, started_task
from raftflow.api.poll_types import POLL_ID_LENGTH_MAX, Poller
from raftflow.api.polling import TaskPoller
from raftflow.api.principals import Permission
from raftflow.api.routing import FORWARDED_HEADER
from raftflow.api.workflow_handlers import GATEWAY_KEY
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
)
from raftflow.protocol.http_bodies import (
    ActivityTaskCanceledRequest,
    CompleteActivityTaskRequest,
    CompleteWorkflowTaskRequest,
    EndPollsRequest,
    FailActivityTaskRequest,
    FailWorkflowTaskRequest,
    HeartbeatRequest,
    PollRequest,
)
from raftflow.protocol.results import (
    Ack,
    ActivityTaskCompletedResult,
    HeartbeatResult,
    WorkflowTaskCompletedResult,
)
from raftflow.protocol.search_attributes import UpsertWorkflowSearchAttributes, unencodable
from raftflow.shards.actor import ShardActor

POLLER_KEY: web.AppKey[TaskPoller] = web.AppKey("poller", TaskPoller)

POLL_TIMEOUT_MS_DEFAULT = 30_000


async def poll_workflow_task(request: web.Request) -> web.StreamResponse:
    return await _poll(request, TaskKind.WORKFLOW)


async def poll_activity_task(request: web.Request) -> web.StreamResponse:
    return await _poll(request, TaskKind.ACTIVITY)


async def _poll(request: web.Request, kind: TaskKind) -> web.StreamResponse:
    poller = request.app[POLLER_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    task_queue = v.check_path_id("task_queue", request.match_info["task_queue"])
    body = v.decode_body(await request.read(), PollRequest)
    identity = body.identity or request.remote or ""
    worker = Poller(identity=identity, sticky_queue=body.sticky_queue or "")
    wait_ms = body.wait_ms
    timeout_s = (POLL_TIMEOUT_MS_DEFAULT if wait_ms is None else wait_ms) / 1000
    # `local=1` is the leg of another node's gateway poll (polling.py), named by its poll id.
    local_only = request.query.get("local") == "1" or bool(request.headers.get(FORWARDED_HEADER))
    poll_id = request.query.get("poll_id") or None
    if poll_id is not None and len(poll_id) > POLL_ID_LENGTH_MAX:
        raise InvalidArgumentError(
            f"query 'poll_id': must be at most {POLL_ID_LENGTH_MAX} characters", "poll_id")
    if local_only:
        task = await poller.poll_local(namespace, task_queue, kind, worker, timeout_s, poll_id)
    else:
        task = await poller.poll_cluster(namespace, task_queue, kind, worker, timeout_s)
    # Nothing within the wait: 204, and the worker polls again.
    return respond(NoContent() if task is None else task)


async def end_polls(request: web.Request) -> web.StreamResponse:
    """Internal: a gateway poll has its answer; its legs waiting here answer now (polling.py)."""
    body = v.decode_body(await request.read(), EndPollsRequest)
    request.app[POLLER_KEY].end_polls(body.poll_ids)
    return web.Response(status=204)


async def retry_handout(request: web.Request) -> web.StreamResponse:
    """Internal: apply again a task hand-out another node's gateway saw fail in doubt, with
    its own request id, if this node leads the task's shard (handouts.py). Never forwarded:
    the caller asks the leader it knows again. 200: the started task, as a poll answers it;
    409 stale_task: the task is not that hand-out's."""
    gateway = request.app[GATEWAY_KEY]
    handout = v.decode_body(await request.read(), HandoutRequest).handout
    shard = gateway.shard_of(handout.namespace, handout.workflow_id)
    actor = gateway.directory.actor(shard)
    if actor is None or not actor.is_leader():
        raise NotLeaderError(shard, "a hand-out is retried on the shard's leader only")
    result = await actor.execute(handout)
    accepted(result)  # a refusal answers its error: 409 stale_task, 404 not_found
    task = started_task(result, gateway.directory.public_address(gateway.directory.node_id) or "",
                        gateway.tokens)
    assert task is not None, result
    return respond(task)


def _token(request: web.Request, raw: str, kind: TaskKind) -> TaskToken:
    """The attempt a returned token names, checked before anything is proposed: the token
    is this cluster's, and the caller is a worker of the token's namespace."""
    token = request.app[GATEWAY_KEY].tokens.check(raw, kind)
    require(request, Permission.WORK, token.namespace)
    return token


async def _answer(request: web.Request, token: TaskToken, command: Command,
                  ) -> web.StreamResponse:
    """Run a task's completion (or heartbeat) on the leader of the token's workflow's shard;
    routed like every shard-addressed call, by the namespace and workflow id it names."""
    gateway = request.app[GATEWAY_KEY]

    async def execute(actor: ShardActor) -> TaskOutcome:
        outcome = accepted(await actor.execute(command))
        assert isinstance(outcome, _TASK_OUTCOMES), outcome
        return outcome

    return respond(await gateway.on_leader(
        request, gateway.shard_of(token.namespace, token.workflow_id), execute), gateway.tokens)


_TASK_OUTCOMES = (Ack, WorkflowTaskCompletedResult, ActivityTaskCompletedResult, HeartbeatResult)


async def complete_workflow_task(request: web.Request) -> web.StreamResponse:
    body = v.decode_body(await request.read(), CompleteWorkflowTaskRequest)
    for index, command in enumerate(body.commands):
        # The shard types upserts against its registry; only values no log entry can hold
        # are refused here.
        if isinstance(command, UpsertWorkflowSearchAttributes):
            problem = unencodable(command.search_attributes)
            if problem is not None:
                raise InvalidArgumentError(problem.message, f"commands[{index}].{problem.field}")
    token = _token(request, body.task_token, TaskKind.WORKFLOW)
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondWorkflowTaskCompleted(
        now_ms=now, token=token, commands=tuple(body.commands), identity=body.identity,
        sticky_queue=body.sticky_queue or "", eager_task_queue=body.eager_task_queue or "",
        eager_activities_max=body.eager_activities_max,
        update_responses=tuple(body.update_responses)))


async def fail_workflow_task(request: web.Request) -> web.StreamResponse:
    body = v.decode_body(await request.read(), FailWorkflowTaskRequest)
    token = _token(request, body.task_token, TaskKind.WORKFLOW)
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondWorkflowTaskFailed(
        now_ms=now, token=token, cause=body.cause or "WorkflowWorkerUnhandledFailure",
        failure=body.failure, identity=body.identity))


async def complete_activity_task(request: web.Request) -> web.StreamResponse:
    body = v.decode_body(await request.read(), CompleteActivityTaskRequest)
    token = _token(request, body.task_token, TaskKind.ACTIVITY)
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondActivityTaskCompleted(
        now_ms=now, token=token, result=body.result, identity=body.identity,
        eager_task_queue=body.eager_task_queue or "", sticky_queue=body.sticky_queue or ""))


async def fail_activity_task(request: web.Request) -> web.StreamResponse:
    body = v.decode_body(await request.read(), FailActivityTaskRequest)
    token = _token(request, body.task_token, TaskKind.ACTIVITY)
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondActivityTaskFailed(
        now_ms=now, token=token, failure=body.failure,
        identity=body.identity))


async def cancel_activity_task(request: web.Request) -> web.StreamResponse:
    body = v.decode_body(await request.read(), ActivityTaskCanceledRequest)
    token = _token(request, body.task_token, TaskKind.ACTIVITY)
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondActivityTaskCanceled(
        now_ms=now, token=token, details=body.details,
        identity=body.identity))


async def heartbeat_activity_task(request: web.Request) -> web.StreamResponse:
    body = v.decode_body(await request.read(), HeartbeatRequest)
    token = _token(request, body.task_token, TaskKind.ACTIVITY)
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RecordActivityTaskHeartbeat(
        now_ms=now, token=token, details=body.details))
