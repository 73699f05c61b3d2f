"""What the leader's shell proposes for a schedule, and what describe and list show: pure
functions of a schedule record, the clock reading and a time zone resolver.

Theory of operation (docs/internals/schedules.md, "who resolves time zones"). These functions
read zone rules through `zone_of`, so they are never called while applying a command: the
shell (api/schedule_ticker.py, api/schedule_handlers.py) calls them with `zoneinfo.ZoneInfo`
and proposes or answers with the numbers. `plan_tick` is one catch-up step
(`schedule_catchup.due_times`) plus one step of the first waiting backfill, named by the
record's revision and cursors so that apply can tell a stale plan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo

from raftflow.protocol.schedule_commands import BackfillTick, ScheduleDueTime, ScheduleTick
from raftflow.protocol.schedules import (
    SCHEDULE_NEXT_TIMES_SHOWN,
    ScheduleActionRun,
    ScheduleDescription,
    ScheduleInfo,
    ScheduleListEntry,
)
from raftflow.shards.core.schedule_catchup import backfill_times, due_times
from raftflow.shards.core.schedule_records import ScheduleRecord
from raftflow.shards.core.schedule_times import compile_spec, next_nominal_times

ZoneOf = Callable[[str], tzinfo]


def plan_tick(record: ScheduleRecord, now_ms: int, zone_of: ZoneOf) -> ScheduleTick | None:
    """The tick to propose now, or None if the schedule needs none yet."""
    if not record.needs_step(now_ms):
        return None
    spec = compile_spec(record.schedule.spec, zone_of)
    step = due_times(spec, record.schedule_id, processed_through_ms=record.processed_through_ms,
                     now_ms=now_ms, catchup_window_ms=record.schedule.policies.catchup_window_ms)
    backfill = None
    if record.backfills:
        first = record.backfills[0]
        walked = backfill_times(spec, start_at_ms=first.start_at_ms, end_at_ms=first.end_at_ms,
                                processed_through_ms=first.processed_through_ms)
        backfill = BackfillTick(backfill_id=first.backfill_id,
                                from_cursor_ms=first.processed_through_ms,
                                nominal_times=walked.nominal_times,
                                processed_through_ms=walked.processed_through_ms,
                                done=walked.done)
    return ScheduleTick(
        now_ms=now_ms, namespace=record.namespace, schedule_id=record.schedule_id,
        revision=record.revision, from_cursor_ms=record.processed_through_ms,
        processed_through_ms=step.processed_through_ms,
        due=tuple(ScheduleDueTime(nominal_ms=d.nominal_ms, actual_ms=d.actual_ms)
                  for d in step.due),
        missed=step.missed, next_wake_ms=step.next_wake_ms, backfill=backfill)


def next_times(record: ScheduleRecord, now_ms: int, zone_of: ZoneOf) -> tuple[int, ...]:
    spec = compile_spec(record.schedule.spec, zone_of)
    return next_nominal_times(spec, max(now_ms, record.processed_through_ms),
                              SCHEDULE_NEXT_TIMES_SHOWN)


def describe(record: ScheduleRecord, now_ms: int, zone_of: ZoneOf) -> ScheduleDescription:
    return ScheduleDescription(
        schedule_id=record.schedule_id, schedule=record.schedule, info=ScheduleInfo(
            num_actions=record.num_actions,
            num_actions_missed_catchup_window=record.num_missed,
            num_actions_skipped_overlap=record.num_skipped,
            running_actions=tuple(ScheduleActionRun(workflow_id=w, run_id=r)
                                  for w, r in record.running.items()),
            recent_actions=tuple(record.recent_actions),
            next_action_times_ms=next_times(record, now_ms, zone_of),
            created_at_ms=record.created_at_ms,
            last_updated_at_ms=record.last_updated_at_ms))


def list_entry(record: ScheduleRecord, now_ms: int, zone_of: ZoneOf) -> ScheduleListEntry:
    schedule = record.schedule
    return ScheduleListEntry(
        schedule_id=record.schedule_id, workflow_type=schedule.action.workflow_type,
        spec=schedule.spec, note=schedule.state.note, paused=schedule.state.paused,
        recent_actions=tuple(record.recent_actions),
        next_action_times_ms=next_times(record, now_ms, zone_of))
