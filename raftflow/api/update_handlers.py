"""Workflow updates over HTTP: request one and wait for a stage, or ask where one stands.

Theory of operation. `POST .../workflows/{workflow_id}/updates` proposes `RequestWorkflowUpdate`
on the shard's leader (which admits the update, or attaches to the one in flight with the same
update id, or answers a completed one's remembered outcome), then waits on the leader until the
update reaches `wait_for_stage` (default accepted) or `wait_ms` passes, and answers the stage it
reached: a caller that wants more asks again, with the same update id, or reads
`GET .../updates/{update_id}` (the same wait, no proposal). A stage only moves forward and is
final once applied, so the wait reads the leader's applied state; "not found" and the first
read of `GET` are confirmed behind a log barrier (DESIGN §4 I6). A run that closes before the
update completed answers 409 workflow_not_running.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

import msgspec
from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.answers import respond
from raftflow.api.errors import InvalidArgumentError, OverloadedError, accepted
from raftflow.api.routing import Relayed, RouteAgain
from raftflow.api.workflow_handlers import GATEWAY_KEY, _path
from raftflow.protocol.history_json import payload_json
from raftflow.protocol.http_answers import WorkflowUpdateAnswer
from raftflow.protocol.http_bodies import WAIT_MS_MAX, UpdateWorkflowRequest
from raftflow.protocol.payload import json_enc_hook
from raftflow.protocol.updates import (
    UPDATE_STAGE_ORDER,
    RequestWorkflowUpdate,
    UpdateStage,
    WorkflowUpdateResult,
)
from raftflow.shards.actor import ShardActor
from raftflow.shards.core.on_update import update_view

UPDATE_WAIT_MS_DEFAULT = 30_000
# A waiting call re-reads the leader's applied state (no log entry per read), first after
# UPDATE_WAIT_POLL_S_MIN, then less and less often, at least every UPDATE_WAIT_POLL_S_MAX:
# most updates complete within a few tens of milliseconds, some wait for a long handler.
UPDATE_WAIT_POLL_S_MIN = 0.01
UPDATE_WAIT_POLL_S_MAX = 0.25
# Calls waiting on one node at a time; beyond it a call is 503 overloaded (DESIGN §4 I7).
UPDATE_WAITERS_MAX = 2_000


class UpdateWaiters:
    """How many calls wait for an update stage on this node (bounded)."""

    def __init__(self, limit: int = UPDATE_WAITERS_MAX) -> None:
        self.limit = limit
        self.waiting = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if self.waiting >= self.limit:
            raise OverloadedError(f"UPDATE_WAITERS_MAX={self.limit} calls wait for updates "
                                  "on this node")
        self.waiting += 1
        try:
            yield
        finally:
            self.waiting -= 1


WAITERS_KEY: web.AppKey[UpdateWaiters] = web.AppKey("update_waiters", UpdateWaiters)


def _reached(result: WorkflowUpdateResult, wanted: UpdateStage) -> bool:
    return UPDATE_STAGE_ORDER[result.stage] >= UPDATE_STAGE_ORDER[wanted]


async def _wait(request: web.Request, actor: ShardActor, key: tuple[str, str, str],
                first: WorkflowUpdateResult, wanted: UpdateStage,
                deadline: float) -> WorkflowUpdateResult | RouteAgain:
    """`first`, or a later stage read from the applied state, once it reaches `wanted` or the
    deadline passes; RouteAgain if this node stopped leading the shard meanwhile."""
    namespace, workflow_id, update_id = key
    current = first
    if _reached(current, wanted) or time.monotonic() >= deadline:
        return current
    pause_s = UPDATE_WAIT_POLL_S_MIN
    with request.app[WAITERS_KEY].slot():
        while not _reached(current, wanted) and time.monotonic() < deadline:
            await asyncio.sleep(min(pause_s, max(0.0, deadline - time.monotonic())))
            pause_s = min(pause_s * 1.5, UPDATE_WAIT_POLL_S_MAX)
            if not actor.is_leader():
                return RouteAgain()
            current = accepted(update_view(actor.state, namespace, workflow_id, update_id))
    return current


def _wait_params(stage: UpdateStage | None, wait_ms: int | None) -> tuple[UpdateStage, float]:
    wanted = stage or UpdateStage.ACCEPTED
    return wanted, time.monotonic() + (UPDATE_WAIT_MS_DEFAULT if wait_ms is None
                                       else wait_ms) / 1000


def _render(outcome: WorkflowUpdateResult | Relayed, workflow_id: str) -> web.StreamResponse:
    if isinstance(outcome, Relayed):
        return respond(outcome)
    completed = outcome.stage is UpdateStage.COMPLETED
    answer = WorkflowUpdateAnswer(
        workflow_id=workflow_id, run_id=outcome.run_id, update_id=outcome.update_id,
        stage=outcome.stage,
        result=(payload_json(outcome.value) if completed and outcome.failure is None
                else msgspec.UNSET),
        failure=msgspec.UNSET if outcome.failure is None else outcome.failure)
    return web.Response(body=msgspec.json.encode(answer, enc_hook=json_enc_hook),
                        content_type="application/json")


async def update_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    body = v.decode_body(await request.read(), UpdateWorkflowRequest)
    update_id = body.update_id or uuid.uuid4().hex
    wanted, deadline = _wait_params(body.wait_for_stage, body.wait_ms)

    async def update(actor: ShardActor) -> WorkflowUpdateResult | RouteAgain:
        result = accepted(await actor.execute(RequestWorkflowUpdate(
            now_ms=gateway.now_ms(), namespace=namespace, workflow_id=workflow_id,
            run_id=body.run_id, update_id=update_id, name=body.name, input=body.input)))
        assert isinstance(result, WorkflowUpdateResult), result
        return await _wait(request, actor, (namespace, workflow_id, update_id), result, wanted,
                           deadline)

    return _render(await gateway.on_leader(request, gateway.shard_of(namespace, workflow_id),
                                           update), workflow_id)


async def update_outcome(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, workflow_id = _path(request)
    update_id = v.check_path_id("update_id", request.match_info["update_id"])
    raw_stage = request.query.get("wait_for_stage")
    try:
        stage = None if raw_stage is None else UpdateStage(raw_stage)
    except ValueError:
        raise InvalidArgumentError(
            "query parameter 'wait_for_stage': must be one of "
            f"{[s.value for s in UpdateStage]}", "wait_for_stage") from None
    wait_ms = v.parse_query_int("wait_ms", request.query.get("wait_ms"),
                                default=UPDATE_WAIT_MS_DEFAULT, minimum=0, maximum=WAIT_MS_MAX)
    wanted, deadline = _wait_params(stage or UpdateStage.COMPLETED, wait_ms)

    async def read(actor: ShardActor) -> WorkflowUpdateResult | RouteAgain:
        first = accepted(await actor.read(
            lambda s: update_view(s, namespace, workflow_id, update_id)))
        return await _wait(request, actor, (namespace, workflow_id, update_id), first, wanted,
                           deadline)

    return _render(await gateway.on_leader(request, gateway.shard_of(namespace, workflow_id),
                                           read), workflow_id)
