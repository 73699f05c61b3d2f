"""Public endpoint: reset a workflow (`POST .../workflows/{workflow_id}/reset`).

Parse → route to the shard's leader → `ResetWorkflow` (shards/core/on_reset.py) → 201 and the
new run's id; a retry with the same `request_id` gets that first answer again. The proposer picks the new run's id, as for a start; a missing request id gets a
fresh one (the call is then not idempotent across retries).
"""

from __future__ import annotations

import uuid

from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.answers import Started, respond_for_workflow
from raftflow.api.errors import InvalidArgumentError, accepted
from raftflow.api.run_ids import new_run_id
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.protocol.commands import ResetWorkflow
from raftflow.protocol.http_bodies import ResetWorkflowRequest
from raftflow.protocol.results import WorkflowStartedResult
from raftflow.shards.actor import ShardActor


async def reset_workflow(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    workflow_id = v.check_path_id("workflow_id", request.match_info["workflow_id"])
    body = v.decode_body(await request.read(), ResetWorkflowRequest)
    if (body.event_id is None) == (body.reset_type is None):
        raise InvalidArgumentError("give exactly one of event_id and reset_type", "event_id")
    request_id = body.request_id or uuid.uuid4().hex

    async def reset(actor: ShardActor) -> Started:
        now_ms = gateway.now_ms()
        result = accepted(await actor.execute(ResetWorkflow(
            now_ms=now_ms, namespace=namespace, workflow_id=workflow_id, run_id=body.run_id,
            new_run_id=new_run_id(now_ms), event_id=body.event_id or 0,
            reset_type=body.reset_type, reason=body.reason or "", request_id=request_id)))
        assert isinstance(result, WorkflowStartedResult), result
        return Started(workflow_id=workflow_id, result=result)

    return respond_for_workflow(gateway, namespace, workflow_id, await gateway.on_leader(
        request, gateway.shard_of(namespace, workflow_id), reset), gateway.tokens)
