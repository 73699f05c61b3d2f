"""Public workflow endpoints: start, describe, history, signal, cancel, terminate, list.

Each handler is parse → route → await the shard actor → render; anything refused becomes a
typed error (errors.py) rendered by the app's error middleware.
"""

from __future__ import annotations

import asyncio
import uuid

from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.errors import InvalidArgumentError, error_for_code
from raftflow.api.render import description_json, event_json, workflow_task_json
from raftflow.api.routing import Gateway
from raftflow.cluster.ring import shard_for
from raftflow.protocol.commands import (
    IdReusePolicy,
    RequestCancelWorkflow,
    SignalWorkflow,
    StartWorkflow,
    TerminateWorkflow,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.limits import WORKFLOW_TASK_TIMEOUT_MS_DEFAULT
from raftflow.protocol.results import (
    Rejected,
    WorkflowDescription,
    WorkflowStartedResult,
    WorkflowStatus,
)
from raftflow.shards.core import queries

GATEWAY_KEY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)

HISTORY_PAGE_SIZE_DEFAULT = 1000


def _rejected(result: object) -> None:
    if isinstance(result, Rejected):
        raise error_for_code(result.code, result.message, result.field)


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
    shard = shard_for(namespace, workflow_id, gateway.directory.shard_count)
    actor = gateway.local_leader(shard)
    if actor is None:
        return await gateway.forward(request, shard)
    command = StartWorkflow(
        now_ms=actor.now_ms(), namespace=namespace, workflow_id=workflow_id,
        workflow_type=body.string("workflow_type"), task_queue=body.string("task_queue"),
        input=body.json_bytes("input"), request_id=body.optional_string("request_id") or uuid.uuid4().hex,
        run_id=uuid.uuid4().hex, id_reuse_policy=policy,
        execution_timeout_ms=body.optional_integer("execution_timeout_ms"),
        run_timeout_ms=body.optional_integer("run_timeout_ms"),
        task_timeout_ms=(body.optional_integer("task_timeout_ms")
                         or WORKFLOW_TASK_TIMEOUT_MS_DEFAULT),
        eager_task_queue=body.optional_string("eager_task_queue") or "",
        eager_identity=body.optional_string("eager_identity") or "",
    )
    result = await actor.execute(command)
    _rejected(result)
    assert isinstance(result, WorkflowStartedResult), result
    answer: dict[str, object] = {"workflow_id": workflow_id, "run_id": result.run_id}
    if result.workflow_task is not None:
        answer["workflow_task"] = workflow_task_json(result.workflow_task)
    return web.json_response(answer, status=201 if result.created else 200)


async def describe_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    run_id = request.query.get("run_id") or None
    shard = shard_for(namespace, workflow_id, gateway.directory.shard_count)
    actor = gateway.local_leader(shard)
    if actor is None:
        return await gateway.forward(request, shard)
    found = await actor.read(lambda s: queries.describe(s, namespace, workflow_id, run_id))
    _rejected(found)
    assert isinstance(found, WorkflowDescription)
    return web.json_response(description_json(found))


async def workflow_history(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    run_id = request.query.get("run_id") or None
    first = v.parse_query_int("next_page_token", request.query.get("next_page_token"),
                              default=1, minimum=1, maximum=10**9)
    size = v.parse_query_int("page_size", request.query.get("page_size"),
                             default=HISTORY_PAGE_SIZE_DEFAULT, minimum=1, maximum=10_000)
    shard = shard_for(namespace, workflow_id, gateway.directory.shard_count)
    actor = gateway.local_leader(shard)
    if actor is None:
        return await gateway.forward(request, shard)
    page = await actor.read(lambda s: queries.history(s, namespace, workflow_id, run_id, first, size))
    _rejected(page)
    assert not isinstance(page, Rejected)
    events, next_event_id = page
    return web.json_response({"events": [event_json(e) for e in events],
                              "next_page_token": None if next_event_id is None else str(next_event_id)})


async def signal_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    body = await _body(request, v.SIGNAL_WORKFLOW)
    shard = shard_for(namespace, workflow_id, gateway.directory.shard_count)
    actor = gateway.local_leader(shard)
    if actor is None:
        return await gateway.forward(request, shard)
    result = await actor.execute(SignalWorkflow(
        now_ms=actor.now_ms(), namespace=namespace, workflow_id=workflow_id,
        run_id=body.optional_string("run_id"), signal_name=body.string("signal_name"),
        input=body.json_bytes("input"), request_id=body.optional_string("request_id") or uuid.uuid4().hex))
    _rejected(result)
    return web.json_response({})


async def terminate_workflow(request: web.Request) -> web.StreamResponse:
    return await _close_request(request, v.TERMINATE_WORKFLOW, terminate=True)


async def cancel_workflow(request: web.Request) -> web.StreamResponse:
    return await _close_request(request, v.CANCEL_WORKFLOW, terminate=False)


async def _close_request(request: web.Request, schema: v.BodySchema,
                         terminate: bool) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    body = await _body(request, schema)
    shard = shard_for(namespace, workflow_id, gateway.directory.shard_count)
    actor = gateway.local_leader(shard)
    if actor is None:
        return await gateway.forward(request, shard)
    kind = TerminateWorkflow if terminate else RequestCancelWorkflow
    result = await actor.execute(kind(
        now_ms=actor.now_ms(), namespace=namespace, workflow_id=workflow_id,
        run_id=body.optional_string("run_id"), reason=body.optional_string("reason") or "",
        request_id=body.optional_string("request_id") or uuid.uuid4().hex))
    _rejected(result)
    return web.json_response({})


async def list_shard_workflows(request: web.Request) -> web.StreamResponse:
    """One shard's part of a list (called by `list_workflows` on the shard's leader)."""
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    shard = v.parse_query_int("shard", request.match_info["shard"], default=0, minimum=0,
                              maximum=gateway.directory.shard_count - 1)
    status, limit = _list_filters(request)
    actor = gateway.local_leader(shard)
    if actor is None:
        return await gateway.forward(request, shard)
    found = await actor.read(lambda s: queries.list_workflows(s, namespace, status, limit))
    return web.json_response({"workflows": [description_json(d) for d in found]})


async def list_workflows(request: web.Request) -> web.StreamResponse:
    """Latest run of each workflow id, newest first, gathered from every shard."""
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    _, limit = _list_filters(request)
    base = gateway.directory.http_address(gateway.directory.node_id)
    assert base is not None
    query = request.query_string

    async def one(shard: int) -> list[dict[str, object]]:
        url = f"{base}/api/v1/namespaces/{namespace}/shards/{shard}/workflows?{query}"
        async with gateway.session.get(url) as answer:
            payload = await answer.json()
            if answer.status != 200:
                raise error_for_code(_code(payload), f"shard {shard}: {_message(payload)}")
            return list(payload["workflows"])

    parts = await asyncio.gather(*(one(s) for s in range(gateway.directory.shard_count)))
    merged = sorted((w for part in parts for w in part),
                    key=lambda w: str(w["start_time"]), reverse=True)
    return web.json_response({"workflows": merged[:limit]})


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
