"""Worker endpoints: long-poll for tasks, complete or fail them, heartbeat activities."""

from __future__ import annotations

from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.answers import NoContent, TaskOutcome, respond
from raftflow.api.errors import InvalidArgumentError, accepted
from raftflow.api.poll_fanout import POLL_ENDS_PER_CALL_MAX
from raftflow.api.poll_types import POLL_ID_LENGTH_MAX, POLL_TIMEOUT_S_MAX, Poller
from raftflow.api.polling import TaskPoller
from raftflow.api.render import decode_token
from raftflow.api.routing import FORWARDED_HEADER
from raftflow.api.task_bodies import parse_commands, parse_failure
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
from raftflow.protocol.results import (
    Ack,
    ActivityTaskCompletedResult,
    HeartbeatResult,
    WorkflowTaskCompletedResult,
)
from raftflow.shards.actor import ShardActor
from raftflow.shards.core.limits import EAGER_ACTIVITIES_MAX

POLLER_KEY: web.AppKey[TaskPoller] = web.AppKey("poller", TaskPoller)

POLL = v.BodySchema(name="poll", fields=(
    v.FieldRule(name="identity", kind=v.FieldKind.STRING, required=False, length_max=v.NAME_LENGTH_MAX),
    v.FieldRule(name="sticky_queue", kind=v.FieldKind.STRING, required=False,
                length_max=v.NAME_LENGTH_MAX),
    v.FieldRule(name="wait_ms", kind=v.FieldKind.INTEGER, required=False, minimum=0,
                maximum=int(POLL_TIMEOUT_S_MAX * 1000)),
))
POLL_TIMEOUT_MS_DEFAULT = 30_000


async def poll_workflow_task(request: web.Request) -> web.StreamResponse:
    return await _poll(request, TaskKind.WORKFLOW)


async def poll_activity_task(request: web.Request) -> web.StreamResponse:
    return await _poll(request, TaskKind.ACTIVITY)


async def _poll(request: web.Request, kind: TaskKind) -> web.StreamResponse:
    poller = request.app[POLLER_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    task_queue = v.check_path_id("task_queue", request.match_info["task_queue"])
    body = v.validate(POLL, v.parse_json_body(await request.read()))
    identity = body.optional_string("identity") or request.remote or ""
    worker = Poller(identity=identity, sticky_queue=body.optional_string("sticky_queue") or "")
    wait_ms = body.optional_integer("wait_ms")
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
    body = v.parse_json_body(await request.read())
    poll_ids = body.get("poll_ids")
    if not isinstance(poll_ids, list) or len(poll_ids) > POLL_ENDS_PER_CALL_MAX or not all(
            isinstance(i, str) and 0 < len(i) <= POLL_ID_LENGTH_MAX for i in poll_ids):
        raise InvalidArgumentError(
            f"field 'poll_ids': must be a list of at most {POLL_ENDS_PER_CALL_MAX} poll ids",
            "poll_ids")
    request.app[POLLER_KEY].end_polls(poll_ids)
    return web.Response(status=204)


async def _respond(request: web.Request, kind: TaskKind) -> tuple[TaskToken, dict[str, object]]:
    body = v.parse_json_body(await request.read())
    raw = body.get("task_token")
    if not isinstance(raw, str):
        raise InvalidArgumentError("field 'task_token': is required (a string from a poll)",
                                   "task_token")
    token = decode_token(raw)
    if token.kind is not kind:
        raise InvalidArgumentError(f"field 'task_token': is not a {kind.value} task token",
                                   "task_token")
    return token, body


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
        request, gateway.shard_of(token.namespace, token.workflow_id), execute))


_TASK_OUTCOMES = (Ack, WorkflowTaskCompletedResult, ActivityTaskCompletedResult, HeartbeatResult)


async def complete_workflow_task(request: web.Request) -> web.StreamResponse:
    token, body = await _respond(request, TaskKind.WORKFLOW)
    commands = parse_commands(body.get("commands"))
    eager_max = body.get("eager_activities_max", 0)
    # Checked here too, not only in the core: an integer beyond 64 bits cannot even be encoded
    # into the log entry (it would be a 500, not a 400 naming the field).
    if type(eager_max) is not int or not 0 <= eager_max <= EAGER_ACTIVITIES_MAX:
        raise InvalidArgumentError(
            f"field 'eager_activities_max': must be an integer in [0, {EAGER_ACTIVITIES_MAX}]",
            "eager_activities_max")
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondWorkflowTaskCompleted(
        now_ms=now, token=token, commands=commands, identity=_identity(body),
        sticky_queue=_queue_name(body, "sticky_queue"),
        eager_task_queue=_queue_name(body, "eager_task_queue"), eager_activities_max=eager_max))


async def fail_workflow_task(request: web.Request) -> web.StreamResponse:
    token, body = await _respond(request, TaskKind.WORKFLOW)
    failure = v.encode_payload(body.get("failure"), field="failure")
    cause = body.get("cause") or "WorkflowWorkerUnhandledFailure"
    if not isinstance(cause, str):
        raise InvalidArgumentError("field 'cause': must be a string", "cause")
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondWorkflowTaskFailed(
        now_ms=now, token=token, cause=cause, failure=failure, identity=_identity(body)))


async def complete_activity_task(request: web.Request) -> web.StreamResponse:
    token, body = await _respond(request, TaskKind.ACTIVITY)
    result = v.encode_payload(body.get("result"), field="result")
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondActivityTaskCompleted(
        now_ms=now, token=token, result=result, identity=_identity(body),
        eager_task_queue=_queue_name(body, "eager_task_queue"),
        sticky_queue=_queue_name(body, "sticky_queue")))


async def fail_activity_task(request: web.Request) -> web.StreamResponse:
    token, body = await _respond(request, TaskKind.ACTIVITY)
    failure = parse_failure(body.get("failure"), "failure")
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondActivityTaskFailed(
        now_ms=now, token=token, failure=failure, identity=_identity(body)))


async def cancel_activity_task(request: web.Request) -> web.StreamResponse:
    token, body = await _respond(request, TaskKind.ACTIVITY)
    details = v.encode_payload(body.get("details"), field="details")
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RespondActivityTaskCanceled(
        now_ms=now, token=token, details=details, identity=_identity(body)))


async def heartbeat_activity_task(request: web.Request) -> web.StreamResponse:
    token, body = await _respond(request, TaskKind.ACTIVITY)
    details = v.encode_payload(body.get("details"), field="details")
    now = request.app[GATEWAY_KEY].now_ms()
    return await _answer(request, token, RecordActivityTaskHeartbeat(
        now_ms=now, token=token, details=details))


def _queue_name(body: dict[str, object], name: str) -> str:
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > v.NAME_LENGTH_MAX:
        raise InvalidArgumentError(
            f"field '{name}': must be a string of at most {v.NAME_LENGTH_MAX} characters", name)
    return value


def _identity(body: dict[str, object]) -> str:
    identity = body.get("identity", "")
    if not isinstance(identity, str) or len(identity) > v.NAME_LENGTH_MAX:
        raise InvalidArgumentError("field 'identity': must be a short string", "identity")
    return identity
