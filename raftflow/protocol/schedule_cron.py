"""Cron expressions of schedules: parsing into a `CronExpression`, and matching wall-clock times.

Theory of operation. A schedule's `cron_expressions` (and its `skip` list) are classic cron
strings read the way robfig/cron and Temporal read them:

- 5 fields `minute hour day-of-month month day-of-week` (second 0), or 6 with a leading
  seconds field (`*/1 * * * * *` fires every second);
- each field is `*`, `?` (same as `*`), a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`
  (from a to the field's maximum), or a comma list of those; months `JAN`-`DEC` and days
  `SUN`-`SAT` by name (any case); day-of-week 0-6 from Sunday, 7 also Sunday;
- macros `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`), `@hourly`;
- an optional `CRON_TZ=<IANA zone> ` (or `TZ=`) prefix: the expression's own time zone;
- day-of-month and day-of-week: when both are restricted (neither starts with `*` or `?`) a
  day matches if either does (`0 0 1 * MON`: the 1st and every Monday); otherwise both must.

Why here and not in the shard core: the gateway refuses a bad expression with a 400 naming the
field, the SDK checks it before sending, and the core computes fire times from it; protocol is
the one layer all three may import. Matching is on naive wall-clock fields only; turning wall
times into instants (time zones, DST) is `shards/core/schedule_times.py`'s job.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

# Characters of one cron expression (the prefix included): long enough for any hand-written
# list of values, short enough that parsing one is trivial work at the edge.
CRON_EXPRESSION_LENGTH_MAX = 512

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True, slots=True)
class _FieldKind:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] means low + i


_SECOND = _FieldKind("second", 0, 59)
_MINUTE = _FieldKind("minute", 0, 59)
_HOUR = _FieldKind("hour", 0, 23)
_DAY_OF_MONTH = _FieldKind("day-of-month", 1, 31)
_MONTH = _FieldKind("month", 1, 12, _MONTHS)
# 7 is accepted as Sunday (robfig, Vixie cron) and folded onto 0 after parsing.
_DAY_OF_WEEK = _FieldKind("day-of-week", 0, 7, _DAYS)


class CronError(ValueError):
    """A cron expression that cannot be parsed; the message names the field and the rule."""


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed cron expression: the values each field allows, as sorted tuples.

    `days_of_week` uses 0 = Sunday .. 6 = Saturday. `time_zone_name` is the `CRON_TZ=` prefix's
    zone ("" when none: the schedule's zone applies).
    """

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    days_of_week: tuple[int, ...]
    day_of_month_restricted: bool
    day_of_week_restricted: bool
    time_zone_name: str = ""
    # Calendar specs only (`schedule_calendars.py`): the years allowed, () for any.
    years: tuple[int, ...] = ()

    def matches_day(self, year: int, month: int, day: int) -> bool:
        """Whether the date is a firing day (month and the dom/dow rule; not the time)."""
        if month not in self.months or day > calendar.monthrange(year, month)[1]:
            return False
        if self.years and year not in self.years:
            return False
        dom = day in self.days_of_month
        # calendar.weekday: Monday 0 .. Sunday 6; cron: Sunday 0 .. Saturday 6.
        dow = (calendar.weekday(year, month, day) + 1) % 7 in self.days_of_week
        if self.day_of_month_restricted and self.day_of_week_restricted:
            return dom or dow
        return dom and dow


def parse_cron(text: str) -> CronExpression:
    """The expression `text` means.

    Raises:
        CronError: naming the field and the rule it breaks (`minute field '61': 61 is out of
            range 0-59`).
    """
    if len(text) > CRON_EXPRESSION_LENGTH_MAX:
        raise CronError(f"cron expression is longer than {CRON_EXPRESSION_LENGTH_MAX} characters")
    body, zone = _split_time_zone(text.strip())
    body = _MACROS.get(body.lower(), body) if body.startswith("@") else body
    if body.startswith("@"):
        raise CronError(f"unknown cron macro {body.split()[0]!r} (known: "
                        f"{', '.join(sorted(_MACROS))})")
    fields = body.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise CronError(f"cron expression {text!r} has {len(fields)} fields; expected 5 "
                        "(minute hour day-of-month month day-of-week) or 6 (with seconds first)")
    kinds = (_SECOND, _MINUTE, _HOUR, _DAY_OF_MONTH, _MONTH, _DAY_OF_WEEK)
    values = [_parse_field(kind, field) for kind, field in zip(kinds, fields, strict=True)]
    days_of_week = tuple(sorted({d % 7 for d in values[5]}))
    expression = CronExpression(
        text=text, seconds=values[0], minutes=values[1], hours=values[2],
        days_of_month=values[3], months=values[4], days_of_week=days_of_week,
        day_of_month_restricted=not fields[3].startswith(("*", "?")),
        day_of_week_restricted=not fields[5].startswith(("*", "?")),
        time_zone_name=zone)
    assert all(0 <= d <= 6 for d in expression.days_of_week)
    assert expression.seconds and expression.months, expression
    return expression


def _split_time_zone(text: str) -> tuple[str, str]:
    """(expression without its `CRON_TZ=`/`TZ=` prefix, the prefix's zone name or "")."""
    for prefix in ("CRON_TZ=", "TZ="):
        if text.startswith(prefix):
            zone, _, rest = text[len(prefix):].partition(" ")
            if not zone or not rest.strip():
                raise CronError(f"{prefix} must be followed by a time zone name and the "
                                "expression, as in 'CRON_TZ=Europe/Berlin 0 9 * * *'")
            return rest.strip(), zone
    return text, ""


def _parse_field(kind: _FieldKind, field: str) -> tuple[int, ...]:
    allowed: set[int] = set()
    for part in field.split(","):
        if not part:
            raise CronError(f"{kind.name} field {field!r}: empty list element")
        allowed.update(_parse_part(kind, field, part))
    assert allowed and all(kind.low <= v <= kind.high for v in allowed), (kind, field)
    return tuple(sorted(allowed))


def _parse_part(kind: _FieldKind, field: str, part: str) -> range:
    where = f"{kind.name} field {field!r}"
    span, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{where}: step {step_text!r} must be a positive integer")
        step = int(step_text)
    # `*` and `a/n` mean each day of the week once: 7 (Sunday again) only when written.
    top = 6 if kind is _DAY_OF_WEEK else kind.high
    if span in ("*", "?"):
        low, high = kind.low, top
    elif "-" in span:
        first, _, last = span.partition("-")
        low, high = _value(kind, where, first), _value(kind, where, last)
        if low > high:
            raise CronError(f"{where}: range {span!r} starts after it ends")
    else:
        low = _value(kind, where, span)
        # `a/n` runs from a to the field's maximum (robfig, Vixie cron); a bare value is itself.
        high = max(low, top) if slash else low
    return range(low, high + 1, step)


def _value(kind: _FieldKind, where: str, text: str) -> int:
    upper = text.upper()
    if kind.names and upper in kind.names:
        return kind.low + kind.names.index(upper)
    if not text.isdigit():
        known = f" or a name ({'/'.join(kind.names)})" if kind.names else ""
        raise CronError(f"{where}: {text!r} is not a number{known}")
    value = int(text)
    if not kind.low <= value <= kind.high:
        raise CronError(f"{where}: {value} is out of range {kind.low}-{kind.high}")
    return value


def next_wall_match(expression: CronExpression, wall_s: int, until_wall_s: int) -> int | None:
    """The first wall-clock second >= `wall_s` the expression matches, or None if none is
    <= `until_wall_s`. Wall seconds count naive local time from 1970-01-01T00:00:00 (no zone:
    the caller maps them to instants). Jumps field by field, so its cost grows with the number
    of non-matching days in between, not with seconds."""
    assert wall_s <= until_wall_s
    days, rest = divmod(wall_s, 86_400)
    hour, rest = divmod(rest, 3_600)
    minute, second = divmod(rest, 60)
    day = _EPOCH_ORDINAL + days
    last_day = _EPOCH_ORDINAL + until_wall_s // 86_400
    while day <= last_day:
        if not _matches_ordinal(expression, day):
            day, hour, minute, second = day + 1, 0, 0, 0
            continue
        found = _first_time_of_day(expression, hour, minute, second)
        if found is not None:
            result = (day - _EPOCH_ORDINAL) * 86_400 + found
            return result if result <= until_wall_s else None
        day, hour, minute, second = day + 1, 0, 0, 0
    return None


_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


def _matches_ordinal(expression: CronExpression, ordinal: int) -> bool:
    moment = date.fromordinal(ordinal)
    return expression.matches_day(moment.year, moment.month, moment.day)


def _first_time_of_day(expression: CronExpression, hour: int, minute: int,
                       second: int) -> int | None:
    """Seconds into the day of the first matching time at or after hour:minute:second."""
    for h in expression.hours:
        if h < hour:
            continue
        for m in expression.minutes:
            if h == hour and m < minute:
                continue
            for s in expression.seconds:
                if h == hour and m == minute and s < second:
                    continue
                return h * 3_600 + m * 60 + s
    return None
