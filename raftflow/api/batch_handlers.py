"""Batch operations over HTTP: start a job, describe it, list a namespace's jobs, stop one
(protocol/batches.py tells the whole story; api/batch_runner.py runs them).

A job lives on the shard that owns (namespace, job id): start, describe and stop are routed to
its leader like any shard-addressed call. A list asks every shard's leader for its jobs of the
namespace (the local ones here; each other shard through this same route with `?shard=N`,
answered by its leader alone) and merges them, newest first.
"""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import msgspec
from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.answers import respond
from raftflow.api.errors import accepted
from raftflow.api.namespace_handlers import FOLLOWER_KEY
from raftflow.api.routing import Relayed
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.protocol.batches import (
    BATCH_QUERY_CHARS_MAX,
    BatchJobAnswer,
    BatchJobList,
    StartBatch,
    StartBatchRequest,
    StopBatch,
    StopBatchRequest,
)
from raftflow.protocol.errors import ErrorCode, RaftflowError
from raftflow.protocol.history_json import timestamp
from raftflow.protocol.payload import json_dec_hook, json_enc_hook
from raftflow.shards.actor import ShardActor
from raftflow.shards.core.batch_jobs import BatchJob
from raftflow.visibility.limits import QUERY_CHARS_MAX
from raftflow.visibility.query_parser import parse

assert QUERY_CHARS_MAX == BATCH_QUERY_CHARS_MAX


def _json(body: msgspec.Struct, status: int = 200) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(body, enc_hook=json_enc_hook),
                        content_type="application/json")


def job_answer(job: BatchJob) -> BatchJobAnswer:
    return BatchJobAnswer(
        job_id=job.job_id, namespace=job.namespace, query=job.query, operation=job.operation,
        rps=job.rps, state=job.state, succeeded=job.succeeded, failed=job.failed,
        start_time=timestamp(job.start_ms),
        close_time=None if job.close_ms is None else timestamp(job.close_ms),
        reason=job.reason, errors=list(job.errors))


async def start_batch(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace = request.match_info["namespace"]
    body = v.decode_body(await request.read(), StartBatchRequest)
    found = request.app[FOLLOWER_KEY].cluster_map.namespace(namespace)
    parse(body.query, {} if found is None else found.search_attributes)  # 400 naming query
    job_id = body.job_id or uuid.uuid4().hex
    request_id = body.request_id or uuid.uuid4().hex

    async def start(actor: ShardActor) -> BatchJobAnswer:
        accepted(await actor.execute(StartBatch(
            now_ms=gateway.now_ms(), namespace=namespace, job_id=job_id, query=body.query,
            operation=body.operation, rps=body.rps, request_id=request_id)))
        job = actor.state.batches.get((namespace, job_id))
        if job is None:  # evicted since: it finished and 256 newer jobs came
            raise RaftflowError(ErrorCode.NOT_FOUND, f"batch job {job_id} not found")
        return job_answer(job)

    answer = await gateway.on_leader(request, gateway.shard_of(namespace, job_id), start)
    return respond(answer) if isinstance(answer, Relayed) else _json(answer, 201)


async def describe_batch(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, job_id = request.match_info["namespace"], request.match_info["job_id"]

    async def describe(actor: ShardActor) -> BatchJobAnswer:
        job = await actor.read(lambda s: s.batches.get((namespace, job_id)))
        if job is None:
            raise RaftflowError(ErrorCode.NOT_FOUND, f"batch job {job_id} not found")
        return job_answer(job)

    answer = await gateway.on_leader(request, gateway.shard_of(namespace, job_id), describe)
    return respond(answer) if isinstance(answer, Relayed) else _json(answer)


async def stop_batch(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, job_id = request.match_info["namespace"], request.match_info["job_id"]
    body = v.decode_body(await request.read(), StopBatchRequest)

    async def stop(actor: ShardActor) -> BatchJobAnswer:
        accepted(await actor.execute(StopBatch(
            now_ms=gateway.now_ms(), namespace=namespace, job_id=job_id, reason=body.reason,
            request_id=body.request_id or uuid.uuid4().hex)))
        job = actor.state.batches.get((namespace, job_id))
        if job is None:
            raise RaftflowError(ErrorCode.NOT_FOUND, f"batch job {job_id} not found")
        return job_answer(job)

    answer = await gateway.on_leader(request, gateway.shard_of(namespace, job_id), stop)
    return respond(answer) if isinstance(answer, Relayed) else _json(answer)


async def list_batches(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace = request.match_info["namespace"]
    count = gateway.directory.shard_count
    one = request.query.get("shard")
    shards = range(count) if one is None else [
        v.parse_query_int("shard", one, default=0, minimum=0, maximum=count - 1)]

    async def jobs_of(shard: int) -> list[BatchJobAnswer]:
        async def read(actor: ShardActor) -> list[BatchJobAnswer]:
            jobs = await actor.read(lambda s: [j for j in s.batches.values()
                                               if j.namespace == namespace])
            return [job_answer(j) for j in jobs]

        answer = await gateway.on_leader(
            request, shard, read,
            path_qs=f"/api/v1/namespaces/{quote(namespace, safe='')}/batches?shard={shard}")
        if isinstance(answer, Relayed):
            if answer.status != 200:
                raise RaftflowError(ErrorCode.NOT_LEADER, f"shard {shard} answered "
                                                          f"{answer.status}")
            return msgspec.json.decode(answer.body, type=BatchJobList,
                                       dec_hook=json_dec_hook).jobs
        return answer

    found = await asyncio.gather(*(jobs_of(shard) for shard in shards))
    jobs = sorted((job for part in found for job in part),
                  key=lambda j: (j.start_time, j.job_id), reverse=True)
    return _json(BatchJobList(jobs=jobs))
