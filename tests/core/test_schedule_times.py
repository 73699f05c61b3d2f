"""Goal: a schedule's nominal times, jitter, action ids and catch-up steps behave as
documented in `schedule_times.py` and `schedule_catchup.py`, including DST changes, leap
days and every-second schedules (validation: test_schedule_validation.py).

Method: tables of (spec, after) -> the next times as RFC 3339 strings; properties for jitter;
a simulated every-second schedule with downtime checking that no nominal time is acted on twice
and none outside the downtime's missed window is lost.
"""

from __future__ import annotations

from datetime import UTC, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.protocol.rfc3339 import format_rfc3339_ms, parse_rfc3339_ms
from raftflow.protocol.schedule_calendars import CalendarSpec
from raftflow.protocol.schedule_calendars import ScheduleRange as R
from raftflow.protocol.schedules import (
    IntervalSpec,
    ScheduleSpec,
)
from raftflow.shards.core.limits import SCHEDULE_MISSED_COUNT_MAX
from raftflow.shards.core.schedule_catchup import backfill_times, due_times
from raftflow.shards.core.schedule_times import (
    action_workflow_id,
    actual_time_ms,
    compile_spec,
    jitter_offset_ms,
    next_nominal_after,
    next_nominal_times,
)


def ms(text: str) -> int:
    return parse_rfc3339_ms(text)


def times(spec: ScheduleSpec, after: str, count: int = 4) -> list[str]:
    found = next_nominal_times(compile_spec(spec, ZoneInfo), ms(after), count)
    return [format_rfc3339_ms(t).replace(".000Z", "Z") for t in found]


NY = "America/New_York"
BERLIN = "Europe/Berlin"


@pytest.mark.parametrize(("spec", "after", "expected"), [
    # Every second (6 fields), strictly after a fractional instant.
    (ScheduleSpec(cron_expressions=("*/1 * * * * *",)), "2026-01-01T00:00:00.500Z",
     ["2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z",
      "2026-01-01T00:00:04Z"]),
    # New York, spring forward (2026-03-08 02:00 EST -> 03:00 EDT): 02:30 fires at 03:30 EDT.
    (ScheduleSpec(cron_expressions=("30 2 * * *",), time_zone_name=NY), "2026-03-07T00:00:00Z",
     ["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z",
      "2026-03-10T06:30:00Z"]),
    # ... and the skipped hour's images coincide with 03:xx: each instant once.
    (ScheduleSpec(cron_expressions=("0,30 * * * *",), time_zone_name=NY), "2026-03-08T06:00:00Z",
     ["2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z",
      "2026-03-08T08:00:00Z"]),
    # New York, fall back (2026-11-01 02:00 EDT -> 01:00 EST): 01:30 fires once, the first time.
    (ScheduleSpec(cron_expressions=("30 1 * * *",), time_zone_name=NY), "2026-10-31T00:00:00Z",
     ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z",
      "2026-11-03T06:30:00Z"]),
    # ... an hourly job skips the repeated hour.
    (ScheduleSpec(cron_expressions=("0 * * * *",), time_zone_name=NY), "2026-11-01T04:30:00Z",
     ["2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z",
      "2026-11-01T09:00:00Z"]),
    # Berlin, spring forward 2026-03-29 02:00 CET -> 03:00 CEST.
    (ScheduleSpec(cron_expressions=("30 2 * * *",), time_zone_name=BERLIN),
     "2026-03-28T00:00:00Z",
     ["2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z",
      "2026-03-31T00:30:00Z"]),
    # Berlin, fall back 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 once.
    (ScheduleSpec(cron_expressions=("30 2 * * *",), time_zone_name=BERLIN),
     "2026-10-24T00:00:00Z",
     ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z",
      "2026-10-27T01:30:00Z"]),
    # CRON_TZ overrides the spec's zone.
    (ScheduleSpec(cron_expressions=("CRON_TZ=Europe/Berlin 0 9 * * *",), time_zone_name=NY),
     "2026-07-01T00:00:00Z",
     ["2026-07-01T07:00:00Z", "2026-07-02T07:00:00Z", "2026-07-03T07:00:00Z",
      "2026-07-04T07:00:00Z"]),
    # Samoa skipped 2011-12-30 entirely (UTC-10 -> UTC+14): its times fire shifted by a day.
    (ScheduleSpec(cron_expressions=("0 12 * * *",), time_zone_name="Pacific/Apia"),
     "2011-12-28T00:00:00Z",
     ["2011-12-28T22:00:00Z", "2011-12-29T22:00:00Z", "2011-12-30T22:00:00Z",
      "2011-12-31T22:00:00Z"]),
    # Leap days and months without a 31st.
    (ScheduleSpec(cron_expressions=("0 0 29 2 *",)), "2026-01-01T00:00:00Z",
     ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", "2036-02-29T00:00:00Z",
      "2040-02-29T00:00:00Z"]),
    (ScheduleSpec(cron_expressions=("0 0 31 * *",)), "2026-01-15T00:00:00Z",
     ["2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z",
      "2026-07-31T00:00:00Z"]),
    # Intervals: offset + k * every since the epoch, in UTC whatever the zone.
    (ScheduleSpec(intervals=(IntervalSpec(every_ms=3_600_000, offset_ms=300_000),),
                  time_zone_name=NY), "2026-03-08T06:05:00Z",
     ["2026-03-08T07:05:00Z", "2026-03-08T08:05:00Z", "2026-03-08T09:05:00Z",
      "2026-03-08T10:05:00Z"]),
    # The union of sources, each instant once; start/end bounds inclusive.
    (ScheduleSpec(cron_expressions=("0 * * * *",),
                  intervals=(IntervalSpec(every_ms=1_800_000),),
                  start_at_ms=ms("2026-01-01T01:00:00Z"), end_at_ms=ms("2026-01-01T02:30:00Z")),
     "2026-01-01T00:00:00Z",
     ["2026-01-01T01:00:00Z", "2026-01-01T01:30:00Z", "2026-01-01T02:00:00Z",
      "2026-01-01T02:30:00Z"]),
    # Skip expressions remove the times they match (local wall time).
    (ScheduleSpec(cron_expressions=("0 * * * *",), skip=("0 12-13 * * *",)),
     "2026-01-01T10:30:00Z",
     ["2026-01-01T11:00:00Z", "2026-01-01T14:00:00Z", "2026-01-01T15:00:00Z",
      "2026-01-01T16:00:00Z"]),
    # Calendars (Temporal's): noon on the 1st, 3rd, 5th, 7th, 9th and 22nd, in Berlin.
    (ScheduleSpec(calendars=(CalendarSpec(hour=(R(start=12),), day_of_month=(
        R(start=1, end=10, step=2), R(start=22))),), time_zone_name=BERLIN),
     "2026-01-08T00:00:00Z",
     ["2026-01-09T11:00:00Z", "2026-01-22T11:00:00Z", "2026-02-01T11:00:00Z",
      "2026-02-03T11:00:00Z"]),
    # ... both day fields must match (unlike cron): Friday the 13th.
    (ScheduleSpec(calendars=(CalendarSpec(day_of_month=(R(start=13),),
                                          day_of_week=(R(start=5),)),)),
     "2026-01-01T00:00:00Z",
     ["2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z", "2026-11-13T00:00:00Z",
      "2027-08-13T00:00:00Z"]),
    # ... a year range, and end below start meaning start alone.
    (ScheduleSpec(calendars=(CalendarSpec(month=(R(start=6, end=1),), day_of_month=(
        R(start=1),), year=(R(start=2030, end=2031),)),)), "2026-01-01T00:00:00Z",
     ["2030-06-01T00:00:00Z", "2031-06-01T00:00:00Z"]),
    # ... and skip calendars.
    (ScheduleSpec(cron_expressions=("0 * * * *",), skip_calendars=(CalendarSpec(
        hour=(R(start=12, end=13),), minute=(R(start=0, end=59),)),)),
     "2026-01-01T10:30:00Z",
     ["2026-01-01T11:00:00Z", "2026-01-01T14:00:00Z", "2026-01-01T15:00:00Z",
      "2026-01-01T16:00:00Z"]),
])
def test_next_times(spec: ScheduleSpec, after: str, expected: list[str]) -> None:
    assert times(spec, after) == expected


def test_a_spec_without_more_times_gives_none() -> None:
    ended = compile_spec(ScheduleSpec(intervals=(IntervalSpec(every_ms=60_000),),
                                      end_at_ms=ms("2026-01-01T00:00:00Z")), ZoneInfo)
    assert next_nominal_after(ended, ms("2026-01-01T00:00:00Z")) is None
    all_skipped = compile_spec(ScheduleSpec(cron_expressions=("* * * * *",),
                                            skip=("* * * * *",)), ZoneInfo)
    assert next_nominal_after(all_skipped, 0) is None


def test_action_ids_name_the_nominal_time_as_temporal_does() -> None:
    assert action_workflow_id("report", ms("2026-12-07T05:00:00Z")) == "report-2026-12-07T05:00:00Z"
    assert action_workflow_id("r", ms("2026-12-07T05:00:00.250Z")) == "r-2026-12-07T05:00:00.250Z"


@settings(max_examples=200, deadline=None)
@given(schedule_id=st.text(min_size=1, max_size=20), nominal=st.integers(0, 2**41),
       jitter=st.integers(0, 86_400_000), gap=st.none() | st.integers(1, 10**8))
def test_jitter_is_stable_and_within_its_bounds(schedule_id: str, nominal: int, jitter: int,
                                                gap: int | None) -> None:
    following = None if gap is None else nominal + gap
    offset = jitter_offset_ms(schedule_id, nominal, jitter, following)
    assert offset == jitter_offset_ms(schedule_id, nominal, jitter, following)
    assert 0 <= offset < max(1, jitter)
    assert following is None or nominal + offset < following


def test_jitter_spreads_schedules_and_keeps_order() -> None:
    spec = compile_spec(ScheduleSpec(cron_expressions=("* * * * *",), jitter_ms=120_000),
                        ZoneInfo)
    nominal = ms("2026-01-01T00:00:00Z")
    offsets = {actual_time_ms(spec, f"s{i}", nominal) - nominal for i in range(50)}
    assert len(offsets) > 40 and all(0 <= o < 60_000 for o in offsets)  # capped by the next time


# --- Catch-up -------------------------------------------------------------------------------------


EVERY_SECOND = compile_spec(ScheduleSpec(intervals=(IntervalSpec(every_ms=1_000),)), ZoneInfo)


def test_catch_up_takes_the_window_and_counts_the_rest_missed() -> None:
    start = ms("2026-01-01T00:00:00Z")
    step = due_times(EVERY_SECOND, "s", processed_through_ms=start, now_ms=start + 600_000,
                     catchup_window_ms=60_000)
    assert step.missed == 540 - 1 and not step.missed_capped  # (start, now-60s) exclusive
    assert [d.nominal_ms for d in step.due] == list(range(start + 540_000, start + 600_001,
                                                         1_000))
    assert step.processed_through_ms == start + 600_000
    assert step.next_wake_ms == start + 601_000


def test_catch_up_stops_at_its_bound_and_wakes_at_once() -> None:
    start = ms("2026-01-01T00:00:00Z")
    step = due_times(EVERY_SECOND, "s", processed_through_ms=start, now_ms=start + 100_000,
                     catchup_window_ms=3_600_000, times_max=30)
    assert len(step.due) == 30 and step.processed_through_ms == start + 30_000
    assert step.next_wake_ms == start + 31_000  # already due: the leader steps again


def test_a_year_of_downtime_is_one_bounded_step() -> None:
    start = ms("2025-01-01T00:00:00Z")
    now = start + 365 * 86_400_000
    step = due_times(EVERY_SECOND, "s", processed_through_ms=start, now_ms=now,
                     catchup_window_ms=10_000)
    assert step.missed_capped and step.missed >= SCHEDULE_MISSED_COUNT_MAX
    assert [d.nominal_ms for d in step.due] == list(range(now - 10_000, now + 1, 1_000))


def test_nothing_due_before_the_next_time_and_the_cursor_never_moves_back() -> None:
    start = ms("2026-01-01T00:00:00Z")
    step = due_times(EVERY_SECOND, "s", processed_through_ms=start, now_ms=start + 999,
                     catchup_window_ms=60_000)
    assert step.due == () and step.processed_through_ms == start
    assert step.next_wake_ms == start + 1_000


def test_an_every_second_schedule_with_downtime_acts_once_per_time() -> None:
    """The issue's check: a 1 s schedule, woken late, with leader steps repeated (a retried
    proposal) and a downtime: every nominal time is acted on at most once, and all of them are
    except those older than the catch-up window when the leader came back."""
    start = ms("2026-01-01T00:00:00Z")
    window = 30_000
    acted: list[int] = []
    missed = 0
    cursor = start
    wakes = [start + s * 1_000 + 370 for s in range(1, 20)] + [start + 200_000 + 5,
                                                               start + 200_000 + 5]
    wakes += [start + 201_000 + s * 1_000 for s in range(10)]
    for now in wakes:
        step = due_times(EVERY_SECOND, "s", processed_through_ms=cursor, now_ms=now,
                         catchup_window_ms=window)
        acted.extend(d.nominal_ms for d in step.due)
        missed += step.missed
        cursor = step.processed_through_ms
    assert len(acted) == len(set(acted)), "an action was taken twice"
    expected = set(range(start + 1_000, start + 20_000, 1_000)) | set(
        range(start + 171_000, start + 211_000, 1_000))  # window start: 200.005 s - 30 s
    assert set(acted) == expected
    assert missed == len(range(start + 20_000, start + 171_000, 1_000))


def test_backfill_walks_its_range_in_steps() -> None:
    spec = compile_spec(ScheduleSpec(cron_expressions=("0 * * * *",)), ZoneInfo)
    first = backfill_times(spec, start_at_ms=ms("2026-01-01T00:00:00Z"),
                           end_at_ms=ms("2026-01-01T05:00:00Z"), processed_through_ms=None,
                           times_max=4)
    assert [format_rfc3339_ms(t)[11:16] for t in first.nominal_times] == [
        "00:00", "01:00", "02:00", "03:00"]
    assert not first.done
    rest = backfill_times(spec, start_at_ms=ms("2026-01-01T00:00:00Z"),
                          end_at_ms=ms("2026-01-01T05:00:00Z"),
                          processed_through_ms=first.processed_through_ms, times_max=4)
    assert [format_rfc3339_ms(t)[11:16] for t in rest.nominal_times] == ["04:00", "05:00"]
    assert rest.done


def test_zones_come_from_the_caller_only() -> None:
    """The core resolves no zone itself: `zone_of` is asked for exactly the names the spec uses
    (the shell passes zoneinfo.ZoneInfo; see the determinism note in schedule_times.py)."""
    asked: list[str] = []

    def zone_of(name: str) -> tzinfo:
        asked.append(name)
        return timezone(timedelta(hours=5, minutes=30))  # fixed offsets take the fast path

    spec = compile_spec(ScheduleSpec(cron_expressions=("0 9 * * *", "CRON_TZ=Asia/Tokyo @daily"),
                                     intervals=(IntervalSpec(every_ms=86_400_000),),
                                     time_zone_name="Asia/Kolkata"), zone_of)
    assert asked == ["Asia/Kolkata", "Asia/Tokyo"]
    found = next_nominal_times(spec, ms("2026-01-01T00:00:00Z"), 3)
    assert [format_rfc3339_ms(t) for t in found] == [
        "2026-01-01T03:30:00.000Z", "2026-01-01T18:30:00.000Z", "2026-01-02T00:00:00.000Z"]
    assert compile_spec(ScheduleSpec(cron_expressions=("@daily",)), zone_of).crons[0].zone is UTC
    assert asked == ["Asia/Kolkata", "Asia/Tokyo"]


@settings(max_examples=150, deadline=None)
@given(every_s=st.sampled_from([1, 7, 60]), jitter_ms=st.sampled_from([0, 500, 5_000]),
       window_s=st.integers(10, 120), cron=st.booleans(),
       gaps_ms=st.lists(st.integers(0, 200_000), min_size=1, max_size=25))
def test_steps_partition_the_nominal_times(every_s: int, jitter_ms: int, window_s: int,
                                           cron: bool, gaps_ms: list[int]) -> None:
    """Whatever the wake-up times (repeats, long gaps), each nominal time up to the final
    cursor is taken or counted missed exactly once, in order, and taken only inside the window
    at the step that took it."""
    spec = compile_spec(ScheduleSpec(
        cron_expressions=("*/7 * * * * *",) if cron else (),
        intervals=() if cron else (IntervalSpec(every_ms=every_s * 1_000),),
        jitter_ms=jitter_ms, time_zone_name=NY), ZoneInfo)
    start = cursor = ms("2026-03-08T06:58:00Z")  # across New York's spring-forward
    now = start
    taken: list[int] = []
    missed = 0
    for gap in gaps_ms:
        now += gap
        step = due_times(spec, "s", processed_through_ms=cursor, now_ms=now,
                         catchup_window_ms=window_s * 1_000)
        assert step.processed_through_ms >= cursor and not step.missed_capped
        for due in step.due:
            assert now - window_s * 1_000 <= due.actual_ms <= now
            assert due.actual_ms == actual_time_ms(spec, "s", due.nominal_ms)
        taken += [d.nominal_ms for d in step.due]
        missed += step.missed
        cursor = step.processed_through_ms
        assert step.next_wake_ms is None or step.next_wake_ms > now or len(step.due) > 0
    expected: list[int] = []
    following = next_nominal_after(spec, start)
    while following is not None and following <= cursor:
        expected.append(following)
        following = next_nominal_after(spec, following)
    assert taken == sorted(set(taken)) and set(taken) <= set(expected)
    assert len(taken) + missed == len(expected)
