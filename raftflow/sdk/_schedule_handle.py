"""`ScheduleHandle` and the client's schedule calls (temporalio's names): create, list,
describe, update, pause, unpause, trigger, backfill, delete over the schedule routes
(docs/api.md). Every write carries a request id chosen once per call, so the transport's
retries on another node are safe.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from urllib.parse import quote

from raftflow.protocol.schedule_http import (
    CreateScheduleRequest,
    PatchScheduleRequest,
    ScheduleList,
    TriggerRequest,
    UpdateScheduleRequest,
)
from raftflow.protocol.schedules import ScheduleDescription as WireDescription
from raftflow.sdk import errors
from raftflow.sdk._cluster_connection import ClusterConnection
from raftflow.sdk._schedule_wire import (
    backfill_to_wire,
    description_from_wire,
    list_description_from_wire,
    overlap_to_wire,
    schedule_to_wire,
)
from raftflow.sdk._wire_answers import decode_answer
from raftflow.sdk.schedules import (
    Schedule,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleListDescription,
    ScheduleOverlapPolicy,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

__all__ = ["ScheduleAlreadyRunningError", "ScheduleHandle"]

Updater = Callable[[ScheduleUpdateInput],
                   ScheduleUpdate | None | Awaitable[ScheduleUpdate | None]]


class ScheduleAlreadyRunningError(Exception):
    """A schedule with this id exists in the namespace (temporalio's name)."""

    def __init__(self, schedule_id: str, message: str = "") -> None:
        super().__init__(message or f"schedule {schedule_id!r} already exists")
        self.schedule_id = schedule_id


def schedules_path(connection: ClusterConnection, schedule_id: str | None = None,
                   suffix: str = "") -> str:
    path = f"/api/v1/namespaces/{quote(connection.namespace, safe='')}/schedules"
    if schedule_id is not None:
        path += f"/{quote(schedule_id, safe='')}"
    return path + suffix


async def create_schedule(connection: ClusterConnection, schedule_id: str, schedule: Schedule,
                          *, trigger_immediately: bool = False,
                          backfill: Sequence[ScheduleBackfill] = (),
                          request_id: str | None = None) -> ScheduleHandle:
    body = CreateScheduleRequest(
        schedule_id=schedule_id, schedule=await schedule_to_wire(schedule, connection.payloads),
        request_id=request_id or uuid.uuid4().hex, trigger_immediately=trigger_immediately,
        backfills=tuple(backfill_to_wire(b) for b in backfill))
    try:
        await connection.transport.call("POST", schedules_path(connection), body=body)
    except errors.RPCError as error:
        if error.code == "schedule_already_exists":
            raise ScheduleAlreadyRunningError(schedule_id, error.message) from error
        raise
    return ScheduleHandle(connection, schedule_id)


async def list_schedules(connection: ClusterConnection) -> AsyncIterator[ScheduleListDescription]:
    path = schedules_path(connection)
    answer = await connection.transport.call("GET", path)
    listed = decode_answer(answer, ScheduleList, f"GET {path}")
    for entry in listed.schedules:
        yield list_description_from_wire(entry)


class ScheduleHandle:
    """A schedule of the client's namespace, by id (`Client.create_schedule`,
    `Client.get_schedule_handle`)."""

    def __init__(self, connection: ClusterConnection, id: str) -> None:
        self._connection = connection
        self.id = id

    def __repr__(self) -> str:
        return f"ScheduleHandle(id={self.id!r})"

    def _path(self, suffix: str = "") -> str:
        return schedules_path(self._connection, self.id, suffix)

    async def describe(self) -> ScheduleDescription:
        """The schedule, its counters, running and recent actions and next action times.
        Raises `RPCError` (status 404) if it does not exist."""
        path = self._path()
        answer = await self._connection.transport.call("GET", path)
        wire = decode_answer(answer, WireDescription, f"GET {path}")
        return await description_from_wire(wire, self._connection.payloads)

    async def update(self, updater: Updater) -> None:
        """Replace the schedule with what `updater` returns given its description (None: leave
        it as it is). Counters, running actions and backfills go on."""
        found = updater(ScheduleUpdateInput(description=await self.describe()))
        update = await found if inspect.isawaitable(found) else found
        if update is None:
            return
        body = UpdateScheduleRequest(
            schedule=await schedule_to_wire(update.schedule, self._connection.payloads),
            request_id=uuid.uuid4().hex)
        await self._connection.transport.call("POST", self._path("/update"), body=body)

    async def pause(self, *, note: str | None = None) -> None:
        await self._patch(PatchScheduleRequest(pause=note or "Paused via Python SDK"))

    async def unpause(self, *, note: str | None = None) -> None:
        await self._patch(PatchScheduleRequest(unpause=note or "Unpaused via Python SDK"))

    async def trigger(self, *, overlap: ScheduleOverlapPolicy | None = None) -> None:
        """Take an action now (always, even when paused or out of actions)."""
        await self._patch(PatchScheduleRequest(trigger_immediately=TriggerRequest(
            overlap=None if overlap is None else overlap_to_wire(overlap))))

    async def backfill(self, *backfill: ScheduleBackfill) -> None:
        """Take the actions of each range now, as if each had been due."""
        if not backfill:
            raise ValueError("give at least one ScheduleBackfill")
        await self._patch(PatchScheduleRequest(
            backfills=tuple(backfill_to_wire(b) for b in backfill)))

    async def delete(self) -> None:
        """Delete the schedule; the runs it started go on."""
        await self._connection.transport.call("DELETE", self._path(),
                                              params={"request_id": uuid.uuid4().hex})

    async def _patch(self, body: PatchScheduleRequest) -> None:
        body = PatchScheduleRequest(
            pause=body.pause, unpause=body.unpause,
            trigger_immediately=body.trigger_immediately, backfills=body.backfills,
            request_id=uuid.uuid4().hex)
        await self._connection.transport.call("POST", self._path("/patch"), body=body)
