"""Public workflow endpoints: start, describe, history, signal, cancel, terminate, list.

Each handler is parse → route (`Gateway.on_leader`: run here on the shard's leader, or forward
there) → await the shard actor → a typed answer, rendered by `answers.respond`; anything
refused becomes a typed error (errors.py) rendered by the app's error middleware.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.answers import (
    Described,
    HistoryPage,
    JsonObject,
    ShardWorkflows,
    Started,
    WorkflowList,
    respond,
    shard_workflows_json,
)
from raftflow.api.errors import InvalidArgumentError, accepted, error_for_code
from raftflow.api.routing import Gateway, Relayed
from raftflow.protocol.commands import (
    IdReusePolicy,
    RequestCancelWorkflow,
    SignalWorkflow,
    StartWorkflow,
    TerminateWorkflow,
)
from raftflow.protocol.errors import ErrorCode, RaftflowError
from raftflow.protocol.limits import WORKFLOW_TASK_TIMEOUT_MS_DEFAULT
from raftflow.protocol.results import (
    Ack,
    Result,
    WorkflowStartedResult,
    WorkflowStatus,
)
from raftflow.shards.actor import ShardActor
from raftflow.shards.core import queries

GATEWAY_KEY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)

HISTORY_PAGE_SIZE_DEFAULT = 1000


def acked(result: Result) -> Ack:
    """The answer of a write whose only success is Ack (signal, cancel, terminate, ...)."""
    ack = accepted(result)
    assert isinstance(ack, Ack), ack
    return ack


async def _body(request: web.Request, schema: v.BodySchema) -> v.ValidBody:
    return v.validate(schema, v.parse_json_body(await request.read()))


def _path(request: web.Request) -> tuple[str, str]:
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    workflow_id = v.check_path_id("workflow_id", request.match_info["workflow_id"])
    return namespace, workflow_id


async def start_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    body = await _body(request, v.START_WORKFLOW)
    workflow_id = body.string("workflow_id")
    policy_name = body.optional_string("id_reuse_policy") or IdReusePolicy.ALLOW_DUPLICATE.value
    try:
        policy = IdReusePolicy(policy_name)
    except ValueError:
        raise InvalidArgumentError(
            f"field 'id_reuse_policy': must be one of {', '.join(p.value for p in IdReusePolicy)}",
            "id_reuse_policy") from None

    async def start(actor: ShardActor) -> Started:
        command = StartWorkflow(
            now_ms=gateway.now_ms(), namespace=namespace, workflow_id=workflow_id,
            workflow_type=body.string("workflow_type"), task_queue=body.string("task_queue"),
            input=body.json_bytes("input"),
            request_id=body.optional_string("request_id") or uuid.uuid4().hex,
            run_id=uuid.uuid4().hex, id_reuse_policy=policy,
            execution_timeout_ms=body.optional_integer("execution_timeout_ms"),
            run_timeout_ms=body.optional_integer("run_timeout_ms"),
            task_timeout_ms=(body.optional_integer("task_timeout_ms")
                             or WORKFLOW_TASK_TIMEOUT_MS_DEFAULT),
            eager_task_queue=body.optional_string("eager_task_queue") or "",
            eager_identity=body.optional_string("eager_identity") or "",
        )
        result = accepted(await actor.execute(command))
        assert isinstance(result, WorkflowStartedResult), result
        return Started(workflow_id=workflow_id, result=result)

    return respond(await gateway.on_leader(request, gateway.shard_of(namespace, workflow_id),
                                           start))


async def describe_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    run_id = request.query.get("run_id") or None

    async def describe(actor: ShardActor) -> Described:
        found = await actor.read(lambda s: queries.describe(s, namespace, workflow_id, run_id))
        return Described(accepted(found))

    return respond(await gateway.on_leader(request, gateway.shard_of(namespace, workflow_id),
                                           describe))


async def workflow_history(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    run_id = request.query.get("run_id") or None
    first = v.parse_query_int("next_page_token", request.query.get("next_page_token"),
                              default=1, minimum=1, maximum=10**9)
    size = v.parse_query_int("page_size", request.query.get("page_size"),
                             default=HISTORY_PAGE_SIZE_DEFAULT, minimum=1, maximum=10_000)

    async def page(actor: ShardActor) -> HistoryPage:
        found = await actor.read(
            lambda s: queries.history(s, namespace, workflow_id, run_id, first, size))
        events, next_event_id = accepted(found)
        return HistoryPage(events=tuple(events), next_event_id=next_event_id)

    return respond(await gateway.on_leader(request, gateway.shard_of(namespace, workflow_id),
                                           page))


async def signal_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    body = await _body(request, v.SIGNAL_WORKFLOW)

    async def signal(actor: ShardActor) -> Ack:
        return acked(await actor.execute(SignalWorkflow(
            now_ms=gateway.now_ms(), namespace=namespace, workflow_id=workflow_id,
            run_id=body.optional_string("run_id"), signal_name=body.string("signal_name"),
            input=body.json_bytes("input"),
            request_id=body.optional_string("request_id") or uuid.uuid4().hex)))

    return respond(await gateway.on_leader(request, gateway.shard_of(namespace, workflow_id),
                                           signal))


async def terminate_workflow(request: web.Request) -> web.StreamResponse:
    return await _close_request(request, v.TERMINATE_WORKFLOW, TerminateWorkflow)


async def cancel_workflow(request: web.Request) -> web.StreamResponse:
    return await _close_request(request, v.CANCEL_WORKFLOW, RequestCancelWorkflow)


async def _close_request(request: web.Request, schema: v.BodySchema,
                         kind: type[TerminateWorkflow | RequestCancelWorkflow],
                         ) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    body = await _body(request, schema)

    async def close(actor: ShardActor) -> Ack:
        return acked(await actor.execute(kind(
            now_ms=gateway.now_ms(), namespace=namespace, workflow_id=workflow_id,
            run_id=body.optional_string("run_id"), reason=body.optional_string("reason") or "",
            request_id=body.optional_string("request_id") or uuid.uuid4().hex)))

    return respond(await gateway.on_leader(request, gateway.shard_of(namespace, workflow_id),
                                           close))


async def list_shard_workflows(request: web.Request) -> web.StreamResponse:
    """One shard's part of a list (asked by `list_workflows` of a node not leading the shard)."""
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    shard = v.parse_query_int("shard", request.match_info["shard"], default=0, minimum=0,
                              maximum=gateway.directory.shard_count - 1)
    status, limit = _list_filters(request)
    return respond(await gateway.on_leader(
        request, shard, _shard_part(namespace, status, limit)))


def _shard_part(namespace: str, status: WorkflowStatus | None, limit: int,
                ) -> Callable[[ShardActor], Awaitable[ShardWorkflows]]:
    async def read(actor: ShardActor) -> ShardWorkflows:
        found = await actor.read(lambda s: queries.list_workflows(s, namespace, status, limit))
        return ShardWorkflows(tuple(found))
    return read


async def list_workflows(request: web.Request) -> web.StreamResponse:
    """Latest run of each workflow id, newest first, gathered from every shard: read here for
    the shards this node leads, asked once of their leader for the others."""
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    status, limit = _list_filters(request)
    query = request.query_string

    async def one(shard: int) -> list[JsonObject]:
        path_qs = f"/api/v1/namespaces/{namespace}/shards/{shard}/workflows?{query}"
        try:
            part = await gateway.on_leader(request, shard, _shard_part(namespace, status, limit),
                                           path_qs=path_qs)
        except RaftflowError as error:
            raise _shard_error(shard, error.code, error.message) from None
        if isinstance(part, Relayed):
            return _relayed_part(shard, part)
        return shard_workflows_json(part)

    parts = await asyncio.gather(*(one(s) for s in range(gateway.directory.shard_count)))
    merged = sorted((w for part in parts for w in part),
                    key=lambda w: str(w["start_time"]), reverse=True)
    return respond(WorkflowList(tuple(merged[:limit])))


def _relayed_part(shard: int, part: Relayed) -> list[JsonObject]:
    payload = json.loads(part.body)
    if part.status != 200:
        raise _shard_error(shard, _code(payload), _message(payload))
    return list(payload["workflows"])


def _shard_error(shard: int, code: ErrorCode, message: str) -> RaftflowError:
    # A shard's refusal names the shard; its code (and so its status) is kept.
    return error_for_code(code, f"shard {shard}: {message}")


def _list_filters(request: web.Request) -> tuple[WorkflowStatus | None, int]:
    raw_status = request.query.get("status") or None
    status = None
    if raw_status is not None:
        try:
            status = WorkflowStatus(raw_status.lower())
        except ValueError:
            raise InvalidArgumentError(
                f"query parameter 'status': must be one of "
                f"{', '.join(s.value.upper() for s in WorkflowStatus)}", "status") from None
    limit = v.parse_query_int("limit", request.query.get("limit"), default=100, minimum=1,
                              maximum=v.QUERY_LIMIT_MAX)
    return status, limit


def _code(payload: object) -> ErrorCode:
    try:
        return ErrorCode(payload["error"]["code"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return ErrorCode.INTERNAL


def _message(payload: object) -> str:
    try:
        return str(payload["error"]["message"])  # type: ignore[index]
    except (KeyError, TypeError):
        return "unexpected answer"
