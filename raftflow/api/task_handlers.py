"""Worker endpoints over HTTP: long-poll for tasks; complete or fail them and heartbeat
activities (each a `task_calls` call, as on a task stream)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from raftflow.actors.errors import NotLeaderError
from raftflow.api import validation as v
from raftflow.api.access import PRINCIPAL_KEY
from raftflow.api.answers import NoContent, respond
from raftflow.api.errors import InvalidArgumentError, accepted
from raftflow.api.handouts import HandoutRequest, started_task
from raftflow.api.poll_types import POLL_ID_LENGTH_MAX, Poller
from raftflow.api.polling import TaskPoller
from raftflow.api.routing import FORWARDED_HEADER
from raftflow.api.task_calls import TASK_CALLS, TaskCall
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.protocol.commands import TaskKind
from raftflow.protocol.http_bodies import EndPollsRequest, PollRequest

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


def task_route(path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The HTTP handler of the task call at `path` (task_calls.py runs it, as for a stream)."""
    run = TASK_CALLS[path]

    async def handle(request: web.Request) -> web.StreamResponse:
        gateway = request.app[GATEWAY_KEY]
        call = TaskCall(body=await request.read(), principal=request.get(PRINCIPAL_KEY),
                        source=request)
        return respond(await run(gateway, call), gateway.tokens)

    return handle
