"""Calendar specs of schedules (Temporal's `ScheduleCalendarSpec`): times given field by field
as ranges, instead of as a cron string.

Theory of operation. A `CalendarSpec` names, per field, a tuple of `ScheduleRange`s (Temporal's:
`end` 0 or below `start` means `start` alone, `step` 0 means 1). A field left at its default
is Temporal's default: second, minute and hour 0, every day of the month, every month, every
year, every day of the week. Unlike cron, day-of-month and day-of-week are both required to
match (Temporal's calendar rule). `calendar_expression` turns a spec into the same
`CronExpression` the cron parser gives, with the day rule set to "both" and a year filter, so
one matcher and one fire-time search serve both forms.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from raftflow.protocol.edge_rules import rule
from raftflow.protocol.schedule_cron import CronExpression

# Ranges per field of one calendar spec: matching cost grows with the values they allow, and
# any hand-written calendar needs a few.
CALENDAR_RANGES_PER_FIELD_MAX = 64
# Characters of a calendar spec's comment.
CALENDAR_COMMENT_LENGTH_MAX = 1_024
# Years a calendar spec may name: the span the fire-time search and RFC 3339 formatting handle.
CALENDAR_YEAR_MIN = 1970
CALENDAR_YEAR_MAX = 9999

RangeValue = Annotated[int, rule(ge=0, le=CALENDAR_YEAR_MAX)]


class ScheduleRange(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: RangeValue
    end: RangeValue = 0
    step: RangeValue = 0


Ranges = Annotated[tuple[ScheduleRange, ...], msgspec.Meta(
    description=f"At most {CALENDAR_RANGES_PER_FIELD_MAX} ranges.")]


class CalendarSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    second: Ranges = (ScheduleRange(start=0),)
    minute: Ranges = (ScheduleRange(start=0),)
    hour: Ranges = (ScheduleRange(start=0),)
    day_of_month: Ranges = (ScheduleRange(start=1, end=31),)
    month: Ranges = (ScheduleRange(start=1, end=12),)
    year: Ranges = ()
    day_of_week: Ranges = (ScheduleRange(start=0, end=6),)
    comment: Annotated[str, rule(max_length=CALENDAR_COMMENT_LENGTH_MAX)] = ""


_BOUNDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day_of_month", 1, 31),
           ("month", 1, 12), ("year", CALENDAR_YEAR_MIN, CALENDAR_YEAR_MAX),
           ("day_of_week", 0, 6))


def calendar_problem(spec: CalendarSpec) -> tuple[str, str] | None:
    """The first rule `spec` breaks, as (field below the spec, message), or None."""
    for name, low, high in _BOUNDS:
        ranges: tuple[ScheduleRange, ...] = getattr(spec, name)
        if len(ranges) > CALENDAR_RANGES_PER_FIELD_MAX:
            return name, f"at most {CALENDAR_RANGES_PER_FIELD_MAX} ranges"
        if not ranges and name != "year":
            return name, "give at least one range (left out, the field takes its default)"
        for index, one in enumerate(ranges):
            if not low <= one.start <= high:
                return f"{name}[{index}].start", f"must be in {low}-{high}"
            if one.end > high:
                return f"{name}[{index}].end", f"must be in {low}-{high}"
    return None


def calendar_expression(spec: CalendarSpec) -> CronExpression:
    """The matcher of a spec that passed `calendar_problem`."""
    assert calendar_problem(spec) is None, spec
    fields = {name: _values(getattr(spec, name)) for name, _, _ in _BOUNDS}
    expression = CronExpression(
        text=spec.comment or "calendar", seconds=fields["second"], minutes=fields["minute"],
        hours=fields["hour"], days_of_month=fields["day_of_month"], months=fields["month"],
        days_of_week=fields["day_of_week"],
        # Not "restricted" in cron's sense: the matcher then requires both day fields.
        day_of_month_restricted=False, day_of_week_restricted=True, years=fields["year"])
    assert expression.seconds and expression.days_of_week
    return expression


def _values(ranges: tuple[ScheduleRange, ...]) -> tuple[int, ...]:
    values: set[int] = set()
    for one in ranges:
        end = one.end if one.end >= one.start else one.start
        values.update(range(one.start, end + 1, one.step or 1))
    return tuple(sorted(values))
