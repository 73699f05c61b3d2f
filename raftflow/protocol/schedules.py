"""Schedules on the wire: what a schedule is (spec, action, policies, state), its bounds, and
the one function that says whether a schedule is acceptable.

Theory of operation. A schedule (Temporal's) takes an action, starting a workflow, at the times
its `ScheduleSpec` names: the union of its cron expressions and intervals, within
[start_at_ms, end_at_ms], minus the times its `skip` expressions match, each delayed by a
deterministic jitter. `SchedulePolicies` say what happens when an action is due while the
previous one still runs (`OverlapPolicy`), how late after downtime a due action is still taken
(the catch-up window) and whether a failed action pauses the schedule. `ScheduleState` is what a
user changes at run time: paused, a note, and an optional budget of remaining actions.

Same wire contract as `commands.py`: frozen msgspec Structs, fields added only with a default,
bounds as edge rules (`edge_rules.py`) checked by the gateway, never on log decoding. Times are
integer milliseconds since the epoch (UTC), durations milliseconds. Rules no edge rule can say
(a cron expression's grammar, a known time zone, start before end) are checked by
`schedule_problem`, which the gateway and the SDK both run; the shard core runs it again on
apply for the rules that do not depend on the node (every rule but the time zone's existence).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import msgspec

from raftflow.protocol.edge_rules import first_violation, rule
from raftflow.protocol.limits import (
    DURATION_MS_MAX,
    ID_LENGTH_MAX,
    MESSAGE_LENGTH_MAX,
    WORKFLOW_TASK_TIMEOUT_MS_MAX,
)
from raftflow.protocol.payload import PayloadField
from raftflow.protocol.rfc3339 import DATETIME_MS_MAX
from raftflow.protocol.schedule_calendars import (
    CalendarSpec,
    calendar_expression,
    calendar_problem,
)
from raftflow.protocol.schedule_cron import (
    CRON_EXPRESSION_LENGTH_MAX,
    CronError,
    next_wall_match,
    parse_cron,
)
from raftflow.protocol.search_attributes import SEARCH_ATTRIBUTES_PER_RUN_MAX, JsonAttributeValue
from raftflow.protocol.workflow_commands import NO_PAYLOAD, DurationMs, Id, RetryPolicy

# --- Limits ---------------------------------------------------------------------------------------

# Cron expressions (and skip expressions, calendars, skip calendars) per spec: each is matched on every fire-time search,
# so the search cost grows with their number; Temporal users rarely need more than a handful.
SCHEDULE_CRON_EXPRESSIONS_MAX = 32
# Intervals per spec, same reasoning.
SCHEDULE_INTERVALS_MAX = 32
# Shortest interval and the grain of intervals and offsets: action ids name their nominal time
# to the second (as Temporal's do), so two actions of one schedule never share a second.
SCHEDULE_INTERVAL_MS_MIN = 1_000
# Longest jitter: a delay beyond a day is a different schedule, not jitter.
SCHEDULE_JITTER_MS_MAX = 24 * 3_600_000
# Shortest catch-up window (Temporal's minimum): a window below the time a leader change takes
# would drop actions on every failover.
SCHEDULE_CATCHUP_WINDOW_MS_MIN = 10_000
# Temporal's default catch-up window: after downtime, take every action of the last year.
SCHEDULE_CATCHUP_WINDOW_MS_DEFAULT = 365 * 24 * 3_600_000
# Actions waiting for the running one to close (BUFFER_ALL, backfills): each is a record in the
# schedule's state on every replica; Temporal bounds its buffer at the same size.
SCHEDULE_BUFFERED_ACTIONS_MAX = 1_000
# Longest backfill range: the core walks it in bounded steps, but a range beyond this is a
# mistake (a year of every-second times), not a backfill.
SCHEDULE_BACKFILL_SPAN_MS_MAX = 366 * 24 * 3_600_000
# Characters of a time zone name (the longest IANA name is ~32).
TIME_ZONE_NAME_LENGTH_MAX = 64
# Characters of a schedule's note: for people, like a failure's message.
SCHEDULE_NOTE_LENGTH_MAX = MESSAGE_LENGTH_MAX

# Actions a schedule remembers and describe shows (Temporal keeps the last 10).
SCHEDULE_RECENT_ACTIONS_MAX = 10
# Upcoming times describe and list show (Temporal shows 10).
SCHEDULE_NEXT_TIMES_SHOWN = 10

assert SCHEDULE_CATCHUP_WINDOW_MS_MIN <= SCHEDULE_CATCHUP_WINDOW_MS_DEFAULT <= DURATION_MS_MAX
assert SCHEDULE_JITTER_MS_MAX <= DURATION_MS_MAX and SCHEDULE_BACKFILL_SPAN_MS_MAX <= DURATION_MS_MAX

# Wall-clock seconds of 2000-01-01 and 2028-12-31T23:59:59: weekdays and dates repeat every 28
# years in 1901-2099, so an expression that fires at all fires within this span.
_CALENDAR_CYCLE_WALL_S = (946_684_800, 1_861_919_999)

# --- Field types ----------------------------------------------------------------------------------

CronText = Annotated[str, rule(min_length=1, max_length=CRON_EXPRESSION_LENGTH_MAX)]
EpochMs = Annotated[int, rule(ge=0, le=DATETIME_MS_MAX, description="Milliseconds since the "
                                                                      "Unix epoch, UTC.")]
IntervalMs = Annotated[int, rule(ge=SCHEDULE_INTERVAL_MS_MIN, le=DURATION_MS_MAX,
                                 description="Milliseconds, a whole number of seconds.")]
OffsetMs = Annotated[int, rule(ge=0, le=DURATION_MS_MAX, description="Milliseconds.")]
JitterMs = Annotated[int, rule(ge=0, le=SCHEDULE_JITTER_MS_MAX, description="Milliseconds.")]
CatchupWindowMs = Annotated[int, rule(ge=SCHEDULE_CATCHUP_WINDOW_MS_MIN, le=DURATION_MS_MAX,
                                      description="Milliseconds.")]
TimeZoneName = Annotated[str, rule(max_length=TIME_ZONE_NAME_LENGTH_MAX)]
Note = Annotated[str, rule(max_length=SCHEDULE_NOTE_LENGTH_MAX)]
ActionCount = Annotated[int, rule(ge=0, le=2**63 - 1)]
TaskTimeoutMs = Annotated[int, rule(ge=1, le=WORKFLOW_TASK_TIMEOUT_MS_MAX,
                                    description="Milliseconds.")]


class OverlapPolicy(StrEnum):
    """What a due action does while an earlier action of the schedule still runs (Temporal's)."""

    SKIP = "skip"                        # drop it
    BUFFER_ONE = "buffer_one"            # start it when the running one closes; keep at most one
    BUFFER_ALL = "buffer_all"            # start each in turn as the previous closes
    CANCEL_OTHER = "cancel_other"        # cancel the running one, start it once that closed
    TERMINATE_OTHER = "terminate_other"  # terminate the running one, start it once that closed
    ALLOW_ALL = "allow_all"              # start it now, whatever runs


class _Wire(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class IntervalSpec(_Wire, frozen=True):
    """Times `offset_ms + k * every_ms` since the epoch, UTC (Temporal's definition: time zones
    do not move them). `every_ms` and `offset_ms` are whole seconds, `offset_ms < every_ms`."""

    every_ms: IntervalMs
    offset_ms: OffsetMs = 0


class ScheduleSpec(_Wire, frozen=True):
    """When actions are due: the times of the calendars, cron expressions and intervals.
    `time_zone_name` ("" is UTC) is the IANA zone calendars and cron expressions are read in,
    unless an expression names its own (`CRON_TZ=`); `skip` expressions and `skip_calendars`
    remove the times they match. Bounds are inclusive; None is unbounded."""

    calendars: tuple[CalendarSpec, ...] = ()
    cron_expressions: tuple[CronText, ...] = ()
    intervals: tuple[IntervalSpec, ...] = ()
    skip: tuple[CronText, ...] = ()
    skip_calendars: tuple[CalendarSpec, ...] = ()
    start_at_ms: EpochMs | None = None
    end_at_ms: EpochMs | None = None
    jitter_ms: JitterMs = 0
    time_zone_name: TimeZoneName = ""


class SchedulePolicies(_Wire, frozen=True):
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catchup_window_ms: CatchupWindowMs = SCHEDULE_CATCHUP_WINDOW_MS_DEFAULT
    pause_on_failure: bool = False


class ScheduleState(_Wire, frozen=True):
    """`remaining_actions` counts down with each scheduled action (not triggered or backfilled
    ones, as in Temporal) when `limited_actions`; at 0 the schedule takes no more."""

    paused: bool = False
    note: Note = ""
    limited_actions: bool = False
    remaining_actions: ActionCount = 0


class ScheduleStartWorkflowAction(_Wire, frozen=True):
    """Start a run of `workflow_type`; its workflow id is `workflow_id` followed by the action's
    nominal time (`<workflow_id>-2026-12-07T05:00:00Z`), so a repeated action is refused as a
    duplicate instead of starting twice."""

    workflow_id: Id
    workflow_type: Id
    task_queue: Id
    input: PayloadField = NO_PAYLOAD
    execution_timeout_ms: DurationMs | None = None
    run_timeout_ms: DurationMs | None = None
    task_timeout_ms: TaskTimeoutMs | None = None
    retry_policy: RetryPolicy | None = None
    search_attributes: dict[str, JsonAttributeValue] = msgspec.field(default_factory=dict)


class Schedule(_Wire, frozen=True):
    spec: ScheduleSpec
    action: ScheduleStartWorkflowAction
    policies: SchedulePolicies = msgspec.field(default_factory=SchedulePolicies)
    state: ScheduleState = msgspec.field(default_factory=ScheduleState)


class ScheduleBackfill(_Wire, frozen=True):
    """Take the actions whose nominal times lie in [start_at_ms, end_at_ms] now, as if each had
    been due (`overlap`: None is the schedule's policy)."""

    start_at_ms: EpochMs
    end_at_ms: EpochMs
    overlap: OverlapPolicy | None = None


# --- Answers: what describe and list say about a schedule -------------------------------------


class ScheduleActionRun(_Wire, frozen=True):
    """A run an action started (`run_id`: its first run)."""

    workflow_id: str
    run_id: str


class ScheduleActionResult(_Wire, frozen=True):
    """An action taken: its nominal time, when it actually started, and its run."""

    scheduled_at_ms: int
    started_at_ms: int
    action: ScheduleActionRun


class ScheduleInfo(_Wire, frozen=True):
    """A schedule's record (Temporal's `ScheduleInfo`); `recent_actions` are the last
    SCHEDULE_RECENT_ACTIONS_MAX, oldest first; `next_action_times_ms` the next
    SCHEDULE_NEXT_TIMES_SHOWN nominal times."""

    num_actions: int = 0
    num_actions_missed_catchup_window: int = 0
    num_actions_skipped_overlap: int = 0
    running_actions: tuple[ScheduleActionRun, ...] = ()
    recent_actions: tuple[ScheduleActionResult, ...] = ()
    next_action_times_ms: tuple[int, ...] = ()
    created_at_ms: int = 0
    last_updated_at_ms: int | None = None


class ScheduleDescription(_Wire, frozen=True):
    """`GET .../schedules/{schedule_id}`'s answer."""

    schedule_id: str
    schedule: Schedule
    info: ScheduleInfo


class ScheduleListEntry(_Wire, frozen=True):
    """One schedule in a list: what Temporal's list shows without a describe."""

    schedule_id: str
    workflow_type: str
    spec: ScheduleSpec
    note: str = ""
    paused: bool = False
    recent_actions: tuple[ScheduleActionResult, ...] = ()
    next_action_times_ms: tuple[int, ...] = ()


# --- Validation -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleProblem:
    """Why a schedule was refused: `field` is its path (`spec.cron_expressions[1]`)."""

    field: str
    message: str


def schedule_problem(schedule: Schedule, *, check_time_zones: bool = True,
                     ) -> ScheduleProblem | None:
    """The first rule `schedule` breaks, or None.

    `check_time_zones=False` skips looking zones up in this node's time zone database: the
    shard core must not, because the answer would depend on the node (the gateway has checked).
    """
    broken = first_violation(schedule)
    if broken is not None:
        return ScheduleProblem(broken[0], f"{broken[0]}: {broken[1]}")
    spec = schedule.spec
    found = _spec_problem(spec, check_time_zones=check_time_zones)
    if found is not None:
        return found
    attributes = schedule.action.search_attributes
    if len(attributes) > SEARCH_ATTRIBUTES_PER_RUN_MAX:
        return ScheduleProblem("action.search_attributes", (
            f"at most SEARCH_ATTRIBUTES_PER_RUN_MAX={SEARCH_ATTRIBUTES_PER_RUN_MAX} attributes"))
    if len(schedule.action.workflow_id) + len("-2026-01-01T00:00:00Z") > ID_LENGTH_MAX:
        return ScheduleProblem("action.workflow_id", (
            "action.workflow_id: too long to carry the nominal time within ID_LENGTH_MAX="
            f"{ID_LENGTH_MAX}"))
    return None


def backfill_problem(backfill: ScheduleBackfill) -> ScheduleProblem | None:
    """The first rule `backfill` breaks, or None."""
    broken = first_violation(backfill)
    if broken is not None:
        return ScheduleProblem(broken[0], f"{broken[0]}: {broken[1]}")
    if backfill.end_at_ms < backfill.start_at_ms:
        return ScheduleProblem("end_at_ms", "end_at_ms: must not be before start_at_ms")
    if backfill.end_at_ms - backfill.start_at_ms > SCHEDULE_BACKFILL_SPAN_MS_MAX:
        return ScheduleProblem("end_at_ms", (
            f"end_at_ms: a backfill spans at most SCHEDULE_BACKFILL_SPAN_MS_MAX="
            f"{SCHEDULE_BACKFILL_SPAN_MS_MAX} ms"))
    return None


def _spec_problem(spec: ScheduleSpec, *, check_time_zones: bool) -> ScheduleProblem | None:
    if not spec.cron_expressions and not spec.intervals and not spec.calendars:
        return ScheduleProblem("spec", "spec: give at least one calendar, cron expression or "
                               "interval")
    for name, count, limit in (
            ("cron_expressions", len(spec.cron_expressions), SCHEDULE_CRON_EXPRESSIONS_MAX),
            ("skip", len(spec.skip), SCHEDULE_CRON_EXPRESSIONS_MAX),
            ("calendars", len(spec.calendars), SCHEDULE_CRON_EXPRESSIONS_MAX),
            ("skip_calendars", len(spec.skip_calendars), SCHEDULE_CRON_EXPRESSIONS_MAX),
            ("intervals", len(spec.intervals), SCHEDULE_INTERVALS_MAX)):
        if count > limit:
            return ScheduleProblem(f"spec.{name}", f"spec.{name}: at most {limit} entries")
    for name, calendars in (("calendars", spec.calendars),
                            ("skip_calendars", spec.skip_calendars)):
        for index, calendar in enumerate(calendars):
            broken = calendar_problem(calendar)
            if broken is not None:
                field = f"spec.{name}[{index}].{broken[0]}"
                return ScheduleProblem(field, f"{field}: {broken[1]}")
            expression = calendar_expression(calendar)
            if (name == "calendars" and not calendar.year
                    and next_wall_match(expression, *_CALENDAR_CYCLE_WALL_S) is None):
                field = f"spec.calendars[{index}]"
                return ScheduleProblem(field, f"{field}: never fires (no such day, as "
                                       "February 30)")
    zones = [("spec.time_zone_name", spec.time_zone_name)]
    for name, texts in (("cron_expressions", spec.cron_expressions), ("skip", spec.skip)):
        for index, text in enumerate(texts):
            field = f"spec.{name}[{index}]"
            try:
                expression = parse_cron(text)
            except CronError as error:
                return ScheduleProblem(field, f"{field}: {error}")
            if next_wall_match(expression, *_CALENDAR_CYCLE_WALL_S) is None:
                return ScheduleProblem(field, f"{field}: {text!r} never fires (no such day, "
                                       "as February 30)")
            zones.append((field, expression.time_zone_name))
    for index, interval in enumerate(spec.intervals):
        field = f"spec.intervals[{index}]"
        if interval.every_ms % 1000 or interval.offset_ms % 1000:
            return ScheduleProblem(field, f"{field}: every_ms and offset_ms must be whole seconds")
        if interval.offset_ms >= interval.every_ms:
            return ScheduleProblem(f"{field}.offset_ms",
                                   f"{field}.offset_ms: must be less than every_ms")
    if (spec.start_at_ms is not None and spec.end_at_ms is not None
            and spec.end_at_ms < spec.start_at_ms):
        return ScheduleProblem("spec.end_at_ms", "spec.end_at_ms: must not be before start_at_ms")
    if check_time_zones:
        for field, zone in zones:
            if zone and not time_zone_known(zone):
                return ScheduleProblem(field, f"{field}: unknown time zone {zone!r} (an IANA "
                                       "name such as 'Europe/Berlin')")
    return None


def time_zone_known(name: str) -> bool:
    """Whether this node's time zone database has `name` ("" is UTC and always known)."""
    if not name:
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True
