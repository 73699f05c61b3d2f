"""Which of a schedule's nominal times to act on now: catch-up after downtime, and backfills.
Pure.

Theory of operation. A schedule keeps one cursor, `processed_through_ms`: every nominal time at
or before it has been handled (acted on, counted missed, or dropped), none after it has. When
the leader wakes for the schedule (its timer is due at `next_wake_ms`), `due_times` walks the
times after the cursor whose due time (nominal + jitter, `schedule_times.actual_time_ms`) is
at or before `now_ms`:

- a time whose due time is within `catchup_window_ms` before now is due: the overlap policy
  decides what to do with it (`schedule_overlap.py`);
- an older one was missed while no leader could act (downtime, a long election): it is counted
  (`missed`), not acted on. Temporal's rule, with its default window of a year;
- the cursor moves past every time looked at, and only forward, so a repeated or stale step
  cannot act on a time twice, and no time after the cursor is forgotten: a step that stops at
  SCHEDULE_TIMES_PER_TICK_MAX returns a `next_wake_ms` already due, and the leader steps again.

A 1 s schedule down for ten minutes with a window of a minute thus counts ~540 missed times and
takes the last ~60 (then, with SKIP, starts one and skips the rest while it runs). The leader
proposes the step's result inside the command (see `schedule_times`' note on determinism).

A backfill walks the nominal times of a range the same way (`backfill_times`), with its own
cursor, regardless of the catch-up window, and takes each as due now.
"""

from __future__ import annotations

from dataclasses import dataclass

from raftflow.shards.core.limits import SCHEDULE_MISSED_COUNT_MAX, SCHEDULE_TIMES_PER_TICK_MAX
from raftflow.shards.core.schedule_times import (
    CompiledSpec,
    actual_time_ms,
    jitter_offset_ms,
    next_nominal_after,
)


@dataclass(frozen=True, slots=True)
class DueTime:
    """One action to consider: its nominal time (its identity) and when it was due."""

    nominal_ms: int
    actual_ms: int


@dataclass(frozen=True, slots=True)
class DueTimes:
    """A catch-up step's outcome.

    due: the times to hand to the overlap policy, ascending.
    missed: times older than the catch-up window, skipped (`missed_capped`: at least this many;
        counting stopped at SCHEDULE_MISSED_COUNT_MAX).
    processed_through_ms: the schedule's new cursor (>= the old one).
    next_wake_ms: when the next time after the cursor is due (<= now: step again at once), or
        None when the spec has no more times.
    """

    due: tuple[DueTime, ...]
    missed: int
    missed_capped: bool
    processed_through_ms: int
    next_wake_ms: int | None


def due_times(spec: CompiledSpec, schedule_id: str, *, processed_through_ms: int, now_ms: int,
              catchup_window_ms: int, times_max: int = SCHEDULE_TIMES_PER_TICK_MAX) -> DueTimes:
    """The step the schedule takes at `now_ms` (the module docstring's rules)."""
    assert catchup_window_ms >= 0 and 0 < times_max <= SCHEDULE_TIMES_PER_TICK_MAX
    window_start = now_ms - catchup_window_ms
    cursor, missed, capped = _skip_surely_missed(spec, processed_through_ms,
                                                 window_start - spec.jitter_ms - 1)
    due: list[DueTime] = []
    nominal = next_nominal_after(spec, cursor)
    for _ in range(times_max):
        if nominal is None:
            break
        following = next_nominal_after(spec, nominal)
        actual = nominal + jitter_offset_ms(schedule_id, nominal, spec.jitter_ms, following)
        if actual > now_ms:
            break
        if actual < window_start:
            missed += 1
        else:
            due.append(DueTime(nominal, actual))
        cursor, nominal = nominal, following
    next_wake = None if nominal is None else actual_time_ms(spec, schedule_id, nominal)
    assert cursor >= processed_through_ms and all(d.actual_ms <= now_ms for d in due)
    assert next_wake is None or next_wake > cursor
    return DueTimes(due=tuple(due), missed=missed, missed_capped=capped,
                    processed_through_ms=cursor, next_wake_ms=next_wake)


def _skip_surely_missed(spec: CompiledSpec, cursor: int, surely_missed_until: int,
                        ) -> tuple[int, int, bool]:
    """Move the cursor over the times at or before `surely_missed_until` (missed whatever their
    jitter), counting them up to SCHEDULE_MISSED_COUNT_MAX, then jumping: (cursor, count,
    capped)."""
    missed = 0
    while cursor < surely_missed_until:
        nominal = next_nominal_after(spec, cursor)
        if nominal is None or nominal > surely_missed_until:
            break
        if missed == SCHEDULE_MISSED_COUNT_MAX:
            return surely_missed_until, missed, True
        missed += 1
        cursor = nominal
    return cursor, missed, False


@dataclass(frozen=True, slots=True)
class BackfillStep:
    """The next nominal times of a backfill range, and the backfill's new cursor (`done`: the
    range is exhausted, the backfill is over)."""

    nominal_times: tuple[int, ...]
    processed_through_ms: int
    done: bool


def backfill_times(spec: CompiledSpec, *, start_at_ms: int, end_at_ms: int,
                   processed_through_ms: int | None,
                   times_max: int = SCHEDULE_TIMES_PER_TICK_MAX) -> BackfillStep:
    """Up to `times_max` nominal times in [start_at_ms, end_at_ms] after the cursor
    (`None`: none handled yet). The spec's own start/end bounds and skips apply."""
    assert start_at_ms <= end_at_ms and 0 < times_max <= SCHEDULE_TIMES_PER_TICK_MAX
    cursor = start_at_ms - 1 if processed_through_ms is None else processed_through_ms
    found: list[int] = []
    while len(found) < times_max:
        nominal = next_nominal_after(spec, cursor)
        if nominal is None or nominal > end_at_ms:
            return BackfillStep(tuple(found), end_at_ms, done=True)
        found.append(nominal)
        cursor = nominal
    assert all(start_at_ms <= t <= end_at_ms for t in found)
    return BackfillStep(tuple(found), cursor, done=cursor >= end_at_ms)
