"""Public workflow endpoints: start, describe, history, signal, cancel, terminate, list.

Each handler is parse → route (`Gateway.on_leader`: run here on the shard's leader, or forward
there) → await the shard actor → a typed answer, rendered by `answers.respond`; anything
refused becomes a typed error (errors.py) rendered by the app's error middleware.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping

from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.answers import (
    Described,
    HistoryPage,
    Started,
    respond_for_workflow,
)
from raftflow.api.errors import InvalidArgumentError, accepted
from raftflow.api.request_traces import request_traceparent
from raftflow.api.routing import Gateway
from raftflow.api.run_ids import new_run_id
from raftflow.observability.json_logs import shard_fields
from raftflow.protocol.commands import (
    IdReusePolicy,
    RequestCancelWorkflow,
    SignalWorkflow,
    StartWorkflow,
    TerminateWorkflow,
)
from raftflow.protocol.http_bodies import (
    CancelWorkflowRequest,
    SignalWithStartWorkflowRequest,
    SignalWorkflowRequest,
    StartWorkflowRequest,
    TerminateWorkflowRequest,
)
from raftflow.protocol.limits import WORKFLOW_TASK_TIMEOUT_MS_DEFAULT
from raftflow.protocol.payload import EMPTY
from raftflow.protocol.results import (
    Ack,
    Rejected,
    Result,
    WorkflowStartedResult,
)
from raftflow.protocol.search_attributes import JsonAttributeValue
from raftflow.shards.actor import ShardActor
from raftflow.shards.core import queries
from raftflow.shards.core.run_attributes import typed_or_rejected
from raftflow.shards.core.state import ShardState

log = logging.getLogger(__name__)

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


def check_attributes(state: ShardState, namespace: str,
                     given: Mapping[str, JsonAttributeValue]) -> None:
    """Raise a 400 naming `search_attributes.<name>` and the rule for the first value the
    namespace's registry (this shard's copy) refuses."""
    typed = typed_or_rejected(state, namespace, given)
    if isinstance(typed, Rejected):
        raise InvalidArgumentError(typed.message, typed.field)


def _path(request: web.Request) -> tuple[str, str]:
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    workflow_id = v.check_path_id("workflow_id", request.match_info["workflow_id"])
    return namespace, workflow_id


async def start_workflow(request: web.Request) -> web.StreamResponse:
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    body = v.decode_body(await request.read(), StartWorkflowRequest)
    return await _start(request, namespace, body.workflow_id, body)


async def signal_with_start_workflow(request: web.Request) -> web.StreamResponse:
    """A start carrying a signal: 201 when it opened the run, 200 when it signalled the open
    one (or a retry found its first answer); shards/core/on_start.py."""
    namespace, workflow_id = _path(request)
    body = v.decode_body(await request.read(), SignalWithStartWorkflowRequest)
    return await _start(request, namespace, workflow_id, body)


async def _start(request: web.Request, namespace: str, workflow_id: str,
                 body: StartWorkflowRequest | SignalWithStartWorkflowRequest,
                 ) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    attributes = body.search_attributes or {}
    eager = body if isinstance(body, StartWorkflowRequest) else None
    signal = body if isinstance(body, SignalWithStartWorkflowRequest) else None

    async def start(actor: ShardActor) -> Started:
        # An early 400 against the registry this shard holds; the core checks it again.
        check_attributes(actor.state, namespace, attributes)
        now_ms = gateway.now_ms()
        command = StartWorkflow(
            now_ms=now_ms, namespace=namespace, workflow_id=workflow_id,
            workflow_type=body.workflow_type, task_queue=body.task_queue, input=body.input,
            request_id=body.request_id or uuid.uuid4().hex,
            run_id=new_run_id(now_ms),
            id_reuse_policy=body.id_reuse_policy or IdReusePolicy.ALLOW_DUPLICATE,
            execution_timeout_ms=body.execution_timeout_ms,
            run_timeout_ms=body.run_timeout_ms,
            task_timeout_ms=body.task_timeout_ms or WORKFLOW_TASK_TIMEOUT_MS_DEFAULT,
            eager_task_queue=(eager and eager.eager_task_queue) or "",
            eager_identity=(eager and eager.eager_identity) or "",
            search_attributes=attributes,
            signal_name=signal.signal_name if signal is not None else "",
            signal_input=signal.signal_input if signal is not None else EMPTY,
            retry_policy=body.retry_policy,
            traceparent=request_traceparent(request),
        )
        result = accepted(await actor.execute(command))
        assert isinstance(result, WorkflowStartedResult), result
        return Started(workflow_id=workflow_id, result=result)

    return respond_for_workflow(gateway, namespace, workflow_id, await gateway.on_leader(
        request, gateway.shard_of(namespace, workflow_id), start), gateway.tokens)


async def describe_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    run_id = request.query.get("run_id") or None

    async def describe(actor: ShardActor) -> Described:
        found = await actor.read(lambda s: queries.describe(s, namespace, workflow_id, run_id))
        return Described(accepted(found))

    return respond_for_workflow(gateway, namespace, workflow_id, await gateway.on_leader(
        request, gateway.shard_of(namespace, workflow_id), describe))


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

    return respond_for_workflow(gateway, namespace, workflow_id, await gateway.on_leader(
        request, gateway.shard_of(namespace, workflow_id), page))


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

    return respond_for_workflow(gateway, namespace, workflow_id, await gateway.on_leader(
        request, gateway.shard_of(namespace, workflow_id), signal))


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
        ack = acked(await actor.execute(kind(
            now_ms=gateway.now_ms(), namespace=namespace, workflow_id=workflow_id,
            run_id=body.run_id, reason=body.reason or "",
            request_id=body.request_id or uuid.uuid4().hex)))
        # An operator's act on a run, worth a line (rare next to starts and completions);
        # on the leader that applied it, with the shard, term and run (json_logs.py).
        log.info("%s of workflow %s/%s accepted (reason %r)", kind.__name__, namespace,
                 workflow_id, body.reason or "", extra={
                     **shard_fields(actor.shard, actor.leader_term), "run_id": body.run_id})
        return ack

    return respond_for_workflow(gateway, namespace, workflow_id, await gateway.on_leader(
        request, gateway.shard_of(namespace, workflow_id), close))

