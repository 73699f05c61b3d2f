"""Public workflow endpoints: start, describe, history, signal, cancel, terminate, list.

Each handler is parse → route (`Gateway.on_leader`: run here on the shard's leader, or forward
there) → await the shard actor → a typed answer, rendered by `answers.respond`; anything
refused becomes a typed error (errors.py) rendered by the app's error middleware.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import quote

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
from raftflow.protocol.http_bodies import (
    CancelWorkflowRequest,
    SignalWorkflowRequest,
    StartWorkflowRequest,
    TerminateWorkflowRequest,
)
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
HISTORY_PAGE_SIZE_MAX = 10_000
# A page token is the next page's first event id, in decimal with no leading zero; empty (or
# left out) is the first page.
HISTORY_PAGE_TOKEN = re.compile(r"([1-9][0-9]{0,8})?")


def acked(result: Result) -> Ack:
    """The answer of a write whose only success is Ack (signal, cancel, terminate, ...)."""
    ack = accepted(result)
    assert isinstance(ack, Ack), ack
    return ack


def _path(request: web.Request) -> tuple[str, str]:
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    workflow_id = v.check_path_id("workflow_id", request.match_info["workflow_id"])
    return namespace, workflow_id


async def start_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    body = v.decode_body(await request.read(), StartWorkflowRequest)
    workflow_id = body.workflow_id
    workflow_input = body.input

    async def start(actor: ShardActor) -> Started:
        command = StartWorkflow(
            now_ms=gateway.now_ms(), namespace=namespace, workflow_id=workflow_id,
            workflow_type=body.workflow_type, task_queue=body.task_queue, input=workflow_input,
            request_id=body.request_id or uuid.uuid4().hex,
            run_id=uuid.uuid4().hex,
            id_reuse_policy=body.id_reuse_policy or IdReusePolicy.ALLOW_DUPLICATE,
            execution_timeout_ms=body.execution_timeout_ms,
            run_timeout_ms=body.run_timeout_ms,
            task_timeout_ms=body.task_timeout_ms or WORKFLOW_TASK_TIMEOUT_MS_DEFAULT,
            eager_task_queue=body.eager_task_queue or "",
            eager_identity=body.eager_identity or "",
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
    token = request.query.get("next_page_token", "")
    if HISTORY_PAGE_TOKEN.fullmatch(token) is None:
        raise InvalidArgumentError("query parameter 'next_page_token': must be the "
                                   "next_page_token of a previous page", "next_page_token")
    first = int(token or "1")
    size = v.parse_query_int("page_size", request.query.get("page_size"),
                             default=HISTORY_PAGE_SIZE_DEFAULT, minimum=1,
                             maximum=HISTORY_PAGE_SIZE_MAX)

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
    body = v.decode_body(await request.read(), SignalWorkflowRequest)
    signal_input = body.input

    async def signal(actor: ShardActor) -> Ack:
        return acked(await actor.execute(SignalWorkflow(
            now_ms=gateway.now_ms(), namespace=namespace, workflow_id=workflow_id,
            run_id=body.run_id, signal_name=body.signal_name, input=signal_input,
            request_id=body.request_id or uuid.uuid4().hex)))

    return respond(await gateway.on_leader(request, gateway.shard_of(namespace, workflow_id),
                                           signal))


async def terminate_workflow(request: web.Request) -> web.StreamResponse:
    return await _close_request(request, TerminateWorkflowRequest, TerminateWorkflow)


async def cancel_workflow(request: web.Request) -> web.StreamResponse:
    return await _close_request(request, CancelWorkflowRequest, RequestCancelWorkflow)


async def _close_request(request: web.Request,
                         body_type: type[TerminateWorkflowRequest | CancelWorkflowRequest],
                         kind: type[TerminateWorkflow | RequestCancelWorkflow],
                         ) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    body = v.decode_body(await request.read(), body_type)

    async def close(actor: ShardActor) -> Ack:
        return acked(await actor.execute(kind(
            now_ms=gateway.now_ms(), namespace=namespace, workflow_id=workflow_id,
            run_id=body.run_id, reason=body.reason or "",
            request_id=body.request_id or uuid.uuid4().hex)))

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
        # The namespace is any string: quoted, or a `?` or `/` in it would reroute the call.
        path_qs = f"/api/v1/namespaces/{quote(namespace, safe='')}/shards/{shard}/workflows?{query}"
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
    try:
        payload = json.loads(part.body)
    except ValueError:  # not our JSON: an answer of aiohttp itself, or of something between
        raise _shard_error(shard, ErrorCode.INTERNAL, f"answered {part.status} with no JSON"
                           ) from None
    if part.status != 200:
        raise _shard_error(shard, _code(payload), _message(payload))
    return list(payload["workflows"])


def _shard_error(shard: int, code: ErrorCode, message: str) -> RaftflowError:
    # A shard's refusal names the shard; its code (and so its status) is kept.
    return error_for_code(code, f"shard {shard}: {message}")


def _list_filters(request: web.Request) -> tuple[WorkflowStatus | None, int]:
    raw_status = request.query.get("status") or None  # empty: every status
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
