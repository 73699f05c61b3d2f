"""Goal: a schedule (and a backfill) the engine cannot run is refused with a message naming the
field and the rule, by the one function the gateway, the SDK and the core share.

Method: a table of bad schedules, each with the field path and words its refusal must carry.
"""

from __future__ import annotations

import msgspec
import pytest

from raftflow.protocol.schedule_calendars import CalendarSpec
from raftflow.protocol.schedule_calendars import ScheduleRange as R
from raftflow.protocol.schedules import (
    IntervalSpec,
    Schedule,
    ScheduleBackfill,
    SchedulePolicies,
    ScheduleSpec,
    ScheduleStartWorkflowAction,
    backfill_problem,
    schedule_problem,
)

BERLIN = "Europe/Berlin"


ACTION = ScheduleStartWorkflowAction(workflow_id="w", workflow_type="T", task_queue="q")


@pytest.mark.parametrize(("spec", "policies", "field", "words"), [
    (ScheduleSpec(), None, "spec", "at least one calendar, cron expression or interval"),
    (ScheduleSpec(calendars=(CalendarSpec(hour=(R(start=24),)),)), None,
     "spec.calendars[0].hour[0].start", "must be in 0-23"),
    (ScheduleSpec(calendars=(CalendarSpec(minute=()),)), None, "spec.calendars[0].minute",
     "at least one range"),
    (ScheduleSpec(cron_expressions=("@daily",), skip_calendars=(CalendarSpec(
        day_of_week=(R(start=0, end=7),)),)), None, "spec.skip_calendars[0].day_of_week[0].end",
     "must be in 0-6"),
    (ScheduleSpec(calendars=(CalendarSpec(month=(R(start=2),), day_of_month=(R(start=30),)),)),
     None, "spec.calendars[0]", "never fires"),
    (ScheduleSpec(cron_expressions=("61 * * * *",)), None, "spec.cron_expressions[0]",
     "minute field '61'"),
    (ScheduleSpec(cron_expressions=("@daily",), skip=("x * * * *",)), None, "spec.skip[0]",
     "not a number"),
    (ScheduleSpec(cron_expressions=("0 0 30 2 *",)), None, "spec.cron_expressions[0]",
     "never fires"),
    (ScheduleSpec(cron_expressions=("@daily",), time_zone_name="Mars/Olympus"), None,
     "spec.time_zone_name", "unknown time zone 'Mars/Olympus'"),
    (ScheduleSpec(cron_expressions=("CRON_TZ=Nowhere/City @daily",)), None,
     "spec.cron_expressions[0]", "unknown time zone 'Nowhere/City'"),
    (ScheduleSpec(intervals=(IntervalSpec(every_ms=500),)), None, "spec.intervals[0].every_ms",
     "must be >= 1000"),
    (ScheduleSpec(intervals=(IntervalSpec(every_ms=1_500),)), None, "spec.intervals[0]",
     "whole seconds"),
    (ScheduleSpec(intervals=(IntervalSpec(every_ms=60_000, offset_ms=60_000),)), None,
     "spec.intervals[0].offset_ms", "less than every_ms"),
    (ScheduleSpec(cron_expressions=("@daily",), start_at_ms=10_000, end_at_ms=5_000), None,
     "spec.end_at_ms", "must not be before start_at_ms"),
    (ScheduleSpec(cron_expressions=("@daily",) * 33), None, "spec.cron_expressions",
     "at most 32"),
    (ScheduleSpec(cron_expressions=("@daily",), jitter_ms=-1), None, "spec.jitter_ms",
     "must be >= 0"),
    (ScheduleSpec(cron_expressions=("@daily",)), SchedulePolicies(catchup_window_ms=1_000),
     "policies.catchup_window_ms", "must be >= 10000"),
])
def test_bad_schedules_are_refused_naming_the_field(spec: ScheduleSpec,
                                                   policies: SchedulePolicies | None,
                                                   field: str, words: str) -> None:
    schedule = Schedule(spec=spec, action=ACTION, policies=policies or SchedulePolicies())
    problem = schedule_problem(schedule)
    assert problem is not None and problem.field == field, problem
    assert words in problem.message and problem.message.startswith(field), problem.message


def test_action_bounds_are_checked() -> None:
    slow_task = msgspec.structs.replace(ACTION, task_timeout_ms=121_000)
    problem = schedule_problem(Schedule(spec=ScheduleSpec(cron_expressions=("@daily",)),
                                        action=slow_task))
    assert problem is not None and problem.field == "action.task_timeout_ms"
    long_id = msgspec.structs.replace(ACTION, workflow_id="w" * 990)
    problem = schedule_problem(Schedule(spec=ScheduleSpec(cron_expressions=("@daily",)),
                                        action=long_id))
    assert problem is not None and "nominal time" in problem.message


def test_good_schedules_pass_and_the_core_may_skip_zone_lookups() -> None:
    good = Schedule(spec=ScheduleSpec(cron_expressions=("*/1 * * * * *", "@weekly"),
                                      intervals=(IntervalSpec(every_ms=90_000, offset_ms=1_000),),
                                      time_zone_name=BERLIN), action=ACTION)
    assert schedule_problem(good) is None
    unknown_zone = Schedule(spec=ScheduleSpec(cron_expressions=("@daily",),
                                              time_zone_name="Mars/Olympus"), action=ACTION)
    assert schedule_problem(unknown_zone, check_time_zones=False) is None


def test_backfill_bounds() -> None:
    assert backfill_problem(ScheduleBackfill(start_at_ms=0, end_at_ms=10)) is None
    refused = backfill_problem(ScheduleBackfill(start_at_ms=10, end_at_ms=0))
    assert refused is not None and refused.field == "end_at_ms"
    too_long = backfill_problem(ScheduleBackfill(start_at_ms=0, end_at_ms=400 * 86_400_000))
    assert too_long is not None and "SCHEDULE_BACKFILL_SPAN_MS_MAX" in too_long.message
