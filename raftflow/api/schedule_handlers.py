"""Schedule endpoints: create, describe, list, update, patch (pause, unpause, trigger,
backfill), delete (docs/api.md, docs/internals/schedules.md).

Each call that names a schedule runs on the leader of its shard, shard_for(namespace,
schedule_id) (`Gateway.on_leader`), as a workflow call does. The gateway checks the schedule
with time zones (a 400 naming the field for a zone this node does not know); the core checks
the rest again on apply. Describe and list compute the upcoming times here, with `zoneinfo`,
from the schedule read behind a barrier (the core never reads zones). List asks every shard
(`.../shards/{shard}/schedules`, internal), like the workflow list.
"""

from __future__ import annotations

import hashlib
import uuid
import zoneinfo
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from raftflow.api import validation as v
from raftflow.api.errors import InvalidArgumentError, NotFoundError, accepted
from raftflow.api.routing import Relayed
from raftflow.api.visibility_handlers import _every_shard, _shard
from raftflow.api.workflow_handlers import GATEWAY_KEY
from raftflow.protocol.limits import ID_LENGTH_MAX
from raftflow.protocol.payload import json_enc_hook
from raftflow.protocol.results import Ack, Result
from raftflow.protocol.schedule_commands import (
    CreateSchedule,
    DeleteSchedule,
    PatchSchedule,
    UpdateSchedule,
)
from raftflow.protocol.schedule_http import (
    CreateScheduleRequest,
    PatchScheduleRequest,
    ScheduleCreated,
    ScheduleList,
    UpdateScheduleRequest,
)
from raftflow.protocol.schedules import (
    Schedule,
    ScheduleBackfill,
    ScheduleDescription,
    backfill_problem,
    schedule_problem,
)
from raftflow.shards.actor import ShardActor
from raftflow.shards.core.schedule_ticks import describe, list_entry

SCHEDULES = "/api/v1/namespaces/{namespace}/schedules"
SCHEDULE = SCHEDULES + "/{schedule_id}"
SHARD_SCHEDULES = "/api/v1/namespaces/{namespace}/shards/{shard}/schedules"


def _json(body: msgspec.Struct, status: int = 200) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(body, enc_hook=json_enc_hook),
                        content_type="application/json")


def _answer(answer: msgspec.Struct | Relayed, status: int = 200) -> web.Response:
    if isinstance(answer, Relayed):
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)
    return _json(answer, status)


def _path(request: web.Request) -> tuple[str, str]:
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    schedule_id = v.check_path_id("schedule_id", request.match_info["schedule_id"])
    return namespace, schedule_id


def _check_schedule(schedule: Schedule) -> None:
    problem = schedule_problem(schedule)
    if problem is not None:
        raise InvalidArgumentError(problem.message, f"schedule.{problem.field}")


def _check_backfills(backfills: tuple[ScheduleBackfill, ...]) -> None:
    for index, backfill in enumerate(backfills):
        problem = backfill_problem(backfill)
        if problem is not None:
            raise InvalidArgumentError(problem.message, f"backfills[{index}].{problem.field}")


def _derived(request_id: str, suffix: str) -> str:
    """A second request id derived from `request_id` (a retry derives the same), within
    ID_LENGTH_MAX."""
    derived = f"{request_id}/{suffix}"
    if len(derived) <= ID_LENGTH_MAX:
        return derived
    return hashlib.sha256(derived.encode()).hexdigest()


def _acked(result: Result) -> msgspec.Struct:
    assert isinstance(accepted(result), Ack), result
    return Ack()


async def _write(request: web.Request, namespace: str, schedule_id: str,
                 commands: Callable[[int], list[CreateSchedule | UpdateSchedule | PatchSchedule
                                                | DeleteSchedule]],
                 answer: msgspec.Struct, status: int = 200) -> web.Response:
    """Propose the commands `commands(now_ms)` in order on the schedule's shard; the answer
    once each was accepted."""
    gateway = request.app[GATEWAY_KEY]

    async def write(actor: ShardActor) -> msgspec.Struct:
        for command in commands(gateway.now_ms()):
            _acked(await actor.execute(command))
        return answer

    shard = gateway.shard_of(namespace, schedule_id)
    return _answer(await gateway.on_leader(request, shard, write), status)


async def create_schedule(request: web.Request) -> web.StreamResponse:
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    body = v.decode_body(await request.read(), CreateScheduleRequest)
    _check_schedule(body.schedule)
    _check_backfills(body.backfills)
    request_id = body.request_id or uuid.uuid4().hex

    def commands(now_ms: int) -> list[CreateSchedule | UpdateSchedule | PatchSchedule
                                      | DeleteSchedule]:
        found: list[CreateSchedule | UpdateSchedule | PatchSchedule | DeleteSchedule] = [
            CreateSchedule(now_ms=now_ms, namespace=namespace, schedule_id=body.schedule_id,
                           schedule=body.schedule, request_id=request_id)]
        if body.trigger_immediately or body.backfills:
            found.append(PatchSchedule(
                now_ms=now_ms, namespace=namespace, schedule_id=body.schedule_id,
                request_id=_derived(request_id, "patch"), trigger=body.trigger_immediately,
                backfills=body.backfills))
        return found

    return await _write(request, namespace, body.schedule_id, commands,
                        ScheduleCreated(schedule_id=body.schedule_id), status=201)


async def update_schedule(request: web.Request) -> web.StreamResponse:
    namespace, schedule_id = _path(request)
    body = v.decode_body(await request.read(), UpdateScheduleRequest)
    _check_schedule(body.schedule)
    request_id = body.request_id or uuid.uuid4().hex
    return await _write(request, namespace, schedule_id, lambda now_ms: [UpdateSchedule(
        now_ms=now_ms, namespace=namespace, schedule_id=schedule_id, schedule=body.schedule,
        request_id=request_id)], Ack())


async def patch_schedule(request: web.Request) -> web.StreamResponse:
    namespace, schedule_id = _path(request)
    body = v.decode_body(await request.read(), PatchScheduleRequest)
    if body.pause is not None and body.unpause is not None:
        raise InvalidArgumentError("give at most one of pause and unpause", "unpause")
    _check_backfills(body.backfills)
    request_id = body.request_id or uuid.uuid4().hex
    note = body.pause if body.pause is not None else body.unpause
    trigger = body.trigger_immediately
    return await _write(request, namespace, schedule_id, lambda now_ms: [PatchSchedule(
        now_ms=now_ms, namespace=namespace, schedule_id=schedule_id, request_id=request_id,
        pause=None if note is None else body.pause is not None, note=note or None,
        trigger=trigger is not None, trigger_overlap=None if trigger is None else trigger.overlap,
        backfills=body.backfills)], Ack())


async def delete_schedule(request: web.Request) -> web.StreamResponse:
    namespace, schedule_id = _path(request)
    request_id = v.check_path_id("request_id", request.query.get("request_id") or
                                 uuid.uuid4().hex)
    return await _write(request, namespace, schedule_id, lambda now_ms: [DeleteSchedule(
        now_ms=now_ms, namespace=namespace, schedule_id=schedule_id, request_id=request_id)],
        Ack())


async def describe_schedule(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace, schedule_id = _path(request)

    async def read(actor: ShardActor) -> ScheduleDescription:
        record = await actor.read(lambda s: s.schedules.get((namespace, schedule_id)))
        if record is None:
            raise NotFoundError(f"schedule {schedule_id} not found in namespace {namespace}")
        return describe(record, gateway.now_ms(), zoneinfo.ZoneInfo)

    return _answer(await gateway.on_leader(request, gateway.shard_of(namespace, schedule_id),
                                           read))


def _shard_list(namespace: str, now_ms: Callable[[], int],
                ) -> Callable[[ShardActor], Awaitable[ScheduleList]]:
    async def read(actor: ShardActor) -> ScheduleList:
        records = await actor.read(lambda s: [r for (ns, _), r in s.schedules.items()
                                              if ns == namespace])
        return ScheduleList(schedules=[list_entry(r, now_ms(), zoneinfo.ZoneInfo)
                                       for r in records])
    return read


async def list_shard_schedules(request: web.Request) -> web.StreamResponse:
    """Internal: one shard's schedules of the namespace (asked by `list_schedules`)."""
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    answer = await gateway.on_leader(request, _shard(request, gateway),
                                     _shard_list(namespace, gateway.now_ms))
    return _answer(answer)


async def list_schedules(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    namespace = v.check_path_id("namespace", request.match_info["namespace"])
    parts = await _every_shard(request, gateway, namespace, "schedules",
                               _shard_list(namespace, gateway.now_ms), ScheduleList)
    entries = sorted((e for part in parts for e in part.schedules), key=lambda e: e.schedule_id)
    return _json(ScheduleList(schedules=entries))
