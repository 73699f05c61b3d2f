"""The client's schedule types <-> their wire forms (`raftflow.protocol.schedules`).

To the wire, a schedule is checked with the server's own rules (`schedule_problem`), so a bad
cron expression or time zone is a ValueError naming the field before anything is sent; the
action's arguments go through the client's payload codec. From the wire, datetimes are UTC and
the arguments are decoded back into their JSON values. Search attribute values come back in
their JSON form (a datetime as its RFC 3339 string).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from raftflow.protocol import commands as protocol
from raftflow.protocol import schedules as wire
from raftflow.protocol.history_json import payload_json
from raftflow.protocol.payload import EMPTY
from raftflow.protocol.schedule_calendars import CalendarSpec
from raftflow.protocol.schedule_calendars import ScheduleRange as WireRange
from raftflow.sdk._replay.commands import payload
from raftflow.sdk._search_attribute_values import json_attributes
from raftflow.sdk._wire_payloads import PayloadShape, WirePayloads
from raftflow.sdk.retry import RetryPolicy
from raftflow.sdk.schedules import (
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleInfo,
    ScheduleIntervalSpec,
    ScheduleListActionStartWorkflow,
    ScheduleListDescription,
    ScheduleListInfo,
    ScheduleListSchedule,
    ScheduleListState,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_OVERLAPS = {
    ScheduleOverlapPolicy.SKIP: wire.OverlapPolicy.SKIP,
    ScheduleOverlapPolicy.BUFFER_ONE: wire.OverlapPolicy.BUFFER_ONE,
    ScheduleOverlapPolicy.BUFFER_ALL: wire.OverlapPolicy.BUFFER_ALL,
    ScheduleOverlapPolicy.CANCEL_OTHER: wire.OverlapPolicy.CANCEL_OTHER,
    ScheduleOverlapPolicy.TERMINATE_OTHER: wire.OverlapPolicy.TERMINATE_OTHER,
    ScheduleOverlapPolicy.ALLOW_ALL: wire.OverlapPolicy.ALLOW_ALL,
}
_OVERLAPS_BACK = {value: key for key, value in _OVERLAPS.items()}
assert len(_OVERLAPS) == len(ScheduleOverlapPolicy) == len(wire.OverlapPolicy)


def epoch_ms(moment: datetime, what: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TypeError(f"{what} needs a time zone (datetime.now(UTC), not datetime.now())")
    return (moment - _EPOCH) // _ONE_MS


def moment_of(ms: int) -> datetime:
    return _EPOCH + ms * _ONE_MS


def _ms(duration: timedelta) -> int:
    return round(duration / _ONE_MS)


def overlap_to_wire(policy: ScheduleOverlapPolicy) -> wire.OverlapPolicy:
    return _OVERLAPS[ScheduleOverlapPolicy(policy)]


def overlap_from_wire(policy: wire.OverlapPolicy) -> ScheduleOverlapPolicy:
    return _OVERLAPS_BACK[policy]


def _calendar_to_wire(spec: ScheduleCalendarSpec) -> CalendarSpec:
    def ranges(values: Sequence[ScheduleRange]) -> tuple[WireRange, ...]:
        return tuple(WireRange(start=r.start, end=r.end, step=r.step) for r in values)
    return CalendarSpec(second=ranges(spec.second), minute=ranges(spec.minute),
                        hour=ranges(spec.hour), day_of_month=ranges(spec.day_of_month),
                        month=ranges(spec.month), year=ranges(spec.year),
                        day_of_week=ranges(spec.day_of_week), comment=spec.comment or "")


def _calendar_from_wire(spec: CalendarSpec) -> ScheduleCalendarSpec:
    def ranges(values: tuple[WireRange, ...]) -> tuple[ScheduleRange, ...]:
        return tuple(ScheduleRange(r.start, r.end, r.step) for r in values)
    return ScheduleCalendarSpec(second=ranges(spec.second), minute=ranges(spec.minute),
                                hour=ranges(spec.hour), day_of_month=ranges(spec.day_of_month),
                                month=ranges(spec.month), year=ranges(spec.year),
                                day_of_week=ranges(spec.day_of_week),
                                comment=spec.comment or None)


def spec_to_wire(spec: ScheduleSpec) -> wire.ScheduleSpec:
    return wire.ScheduleSpec(
        calendars=tuple(_calendar_to_wire(c) for c in spec.calendars),
        skip_calendars=tuple(_calendar_to_wire(c) for c in spec.skip
                             if isinstance(c, ScheduleCalendarSpec)),
        cron_expressions=tuple(spec.cron_expressions),
        intervals=tuple(wire.IntervalSpec(every_ms=_ms(i.every),
                                          offset_ms=0 if i.offset is None else _ms(i.offset))
                        for i in spec.intervals),
        skip=tuple(c for c in spec.skip if isinstance(c, str)),
        start_at_ms=None if spec.start_at is None else epoch_ms(spec.start_at, "start_at"),
        end_at_ms=None if spec.end_at is None else epoch_ms(spec.end_at, "end_at"),
        jitter_ms=0 if spec.jitter is None else _ms(spec.jitter),
        time_zone_name=spec.time_zone_name or "")


def spec_from_wire(spec: wire.ScheduleSpec) -> ScheduleSpec:
    return ScheduleSpec(
        calendars=[_calendar_from_wire(c) for c in spec.calendars],
        cron_expressions=list(spec.cron_expressions),
        intervals=[ScheduleIntervalSpec(every=timedelta(milliseconds=i.every_ms),
                                        offset=(timedelta(milliseconds=i.offset_ms)
                                                if i.offset_ms else None))
                   for i in spec.intervals],
        skip=[*(_calendar_from_wire(c) for c in spec.skip_calendars), *spec.skip],
        start_at=None if spec.start_at_ms is None else moment_of(spec.start_at_ms),
        end_at=None if spec.end_at_ms is None else moment_of(spec.end_at_ms),
        jitter=timedelta(milliseconds=spec.jitter_ms) if spec.jitter_ms else None,
        time_zone_name=spec.time_zone_name or None)


async def schedule_to_wire(schedule: Schedule, payloads: WirePayloads) -> wire.Schedule:
    """The wire form of `schedule`, its action's arguments encoded through `payloads`.

    Raises:
        ValueError: naming the field, for a schedule the server would refuse.
        TypeError: for a naive datetime or arguments JSON cannot carry.
    """
    action = schedule.action
    what = f"input of scheduled workflow {action.workflow}"
    encoded = await payloads.encode(payload(list(action.args), what), PayloadShape.ARGS, what)
    result = wire.Schedule(
        spec=spec_to_wire(schedule.spec),
        action=wire.ScheduleStartWorkflowAction(
            workflow_id=action.id, workflow_type=action.workflow, task_queue=action.task_queue,
            input=encoded,
            execution_timeout_ms=_optional_ms(action.execution_timeout),
            run_timeout_ms=_optional_ms(action.run_timeout),
            task_timeout_ms=_optional_ms(action.task_timeout),
            retry_policy=None if action.retry_policy is None else action.retry_policy.to_protocol(),
            search_attributes=json_attributes(action.search_attributes or {})),
        policies=wire.SchedulePolicies(
            overlap=overlap_to_wire(schedule.policy.overlap),
            catchup_window_ms=_ms(schedule.policy.catchup_window),
            pause_on_failure=schedule.policy.pause_on_failure),
        state=wire.ScheduleState(
            paused=schedule.state.paused, note=schedule.state.note or "",
            limited_actions=schedule.state.limited_actions,
            remaining_actions=schedule.state.remaining_actions))
    problem = wire.schedule_problem(result)
    if problem is not None:
        raise ValueError(problem.message)
    return result


async def schedule_from_wire(schedule: wire.Schedule, payloads: WirePayloads) -> Schedule:
    action = schedule.action
    what = f"input of scheduled workflow {action.workflow_type}"
    plain = await payloads.decode(action.input, what) if action.input else EMPTY
    args = payload_json(plain)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            action.workflow_type, args=args if isinstance(args, list) else [],
            id=action.workflow_id, task_queue=action.task_queue,
            execution_timeout=_optional_duration(action.execution_timeout_ms),
            run_timeout=_optional_duration(action.run_timeout_ms),
            task_timeout=_optional_duration(action.task_timeout_ms),
            retry_policy=_retry_from_wire(action.retry_policy),
            search_attributes=dict(action.search_attributes) or None),
        spec=spec_from_wire(schedule.spec),
        policy=SchedulePolicy(overlap=overlap_from_wire(schedule.policies.overlap),
                              catchup_window=timedelta(
                                  milliseconds=schedule.policies.catchup_window_ms),
                              pause_on_failure=schedule.policies.pause_on_failure),
        state=ScheduleState(note=schedule.state.note or None, paused=schedule.state.paused,
                            limited_actions=schedule.state.limited_actions,
                            remaining_actions=schedule.state.remaining_actions))


def backfill_to_wire(backfill: ScheduleBackfill) -> wire.ScheduleBackfill:
    """Raises ValueError (naming the field) for a backfill the server would refuse."""
    result = wire.ScheduleBackfill(
        start_at_ms=epoch_ms(backfill.start_at, "start_at"),
        end_at_ms=epoch_ms(backfill.end_at, "end_at"),
        overlap=None if backfill.overlap is None else overlap_to_wire(backfill.overlap))
    problem = wire.backfill_problem(result)
    if problem is not None:
        raise ValueError(problem.message)
    return result


async def description_from_wire(description: wire.ScheduleDescription,
                                payloads: WirePayloads) -> ScheduleDescription:
    info = description.info
    return ScheduleDescription(
        id=description.schedule_id,
        schedule=await schedule_from_wire(description.schedule, payloads),
        info=ScheduleInfo(
            num_actions=info.num_actions,
            num_actions_missed_catchup_window=info.num_actions_missed_catchup_window,
            num_actions_skipped_overlap=info.num_actions_skipped_overlap,
            running_actions=[_run_from_wire(r) for r in info.running_actions],
            recent_actions=[_result_from_wire(r) for r in info.recent_actions],
            next_action_times=[moment_of(t) for t in info.next_action_times_ms],
            created_at=moment_of(info.created_at_ms),
            last_updated_at=(None if info.last_updated_at_ms is None
                             else moment_of(info.last_updated_at_ms))))


def list_description_from_wire(entry: wire.ScheduleListEntry) -> ScheduleListDescription:
    return ScheduleListDescription(
        id=entry.schedule_id,
        schedule=ScheduleListSchedule(
            action=ScheduleListActionStartWorkflow(workflow=entry.workflow_type),
            spec=spec_from_wire(entry.spec),
            state=ScheduleListState(note=entry.note or None, paused=entry.paused)),
        info=ScheduleListInfo(
            recent_actions=[_result_from_wire(r) for r in entry.recent_actions],
            next_action_times=[moment_of(t) for t in entry.next_action_times_ms]))


def _run_from_wire(run: wire.ScheduleActionRun) -> ScheduleActionExecutionStartWorkflow:
    return ScheduleActionExecutionStartWorkflow(workflow_id=run.workflow_id,
                                                first_execution_run_id=run.run_id)


def _result_from_wire(result: wire.ScheduleActionResult) -> ScheduleActionResult:
    return ScheduleActionResult(scheduled_at=moment_of(result.scheduled_at_ms),
                                started_at=moment_of(result.started_at_ms),
                                action=_run_from_wire(result.action))


def _optional_ms(duration: timedelta | None) -> int | None:
    return None if duration is None else _ms(duration)


def _optional_duration(ms: int | None) -> timedelta | None:
    return None if ms is None else timedelta(milliseconds=ms)


def _retry_from_wire(policy: protocol.RetryPolicy | None) -> RetryPolicy | None:
    return None if policy is None else RetryPolicy.from_protocol(policy)
