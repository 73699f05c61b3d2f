"""Goal: cron expressions parse as robfig/Temporal read them, refuse bad input with a message
naming the field, and the fire-time search in a time zone agrees with a brute-force scan.

Method: tables for parsing (valid forms and each error); a hypothesis property comparing
`next_nominal_after` for random 5-field expressions, around DST changes in several zones, with
an oracle that converts every matching wall-clock minute the slow way (`fold=0`, the documented
rule) and takes the first instant after t.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.protocol.schedule_cron import CronError, next_wall_match, parse_cron
from raftflow.protocol.schedules import ScheduleSpec
from raftflow.shards.core.schedule_times import compile_spec, next_nominal_after

ALL_DAYS = tuple(range(1, 32))


@pytest.mark.parametrize(("text", "field", "values"), [
    ("* * * * *", "seconds", (0,)),
    ("*/1 * * * * *", "seconds", tuple(range(60))),
    ("15,45 * * * * *", "seconds", (15, 45)),
    ("*/15 * * * *", "minutes", (0, 15, 30, 45)),
    ("5/20 * * * *", "minutes", (5, 25, 45)),
    ("10-20/5 * * * *", "minutes", (10, 15, 20)),
    ("0 9-11,14 * * *", "hours", (9, 10, 11, 14)),
    ("0 0 1,15 * *", "days_of_month", (1, 15)),
    ("0 0 * JAN,jun-Aug *", "months", (1, 6, 7, 8)),
    ("0 0 * * MON-FRI", "days_of_week", (1, 2, 3, 4, 5)),
    ("0 0 * * 7", "days_of_week", (0,)),
    ("0 0 * * 5-7", "days_of_week", (0, 5, 6)),
    ("0 0 * * ?", "days_of_week", (0, 1, 2, 3, 4, 5, 6)),
    ("0 0 * * */2", "days_of_week", (0, 2, 4, 6)),
    ("0 0 * * MON/2", "days_of_week", (1, 3, 5)),
    ("0 0 * * 7/3", "days_of_week", (0,)),
    ("@hourly", "minutes", (0,)),
    ("@daily", "hours", (0,)),
    ("@weekly", "days_of_week", (0,)),
    ("@monthly", "days_of_month", (1,)),
    ("@yearly", "months", (1,)),
    ("@annually", "days_of_month", (1,)),
    ("CRON_TZ=Europe/Berlin 0 9 * * *", "hours", (9,)),
])
def test_valid_expressions_parse_to_their_values(text: str, field: str,
                                                 values: tuple[int, ...]) -> None:
    assert getattr(parse_cron(text), field) == values


def test_the_time_zone_prefix_and_the_day_rule_are_recorded() -> None:
    zoned = parse_cron("CRON_TZ=America/New_York 30 2 * * *")
    assert zoned.time_zone_name == "America/New_York" and zoned.hours == (2,)
    assert parse_cron("TZ=UTC @daily").time_zone_name == "UTC"
    both = parse_cron("0 0 1 * MON")
    assert both.day_of_month_restricted and both.day_of_week_restricted
    stepped = parse_cron("0 0 */2 * MON")
    assert not stepped.day_of_month_restricted and stepped.day_of_week_restricted


@pytest.mark.parametrize(("text", "message"), [
    ("", "has 0 fields"),
    ("* * * *", "has 4 fields"),
    ("* * * * * * *", "has 7 fields"),
    ("60 * * * *", "minute field '60': 60 is out of range 0-59"),
    ("* * * * * 60", "day-of-week field '60'"),
    ("60 * * * * *", "second field '60': 60 is out of range 0-59"),
    ("0 24 * * *", "hour field '24'"),
    ("0 0 0 * *", "day-of-month field '0': 0 is out of range 1-31"),
    ("0 0 32 * *", "out of range 1-31"),
    ("0 0 * 13 *", "month field '13'"),
    ("0 0 * * 8", "day-of-week field '8': 8 is out of range 0-7"),
    ("*/0 * * * *", "step '0' must be a positive integer"),
    ("*/x * * * *", "step 'x' must be a positive integer"),
    ("5-2 * * * *", "range '5-2' starts after it ends"),
    ("1,,2 * * * *", "empty list element"),
    ("a * * * *", "'a' is not a number"),
    ("0 0 * FOO *", "'FOO' is not a number or a name (JAN/FEB"),
    ("0 0 * * FUNDAY", "or a name (SUN/MON"),
    ("-1 * * * *", "is not a number"),
    ("@every 5m", "unknown cron macro '@every'"),
    ("CRON_TZ=", "CRON_TZ= must be followed by a time zone name"),
    ("CRON_TZ=Europe/Berlin", "must be followed by a time zone name and the expression"),
    ("* " * 300, "longer than 512 characters"),
])
def test_bad_expressions_are_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(CronError) as raised:
        parse_cron(text)
    assert message in str(raised.value), str(raised.value)


def _wall_s(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


@pytest.mark.parametrize(("text", "after", "expected"), [
    ("0 12 * * *", "2026-01-01T12:00:01", "2026-01-02T12:00:00"),
    ("0 12 * * *", "2026-01-01T12:00:00", "2026-01-01T12:00:00"),  # at or after
    ("0 0 31 * *", "2026-02-01T00:00:00", "2026-03-31T00:00:00"),  # February has no 31st
    ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),  # leap years only
    ("0 0 29 2 *", "2096-03-01T00:00:00", "2104-02-29T00:00:00"),  # 2100 is not a leap year
    ("0 0 1 * MON", "2026-06-02T00:00:00", "2026-06-08T00:00:00"),  # dom OR dow: a Monday
    ("0 0 1 * MON", "2026-06-30T00:00:00", "2026-07-01T00:00:00"),  # ... or the 1st
    ("0 0 */7 * MON", "2026-06-02T00:00:00", "2026-06-08T00:00:00"),  # '*' field: AND (the 8th)
    ("0 0 13 * FRI", "2026-01-01T00:00:00", "2026-01-02T00:00:00"),  # Friday the 2nd (OR)
    ("30 59 23 31 12 *", "2026-01-01T00:00:00", "2026-12-31T23:59:30"),
])
def test_next_wall_match_in_naive_time(text: str, after: str, expected: str) -> None:
    found = next_wall_match(parse_cron(text), _wall_s(after), _wall_s("2200-01-01T00:00:00"))
    assert found == _wall_s(expected)


def test_next_wall_match_gives_up_at_the_bound() -> None:
    never = parse_cron("0 0 30 2 *")
    assert next_wall_match(never, 0, _wall_s("2100-01-01T00:00:00")) is None
    assert next_wall_match(parse_cron("@yearly"), _wall_s("2026-01-01T00:00:01"),
                           _wall_s("2026-12-31T23:59:59")) is None


# --- The search in a zone against a brute-force oracle -------------------------------------------

ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata")
# Days with a DST change in one of the zones above (Lord Howe moves by 30 minutes).
ANCHORS = ("2026-03-08T07:00:00", "2026-11-01T06:00:00", "2026-03-29T01:00:00",
           "2026-10-25T01:00:00", "2026-04-04T15:00:00", "2026-10-03T15:30:00",
           "2028-02-28T12:00:00", "2026-06-15T00:00:00")


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    return st.one_of(
        st.just("*"),
        st.integers(1, max(1, (high - low) // 2)).map(lambda n: f"*/{n}"),
        value.map(str),
        st.tuples(value, value).map(lambda p: f"{min(p)}-{max(p)}"),
        st.tuples(value, value, st.integers(1, 5)).map(lambda p: f"{min(p[:2])}-{max(p[:2])}/{p[2]}"),
        st.lists(value, min_size=2, max_size=3).map(lambda vs: ",".join(map(str, vs))),
    )


expressions = st.tuples(_field(0, 59), _field(0, 23), st.one_of(st.just("*"), _field(1, 31)),
                        st.just("*"), st.one_of(st.just("*"), _field(0, 6))).map(" ".join)


def _oracle(text: str, zone_name: str, after_ms: int, until_ms: int) -> int | None:
    """First instant in (after, until] of a matching wall minute converted with fold=0."""
    zone = ZoneInfo(zone_name)
    expression = parse_cron(text)
    start = datetime.fromtimestamp(after_ms // 1000, zone).replace(tzinfo=None, second=0)
    wall = start - timedelta(hours=3)
    end = datetime.fromtimestamp(until_ms // 1000, zone).replace(tzinfo=None) + timedelta(hours=3)
    best: int | None = None
    while wall <= end:
        if (wall.minute in expression.minutes and wall.hour in expression.hours
                and expression.matches_day(wall.year, wall.month, wall.day)):
            instant = int(wall.replace(tzinfo=zone, fold=0).timestamp()) * 1000
            if after_ms < instant <= until_ms and (best is None or instant < best):
                best = instant
        wall += timedelta(minutes=1)
    return best


@settings(max_examples=150, deadline=None)
@given(text=expressions, zone=st.sampled_from(ZONES), anchor=st.sampled_from(ANCHORS),
       shift_s=st.integers(-2 * 86_400, 86_400))
def test_next_time_agrees_with_a_brute_force_scan(text: str, zone: str, anchor: str,
                                                  shift_s: int) -> None:
    after_ms = (_wall_s(anchor) + shift_s) * 1000 + 250
    until_ms = after_ms + 3 * 86_400_000
    spec = compile_spec(ScheduleSpec(cron_expressions=(text,), time_zone_name=zone,
                                     end_at_ms=until_ms), ZoneInfo)
    assert next_nominal_after(spec, after_ms) == _oracle(text, zone, after_ms, until_ms), text
