"""Waiting for a workflow's result, and querying a workflow through a worker (SDK support)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.access import require
from raftflow.api.answers import (
    Described,
    NoContent,
    QueryAnswered,
    respond,
    respond_for_workflow,
)
from raftflow.api.errors import (
    DeadlineExceededError,
    NotFoundError,
    OverloadedError,
    accepted,
)
from raftflow.api.principals import Permission
from raftflow.api.query_broker import (
    QUERY_TIMEOUT_S_DEFAULT,
    QueryBroker,
    QueryReply,
    QueryTimeoutError,
)
from raftflow.api.routing import RouteAgain
from raftflow.api.workflow_handlers import GATEWAY_KEY, _path
from raftflow.matching.matcher import Matcher
from raftflow.protocol.errors import ErrorCode, RaftflowError
from raftflow.protocol.events import HistoryEvent
from raftflow.protocol.history_json import event_json
from raftflow.protocol.http_bodies import QueryAnswerRequest, QueryWorkflowRequest
from raftflow.protocol.results import Ack, Rejected, WorkflowDescription, WorkflowStatus
from raftflow.shards.actor import ShardActor
from raftflow.shards.core import queries
from raftflow.shards.core.state import ShardState

MATCHER_KEY: web.AppKey[Matcher] = web.AppKey("matcher", Matcher)
BROKER_KEY: web.AppKey[QueryBroker] = web.AppKey("broker", QueryBroker)

RESULT_WAIT_MS_DEFAULT = 30_000
RESULT_WAIT_MS_MAX = 60_000

async def workflow_result(request: web.Request) -> web.StreamResponse:
    """The run's description once it is closed (200), or 204 if still running after wait_ms."""
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    run_id = request.query.get("run_id") or None
    wait_ms = v.parse_query_int("wait_ms", request.query.get("wait_ms"),
                                default=RESULT_WAIT_MS_DEFAULT, minimum=0, maximum=RESULT_WAIT_MS_MAX)
    matcher = request.app[MATCHER_KEY]
    # Monotonic, not the gateway's clock: this times the caller's wait and is proposed to no log.
    deadline = time.monotonic() + wait_ms / 1000

    async def wait_for_close(actor: ShardActor) -> Described | NoContent | RouteAgain:
        try:
            with matcher.watch_close(namespace, workflow_id) as closed:
                # A close in the applied state is committed and final: it is answered with no
                # log barrier. A local "running" is only a reason to wait; the answers
                # "not found" and "still running" (204) are confirmed behind a barrier (I6).
                local = queries.describe(actor.state, namespace, workflow_id, run_id)
                if isinstance(local, WorkflowDescription):
                    if local.status is not WorkflowStatus.RUNNING:
                        return Described(local)
                    remaining_s = deadline - time.monotonic()
                    if remaining_s > 0:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(remaining_s):
                                await closed
                        return RouteAgain()  # this node may have lost the shard meanwhile
                found = accepted(await actor.read(
                    lambda s: queries.describe(s, namespace, workflow_id, run_id)))
                if found.status is not WorkflowStatus.RUNNING:
                    return Described(found)
                return NoContent()
        except OverflowError:
            raise OverloadedError("too many callers wait for this workflow's result") from None

    return respond_for_workflow(gateway, namespace, workflow_id, await gateway.on_leader(
        request, gateway.shard_of(namespace, workflow_id), wait_for_close))


def _run_and_history(state: ShardState, namespace: str, workflow_id: str, run_id: str | None,
                     ) -> tuple[WorkflowDescription, list[HistoryEvent]] | Rejected:
    found = queries.describe(state, namespace, workflow_id, run_id)
    if isinstance(found, Rejected):
        return found
    events: list[HistoryEvent] = []
    next_id: int | None = 1
    while next_id is not None:
        page = queries.history(state, namespace, workflow_id, found.run_id, next_id)
        assert not isinstance(page, Rejected)
        events.extend(page[0])
        next_id = page[1]
    return found, events


async def query_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    body = v.decode_body(await request.read(), QueryWorkflowRequest)
    shard = gateway.shard_of(namespace, workflow_id)

    async def ask_worker(actor: ShardActor) -> QueryAnswered:
        description, events = accepted(await actor.read(
            lambda s: _run_and_history(s, namespace, workflow_id, body.run_id)))
        args = [] if body.args is None else body.args
        timeout_ms = body.timeout_ms
        try:
            reply = await request.app[BROKER_KEY].ask(
                shard=shard, namespace=namespace, task_queue=description.task_queue,
                timeout_s=QUERY_TIMEOUT_S_DEFAULT if timeout_ms is None else timeout_ms / 1000,
                payload={"query_type": body.query_type, "args": args,
                         "namespace": namespace, "workflow_id": workflow_id,
                         "run_id": description.run_id,
                         "workflow_type": description.workflow_type,
                         "task_queue": description.task_queue,
                         "history": [event_json(e) for e in events]})
        except QueryTimeoutError:
            raise DeadlineExceededError(
                f"no worker of task queue {description.task_queue!r} answered the query in time"
            ) from None
        if reply.error_message is not None:
            raise RaftflowError(ErrorCode.QUERY_FAILED,
                                f"the query failed in the worker: {reply.error_message}")
        return QueryAnswered(reply.result)

    return respond(await gateway.on_leader(request, shard, ask_worker))


async def respond_query(request: web.Request) -> web.StreamResponse:
    body = v.decode_body(await request.read(), QueryAnswerRequest)
    query_id = body.query_id
    gateway = request.app[GATEWAY_KEY]
    broker = request.app[BROKER_KEY]
    node = broker.node_of(query_id)
    if node is not None and node != gateway.directory.node_id:
        address = gateway.directory.http_address(node)
        if address is None:
            raise NotFoundError(f"query {query_id!r} belongs to no known node", "query_id")
        # Addressed by the query id (the node that waits), not by a shard: no leader to find.
        return respond(await gateway.relay(request, address))
    namespace = broker.namespace_of(query_id)
    if namespace is not None:  # only a worker of the query's namespace may answer it
        require(request, Permission.WORK, namespace)
    if not broker.answer(query_id, QueryReply.of(body)):
        raise NotFoundError(f"nobody waits for query {query_id!r} any more", "query_id")
    return respond(Ack())
