"""The log commands of schedules (shards/core/on_schedules.py applies them).

Theory of operation (docs/internals/schedules.md). A client's create, update, patch (pause,
unpause, note, trigger now, backfill) and delete are commands on the schedule's shard
(shard_for(namespace, schedule_id)), idempotent by request id. The schedule's times depend on
time zone rules, which a replica must never read while applying, so the leader's shell
(api/schedule_ticker.py) computes each step of a schedule with `zoneinfo` and proposes its
numbers as a `ScheduleTick`, exactly as it proposes `now_ms`. A tick names the revision and
cursor it was computed from: a stale one (the schedule was updated or stepped meanwhile)
changes nothing. Same wire contract as commands.py.
"""

from __future__ import annotations

import msgspec

from raftflow.protocol.schedules import OverlapPolicy, Schedule, ScheduleBackfill


class _Command(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class CreateSchedule(_Command, frozen=True, tag="CreateSchedule", tag_field="command"):
    now_ms: int
    namespace: str
    schedule_id: str
    schedule: Schedule
    request_id: str


class UpdateSchedule(_Command, frozen=True, tag="UpdateSchedule", tag_field="command"):
    """Replace the schedule's spec, action, policies and state; its counters, running and
    buffered actions and backfills stay (the new spec acts only on times after `now_ms`)."""

    now_ms: int
    namespace: str
    schedule_id: str
    schedule: Schedule
    request_id: str


class PatchSchedule(_Command, frozen=True, tag="PatchSchedule", tag_field="command"):
    """Temporal's patch: pause or unpause (with a note), trigger an action now (`trigger`,
    with `trigger_overlap` or the schedule's policy), and queue backfills."""

    now_ms: int
    namespace: str
    schedule_id: str
    request_id: str
    pause: bool | None = None
    note: str | None = None
    trigger: bool = False
    trigger_overlap: OverlapPolicy | None = None
    backfills: tuple[ScheduleBackfill, ...] = ()


class DeleteSchedule(_Command, frozen=True, tag="DeleteSchedule", tag_field="command"):
    """Forget the schedule; runs it started keep running (as in Temporal)."""

    now_ms: int
    namespace: str
    schedule_id: str
    request_id: str


class ScheduleDueTime(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    nominal_ms: int
    actual_ms: int


class BackfillTick(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One step of the schedule's first backfill (`backfill_id`), from its cursor
    `from_cursor_ms` (None: not started): the nominal times to take and the new cursor."""

    backfill_id: int
    from_cursor_ms: int | None
    nominal_times: tuple[int, ...]
    processed_through_ms: int
    done: bool


class ScheduleTick(_Command, frozen=True, tag="ScheduleTick", tag_field="command"):
    """One catch-up step of a schedule as the leader's shell computed it
    (`schedule_catchup.due_times`), and optionally one backfill step. Applied only if the
    schedule still has `revision` and the cursor `from_cursor_ms`."""

    now_ms: int
    namespace: str
    schedule_id: str
    revision: int
    from_cursor_ms: int
    processed_through_ms: int
    due: tuple[ScheduleDueTime, ...] = ()
    missed: int = 0
    next_wake_ms: int | None = None
    backfill: BackfillTick | None = None


ScheduleCommand = CreateSchedule | UpdateSchedule | PatchSchedule | DeleteSchedule | ScheduleTick
