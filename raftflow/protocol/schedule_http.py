"""Request bodies and answers of the schedule routes (api/schedule_handlers.py, docs/api.md).

Same contract as http_bodies.py / http_answers.py: strict JSON into these structs, unknown
fields refused, bounds as edge rules checked by the gateway; payload fields (the action's
input) are JSON values. Times are milliseconds since the epoch, UTC.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol.schedules import (
    OverlapPolicy,
    Schedule,
    ScheduleBackfill,
    ScheduleListEntry,
)
from raftflow.protocol.workflow_commands import Id, Message


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CreateScheduleRequest(_Body, frozen=True):
    """`trigger_immediately` takes one action at once; `backfills` are queued at creation
    (Temporal's create options). `request_id` makes a retry safe (a uuid when left out)."""

    schedule_id: Id
    schedule: Schedule
    request_id: Id | None = None
    trigger_immediately: bool = False
    backfills: tuple[ScheduleBackfill, ...] = ()


class UpdateScheduleRequest(_Body, frozen=True):
    schedule: Schedule
    request_id: Id | None = None


class TriggerRequest(_Body, frozen=True):
    overlap: OverlapPolicy | None = None  # None: the schedule's policy


class PatchScheduleRequest(_Body, frozen=True):
    """Temporal's patch: `pause` / `unpause` carry the note to set ("" leaves the note as it
    is); give at most one of them."""

    pause: Message | None = None
    unpause: Message | None = None
    trigger_immediately: TriggerRequest | None = None
    backfills: tuple[ScheduleBackfill, ...] = ()
    request_id: Id | None = None


class ScheduleCreated(msgspec.Struct, frozen=True, kw_only=True):
    schedule_id: str


class ScheduleList(msgspec.Struct, frozen=True, kw_only=True):
    """`GET .../schedules`: every schedule of the namespace, by schedule id."""

    schedules: list[ScheduleListEntry]
